//! Who a request comes from, and what it may do: accounts, API keys, tokens, CSRF tokens and
//! the failed-login limit.
//!
//! The security model (`docs/security.md` says it for users):
//! - An account has a role: `admin` (everything) or `viewer` (reads, and its own password and
//!   tokens). Passwords are kept as argon2id hashes (PHC strings).
//! - A request proves who it is with HTTP basic auth, a bearer token (`Authorization: Bearer`,
//!   `?token=` for SSE and WebSocket clients, or the `vigil_token` cookie a login sets), or an
//!   API key (`X-API-Key`, `?api_key=`). Tokens and keys are 32 random bytes; only their
//!   SHA-256 is stored, so the store's files do not hold a usable secret.
//! - Tokens come from a password login and expire ([`TOKEN_TTL`]); keys do not expire. Both can
//!   be revoked. A revoked or expired one is refused like a wrong one.
//! - A mutation (POST, PUT, PATCH, DELETE) authenticated by basic auth or by the cookie — what a
//!   browser sends by itself — must carry the account's CSRF token in `X-CSRF-TOKEN`
//!   (`GET /api/account/my-token`). CSRF tokens are made at start and live in memory only.
//! - Failed logins (password checks of any kind) are limited per client address:
//!   [`MAX_FAILURES`] in [`FAILURE_WINDOW`] (or what [`Auth::set_max_failures`] says), then 429
//!   until the window ends.
//!
//! Accounts are the store's [`Account`] records; keys and tokens are its [`ApiKey`] records (a
//! token is a key with an expiry, its prefix `vt_`; a key's is `vk_`); revoking one deletes
//! it. They are read once into memory and written through on every change, so they are as
//! crash-safe as the rest of the store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hyper::header::{HeaderMap, AUTHORIZATION, COOKIE};
use hyper::StatusCode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use vigil_core::{
    Account, AccountId, ApiKey, ApiKeyId, Clocks, IdGenerator, Mutation, RealClocks, Role, Store,
    Timestamp,
};

use crate::error::ApiError;

/// How long a token from a password login is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// How often a key's or token's `last_used` is written (not on every request).
const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// Failed password checks allowed per client address in [`FAILURE_WINDOW`], by default.
pub const MAX_FAILURES: u32 = 5;

/// The window of [`MAX_FAILURES`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// The name of the cookie a login sets.
pub const COOKIE_NAME: &str = "vigil_token";

/// How long a checked basic-auth password is remembered (argon2 takes tens of milliseconds,
/// on purpose; a client sending basic auth with every request must not pay it each time).
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// How a request proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// HTTP basic auth.
    Basic,
    /// The login cookie (a token).
    Cookie {
        /// The token's id.
        token_id: String,
    },
    /// A bearer token, in the header or `?token=`.
    Bearer {
        /// The token's id.
        token_id: String,
    },
    /// An API key.
    ApiKey {
        /// The key's id.
        key_id: String,
        /// The key's name.
        name: String,
    },
    /// Nobody: the server runs without authentication (loopback only).
    Open,
    /// Vigil itself, acting on a message that came another way (an MQTT command).
    Service,
}

impl Via {
    /// Whether a browser sends this by itself, so that a mutation needs the CSRF token.
    pub fn needs_csrf(&self) -> bool {
        matches!(self, Via::Basic | Via::Cookie { .. })
    }

    /// The token this request came with, if any.
    pub fn token_id(&self) -> Option<&str> {
        match self {
            Via::Cookie { token_id } | Via::Bearer { token_id } => Some(token_id),
            _ => None,
        }
    }
}

/// Who a request comes from.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The account's id (empty in open mode).
    pub account_id: String,
    /// The account's name (`anonymous` in open mode).
    pub username: String,
    /// What it may do.
    pub role: Role,
    /// How it proved it.
    pub via: Via,
}

impl Principal {
    /// Vigil acting for a channel that has no accounts (`mqtt`): an admin, named in the audit
    /// log by `name`.
    pub fn service(name: &str) -> Principal {
        Principal {
            account_id: String::new(),
            username: name.to_owned(),
            role: Role::Admin,
            via: Via::Service,
        }
    }

    /// The principal of a server without authentication: an admin nobody in particular.
    pub fn open() -> Principal {
        Principal {
            account_id: String::new(),
            username: "anonymous".into(),
            role: Role::Admin,
            via: Via::Open,
        }
    }

