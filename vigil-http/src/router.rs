//! The route table: paths (matched by `matchit`) to one handler per method, each with the
//! summary and tag the OpenAPI document and the API page show.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::Method;
use serde::de::DeserializeOwned;

use crate::error::{from_serde, ApiError};
use crate::reply::Reply;
use crate::AppState;

/// What a handler gets: the request, already read, and the server's state.
pub struct Ctx {
    /// The server's state.
    pub state: AppState,
    /// The request method (`HEAD` arrives as `GET`).
    pub method: Method,
    /// The path, as sent.
    pub path: String,
    /// The path parameters, percent-decoded.
    params: Vec<(String, String)>,
    /// The raw query string.
    pub query: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The body (at most [`crate::MAX_BODY_BYTES`]).
    pub body: Bytes,
    /// Who sent it: `None` only on a public endpoint called without (valid) credentials.
    pub principal: Option<crate::auth::Principal>,
    /// The client's address, when known.
    pub peer: Option<std::net::SocketAddr>,
    /// The connection's upgrade (a WebSocket), when the request asked for one.
    pub(crate) upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Ctx {
    pub(crate) fn new(
        state: AppState,
        method: Method,
        path: String,
        params: Vec<(String, String)>,
        query: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Ctx {
        Ctx {
            state,
            method,
            path,
            params,
            query,
            headers,
            body,
            principal: None,
            peer: None,
            upgrade: None,
        }
    }

    /// The same request, from `principal` at `peer`, with the connection's upgrade.
    pub(crate) fn with_caller(
        mut self,
        principal: Option<crate::auth::Principal>,
        peer: Option<std::net::SocketAddr>,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Ctx {
        self.principal = principal;
        self.peer = peer;
        self.upgrade = upgrade;
        self
    }

    /// The client's IP address, when known.
    pub fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.peer.map(|p| p.ip())
    }

    /// A path parameter (the route names it, so it is there).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The same request with the path parameter `name` set to `value` (for a route that
    /// serves another's content under other names).
    pub(crate) fn with_param(mut self, name: &str, value: String) -> Ctx {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_owned(), value));
        self
    }

    /// A path parameter parsed as `T`: 422 naming it when it does not parse.
    pub fn param_as<T: FromStr>(&self, name: &str) -> Result<T, ApiError> {
        let v = self.param(name);
        v.parse()
            .map_err(|_| ApiError::path(name, format!("{v:?} is not a valid {name}")))
    }

    /// The query parameters, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A query parameter that must be there; 422 when it is not.
    pub fn required_query(&self, name: &str) -> Result<String, ApiError> {
        self.query_value(name)
            .ok_or_else(|| ApiError::missing("query", name))
    }

    /// The body as JSON of type `T`; 422 locating the field that is wrong.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::field(
                vec!["body".into()],
                "a JSON body is required",
                "missing",
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        let v = serde_path_to_error::deserialize(&mut de).map_err(from_serde)?;
        de.end()
            .map_err(|e| ApiError::field(vec!["body".into()], e.to_string(), "json_invalid"))?;
        Ok(v)
    }

    /// The body as JSON, or `T::default()` when it is empty (Home Assistant's integration sends
    /// `{}` with every request, others send nothing).
    pub fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.json()
    }
}

/// The prefix under which Vigil answers as Frigate does (the base URL a user gives Home
/// Assistant's Frigate integration is `http://host:5000/frigate`). Every path under it is the
/// root's, except those registered under it, which give Frigate's shape where the canonical
/// API's differs (the events list).
pub const FRIGATE_PREFIX: &str = "/frigate";

/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// A handler.
pub type Handler = Arc<dyn Fn(Ctx) -> HandlerFuture + Send + Sync>;

/// One method of one path.
#[derive(Clone)]
pub struct Endpoint {
    /// The method.
    pub method: Method,
    /// The path pattern, `{name}` for parameters.
    pub pattern: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The group it is listed under.
    pub tag: &'static str,
    /// Its rate-limit tier.
    pub tier: crate::limits::Tier,
    pub(crate) handler: Handler,
}

