//! Accounts, logins, keys, tokens and the audit log: picam's `/auth/*`, SentryShot's
//! `/api/account*`, HSI's `/api/audit*`, and Vigil's own login, key and token endpoints.
//! What they guard is decided in `lib.rs` ([`crate::access`]); the model is in [`crate::auth`].

use std::sync::Arc;

use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_core::{AuditEntry, AuditFilter, AuditId, Outcome, Query, Role};

use super::{envelope, limit, list, number, time, DELETE, GET, POST, PUT};
use crate::auth::{Auth, Issued, Principal, COOKIE_NAME, TOKEN_TTL};
use crate::error::ApiError;
use crate::reply::{json as json_reply, ok, text, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/auth/status",
        "auth",
        "picam's auth status: whether auth is on, and whether the token sent is valid",
        status,
    );
    r.add(
        POST,
        "/auth/validate",
        "auth",
        "picam's login: a password (and a username, `admin` if left out) for a token",
        picam_validate,
    );
    r.add(
        POST,
        "/auth/regenerate",
        "auth",
        "picam's token regeneration: revokes the token sent, returns a new one",
        regenerate,
    );
    r.add(
        POST,
        "/auth/set-password",
        "auth",
        "picam's password change ({current, new}) for the caller's account",
        set_password,
    );
    r.add(
        POST,
        "/api/auth/login",
        "auth",
        "Log in with username and password: a token, also set as the `vigil_token` cookie",
        login,
    );
    r.add(
        POST,
        "/api/auth/logout",
        "auth",
        "Revoke the token (or cookie) of this request",
        logout,
    );
    r.add(GET, "/api/auth/me", "auth", "Who this request is", me);
    r.add(
        GET,
        "/api/accounts",
        "auth",
        "SentryShot's accounts: every account by id",
        accounts,
    );
    r.add(
        PUT,
        "/api/account",
        "auth",
        "SentryShot's create or replace account ({id, username, isAdmin, plainPassword})",
        put_account,
    );
    r.add(
        DELETE,
        "/api/account",
        "auth",
        "SentryShot's delete account (?id=)",
        delete_account,
    );
    r.add(
        GET,
        "/api/account/my-token",
        "auth",
        "SentryShot's CSRF token of the caller's account (send it as X-CSRF-TOKEN)",
        my_token,
    );
    r.add(
        GET,
        "/api/keys",
        "auth",
        "API keys (never the keys themselves)",
        keys,
    );
    r.add(
        POST,
        "/api/keys",
        "auth",
        "Make an API key ({name, account_id?, role?}); the key is in this answer only",
        create_key,
    );
    r.add(
        DELETE,
        "/api/keys/{id}",
        "auth",
        "Revoke an API key",
        revoke_key,
    );
    r.add(GET, "/api/tokens", "auth", "Tokens not yet expired", tokens);
    r.add(
        DELETE,
        "/api/tokens/{id}",
        "auth",
        "Revoke a token",
        revoke_token,
    );
    r.add(
        GET,
        "/api/audit",
        "audit",
        "HSI's audit log: who changed what, when, from where (cursor pages)",
        audit_list,
    );
    r.add(
        GET,
        "/api/audit/stats",
        "audit",
        "HSI's audit counts by action, actor and outcome",
        audit_stats,
    );
    r.add(
        GET,
        "/api/audit/{audit_id}",
        "audit",
        "One audit entry",
        audit_one,
    );
}

/// The auth service, or 503 naming what needs it on a server that runs without.
fn need_auth(ctx: &Ctx) -> Result<Arc<Auth>, ApiError> {
    ctx.state.auth().cloned().ok_or_else(|| {
        ApiError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server runs without authentication (--no-auth): there are no accounts".into(),
        )
    })
}

/// The caller (the handlers below only run for authenticated requests, see `access`).
fn caller(ctx: &Ctx) -> Result<&Principal, ApiError> {
    ctx.principal
        .as_ref()
        .ok_or_else(|| ApiError::Status(StatusCode::UNAUTHORIZED, "log in first".into()))
}

async fn status(ctx: Ctx) -> Reply {
    let Some(auth) = ctx.state.auth() else {
        return ok(&json!({"enabled": false, "valid": null}));
    };
    let creds = crate::auth::Credentials::from_request(&ctx.headers, &ctx.query);
    let valid = if creds.any() {
        Some(
            ctx.principal.is_some() || matches!(auth.authenticate(&creds, None).await, Ok(Some(_))),
        )
    } else {
        None
    };
    ok(&json!({"enabled": true, "valid": valid}))
}