    /// The name written in audit entries: the user, or `apikey:<name>` for a key.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::ApiKey { name, .. } => format!("apikey:{name}"),
            _ => self.username.clone(),
        }
    }
}

/// An account as the API shows it (no hash).
#[derive(Clone, Debug, Serialize)]
pub struct AccountView {
    /// Identifier.
    pub id: String,
    /// Login name.
    pub username: String,
    /// `admin` or `viewer`.
    pub role: &'static str,
    /// SentryShot's flag: the role is admin.
    #[serde(rename = "isAdmin")]
    pub is_admin: bool,
    /// When it was made.
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    /// The last password login.
    #[serde(serialize_with = "iso_opt")]
    pub last_login: Option<Timestamp>,
}

/// An API key or a token as the API shows it (never the secret, which is shown once).
#[derive(Clone, Debug, Serialize)]
pub struct KeyView {
    /// Identifier.
    pub id: String,
    /// What it is for (a token's is `login`).
    pub name: String,
    /// The account it acts for.
    pub account_id: Option<String>,
    /// `admin` or `viewer`: what it may do (never more than its account).
    pub role: &'static str,
    /// The first characters of the secret, to tell them apart.
    pub prefix: String,
    /// When it was made.
    #[serde(serialize_with = "iso")]
    pub created_at: Timestamp,
    /// When it stops working (tokens; keys do not expire).
    #[serde(serialize_with = "iso_opt")]
    pub expires_at: Option<Timestamp>,
    /// Last time it was used (written at most once a minute).
    #[serde(serialize_with = "iso_opt")]
    pub last_used: Option<Timestamp>,
}

/// Times are ISO 8601 in the API.
fn iso<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

fn iso_opt<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// A token just issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The token (shown once).
    pub token: String,
    /// Its record.
    pub view: KeyView,
    /// The account.
    pub account: AccountView,
}

/// What a request carried to prove who it is.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// Basic auth user and password.
    pub basic: Option<(String, String)>,
    /// A bearer token (header or `?token=`).
    pub bearer: Option<String>,
    /// The login cookie's token.
    pub cookie: Option<String>,
    /// An API key (`X-API-Key` or `?api_key=`).
    pub api_key: Option<String>,
}

impl Credentials {
    /// Reads the credentials of a request.
    pub fn from_request(headers: &HeaderMap, query: &str) -> Credentials {
        let mut c = Credentials::default();
        if let Some(v) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v, ""));
            if scheme.eq_ignore_ascii_case("basic") {
                c.basic = decode_basic(rest.trim());
            } else if scheme.eq_ignore_ascii_case("bearer") {
                c.bearer = Some(rest.trim().to_owned());
            }
        }
        if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            c.api_key = Some(v.trim().to_owned());
        }
        for v in headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            for part in v.split(';') {
                if let Some((k, val)) = part.trim().split_once('=') {
                    if k == COOKIE_NAME {
                        c.cookie = Some(val.to_owned());
                    }
                }
            }
        }
        // Most queries carry neither: skip decoding them on every request.
        if !(query.contains("token=") || query.contains("api_key=")) {
            return c;
        }
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "token" if c.bearer.is_none() => c.bearer = Some(v.into_owned()),
                "api_key" if c.api_key.is_none() => c.api_key = Some(v.into_owned()),
                _ => {}
            }
        }
        c
    }

    /// Whether the request carried anything at all.
    pub fn any(&self) -> bool {
        self.basic.is_some()
            || self.bearer.is_some()
            || self.cookie.is_some()
            || self.api_key.is_some()
    }
}

fn decode_basic(b64: &str) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// The records, in memory.
#[derive(Default)]
struct Db {
    accounts: Vec<Account>,
    /// Keys and tokens.
    keys: Vec<ApiKey>,
}

const KEY_PREFIX: &str = "vk_";
const TOKEN_PREFIX: &str = "vt_";

fn account_view(a: &Account) -> AccountView {
    AccountView {
        id: a.id.to_string(),
        username: a.username.clone(),
        role: a.role.as_str(),
        is_admin: a.role == Role::Admin,
        created_at: a.created_at,
        last_login: a.last_login,
    }
}

fn key_view(k: &ApiKey) -> KeyView {
    KeyView {
        id: k.id.to_string(),
        name: k.name.clone(),
        account_id: k.owner.map(|o| o.to_string()),
        role: k.role.as_str(),
        prefix: k.prefix.clone(),
        created_at: k.created_at,
        expires_at: k.expires_at,
        last_used: k.last_used,
    }
}

