//! Authentication and authorization over real TCP: every route called as anonymous, with a
//! wrong key, a revoked token, a revoked key, a viewer, an admin's key, basic auth without and
//! with the CSRF token; the login flows of the documents (picam, SentryShot, Vigil's own); the
//! failed-login limit; the audit entries of changes.

use base64::Engine;
use hyper::Method;
use serde_json::{json, Value};
use vigil_http::{access, Access};

mod common;
use common::{Resp, Server};

const ADMIN_PASSWORD: &str = "admin-password-1";
const VIEWER_PASSWORD: &str = "viewer-password-1";

fn basic(user: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The routes that answer without credentials, and those any account may change: written out
/// here, independently of `vigil_http::access`, so that a change of policy shows in this test.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/api/system/health"),
    ("GET", "/api/system/health/ready"),
    ("GET", "/auth/status"),
    ("POST", "/auth/validate"),
    ("POST", "/api/auth/login"),
    // Frigate's login, for Home Assistant's integration.
    ("POST", "/api/login"),
    // The web interface's page and assets: a login form; its data needs a login.
    ("GET", "/"),
    ("GET", "/ui/{file}"),
];
const SELF_SERVICE: &[(&str, &str)] = &[
    ("POST", "/auth/regenerate"),
    ("POST", "/auth/set-password"),
    ("POST", "/api/auth/logout"),
];
const ADMIN_READS: &[&str] = &[
    "/api/accounts",
    "/api/keys",
    "/api/tokens",
    "/api/audit",
    "/api/audit/stats",
    "/api/audit/{audit_id}",
    // Webhook URLs may carry secrets.
    "/api/alerts/rules",
    "/api/alerts/rules/{rule_id}",
    "/api/notification/config",
    "/api/dlq/stats",
    "/api/dlq/jobs/{queue_name}",
];

/// POST /api/auth/login.
async fn try_login(srv: &Server, user: &str, password: &str) -> Resp {
    srv.call(
        "POST",
        "/api/auth/login",
        Some(json!({"username": user, "password": password})),
        &[],
    )
    .await
}

/// A login that must work: its answer.
async fn login(srv: &Server, user: &str, password: &str) -> Value {
    let r = try_login(srv, user, password).await;
    assert_eq!(r.status, 200, "login {user}: {}", r.text());
    r.json()
}

/// GET `path` with an `Authorization` header.
async fn get_with(srv: &Server, path: &str, authorization: &str) -> Resp {
    srv.call("GET", path, None, &[("authorization", authorization)])
        .await
}