fn issued_json(i: &Issued) -> Value {
    json!({
        "token": i.token,
        "token_id": i.view.id,
        "expires_at": i.view.expires_at.map(|t| t.to_string()),
        "username": i.account.username,
        "role": i.account.role,
    })
}

#[derive(Deserialize)]
struct PicamLogin {
    password: String,
    #[serde(default)]
    username: Option<String>,
}

async fn picam_validate(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let b: PicamLogin = ctx.json()?;
    let user = b.username.as_deref().unwrap_or("admin");
    match auth.login(user, &b.password, ctx.peer_ip()).await {
        Ok(i) => {
            audit_login(&ctx, user, true).await;
            let mut v = issued_json(&i);
            v["valid"] = json!(true);
            ok(&v)
        }
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            audit_login(&ctx, user, false).await;
            ok(&json!({"valid": false}))
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

async fn login(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let b: Login = ctx.json()?;
    let i = match auth.login(&b.username, &b.password, ctx.peer_ip()).await {
        Ok(i) => i,
        Err(e) => {
            audit_login(&ctx, &b.username, false).await;
            return Err(e);
        }
    };
    audit_login(&ctx, &b.username, true).await;
    let mut resp = json_reply(StatusCode::OK, &issued_json(&i));
    let cookie = format!(
        "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        i.token,
        TOKEN_TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(resp)
}

/// The name a login attempt gives, as an audit entry's actor (1 to 64 bytes, no control
/// characters): whatever it holds, the attempt is recorded.
fn actor_of(user: &str) -> String {
    let mut out = String::new();
    for c in user.chars() {
        let piece: String = if c.is_control() {
            c.escape_unicode().collect()
        } else {
            c.into()
        };
        if out.len() + piece.len() > vigil_core::MAX_NAME_LEN {
            break;
        }
        out.push_str(&piece);
    }
    if out.is_empty() {
        out.push_str("(none)");
    }
    out
}

/// A login is written to the audit log by its handler: the request's principal is nobody yet.
pub(super) async fn audit_login(ctx: &Ctx, user: &str, success: bool) {
    ctx.state
        .record_audit(|id, time| AuditEntry {
            id,
            time,
            actor: actor_of(user),
            action: "login".into(),
            resource_type: "account".into(),
            resource_id: None,
            ip: ctx.peer_ip().map(|i| i.to_string()),
            outcome: if success {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            details_json: json!({"path": ctx.path}).to_string(),
        })
        .await;
}

async fn logout(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let p = caller(&ctx)?;
    let Some(t) = p.via.token_id() else {
        return Err(ApiError::bad_request(
            "this request carries no token to revoke (basic auth and API keys have none)",
        ));
    };
    auth.revoke_token(t).await?;
    let mut resp = json_reply(StatusCode::OK, &json!({"message": "Logged out"}));
    let cookie = format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(resp)
}

async fn me(ctx: Ctx) -> Reply {
    let p = caller(&ctx)?;
    let via = match &p.via {
        crate::auth::Via::Basic => "basic",
        crate::auth::Via::Cookie { .. } => "cookie",
        crate::auth::Via::Bearer { .. } => "token",
        crate::auth::Via::ApiKey { .. } => "api_key",
        crate::auth::Via::Open => "none",
        crate::auth::Via::Service => "service",
    };
    ok(&json!({
        "id": p.account_id,
        "username": p.username,
        "role": p.role.as_str(),
        "via": via,
    }))
}

async fn regenerate(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let i = auth.regenerate(caller(&ctx)?).await?;
    ok(&issued_json(&i))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    current: String,
    new: String,
}

async fn set_password(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let b: SetPassword = ctx.json()?;
    let p = caller(&ctx)?;
    auth.set_password(&p.account_id, &b.current, &b.new, ctx.peer_ip())
        .await?;
    ok(&json!({"message": "Password updated"}))
}

async fn accounts(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let m: serde_json::Map<String, Value> = auth
        .accounts()
        .into_iter()
        .map(|a| (a.id.clone(), super::value_of(&a)))
        .collect();
    ok(&m)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PutAccount {
    #[serde(default)]
    id: Option<String>,
    username: String,
    #[serde(default)]
    is_admin: Option<bool>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    plain_password: Option<String>,
}

/// `admin` or `viewer`, as a body's field `field` names it.
fn role_of(field: &str, v: &str) -> Result<Role, ApiError> {
    match v {
        "admin" => Ok(Role::Admin),
        "viewer" => Ok(Role::Viewer),
        _ => Err(ApiError::body(
            &[field],
            format!("must be admin or viewer, got {v:?}"),
        )),
    }
}

async fn put_account(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let b: PutAccount = ctx.json()?;
    let role = match (b.role, b.is_admin) {
        (Some(r), _) => role_of("role", &r)?,
        (None, Some(true)) => Role::Admin,
        _ => Role::Viewer,
    };
    let a = auth
        .put_account(
            b.id.as_deref(),
            &b.username,
            role,
            b.plain_password.as_deref(),
        )
        .await?;
    ok(&a)
}

async fn delete_account(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let id = ctx.required_query("id")?;
    auth.delete_account(&id).await?;
    ok(&json!({"message": format!("account {id} deleted")}))
}

async fn my_token(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let p = caller(&ctx)?;
    // SentryShot answers the bare token (scripts read it with `$(curl ...)`).
    Ok(text(StatusCode::OK, auth.csrf_token(&p.account_id)?))
}

async fn keys(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    ok(&json!({"keys": auth.keys()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

async fn create_key(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    let b: NewKey = ctx.json()?;
    let account = match b.account_id {
        Some(a) => a,
        None => caller(&ctx)?.account_id.clone(),
    };
    let role = b.role.as_deref().map(|r| role_of("role", r)).transpose()?;
    let (view, key) = auth.create_key(&account, &b.name, role).await?;
    let mut v = super::value_of(&view);
    v["key"] = json!(key);
    Ok(json_reply(StatusCode::CREATED, &v))
}

async fn revoke_key(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    auth.revoke_key(ctx.param("id")).await?;
    ok(&json!({"message": "revoked"}))
}

async fn tokens(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    ok(&json!({"tokens": auth.tokens()}))
}

async fn revoke_token(ctx: Ctx) -> Reply {
    let auth = need_auth(&ctx)?;
    auth.revoke_token(ctx.param("id")).await?;
    ok(&json!({"message": "revoked"}))
}

fn audit_wire(e: &AuditEntry) -> Value {
    let details: Value = serde_json::from_str(&e.details_json).unwrap_or(Value::Null);
    json!({
        "id": e.id.to_string(),
        "timestamp": e.time.to_string(),
        "actor": e.actor,
        "action": e.action,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "ip_address": e.ip,
        "status": match e.outcome { Outcome::Success => "success", Outcome::Failure => "failure" },
        "details": details,
    })
}

fn audit_query(ctx: &Ctx) -> Result<Query<AuditFilter>, ApiError> {
    let mut q = Query::new(AuditFilter::default());
    q.page.with_total = true;
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        let f = &mut q.filter;
        match k {
            "actor" => f.actors.extend(list(&v)),
            "action" => f.actions.extend(list(&v)),
            "resource_type" => f.resource_types.extend(list(&v)),
            "resource_id" => f.resource_id = Some(v),
            "status" | "outcome" => {
                f.outcome = Some(match v.as_str() {
                    "success" => Outcome::Success,
                    "failure" => Outcome::Failure,
                    _ => {
                        return Err(ApiError::query(
                            k,
                            format!("must be success or failure, got {v:?}"),
                        ))
                    }
                })
            }
            "start_date" | "after" => f.time.after = Some(time(k, &v)?),
            "end_date" | "before" => f.time.before = Some(time(k, &v)?),
            "limit" => q.page.limit = limit(k, &v, vigil_core::query::MAX_PAGE_LIMIT)?,
            "offset" => q.page.offset = number(k, &v)?,
            "cursor" => q.page.cursor = Some(v),
            _ => {}
        }
    }
    Ok(q)
}

async fn audit_list(ctx: Ctx) -> Reply {
    let q = audit_query(&ctx)?;
    let page = ctx.state.store().audit_entries(&q).await?;
    envelope("logs", &page, &q.page, audit_wire).reply()
}

async fn audit_stats(ctx: Ctx) -> Reply {
    let c = ctx.state.store().audit_counts().await?;
    ok(&json!({
        "total_logs": c.total,
        "by_action": c.by_action,
        "by_actor": c.by_actor,
        "by_status": c.by_outcome,
    }))
}

async fn audit_one(ctx: Ctx) -> Reply {
    let id: AuditId = ctx.param_as("audit_id")?;
    let e = ctx
        .state
        .store()
        .audit_entry(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("audit entry {id} not found")))?;
    ok(&audit_wire(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_login_name_makes_an_actor() {
        assert_eq!(actor_of("admin"), "admin");
        assert_eq!(actor_of(""), "(none)");
        assert_eq!(actor_of("a\u{1}b"), "a\\u{1}b");
        let long = actor_of(&"é".repeat(100));
        assert_eq!(long.len(), 64);
    }
}