fn is_token(k: &ApiKey) -> bool {
    k.prefix.starts_with(TOKEN_PREFIX)
}

/// The lesser of two roles.
fn least(a: Role, b: Role) -> Role {
    if a == Role::Admin && b == Role::Admin {
        Role::Admin
    } else {
        Role::Viewer
    }
}

/// An account id as the API gives it: ours are numbers; another system's (SentryShot makes
/// random strings such as `7phg3h7v3ayb5g2f`) is mapped to a number by a hash, the same one
/// every time, with the top bit set so that it never meets an id of ours (the clock's
/// microseconds).
pub fn account_id_of(s: &str) -> Result<AccountId, ApiError> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(AccountId(n));
    }
    check_name("id", s)?;
    let d = Sha256::digest(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    Ok(AccountId(u64::from_be_bytes(b) | 1 << 63))
}

/// Failed password checks per client address.
struct Limiter {
    failures: HashMap<IpAddr, (Instant, u32)>,
    /// Failures allowed in a window.
    max: u32,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            failures: HashMap::new(),
            max: MAX_FAILURES,
        }
    }
}

impl Limiter {
    /// `Err(wait)` while `ip` is over the limit.
    fn check(&mut self, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let Some(ip) = ip else { return Ok(()) };
        match self.failures.get(&ip) {
            Some(&(start, n)) if n >= self.max => {
                let end = start + FAILURE_WINDOW;
                if now < end {
                    Err(end - now)
                } else {
                    self.failures.remove(&ip);
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn fail(&mut self, ip: Option<IpAddr>, now: Instant) {
        let Some(ip) = ip else { return };
        if self.failures.len() > 10_000 {
            self.failures
                .retain(|_, (start, _)| now.duration_since(*start) < FAILURE_WINDOW);
        }
        let e = self.failures.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= FAILURE_WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    fn succeed(&mut self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.failures.remove(&ip);
        }
    }
}

/// Accounts, keys and tokens, kept in memory and written through to the store.
pub struct Auth {
    store: Arc<dyn Store>,
    ids: IdGenerator,
    db: Mutex<Db>,
    /// Serialises changes, so that checks (the last admin, a taken name) see the changes
    /// before them.
    writing: tokio::sync::Mutex<()>,
    csrf: Mutex<HashMap<AccountId, String>>,
    limiter: Mutex<Limiter>,
    /// Basic-auth passwords checked lately: a keyed digest of `user:password` → the account
    /// and the hash that was checked (a changed password no longer matches it).
    verified: Mutex<HashMap<[u8; 32], (AccountId, String, Instant)>>,
    /// The key of `verified`'s digests, random per process.
    pepper: [u8; 32],
    /// How long new tokens last, in microseconds.
    token_ttl_us: std::sync::atomic::AtomicI64,
}

use crate::lock;

fn now() -> Timestamp {
    RealClocks::default().realtime()
}

/// `n` random bytes, hex.
fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| {
        ApiError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the system's random source failed: {e}"),
        )
    })?;
    Ok(hex(&b))
}

fn hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 15)]));
    }
    s
}

fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| {
        ApiError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the system's random source failed: {e}"),
        )
    })?;
    let salt = SaltString::encode_b64(&salt).map_err(internal)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(internal)?
        .to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn unauthorized(msg: impl Into<String>) -> ApiError {
    ApiError::Status(StatusCode::UNAUTHORIZED, msg.into())
}