fn concrete(pattern: &str) -> String {
    // Every parameter becomes `x`: the answers looked at here come before any lookup.
    let mut out = String::new();
    let mut in_param = false;
    for c in pattern.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push('x');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_kind_of_caller_as_it_should() {
    let (srv, auth) = Server::start_secured(ADMIN_PASSWORD).await;
    // The policy, pinned.
    for ep in vigil_http::router().endpoints() {
        let key = (ep.method.as_str(), ep.pattern);
        let want = if PUBLIC.contains(&key) {
            Access::Public
        } else if SELF_SERVICE.contains(&key)
            || key == ("GET", "/api/auth/me")
            || key == ("GET", "/api/account/my-token")
        {
            Access::Account
        } else if ep.method == Method::GET && !ADMIN_READS.contains(&ep.pattern) {
            Access::Viewer
        } else {
            Access::Admin
        };
        assert_eq!(access(&ep.method, ep.pattern), want, "{} {}", key.0, key.1);
    }

    // The callers.
    let admin = login(&srv, "admin", ADMIN_PASSWORD).await;
    let admin_token = admin["token"].as_str().unwrap().to_owned();
    let r = srv
        .call(
            "PUT",
            "/api/account",
            Some(
                json!({"username": "viewer1", "isAdmin": false, "plainPassword": VIEWER_PASSWORD}),
            ),
            &[("authorization", &bearer(&admin_token))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let viewer = login(&srv, "viewer1", VIEWER_PASSWORD).await;
    assert_eq!(viewer["role"], "viewer");
    let r = srv
        .call(
            "GET",
            "/api/events",
            None,
            &[("authorization", &bearer(viewer["token"].as_str().unwrap()))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mk_key = |name: &'static str| {
        let t = admin_token.clone();
        let srv = &srv;
        async move {
            let r = srv
                .call(
                    "POST",
                    "/api/keys",
                    Some(json!({"name": name})),
                    &[("authorization", &bearer(&t))],
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
            let v = r.json();
            (
                v["id"].as_str().unwrap().to_owned(),
                v["key"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (_, admin_key) = mk_key("matrix").await;
    let (revoked_key_id, revoked_key) = mk_key("gone").await;
    let r = srv
        .call(
            "DELETE",
            &format!("/api/keys/{revoked_key_id}"),
            None,
            &[("x-api-key", &admin_key)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let revoked = login(&srv, "admin", ADMIN_PASSWORD).await;
    let r = srv
        .call(
            "DELETE",
            &format!("/api/tokens/{}", revoked["token_id"].as_str().unwrap()),
            None,
            &[("x-api-key", &admin_key)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let revoked_token = revoked["token"].as_str().unwrap().to_owned();
    let admin_basic = basic("admin", ADMIN_PASSWORD);
    let r = get_with(&srv, "/api/account/my-token", &admin_basic).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let csrf = r.text();
    assert!(!csrf.is_empty() && !csrf.contains('"'), "{csrf}");

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Who {
        Anonymous,
        WrongKey,
        RevokedToken,
        RevokedKey,
        Viewer,
        BasicNoCsrf,
        BasicCsrf,
        AdminKey,
    }
    // The viewer calls with basic auth and its CSRF token: with its bearer token, the
    // matrix's own call of /auth/regenerate would revoke it half-way.
    let viewer_basic = basic("viewer1", VIEWER_PASSWORD);
    let viewer_csrf = get_with(&srv, "/api/account/my-token", &viewer_basic)
        .await
        .text();
    assert_ne!(viewer_csrf, csrf);
    let revoked_auth = bearer(&revoked_token);
    let callers: Vec<(Who, Vec<(&str, &str)>)> = vec![
        (Who::Anonymous, vec![]),
        (Who::WrongKey, vec![("x-api-key", "vk_0000")]),
        (
            Who::RevokedToken,
            vec![("authorization", revoked_auth.as_str())],
        ),
        (Who::RevokedKey, vec![("x-api-key", revoked_key.as_str())]),
        (
            Who::Viewer,
            vec![
                ("authorization", viewer_basic.as_str()),
                ("x-csrf-token", viewer_csrf.as_str()),
            ],
        ),
        (
            Who::BasicNoCsrf,
            vec![("authorization", admin_basic.as_str())],
        ),
        (
            Who::BasicCsrf,
            vec![
                ("authorization", admin_basic.as_str()),
                ("x-csrf-token", csrf.as_str()),
            ],
        ),
        (Who::AdminKey, vec![("x-api-key", admin_key.as_str())]),
    ];
    let mut admin_key_changes = 0u64;
    let mut checked = 0;
    for (who, headers) in &callers {
        let who = *who;
        for ep in vigil_http::router().endpoints() {
            let path = concrete(ep.pattern);
            let need = access(&ep.method, ep.pattern);
            let mutation = ep.method != Method::GET;
            let r: Resp = srv.call(ep.method.as_str(), &path, None, headers).await;
            let what = format!("{who:?} {} {path}: {} {}", ep.method, r.status, r.text());
            assert!(r.status != 500, "{what}");
            let refused = r.status == 401 || r.status == 403;
            match (who, need) {
                (_, Access::Public) => assert!(!refused, "{what}"),
                (Who::Anonymous | Who::WrongKey | Who::RevokedToken | Who::RevokedKey, _) => {
                    assert_eq!(r.status, 401, "{what}");
                    assert!(r.json()["detail"].is_string(), "{what}");
                    assert_eq!(r.header("www-authenticate").is_some(), !mutation, "{what}");
                }
                (Who::Viewer, Access::Admin) => assert_eq!(r.status, 403, "{what}"),
                (Who::BasicNoCsrf, _) if mutation => {
                    assert_eq!(r.status, 403, "{what}");
                    assert!(r.text().contains("X-CSRF-TOKEN"), "{what}");
                }
                _ => assert!(!refused, "{what}"),
            }
            if who == Who::AdminKey && mutation && need != Access::Public {
                admin_key_changes += 1;
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} calls");

    // Every change the admin's key made (each refused or failed one too) is in the audit log,
    // with who, what, when and from where.
    let r = srv
        .call(
            "GET",
            "/api/audit?actor=apikey:matrix&limit=1",
            None,
            &[("x-api-key", &admin_key)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    // The key's own revocations of the `gone` key and of a token came before the matrix.
    assert_eq!(v["total"], admin_key_changes + 2, "{v}");
    let e = &v["logs"][0];
    assert_eq!(e["ip_address"], "127.0.0.1", "{v}");
    assert!(e["action"].as_str().unwrap().contains(' '), "{v}");
    assert!(e["timestamp"].is_string(), "{v}");
    // The viewer's refused changes are there too.
    let r = srv
        .call(
            "GET",
            "/api/audit?actor=viewer1&status=failure&limit=1",
            None,
            &[("x-api-key", &admin_key)],
        )
        .await;
    assert!(r.json()["total"].as_u64().unwrap() > 10, "{}", r.text());
    drop(auth);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_of_the_documents_and_the_failed_login_limit() {
    let (srv, _auth) = Server::start_secured(ADMIN_PASSWORD).await;

    // picam: status, validate (the password alone is the admin's), regenerate, set-password.
    let r = srv.get("/auth/status").await;
    assert_eq!(r.json(), json!({"enabled": true, "valid": null}));
    let r = srv
        .call(
            "POST",
            "/auth/validate",
            Some(json!({"password": "nope-nope"})),
            &[],
        )
        .await;
    assert_eq!(r.json(), json!({"valid": false}));
    let r = srv
        .call(
            "POST",
            "/auth/validate",
            Some(json!({"password": ADMIN_PASSWORD})),
            &[],
        )
        .await;
    let v = r.json();
    assert_eq!(v["valid"], true, "{v}");
    let t1 = v["token"].as_str().unwrap().to_owned();
    let r = srv.get(&format!("/auth/status?token={t1}")).await;
    assert_eq!(r.json(), json!({"enabled": true, "valid": true}));
    let r = get_with(&srv, "/auth/status", "Bearer vt_x").await;
    assert_eq!(r.json(), json!({"enabled": true, "valid": false}));
    // A token works in the header and in `?token=` (SSE clients).
    let r = srv.get(&format!("/api/cameras?token={t1}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = srv
        .call(
            "POST",
            "/auth/regenerate",
            None,
            &[("authorization", &bearer(&t1))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t2 = r.json()["token"].as_str().unwrap().to_owned();
    assert_ne!(t1, t2);
    let r = get_with(&srv, "/api/cameras", &bearer(&t1)).await;
    assert_eq!(r.status, 401, "the old token is revoked: {}", r.text());
    let r = get_with(&srv, "/api/cameras", &bearer(&t2)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let auth2 = bearer(&t2);
    // Basic auth with the password about to change: checked and remembered.
    assert_eq!(
        get_with(&srv, "/api/cameras", &basic("admin", ADMIN_PASSWORD))
            .await
            .status,
        200
    );
    let set = |current: &'static str, new: &'static str| {
        let h = auth2.clone();
        let srv = &srv;
        async move {
            srv.call(
                "POST",
                "/auth/set-password",
                Some(json!({"current": current, "new": new})),
                &[("authorization", &h)],
            )
            .await
        }
    };
    assert_eq!(set("wrong-password", "another-password").await.status, 403);
    assert_eq!(set(ADMIN_PASSWORD, "short").await.status, 400);
    let r = set(ADMIN_PASSWORD, "another-password").await;
    assert_eq!(r.json(), json!({"message": "Password updated"}));
    // Basic auth takes the new password; the old one, remembered a moment ago, no longer works.
    let r = get_with(&srv, "/api/cameras", &basic("admin", "another-password")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get_with(&srv, "/api/cameras", &basic("admin", ADMIN_PASSWORD)).await;
    assert_eq!(r.status, 401, "{}", r.text());

    // SentryShot: basic auth, the CSRF token, accounts.
    let b = basic("admin", "another-password");
    let r = srv
        .call(
            "PUT",
            "/api/account",
            Some(json!({"id": "7phg3h7v3ayb5g2f", "username": "name", "isAdmin": false, "plainPassword": "pass-pass-pass"})),
            &[("authorization", &b)],
        )
        .await;
    assert_eq!(r.status, 403, "no CSRF token: {}", r.text());
    let csrf = get_with(&srv, "/api/account/my-token", &b).await.text();
    let with_csrf = [
        ("authorization", b.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    let r = srv
        .call(
            "PUT",
            "/api/account",
            Some(json!({"id": "7phg3h7v3ayb5g2f", "username": "name", "isAdmin": false, "plainPassword": "pass-pass-pass"})),
            &with_csrf,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = srv.call("GET", "/api/accounts", None, &with_csrf).await;
    let v = r.json();
    // SentryShot's string id is held as a number, the same for every call that names it.
    let id = vigil_http::auth::account_id_of("7phg3h7v3ayb5g2f")
        .unwrap()
        .to_string();
    assert_eq!(v[&id]["username"], "name", "{v}");
    assert_eq!(v[&id]["isAdmin"], false, "{v}");
    assert!(v[&id]["created_at"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(
        v.to_string().find("argon2").is_none(),
        "no hash leaves the server: {v}"
    );
    let r = srv
        .call(
            "DELETE",
            "/api/account?id=7phg3h7v3ayb5g2f",
            None,
            &with_csrf,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let admin_id = srv
        .call("GET", "/api/auth/me", None, &with_csrf)
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = srv
        .call(
            "DELETE",
            &format!("/api/account?id={admin_id}"),
            None,
            &with_csrf,
        )
        .await;
    assert_eq!(r.status, 409, "the last admin stays: {}", r.text());

    // Vigil's login sets the cookie; a cookie's change needs the CSRF token; logout ends it.
    let r = try_login(&srv, "admin", "another-password").await;
    let cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let jar = cookie.split(';').next().unwrap().to_owned();
    let r = srv
        .call("GET", "/api/auth/me", None, &[("cookie", &jar)])
        .await;
    assert_eq!(r.json()["via"], "cookie", "{}", r.text());
    let r = srv
        .call("POST", "/api/auth/logout", None, &[("cookie", &jar)])
        .await;
    assert_eq!(
        r.status,
        403,
        "a cookie's change needs the CSRF token: {}",
        r.text()
    );
    let r = srv
        .call(
            "POST",
            "/api/auth/logout",
            None,
            &[("cookie", &jar), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = srv
        .call("GET", "/api/auth/me", None, &[("cookie", &jar)])
        .await;
    assert_eq!(r.status, 401, "{}", r.text());

    // Failed logins: after five, even the right password waits.
    for _ in 0..5 {
        let r = try_login(&srv, "admin", "guess-guess").await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let r = try_login(&srv, "admin", "another-password").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.json()["detail"].as_str().unwrap().contains("try again"));
    let r = get_with(&srv, "/api/cameras", &basic("admin", "guess-again")).await;
    assert_eq!(r.status, 429, "basic auth counts too: {}", r.text());
    // An admin's key made for a viewer's role reads and cannot change anything.
    let r = srv
        .call(
            "POST",
            "/api/keys",
            Some(json!({"name": "dashboard", "role": "viewer"})),
            &[("authorization", &auth2)],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["role"], "viewer", "{v}");
    let weak = v["key"].as_str().unwrap().to_owned();
    let r = srv.get(&format!("/api/events?api_key={weak}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = srv
        .call(
            "POST",
            "/api/cameras",
            Some(json!({"name": "x", "url": "rtsp://127.0.0.1/x"})),
            &[("x-api-key", &weak)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // A token is not a key, nor a key a token.
    let r = srv.get(&format!("/api/events?token={weak}")).await;
    assert_eq!(r.status, 401, "{}", r.text());
    // Logins are audited, failures included.
    let r = get_with(&srv, "/api/audit?action=login&status=failure", &auth2).await;
    assert!(r.json()["total"].as_u64().unwrap() >= 6, "{}", r.text());
    srv.stop().await;
}

#[tokio::test]
async fn accounts_load_back_from_the_store() {
    let (srv, auth) = Server::start_secured(ADMIN_PASSWORD).await;
    let (_, key) = auth
        .create_key(&auth.accounts()[0].id, "kept", None)
        .await
        .unwrap();
    let again = vigil_http::auth::Auth::load(srv.store.clone())
        .await
        .unwrap();
    assert_eq!(again.accounts().len(), 1);
    assert!(
        again.ensure_admin(None).await.unwrap().is_none(),
        "no second admin"
    );
    let creds = vigil_http::auth::Credentials {
        api_key: Some(key),
        ..Default::default()
    };
    let p = again.authenticate(&creds, None).await.unwrap().unwrap();
    assert_eq!(p.username, "admin");
    assert_eq!(p.actor(), "apikey:kept");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_keys_record_their_last_use() {
    let (srv, auth) = Server::start_secured(ADMIN_PASSWORD).await;
    auth.set_token_ttl(std::time::Duration::from_millis(1500));
    let short = login(&srv, "admin", ADMIN_PASSWORD).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        get_with(&srv, "/api/auth/me", &bearer(&short)).await.status,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let r = get_with(&srv, "/api/auth/me", &bearer(&short)).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.json()["detail"].as_str().unwrap().contains("expired"),
        "{}",
        r.text()
    );
    // The expired token is not listed among the live ones.
    auth.set_token_ttl(vigil_http::auth::TOKEN_TTL);
    let (_, key) = auth
        .create_key(&auth.accounts()[0].id, "used", None)
        .await
        .unwrap();
    let before = srv.get_with_key("/api/keys", &key).await.json();
    let k = before["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "used")
        .unwrap()
        .clone();
    assert!(k["last_used"].is_string(), "{k}");
    // Written to the store, so it outlives a restart.
    let again = vigil_http::auth::Auth::load(srv.store.clone())
        .await
        .unwrap();
    let kept = again.keys().into_iter().find(|k| k.name == "used").unwrap();
    assert!(kept.last_used.is_some());
    srv.stop().await;
}
