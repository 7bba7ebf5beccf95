//! Running the system tools the proxy programs the kernel with (`ip`, `nft`, `iptables-restore`, `ipvsadm`), and sending nf_tables element batches over netlink, behind a narrow trait: the real runner, and a recording one for unit tests and scale simulation.

use berth_base::sync::MutexExt;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Why a tool failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tool could not be started (usually: not installed).
    #[error("cannot run {program}: {source} (is it installed?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The tool ran and reported failure.
    #[error("{program} {args} failed ({status}): {stderr}")]
    Failed { program: String, args: String, status: String, stderr: String },
    /// An nf_tables element batch failed (nothing of it was committed).
    #[error(transparent)]
    Netlink(#[from] crate::nfnetlink::Error),
}

impl Error {
    /// What the tool wrote on stderr (empty when it could not be started).
    pub fn stderr(&self) -> &str {
        match self {
            Error::Failed { stderr, .. } => stderr,
            Error::Spawn { .. } | Error::Netlink(_) => "",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs a program with arguments and optional standard input, returning its
/// standard output. Blocking: call it off the async runtime.
pub trait Exec: Send + Sync + 'static {
    fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String>;

    /// Sends an nf_tables element batch as one transaction. Blocking too.
    fn nft_elements(&self, batch: &dyn ElementBatch) -> Result<()>;
}

/// Set and map elements to write over netlink ([`crate::nfnetlink`]).
pub trait ElementBatch {
    /// The batch's messages.
    fn encode(&self) -> crate::nfnetlink::Finished;
    /// The same change as an `nft` script, for records and logs.
    fn describe(&self) -> String;
}

/// The real runner.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

/// Longest stderr kept in an error; tools such as nft can echo a whole ruleset.
const MAX_STDERR: usize = 4000;

impl Exec for System {
    fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
        let spawn_error = |source| Error::Spawn { program: program.to_string(), source };
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        // Feed stdin from another thread so that a tool that answers while
        // reading (and fills its stdout pipe) cannot deadlock with us.
        let writer = match (stdin, child.stdin.take()) {
            (Some(input), Some(mut pipe)) => {
                let input = input.to_vec();
                Some(std::thread::spawn(move || pipe.write_all(&input)))
            }
            _ => None,
        };
        let output = child.wait_with_output().map_err(spawn_error)?;
        if let Some(w) = writer {
            // A write error (EPIPE) means the tool stopped reading: its exit status says why.
            let _ = w.join();
        }
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if stderr.len() > MAX_STDERR {
            let mut cut = MAX_STDERR;
            while !stderr.is_char_boundary(cut) {
                cut -= 1;
            }
            stderr.truncate(cut);
            stderr.push_str(" …");
        }
        Err(Error::Failed { program: program.to_string(), args: args.join(" "), status: output.status.to_string(), stderr })
    }

    fn nft_elements(&self, batch: &dyn ElementBatch) -> Result<()> {
        let started = std::time::Instant::now();
        let encoded = batch.encode();
        let encode = started.elapsed();
        encoded.send()?;
        tracing::debug!(
            bytes = encoded.bytes().len(),
            encode_ms = encode.as_secs_f64() * 1000.0,
            kernel_ms = (started.elapsed() - encode).as_secs_f64() * 1000.0,
            "nf_tables element batch"
        );
        Ok(())
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: String,
}

impl Call {
    /// `program arg arg…`
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
    }
}

/// Scripted answers by command-line prefix: `Ok(stdout)` or `Err(stderr)`.
type Answers = HashMap<String, VecDeque<Result<String, String>>>;

/// A runner that records every call and answers from a script: for each
/// command line prefix, queued answers (the last one repeats); unscripted
/// calls succeed with empty output.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    answers: Arc<Mutex<Answers>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Answers calls whose command line starts with `prefix` with `answer`
    /// (`Err(stderr)` for a failure), after the answers queued before it.
    pub fn answer(&self, prefix: &str, answer: Result<&str, &str>) {
        let answer = answer.map(str::to_string).map_err(str::to_string);
        self.answers.lock_or_recover().entry(prefix.to_string()).or_default().push_back(answer);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock_or_recover().clone()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.calls.lock_or_recover().clear();
    }
}

impl Exec for Recorder {
    fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
        let call = Call {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: stdin.map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default(),
        };
        let line = call.command_line();
        self.calls.lock_or_recover().push(call);
        let mut answers = self.answers.lock_or_recover();
        let best = answers.keys().filter(|p| line.starts_with(p.as_str())).max_by_key(|p| p.len()).cloned();
        let Some(queue) = best.and_then(|p| answers.get_mut(&p)) else { return Ok(String::new()) };
        let answer = if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() };
        match answer {
            Some(Ok(out)) => Ok(out),
            Some(Err(stderr)) => {
                Err(Error::Failed { program: program.to_string(), args: args.join(" "), status: "exit status: 1".into(), stderr })
            }
            None => Ok(String::new()),
        }
    }

    /// Recorded as a call of program `netlink` whose stdin is the batch as
    /// an `nft` script; answered like `run` (prefix `netlink`).
    fn nft_elements(&self, batch: &dyn ElementBatch) -> Result<()> {
        let script = batch.describe();
        self.run("netlink", &[], Some(script.as_bytes())).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_return_stdout_and_feed_stdin() {
        let out = System.run("cat", &[], Some(b"hello")).unwrap();
        assert_eq!(out, "hello");
    }

    #[test]
    fn should_report_stderr_of_a_failing_tool() {
        let err = System.run("sh", &["-c", "echo broken >&2; exit 3"], None).unwrap_err();
        assert_eq!(err.stderr(), "broken");
        assert!(err.to_string().contains("exit status: 3"), "{err}");
    }

    #[test]
    fn should_name_a_missing_tool() {
        let err = System.run("berth-no-such-tool", &[], None).unwrap_err();
        assert!(err.to_string().contains("cannot run berth-no-such-tool"), "{err}");
    }

    #[test]
    fn should_record_calls_and_answer_by_longest_prefix() {
        let r = Recorder::new();
        r.answer("ip", Ok("any"));
        r.answer("ip link show", Err("Device does not exist"));
        r.answer("ip link show", Ok("1: x"));
        assert_eq!(r.run("ip", &["addr"], None).unwrap(), "any");
        assert!(r.run("ip", &["link", "show"], None).is_err());
        assert_eq!(r.run("ip", &["link", "show"], None).unwrap(), "1: x");
        assert_eq!(r.run("ip", &["link", "show"], None).unwrap(), "1: x");
        assert_eq!(r.calls().len(), 4);
        assert_eq!(r.calls()[1].command_line(), "ip link show");
    }
}