/// Paths to endpoints.
#[derive(Default)]
pub struct Router {
    paths: matchit::Router<usize>,
    /// Endpoints by path, in registration order; `paths` maps to indexes here.
    table: Vec<(&'static str, Vec<Endpoint>)>,
}

/// What the router found for a request.
pub(crate) enum Found<'a> {
    Endpoint(&'a Endpoint, Vec<(String, String)>),
    /// The path exists, the method does not: these do.
    WrongMethod(Vec<Method>),
    Nothing,
}

impl Router {
    /// An empty table.
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds `method pattern`. Panics on a pattern the router rejects or a duplicate: the table
    /// is built once, at start, from constants, so either is a bug caught by every test.
    pub fn add<F, Fut>(
        &mut self,
        method: Method,
        pattern: &'static str,
        tag: &'static str,
        summary: &'static str,
        f: F,
    ) where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |ctx| Box::pin(f(ctx)));
        let ep = Endpoint {
            method: method.clone(),
            pattern,
            summary,
            tag,
            tier: crate::limits::Tier::of(pattern),
            handler,
        };
        if let Some((_, eps)) = self.table.iter_mut().find(|(p, _)| *p == pattern) {
            assert!(
                eps.iter().all(|e| e.method != method),
                "{method} {pattern} registered twice"
            );
            eps.push(ep);
            return;
        }
        let i = self.table.len();
        self.paths
            .insert(pattern, i)
            .unwrap_or_else(|e| panic!("route {pattern}: {e}"));
        self.table.push((pattern, vec![ep]));
    }

    /// Every endpoint, in registration order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.table.iter().flat_map(|(_, eps)| eps.iter())
    }

    /// The endpoint that answers `method path` (the request's path as [`crate::respond`]
    /// matches it: as sent, without the query or trailing slashes), if any. Its pattern tells,
    /// for one, what [`crate::access`] the request needs.
    pub fn endpoint(&self, method: &Method, path: &str) -> Option<&Endpoint> {
        match self.find(method, path) {
            Found::Endpoint(ep, _) => Some(ep),
            Found::WrongMethod(_) | Found::Nothing => None,
        }
    }

    /// The endpoint of `method path`. Under [`FRIGATE_PREFIX`], the root's endpoint for the
    /// rest of the path, or the endpoint registered under the prefix for the same pattern,
    /// where Frigate's shape differs from the canonical one.
    pub(crate) fn find(&self, method: &Method, path: &str) -> Found<'_> {
        let Some(rest) = path
            .strip_prefix(FRIGATE_PREFIX)
            .filter(|r| r.starts_with('/'))
        else {
            return self.find_at(method, path);
        };
        match self.find_at(method, rest) {
            Found::Endpoint(ep, params) => {
                let own = self
                    .table
                    .iter()
                    .find(|(p, _)| p.strip_prefix(FRIGATE_PREFIX) == Some(ep.pattern))
                    .and_then(|(_, eps)| eps.iter().find(|e| e.method == ep.method));
                Found::Endpoint(own.unwrap_or(ep), params)
            }
            other => other,
        }
    }

    fn find_at(&self, method: &Method, path: &str) -> Found<'_> {
        let Ok(m) = self.paths.at(path) else {
            return Found::Nothing;
        };
        let (_, eps) = &self.table[*m.value];
        let want = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match eps.iter().find(|e| e.method == *want) {
            Some(ep) => {
                let params = m
                    .params
                    .iter()
                    .map(|(k, v)| {
                        let v = percent_encoding::percent_decode_str(v)
                            .decode_utf8_lossy()
                            .into_owned();
                        (k.to_owned(), v)
                    })
                    .collect();
                Found::Endpoint(ep, params)
            }
            None => Found::WrongMethod(eps.iter().map(|e| e.method.clone()).collect()),
        }
    }
}
