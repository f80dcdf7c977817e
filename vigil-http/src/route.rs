//! Request routing: method and path to a typed [`Route`].

use hyper::Method;
use vigil_core::EventId;

/// Every route the server knows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `GET /health`: the process is alive.
    Health,
    /// `GET /ready`, `GET /api/system/health/ready`: the store answers.
    Ready,
    /// `GET /api/version`: plain-text version.
    Version,
    /// `GET /api/events`: the event list.
    Events,
    /// `GET /api/events/{id}`: one event.
    Event(EventId),
    /// A path that exists but not with this method.
    MethodNotAllowed,
    /// Nothing here.
    NotFound,
}

impl Route {
    /// Decodes a request line into a route.
    pub fn decode(method: &Method, path: &str) -> Route {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let get = method == Method::GET || method == Method::HEAD;
        let r = match segs.as_slice() {
            ["health"] => Route::Health,
            ["ready"] | ["api", "system", "health", "ready"] => Route::Ready,
            ["api", "version"] => Route::Version,
            ["api", "events"] => Route::Events,
            ["api", "events", id] => match id.parse() {
                Ok(id) => Route::Event(id),
                Err(_) => Route::NotFound,
            },
            _ => return Route::NotFound,
        };
        if get {
            r
        } else {
            Route::MethodNotAllowed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        let check =
            |m: Method, p: &str, want: Route| assert_eq!(Route::decode(&m, p), want, "{m} {p}");
        check(Method::GET, "/health", Route::Health);
        check(Method::GET, "/ready", Route::Ready);
        check(Method::GET, "/api/system/health/ready", Route::Ready);
        check(Method::GET, "/api/version", Route::Version);
        check(Method::GET, "/api/events", Route::Events);
        check(Method::GET, "/api/events/", Route::Events);
        check(Method::GET, "/api/events/42", Route::Event(EventId(42)));
        check(Method::GET, "/api/events/x", Route::NotFound);
        check(Method::POST, "/api/events", Route::MethodNotAllowed);
        check(Method::GET, "/nope", Route::NotFound);
        check(Method::GET, "", Route::NotFound);
    }
}
