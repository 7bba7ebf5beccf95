//! The apiserver's errors and their one mapping to gRPC status codes
//! (DESIGN.md §3), so every handler answers alike.

use tonic::{Code, Status};

use crate::storage;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist (404).
    #[error("{plural} {name:?} not found")]
    NotFound { plural: String, name: String },
    /// An object of that name exists (409).
    #[error("{plural} {name:?} already exists")]
    AlreadyExists { plural: String, name: String },
    /// A resourceVersion or uid precondition failed (409).
    #[error("Operation cannot be fulfilled on {plural} {name:?}: {reason}")]
    Conflict { plural: String, name: String, reason: String },
    /// The request is invalid; the message names the field and the rule (422).
    #[error("{kind} {name:?} is invalid: {message}")]
    Invalid {
        kind: String,
        name: String,
        message: String,
        /// Each field's error, when validation found them.
        causes: Vec<berth_api::validation::FieldError>,
    },
    /// A malformed request that is not about one object's fields (400).
    #[error("{0}")]
    BadRequest(String),
    /// The requested revision was compacted away (410).
    #[error("too old resource version: {requested} (oldest retained: {oldest})")]
    Gone { requested: u64, oldest: u64 },
    /// The request carries no valid credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Refused by policy (403).
    #[error("{0}")]
    Forbidden(String),
    /// The object is not in a state that allows the request, such as exec
    /// into a pod not yet scheduled (400).
    #[error("{0}")]
    Precondition(String),
    /// The server is starting or stopping, or a kubelet it proxies to
    /// cannot be reached (503).
    #[error("{0}")]
    Unavailable(String),
    /// A kubelet's own answer, passed on with its code.
    #[error("{message}")]
    Kubelet { code: Code, message: String },
    /// A fault inside the server or its store (500).
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::NotFound { .. } => Code::NotFound,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::Conflict { .. } => Code::Aborted,
            Error::Invalid { .. } | Error::BadRequest(_) => Code::InvalidArgument,
            Error::Gone { .. } => Code::OutOfRange,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Forbidden(_) => Code::PermissionDenied,
            Error::Precondition(_) => Code::FailedPrecondition,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Kubelet { code, .. } => *code,
            Error::Internal(_) => Code::Internal,
        }
    }

    /// Maps a storage error about `plural/name`.
    pub fn from_store(e: storage::Error, plural: &str, name: &str) -> Error {
        match e {
            storage::Error::NotFound { .. } => Error::NotFound { plural: plural.into(), name: name.into() },
            storage::Error::AlreadyExists { .. } => Error::AlreadyExists { plural: plural.into(), name: name.into() },
            storage::Error::Conflict { .. } => Error::Conflict {
                plural: plural.into(),
                name: name.into(),
                reason: "the object has been modified; please apply your changes to the latest version and try again".into(),
            },
            storage::Error::TooOld { requested, oldest } => Error::Gone { requested, oldest },
            storage::Error::Closed => Error::Unavailable("the apiserver is shutting down".into()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        Status::new(e.code(), e.to_string())
    }
}