fn check_password_rules(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::bad_request(format!(
            "the password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if p.len() > 1024 {
        return Err(ApiError::bad_request("the password is over 1024 bytes"));
    }
    Ok(())
}

fn check_name(what: &str, v: &str) -> Result<(), ApiError> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(ApiError::bad_request(format!(
            "{what} {v:?}: 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )));
    }
    Ok(())
}

/// Runs argon2 off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

impl Auth {
    /// Loads accounts, keys and tokens from `store` (none on a new store).
    pub async fn load(store: Arc<dyn Store>) -> Result<Arc<Auth>, ApiError> {
        let accounts = store.accounts().await?;
        let keys = store.api_keys().await?;
        let ids = IdGenerator::new(store.max_id().await?);
        let mut pepper = [0u8; 32];
        getrandom::fill(&mut pepper).map_err(internal)?;
        Ok(Arc::new(Auth {
            store,
            ids,
            db: Mutex::new(Db { accounts, keys }),
            writing: tokio::sync::Mutex::new(()),
            csrf: Mutex::default(),
            limiter: Mutex::default(),
            verified: Mutex::default(),
            pepper,
            token_ttl_us: std::sync::atomic::AtomicI64::new(TOKEN_TTL.as_micros() as i64),
        }))
    }

    /// Decides a change with the records as they are (`plan` returns the mutations and the
    /// answer), writes it to the store, then to memory.
    async fn change<T>(
        &self,
        plan: impl FnOnce(&Db) -> Result<(Vec<Mutation>, T), ApiError>,
    ) -> Result<T, ApiError> {
        let _w = self.writing.lock().await;
        let (mut muts, out) = {
            let db = lock(&self.db);
            plan(&db)?
        };
        // Expired tokens go with any change.
        let t = now();
        muts.extend(
            lock(&self.db)
                .keys
                .iter()
                .filter(|k| k.expires_at.is_some_and(|e| e <= t))
                .map(|k| Mutation::DeleteApiKey(k.id)),
        );
        if muts.is_empty() {
            return Ok(out);
        }
        let batch: vigil_core::Batch = muts.iter().cloned().collect();
        self.store.apply(batch).await?;
        let mut db = lock(&self.db);
        for m in muts {
            match m {
                Mutation::PutAccount(a) => match db.accounts.iter_mut().find(|x| x.id == a.id) {
                    Some(x) => *x = *a,
                    None => db.accounts.push(*a),
                },
                Mutation::DeleteAccount(id) => db.accounts.retain(|x| x.id != id),
                Mutation::PutApiKey(k) => match db.keys.iter_mut().find(|x| x.id == k.id) {
                    Some(x) => *x = *k,
                    None => db.keys.push(*k),
                },
                Mutation::DeleteApiKey(id) => db.keys.retain(|x| x.id != id),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Whether any account exists.
    pub fn has_accounts(&self) -> bool {
        !lock(&self.db).accounts.is_empty()
    }

    /// On a store with no account, makes `admin` with `password`, or with a random one that is
    /// returned (to be shown once). `None` when accounts exist already.
    pub async fn ensure_admin(&self, password: Option<&str>) -> Result<Option<String>, ApiError> {
        if self.has_accounts() {
            return Ok(None);
        }
        let password = match password {
            Some(p) => {
                check_password_rules(p)?;
                p.to_owned()
            }
            None => random_hex(12)?,
        };
        self.put_account(None, "admin", Role::Admin, Some(&password))
            .await?;
        Ok(Some(password))
    }

    /// Every account.
    pub fn accounts(&self) -> Vec<AccountView> {
        lock(&self.db).accounts.iter().map(account_view).collect()
    }

    fn account_rec(&self, id: AccountId) -> Option<Account> {
        lock(&self.db).accounts.iter().find(|a| a.id == id).cloned()
    }

    /// Creates account `id` (a new id when `None`; see [`account_id_of`]) or replaces it. A
    /// new account needs a password; a replaced one keeps its password when `password` is
    /// `None`. The last admin cannot become a viewer.
    pub async fn put_account(
        &self,
        id: Option<&str>,
        username: &str,
        role: Role,
        password: Option<&str>,
    ) -> Result<AccountView, ApiError> {
        check_name("username", username)?;
        let id = match id {
            Some(id) => account_id_of(id)?,
            None => AccountId(self.ids.next(now())),
        };
        let hash = match password {
            Some(p) => {
                check_password_rules(p)?;
                let p = p.to_owned();
                Some(blocking(move || hash_password(&p)).await??)
            }
            None => None,
        };
        self.change(|db| {
            if db
                .accounts
                .iter()
                .any(|a| a.username == username && a.id != id)
            {
                return Err(ApiError::Status(
                    StatusCode::CONFLICT,
                    format!("the username {username:?} is taken"),
                ));
            }
            let admins = db.accounts.iter().filter(|a| a.role == Role::Admin).count();
            let account = match db.accounts.iter().find(|a| a.id == id) {
                Some(old) => {
                    if old.role == Role::Admin && role != Role::Admin && admins == 1 {
                        return Err(ApiError::Status(
                            StatusCode::CONFLICT,
                            "the last admin account cannot become a viewer".into(),
                        ));
                    }
                    Account {
                        username: username.to_owned(),
                        role,
                        password_hash: hash.unwrap_or_else(|| old.password_hash.clone()),
                        ..old.clone()
                    }
                }
                None => {
                    let Some(h) = hash else {
                        return Err(ApiError::missing("body", "plainPassword"));
                    };
                    Account {
                        id,
                        username: username.to_owned(),
                        role,
                        password_hash: h,
                        created_at: now(),
                        last_login: None,
                    }
                }
            };
            let view = account_view(&account);
            Ok((vec![Mutation::PutAccount(Box::new(account))], view))
        })
        .await
    }

    /// Deletes an account with its keys and tokens. The last admin cannot be deleted.
    pub async fn delete_account(&self, id: &str) -> Result<(), ApiError> {
        let id = account_id_of(id)?;
        self.change(|db| {
            let Some(a) = db.accounts.iter().find(|a| a.id == id) else {
                return Err(ApiError::not_found(format!("no account {id}")));
            };
            let admins = db.accounts.iter().filter(|a| a.role == Role::Admin).count();
            if a.role == Role::Admin && admins == 1 {
                return Err(ApiError::Status(
                    StatusCode::CONFLICT,
                    "the last admin account cannot be deleted".into(),
                ));
            }
            let mut muts = vec![Mutation::DeleteAccount(id)];
            muts.extend(
                db.keys
                    .iter()
                    .filter(|k| k.owner == Some(id))
                    .map(|k| Mutation::DeleteApiKey(k.id)),
            );
            Ok((muts, ()))
        })
        .await?;
        lock(&self.csrf).remove(&id);
        Ok(())
    }

    /// Checks a password for `username` within the failed-login limit.
    async fn check_login(
        &self,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<Account, ApiError> {
        if let Err(wait) = lock(&self.limiter).check(ip, Instant::now()) {
            return Err(ApiError::Status(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many failed logins from this address; try again in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        let acct = lock(&self.db)
            .accounts
            .iter()
            .find(|a| a.username == username)
            .cloned();
        let p = password.to_owned();
        // An unknown user costs the same as a wrong password.
        let hash = acct.as_ref().map(|a| a.password_hash.clone());
        let ok = blocking(move || match hash {
            Some(h) => verify_password(&p, &h),
            None => {
                let _ = hash_password(&p);
                false
            }
        })
        .await?;
        match acct {
            Some(a) if ok => {
                lock(&self.limiter).succeed(ip);
                Ok(a)
            }
            _ => {
                lock(&self.limiter).fail(ip, Instant::now());
                Err(unauthorized("wrong username or password"))
            }
        }
    }

    /// A password login: a new token for the account, whose last login it records.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<Issued, ApiError> {
        let acct = self.check_login(username, password, ip).await?;
        self.issue_for(acct.id, true).await
    }

    /// Allows `n` failed password checks per client address in [`FAILURE_WINDOW`] before 429s
    /// ([`MAX_FAILURES`] by default; at least 1).
    pub fn set_max_failures(&self, n: u32) {
        lock(&self.limiter).max = n.max(1);
    }

    /// Makes tokens issued from now on last `ttl` ([`TOKEN_TTL`] by default).
    pub fn set_token_ttl(&self, ttl: Duration) {
        let us = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        self.token_ttl_us
            .store(us, std::sync::atomic::Ordering::Relaxed);
    }

    /// Issues a token for the account `account_id`.
    pub async fn issue(&self, account_id: &str) -> Result<Issued, ApiError> {
        self.issue_for(account_id_of(account_id)?, false).await
    }

    async fn issue_for(&self, id: AccountId, login: bool) -> Result<Issued, ApiError> {
        let token = format!("{TOKEN_PREFIX}{}", random_hex(32)?);
        let created = now();
        let rec = ApiKey {
            id: ApiKeyId(self.ids.next(created)),
            name: "login".into(),
            prefix: token[..7].to_owned(),
            key_hash: digest(&token),
            role: Role::Viewer,
            owner: Some(id),
            created_at: created,
            expires_at: Some(Timestamp(created.0.saturating_add(
                self.token_ttl_us.load(std::sync::atomic::Ordering::Relaxed),
            ))),
            last_used: None,
        };
        let (view, account) = self
            .change(|db| {
                let Some(a) = db.accounts.iter().find(|a| a.id == id) else {
                    return Err(ApiError::not_found(format!("no account {id}")));
                };
                let rec = ApiKey {
                    role: a.role,
                    ..rec
                };
                let view = key_view(&rec);
                let mut muts = vec![Mutation::PutApiKey(Box::new(rec))];
                let mut a = a.clone();
                if login {
                    a.last_login = Some(created);
                    muts.push(Mutation::PutAccount(Box::new(a.clone())));
                }
                Ok((muts, (view, account_view(&a))))
            })
            .await?;
        Ok(Issued {
            token,
            view,
            account,
        })
    }

    /// Revokes the token of `principal` (if it came with one) and issues a new one.
    pub async fn regenerate(&self, principal: &Principal) -> Result<Issued, ApiError> {
        if let Some(t) = principal.via.token_id() {
            self.revoke_token(t).await?;
        }
        self.issue(&principal.account_id).await
    }

    /// Changes the password of `account_id` after checking `current`; the account's tokens
    /// stay valid.
    pub async fn set_password(
        &self,
        account_id: &str,
        current: &str,
        new: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let id = account_id_of(account_id)?;
        let username = self
            .account_rec(id)
            .ok_or_else(|| ApiError::not_found(format!("no account {id}")))?
            .username;
        match self.check_login(&username, current, ip).await {
            Ok(_) => {}
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
                return Err(ApiError::Status(
                    StatusCode::FORBIDDEN,
                    "the current password is wrong".into(),
                ))
            }
            Err(e) => return Err(e),
        }
        check_password_rules(new)?;
        let p = new.to_owned();
        let hash = blocking(move || hash_password(&p)).await??;
        self.change(|db| match db.accounts.iter().find(|a| a.id == id) {
            Some(a) => {
                let a = Account {
                    password_hash: hash,
                    ..a.clone()
                };
                Ok((vec![Mutation::PutAccount(Box::new(a))], ()))
            }
            None => Err(ApiError::not_found(format!("no account {id}"))),
        })
        .await
    }

    /// Makes an API key for `account_id` with `role` (never more than the account's; the
    /// account's when `None`); the key is returned once.
    pub async fn create_key(
        &self,
        account_id: &str,
        name: &str,
        role: Option<Role>,
    ) -> Result<(KeyView, String), ApiError> {
        if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "a key's name is 1 to 100 characters, none of them control characters",
            ));
        }
        let owner = account_id_of(account_id)?;
        let key = format!("{KEY_PREFIX}{}", random_hex(32)?);
        let created = now();
        let id = ApiKeyId(self.ids.next(created));
        self.change(|db| {
            let Some(a) = db.accounts.iter().find(|a| a.id == owner) else {
                return Err(ApiError::not_found(format!("no account {owner}")));
            };
            let rec = ApiKey {
                id,
                name: name.to_owned(),
                prefix: key[..7].to_owned(),
                key_hash: digest(&key),
                role: least(a.role, role.unwrap_or(a.role)),
                owner: Some(owner),
                created_at: created,
                expires_at: None,
                last_used: None,
            };
            let v = key_view(&rec);
            Ok((vec![Mutation::PutApiKey(Box::new(rec))], v))
        })
        .await
        .map(|v| (v, key))
    }

    /// Every API key (not tokens).
    pub fn keys(&self) -> Vec<KeyView> {
        lock(&self.db)
            .keys
            .iter()
            .filter(|k| !is_token(k))
            .map(key_view)
            .collect()
    }

    /// Every token not yet expired.
    pub fn tokens(&self) -> Vec<KeyView> {
        let t = now();
        lock(&self.db)
            .keys
            .iter()
            .filter(|k| is_token(k) && k.expires_at.is_some_and(|e| e > t))
            .map(key_view)
            .collect()
    }

    async fn revoke(&self, id: &str, token: bool) -> Result<(), ApiError> {
        let what = if token { "token" } else { "API key" };
        let id: ApiKeyId = id
            .parse()
            .map_err(|_| ApiError::not_found(format!("no {what} {id:?}")))?;
        self.change(|db| match db.keys.iter().find(|k| k.id == id) {
            Some(k) if is_token(k) == token => Ok((vec![Mutation::DeleteApiKey(id)], ())),
            _ => Err(ApiError::not_found(format!("no {what} {id}"))),
        })
        .await
    }

    /// Revokes an API key.
    pub async fn revoke_key(&self, id: &str) -> Result<(), ApiError> {
        self.revoke(id, false).await
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, id: &str) -> Result<(), ApiError> {
        self.revoke(id, true).await
    }

    /// The CSRF token of an account (made on first use, kept until the process ends).
    pub fn csrf_token(&self, account_id: &str) -> Result<String, ApiError> {
        let id = account_id_of(account_id)?;
        let mut m = lock(&self.csrf);
        if let Some(t) = m.get(&id) {
            return Ok(t.clone());
        }
        let t = random_hex(16)?;
        m.insert(id, t.clone());
        Ok(t)
    }

    /// Whether `sent` is the CSRF token of `account_id`.
    pub fn check_csrf(&self, account_id: &str, sent: Option<&str>) -> bool {
        let Ok(id) = account_id_of(account_id) else {
            return false;
        };
        match (lock(&self.csrf).get(&id), sent) {
            (Some(t), Some(s)) => same(t, s),
            _ => false,
        }
    }

    /// The principal of a key or token, and the record's id when its `last_used` is due to
    /// be written again.
    fn principal_of_secret(
        &self,
        secret: &str,
        via: impl FnOnce(&ApiKey) -> Via,
    ) -> Option<(Principal, Option<ApiKeyId>)> {
        let h = digest(secret);
        let t = now();
        let db = lock(&self.db);
        let k = db
            .keys
            .iter()
            .find(|k| same(&k.key_hash, &h) && k.expires_at.is_none_or(|e| e > t))?;
        let a = db.accounts.iter().find(|a| Some(a.id) == k.owner)?;
        let due = k
            .last_used
            .is_none_or(|u| t.0.saturating_sub(u.0) >= LAST_USED_EVERY.as_micros() as i64);
        Some((
            Principal {
                account_id: a.id.to_string(),
                username: a.username.clone(),
                role: least(a.role, k.role),
                via: via(k),
            },
            due.then_some(k.id),
        ))
    }

    /// The JWT of a token just issued, for clients that expect one (Home Assistant's Frigate
    /// integration reads it from the `frigate_token` cookie and only decodes it for `exp`).
    ///
    /// Claims: `sub` (the user), `role`, `jti` (the token's id), `iat`, `exp` (the token's
    /// expiry) and `tok`, the token itself, whose holder the JWT is. HS256, keyed by the token:
    /// the store, which keeps only the token's digest, holds nothing to make one with; a JWT
    /// with any claim changed is refused; revoking or expiring the token ends it.
    pub fn jwt(&self, issued: &Issued) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use hmac::Mac;
        let claims = serde_json::json!({
            "sub": issued.account.username,
            "role": issued.account.role,
            "jti": issued.view.id,
            "iat": issued.view.created_at.as_secs(),
            "exp": issued.view.expires_at.map(Timestamp::as_secs),
            "tok": issued.token,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = jwt_mac(&issued.token, &signed).finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Writes that a key or token was used now (unless it was revoked meanwhile).
    async fn touch(&self, id: ApiKeyId) {
        let t = now();
        let done = self
            .change(|db| {
                let fresh =
                    |u: Timestamp| t.0.saturating_sub(u.0) < LAST_USED_EVERY.as_micros() as i64;
                let muts = match db.keys.iter().find(|k| k.id == id) {
                    // Another request wrote it meanwhile.
                    Some(k) if k.last_used.is_some_and(fresh) => Vec::new(),
                    Some(k) => vec![Mutation::PutApiKey(Box::new(ApiKey {
                        last_used: Some(t),
                        ..k.clone()
                    }))],
                    None => Vec::new(),
                };
                Ok((muts, ()))
            })
            .await;
        if let Err(e) = done {
            tracing::warn!(err = %e.message(), "a key's last use was not saved");
        }
    }

    /// A key's or token's principal, its last use written when due.
    async fn by_secret(&self, secret: &str, via: impl FnOnce(&ApiKey) -> Via) -> Option<Principal> {
        let (p, due) = self.principal_of_secret(secret, via)?;
        if let Some(id) = due {
            self.touch(id).await;
        }
        Some(p)
    }

    async fn principal_of_basic(
        &self,
        user: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<Principal, ApiError> {
        let mut h = Sha256::new();
        h.update(self.pepper);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        let remembered = lock(&self.verified).get(&key).cloned();
        if let Some((id, hash, at)) = remembered {
            if at.elapsed() < VERIFIED_TTL {
                if let Some(a) = self.account_rec(id).filter(|a| a.password_hash == hash) {
                    return Ok(Principal {
                        account_id: a.id.to_string(),
                        username: a.username,
                        role: a.role,
                        via: Via::Basic,
                    });
                }
            }
        }
        let a = self.check_login(user, password, ip).await?;
        {
            let mut v = lock(&self.verified);
            if v.len() >= 1024 {
                v.clear();
            }
            v.insert(key, (a.id, a.password_hash.clone(), Instant::now()));
        }
        Ok(Principal {
            account_id: a.id.to_string(),
            username: a.username,
            role: a.role,
            via: Via::Basic,
        })
    }

    /// Who `creds` prove the request comes from: `Ok(None)` when they carry nothing, 401 when
    /// what they carry is wrong, revoked or expired (429 after too many wrong passwords).
    pub async fn authenticate(
        &self,
        creds: &Credentials,
        ip: Option<IpAddr>,
    ) -> Result<Option<Principal>, ApiError> {
        if let Some(k) = &creds.api_key {
            if !k.starts_with(KEY_PREFIX) {
                return Err(unauthorized(
                    "the API key is not valid (unknown or revoked)",
                ));
            }
            return self
                .by_secret(k, |k| Via::ApiKey {
                    key_id: k.id.to_string(),
                    name: k.name.clone(),
                })
                .await
                .map(Some)
                .ok_or_else(|| unauthorized("the API key is not valid (unknown or revoked)"));
        }
        if let Some(t) = &creds.bearer {
            // A JWT (its header is base64 of `{"`) from `POST /api/login` stands for the
            // token it carries.
            let jwt_token;
            let t = if t.starts_with("ey") {
                jwt_token = token_of_jwt(t).ok_or_else(|| {
                    unauthorized("the token is not valid (unknown, expired or revoked)")
                })?;
                &jwt_token
            } else {
                t
            };
            if !t.starts_with(TOKEN_PREFIX) {
                return Err(unauthorized(
                    "the token is not valid (unknown, expired or revoked)",
                ));
            }
            return self
                .by_secret(t, |k| Via::Bearer {
                    token_id: k.id.to_string(),
                })
                .await
                .map(Some)
                .ok_or_else(|| {
                    unauthorized("the token is not valid (unknown, expired or revoked)")
                });
        }
        if let Some((u, p)) = &creds.basic {
            return self.principal_of_basic(u, p, ip).await.map(Some);
        }
        if let Some(t) = &creds.cookie {
            if !t.starts_with(TOKEN_PREFIX) {
                return Err(unauthorized(
                    "the session has ended (expired or revoked); log in again",
                ));
            }
            return self
                .by_secret(t, |k| Via::Cookie {
                    token_id: k.id.to_string(),
                })
                .await
                .map(Some)
                .ok_or_else(|| {
                    unauthorized("the session has ended (expired or revoked); log in again")
                });
        }
        Ok(None)
    }
}

/// The token a JWT made by [`Auth::jwt`] carries, once its signature is checked; `None` when
/// it is malformed or its signature is wrong (whether the token is valid is the caller's to
/// check).
fn token_of_jwt(jwt: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::Mac;
    #[derive(serde::Deserialize)]
    struct Claims {
        tok: String,
    }
    let (signed, sig) = jwt.rsplit_once('.')?;
    let (_, payload) = signed.split_once('.')?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    jwt_mac(&claims.tok, signed).verify_slice(&sig).ok()?;
    Some(claims.tok)
}

/// HMAC-SHA256 keyed by a token, fed `signed` (a JWT's header and payload).
fn jwt_mac(key: &str, signed: &str) -> hmac::Hmac<Sha256> {
    use hmac::Mac;
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(signed.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_headers_and_query() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Basic dXNlcjpwYTpzcw==".parse().unwrap());
        h.insert(COOKIE, "a=b; vigil_token=vt_1".parse().unwrap());
        let c = Credentials::from_request(&h, "api_key=vk_2&token=vt_3");
        assert_eq!(c.basic, Some(("user".into(), "pa:ss".into())));
        assert_eq!(c.cookie.as_deref(), Some("vt_1"));
        assert_eq!(c.api_key.as_deref(), Some("vk_2"));
        assert_eq!(c.bearer.as_deref(), Some("vt_3"));
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "bearer  vt_9".parse().unwrap());
        h.insert("x-api-key", "vk_8".parse().unwrap());
        let c = Credentials::from_request(&h, "token=vt_other");
        assert_eq!(c.bearer.as_deref(), Some("vt_9"));
        assert_eq!(c.api_key.as_deref(), Some("vk_8"));
        assert!(!Credentials::from_request(&HeaderMap::new(), "").any());
    }

    #[test]
    fn limiter_blocks_after_the_limit_and_forgets_after_the_window() {
        let mut l = Limiter::default();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(l.check(ip, t0).is_ok());
            l.fail(ip, t0);
        }
        assert!(l.check(ip, t0 + Duration::from_secs(1)).is_err());
        assert!(l.check(Some(IpAddr::from([10, 0, 0, 2])), t0).is_ok());
        assert!(l.check(ip, t0 + FAILURE_WINDOW).is_ok());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsf", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
