//! The one error classification shared by every Vigil crate.
//!
//! Each crate has its own `Error` type (thiserror) carrying the context of its domain; every one
//! of them answers [`ErrorKind`] through a `kind()` method, and the HTTP layer maps a kind to a
//! status code in exactly one place.

use std::fmt;

/// What went wrong, in terms a caller can act on.
///
/// The set follows the gRPC status codes that matter to an NVR. Variants are matched by callers
/// (the HTTP layer maps them to status codes), so new ones are added with care.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thing asked for does not exist (404).
    NotFound,
    /// The caller sent a value that can never be valid (400/422).
    InvalidArgument,
    /// The thing already exists (409).
    AlreadyExists,
    /// The system is not in a state where this can be done (409/412), e.g. an unknown schema.
    FailedPrecondition,
    /// The caller is not who they claim, or did not say (401).
    Unauthenticated,
    /// The caller is known but may not do this (403).
    PermissionDenied,
    /// A dependency is down or not ready; retrying later may work (503).
    Unavailable,
    /// A limit was hit: disk, map size, queue length, rate (429/507).
    ResourceExhausted,
    /// Stored data is damaged or lost (500, and loud logging).
    DataLoss,
    /// A bug or an unexpected failure (500).
    Internal,
}

impl ErrorKind {
    /// The snake_case name used in logs and JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::FailedPrecondition => "failed_precondition",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::DataLoss => "data_loss",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of `vigil-core` and of the traits it defines.
///
/// Implementations of [`Store`](crate::Store), [`Camera`](crate::Camera) and the other traits
/// return this type so that callers holding a `dyn` trait object see one error type; they keep
/// their own error as the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Error {
    kind: ErrorKind,
    msg: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with a message that says what and where (camera, id, value).
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The classification of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the chain of sources.
    pub fn message(&self) -> &str {
        &self.msg
    }

    /// Shorthand for an [`ErrorKind::InvalidArgument`] error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, msg)
    }

    /// Shorthand for an [`ErrorKind::NotFound`] error.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, msg)
    }

    /// Shorthand for an [`ErrorKind::Internal`] error.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, msg)
    }
}

/// `Result` with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
