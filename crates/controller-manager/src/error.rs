//! The controllers' errors: what a sync can fail with, so that the worker
//! loop logs it and retries the key with backoff.

/// Why a sync or the manager failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or could not answer a call.
    #[error("{action}: {source}")]
    Api {
        /// What was being done, e.g. `creating a pod for rc default/web`.
        action: String,
        #[source]
        source: berth_client::Error,
    },
    /// An informer's cache never became ready.
    #[error("the {kind} cache did not sync: {source}")]
    CacheSync {
        kind: &'static str,
        #[source]
        source: berth_runtime::reflector::Error,
    },
    /// A flag or setting is wrong.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// This instance lost its leader lease; another instance takes over.
    #[error("lost the leader lease")]
    LeaderLost,
    /// The host's network refused something a provider needed.
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps a client error with what was being done.
pub fn api(action: impl Into<String>) -> impl FnOnce(berth_client::Error) -> Error {
    let action = action.into();
    move |source| Error::Api { action, source }
}

impl Error {
    /// The client error underneath, if this is one.
    pub fn client(&self) -> Option<&berth_client::Error> {
        match self {
            Error::Api { source, .. } => Some(source),
            _ => None,
        }
    }
}
