//! The OpenAPI document, made from the route table, and the page that lists and tries every
//! endpoint (HSI's `/docs`, SentryShot's `/api` page).

use hyper::StatusCode;
use serde_json::{json, Value};

use super::GET;
use crate::reply::{bytes, ok, Reply};
use crate::router::{Ctx, Router};
use crate::API_VERSION;

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/openapi.json",
        "docs",
        "This API as an OpenAPI 3.1 document",
        openapi,
    );
    r.add(
        GET,
        "/docs",
        "docs",
        "A page that lists and tries every endpoint",
        page,
    );
    r.add(
        GET,
        "/api",
        "docs",
        "A page that lists and tries every endpoint (SentryShot)",
        page,
    );
}

/// The path parameters of a pattern (`{id}`, `{*path}`), and the pattern in OpenAPI's form.
fn params_of(pattern: &str) -> (Vec<String>, String) {
    let mut names = Vec::new();
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else { break };
        let name = rest[i + 1..i + j].trim_start_matches('*').to_owned();
        out.push('{');
        out.push_str(&name);
        out.push('}');
        names.push(name);
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    (names, out)
}

/// The document.
pub(crate) fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for ep in crate::router().endpoints() {
        let (names, path) = params_of(ep.pattern);
        let method = ep.method.as_str().to_ascii_lowercase();
        let op_id = format!("{method}{}", path.replace(['/', '{', '}', '.', '-'], "_"));
        let parameters: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": op_id,
            "parameters": parameters,
            "responses": {
                // The route table does not say which success each route answers (200, 201
                // for what it makes, 204 for what it removes, 206 for ranges...).
                "2XX": {"description": "Success"},
                "4XX": {"description": "Client error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "422": {"description": "Validation error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"}}}},
            },
        });
        if matches!(method.as_str(), "post" | "put" | "patch") {
            op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        if ep.tag == "unsupported" {
            op["responses"] = json!({"501": {"description": ep.summary}});
        }
        match crate::access(&ep.method, ep.pattern) {
            // Open: an empty requirement overrides the document's.
            crate::Access::Public => op["security"] = json!([]),
            crate::Access::Admin => {
                op["responses"]["403"] = json!({"description": "Admins only"});
            }
            _ => {}
        }
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vigil",
            "version": API_VERSION,
            "description": "The Vigil NVR API: the union of the Frigate, Home Security Intelligence, picam, SpectraX and SentryShot APIs (docs/api/mapping.md).",
        },
        "paths": paths,
        // Any one of these (docs/security.md); the CSRF token goes with basic auth and the
        // cookie on changes.
        "security": [{"basic": []}, {"bearer": []}, {"apiKey": []}, {"cookie": []}],
        "components": {
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "a token from POST /api/auth/login, or ?token="},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "or ?api_key="},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "vigil_token"},
        },
        "schemas": {
            "Error": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
            "ValidationError": {"type": "object", "properties": {"detail": {"type": "array", "items": {
                "type": "object",
                "properties": {"loc": {"type": "array"}, "msg": {"type": "string"}, "type": {"type": "string"}},
            }}}},
        }},
    })
}

async fn openapi(_: Ctx) -> Reply {
    ok(&document())
}

#[cfg(test)]
/// `docs/api/reference.md`: every route by family, who may call it and what it does, made
/// from the route table (a test keeps the file equal to it).
pub(crate) fn reference() -> String {
    let mut by_tag: std::collections::BTreeMap<&str, Vec<&crate::router::Endpoint>> =
        Default::default();
    let router = crate::router();
    for ep in router.endpoints() {
        by_tag.entry(ep.tag).or_default().push(ep);
    }
    let mut out = String::from(
        "# API reference\n\n\
         Every route vigild serves, by family, made from its route table (`vigil-http`; a test \
         fails when this file differs: `VIGIL_BLESS=1 cargo test -p vigil-http reference` \
         writes it again). Who: `open` needs no credentials, `account` any account, `viewer` \
         viewers and admins, `admin` admins only (`docs/security.md`). Tier: the rate-limit \
         budget it draws on. `docs/api/mapping.md` maps the five API documents onto these \
         routes; `/openapi.json` is the same list for programs and `/docs` tries each route \
         from a browser.\n",
    );
    for (tag, eps) in by_tag {
        out.push_str(&format!(
            "\n## {tag}\n\n| method | path | who | tier | what it does |\n|---|---|---|---|---|\n"
        ));
        for ep in eps {
            let who = match crate::access(&ep.method, ep.pattern) {
                crate::Access::Public => "open",
                crate::Access::Account => "account",
                crate::Access::Viewer => "viewer",
                crate::Access::Admin => "admin",
            };
            let tier = format!("{:?}", ep.tier).to_ascii_lowercase();
            let summary = ep.summary.replace('|', "\\|");
            out.push_str(&format!(
                "| {} | `{}` | {who} | {tier} | {summary} |\n",
                ep.method, ep.pattern
            ));
        }
    }
    out
}

async fn page(_: Ctx) -> Reply {
    Ok(bytes(
        StatusCode::OK,
        "text/html; charset=utf-8",
        include_str!("page.html"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_become_openapi_paths() {
        assert_eq!(
            params_of("/api/events/{id}/clip.mp4"),
            (
                vec!["id".to_owned()],
                "/api/events/{id}/clip.mp4".to_owned()
            )
        );
        assert_eq!(
            params_of("/recordings/{*path}"),
            (vec!["path".to_owned()], "/recordings/{path}".to_owned())
        );
        let d = document();
        assert_eq!(d["openapi"], "3.1.0");
        assert!(d["paths"]["/api/events"]["get"]["summary"].is_string());
    }

    /// docs/api/reference.md is the route table as it is; `VIGIL_BLESS=1` rewrites it.
    #[test]
    fn the_reference_is_the_route_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api/reference.md");
        let want = reference();
        if std::env::var_os("VIGIL_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/api/reference.md is not the route table: \
             run `VIGIL_BLESS=1 cargo test -p vigil-http reference` and commit it"
        );
    }
}
