//! How berthctl reports a failure: one line on stderr, kubectl's wording:
//! `Error from server (NotFound): pods "x" not found` for the server's
//! answers, `error: ...` for everything else.

use std::fmt;

use berth_api::KindInfo;
use tonic::Code;

/// An error the API server answered with.
#[derive(Debug)]
pub struct ServerError {
    /// kubectl's reason: NotFound, AlreadyExists, Conflict, Invalid, ...
    pub reason: &'static str,
    pub message: String,
    /// The message names the object itself (`pods "x" not found`), so the
    /// context the command added is left out.
    pub self_contained: bool,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ServerError {}

/// A command that `exec` ran ended with a non-zero exit code; berthctl
/// exits with that code, as kubectl does.
#[derive(Debug)]
pub struct CommandExit(pub i32);

impl fmt::Display for CommandExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command terminated with exit code {}", self.0)
    }
}

impl std::error::Error for CommandExit {}

/// berthctl's exit code for an error: the code of a command `exec` ran, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain().find_map(|e| e.downcast_ref::<CommandExit>()).map(|c| c.0).unwrap_or(1)
}

/// kubectl's name for the HTTP status a gRPC code maps to (DESIGN.md §3).
pub fn reason(code: Code) -> &'static str {
    match code {
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::Aborted => "Conflict",
        Code::InvalidArgument => "Invalid",
        Code::OutOfRange => "Expired",
        Code::Unauthenticated => "Unauthorized",
        Code::PermissionDenied => "Forbidden",
        Code::Unavailable => "ServiceUnavailable",
        Code::DeadlineExceeded => "Timeout",
        Code::FailedPrecondition => "BadRequest",
        Code::Unimplemented => "MethodNotAllowed",
        Code::ResourceExhausted => "TooManyRequests",
        _ => "InternalError",
    }
}

/// Turns a client error about the object `name` of kind `info` into the
/// error berthctl reports: NotFound and AlreadyExists stand alone (their
/// message names the object: `pods "x" not found`), other server answers
/// keep the server's message (which names the field) after the command's
/// context, transport failures stay as they are.
pub fn api(err: berth_client::Error, info: &KindInfo, name: &str) -> anyhow::Error {
    match err {
        berth_client::Error::Api(status) => {
            // The server's NotFound names what is missing (it may be the
            // namespace rather than the object); kubectl's sentence about the
            // object is only the fallback.
            let given = status.message().to_string();
            let (message, self_contained) = match status.code() {
                Code::NotFound if given.is_empty() => (format!("{} \"{}\" not found", info.plural, name), true),
                Code::AlreadyExists if given.is_empty() => (format!("{} \"{}\" already exists", info.plural, name), true),
                Code::NotFound | Code::AlreadyExists => (given, true),
                _ => (given, false),
            };
            ServerError { reason: reason(status.code()), message, self_contained }.into()
        }
        other => other.into(),
    }
}

/// Whether an error (anywhere in its chain) is the server's NotFound.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<ServerError>().is_some_and(|s| s.reason == "NotFound")
            || e.downcast_ref::<berth_client::Error>().is_some_and(|c| c.is_not_found())
    })
}

/// Whether an error is a resourceVersion conflict.
pub fn is_conflict(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<ServerError>().is_some_and(|s| s.reason == "Conflict")
            || e.downcast_ref::<berth_client::Error>().is_some_and(|c| c.is_conflict())
    })
}

/// The one line berthctl prints for an error.
pub fn render(err: &anyhow::Error) -> String {
    if let Some(exit) = err.chain().find_map(|e| e.downcast_ref::<CommandExit>()) {
        // kubectl's own words, without "error:".
        return exit.to_string();
    }
    let server = err.chain().find_map(|e| e.downcast_ref::<ServerError>());
    let line = match server {
        Some(s) if s.self_contained => format!("Error from server ({}): {}", s.reason, s.message),
        Some(s) => format!("Error from server ({}): {}", s.reason, chain(err)),
        None => format!("error: {}", chain(err)),
    };
    one_line(&line)
}

/// The messages of an error and its causes, `: `-joined, skipping a cause
/// its parent already quotes.
fn chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in err.chain() {
        let msg = e.to_string();
        if msg.is_empty() || parts.last().is_some_and(|p| p.contains(&msg)) {
            continue;
        }
        parts.push(msg);
    }
    parts.join(": ")
}

fn one_line(s: &str) -> String {
    s.split('\n').map(str::trim_end).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;
    use berth_api::Resource;
    use berth_api::pb::core::Pod;

    #[test]
    fn should_word_not_found_like_kubectl() {
        let err = api(tonic::Status::not_found("namespaces \"a\" not found").into(), &Pod::INFO, "x");
        let err = Err::<(), _>(err).context("getting pod x").unwrap_err();
        assert_eq!(render(&err), "Error from server (NotFound): namespaces \"a\" not found");
        assert!(is_not_found(&err));
        let err = api(tonic::Status::not_found("").into(), &Pod::INFO, "x");
        assert_eq!(render(&err), "Error from server (NotFound): pods \"x\" not found");
    }

    #[test]
    fn should_keep_the_server_message_and_context_for_invalid_objects() {
        let err = api(tonic::Status::invalid_argument("spec.containers[0].image: Required value").into(), &Pod::INFO, "web");
        let err = Err::<(), _>(err).context("error when creating pod/web").unwrap_err();
        assert_eq!(render(&err), "Error from server (Invalid): error when creating pod/web: spec.containers[0].image: Required value");
    }

    #[test]
    fn should_exit_with_the_code_of_the_command_exec_ran() {
        let err = anyhow::Error::from(CommandExit(3));
        assert_eq!(render(&err), "command terminated with exit code 3");
        assert_eq!(exit_code(&err), 3);
        assert_eq!(exit_code(&anyhow::anyhow!("other")), 1);
    }

    #[test]
    fn should_print_client_errors_on_one_line() {
        let err = anyhow::anyhow!("line one\nline two").context("reading x");
        assert_eq!(render(&err), "error: reading x: line one line two");
    }
}
