//! Errors as the API reports them: `{"detail": "..."}` with the status of the error's kind, or
//! `422` with `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}` for validation errors.

use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;
use vigil_core::ErrorKind;

use crate::reply::{json, Body};

/// One field that failed validation: where it is (`["query", "limit"]`, `["body", "zones", 0,
/// "name"]`), what is wrong, and a machine-readable type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    /// Where: the part of the request (`query`, `path`, `body`), then field names and indexes.
    pub loc: Vec<Value>,
    /// What is wrong, for people.
    pub msg: String,
    /// What is wrong, for programs (`missing`, `type_error`, `value_error`).
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// An error of the engine: its kind gives the status (see [`crate::status_of`]).
    Core(vigil_core::Error),
    /// Fields of the request that are not valid: 422.
    Validation(Vec<FieldError>),
    /// A status of the HTTP layer itself (405, 413, 501, ...).
    Status(StatusCode, String),
}

impl ApiError {
    /// 404 with a message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::NOT_FOUND, msg.into())
    }

    /// 400 with a message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, msg.into())
    }

    /// 422 for one field.
    pub fn field(loc: Vec<Value>, msg: impl Into<String>, kind: &'static str) -> Self {
        ApiError::Validation(vec![FieldError {
            loc,
            msg: msg.into(),
            kind,
        }])
    }

    /// 422 for a query parameter.
    pub fn query(name: &str, msg: impl Into<String>) -> Self {
        ApiError::field(vec!["query".into(), name.into()], msg, "value_error")
    }

    /// 422 for a path parameter.
    pub fn path(name: &str, msg: impl Into<String>) -> Self {
        ApiError::field(vec!["path".into(), name.into()], msg, "value_error")
    }

    /// 422: a required field is missing (`place` is `query` or `body`).
    pub fn missing(place: &str, field: &str) -> Self {
        ApiError::field(
            vec![place.into(), field.into()],
            "field required",
            "missing",
        )
    }

    /// 422 for a body field (`path` are the names under `body`).
    pub fn body(path: &[&str], msg: impl Into<String>) -> Self {
        let mut loc: Vec<Value> = vec!["body".into()];
        loc.extend(path.iter().map(|&p| Value::from(p)));
        ApiError::field(loc, msg, "value_error")
    }

    /// An I/O failure of the server (500), with what it was doing.
    pub fn io(doing: &str, e: std::io::Error) -> Self {
        ApiError::Core(vigil_core::Error::internal(format!("{doing}: {e}")))
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Core(e) => crate::status_of(e.kind()),
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Status(s, _) => *s,
        }
    }

    /// The response: `{"detail": ...}`.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        match self {
            ApiError::Core(e) => json(status, &serde_json::json!({ "detail": e.message() })),
            ApiError::Validation(fields) => json(status, &serde_json::json!({ "detail": fields })),
            ApiError::Status(_, msg) => json(status, &serde_json::json!({ "detail": msg })),
        }
    }

    /// The message, for logs.
    pub fn message(&self) -> String {
        match self {
            ApiError::Core(e) => e.to_string(),
            ApiError::Validation(f) => f
                .iter()
                .map(|f| format!("{:?}: {}", f.loc, f.msg))
                .collect::<Vec<_>>()
                .join("; "),
            ApiError::Status(_, m) => m.clone(),
        }
    }
}

impl From<vigil_core::Error> for ApiError {
    fn from(e: vigil_core::Error) -> Self {
        ApiError::Core(e)
    }
}

impl From<ErrorKind> for ApiError {
    fn from(k: ErrorKind) -> Self {
        ApiError::Core(vigil_core::Error::new(k, k.as_str()))
    }
}

/// Turns a serde error at `path` (from `serde_path_to_error`) into a located field error.
pub(crate) fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let mut loc: Vec<Value> = vec!["body".into()];
    for seg in err.path().iter() {
        use serde_path_to_error::Segment;
        match seg {
            Segment::Seq { index } => loc.push((*index).into()),
            Segment::Map { key } => loc.push(key.clone().into()),
            Segment::Enum { variant } => loc.push(variant.clone().into()),
            Segment::Unknown => {}
        }
    }
    let inner = err.into_inner();
    let msg = inner.to_string();
    // serde names a missing field only in its message: put it in the location too.
    let kind = if let Some(rest) = msg.strip_prefix("missing field `") {
        if let Some(name) = rest.split('`').next() {
            loc.push(name.into());
        }
        "missing"
    } else if msg.starts_with("unknown field") {
        "extra_forbidden"
    } else if inner.is_syntax() || inner.is_eof() {
        "json_invalid"
    } else {
        "type_error"
    };
    // Drop serde's " at line 1 column 12" suffix where the location says more.
    let msg = match msg.rfind(" at line ") {
        Some(i) if !inner.is_syntax() && !inner.is_eof() => msg[..i].to_owned(),
        _ => msg,
    };
    ApiError::field(loc, msg, kind)
}

/// Deserializes a JSON value (a body after edits), locating the field that is wrong.
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(from_serde)
}
