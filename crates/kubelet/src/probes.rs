//! Liveness and readiness probes (exec, tcpSocket, httpGet), one task per
//! probe of a running container, honouring initialDelaySeconds,
//! periodSeconds, timeoutSeconds, successThreshold and failureThreshold.
//! Results are kept per container id; a change pokes the pod's worker,
//! which marks the container ready or kills it.

use berth_base::sync::MutexExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::pb::core::{Container, ContainerPort, Probe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::metrics::{Metrics, ProbeLabels};
use crate::runtime::Runtime;

/// Tells the pod's worker that something changed.
pub type Poke = Arc<dyn Fn() + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Liveness,
    Readiness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct State {
    uid: String,
    /// None: no readiness probe (ready once running).
    ready: Option<bool>,
    /// The liveness probe failed failureThreshold times in a row.
    live_failed: Option<String>,
}

struct Entry {
    state: State,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Where a probe runs.
#[derive(Clone)]
pub struct Target {
    pub runtime: Arc<dyn Runtime>,
    pub container_id: String,
    pub pod_ip: String,
    pub ports: Vec<ContainerPort>,
    /// Hollow nodes: every probe succeeds.
    pub fake: bool,
}

/// The probes of every running container on the node.
pub struct Probes {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    metrics: Metrics,
}

impl Probes {
    pub fn new(metrics: Metrics) -> Probes {
        Probes { entries: Arc::default(), metrics }
    }

    /// Starts the probes of a running container unless they run already.
    pub fn ensure(&self, uid: &str, spec: &Container, target: Target, poke: Poke) {
        let mut entries = self.entries.lock_or_recover();
        if entries.contains_key(&target.container_id) {
            return;
        }
        let mut tasks = Vec::new();
        let mut state = State { uid: uid.to_string(), ..Default::default() };
        for (kind, probe) in [(Kind::Liveness, &spec.liveness_probe), (Kind::Readiness, &spec.readiness_probe)] {
            let Some(probe) = probe.clone() else { continue };
            if kind == Kind::Readiness {
                state.ready = Some(false);
            }
            let worker = Worker {
                kind,
                probe,
                target: target.clone(),
                entries: self.entries.clone(),
                poke: poke.clone(),
                metrics: self.metrics.clone(),
                container: spec.name.clone(),
            };
            tasks.push(tokio::spawn(worker.run()));
        }
        entries.insert(target.container_id.clone(), Entry { state, tasks });
    }

    /// Whether a running container is ready as its readiness probe last
    /// said; None when it has none or its probes have not started yet.
    pub fn ready(&self, container_id: &str) -> Option<bool> {
        self.entries.lock_or_recover().get(container_id).and_then(|e| e.state.ready)
    }

    /// Why the container's liveness probe failed, if it did.
    pub fn liveness_failure(&self, container_id: &str) -> Option<String> {
        self.entries.lock_or_recover().get(container_id).and_then(|e| e.state.live_failed.clone())
    }

    /// Stops the probes of the pod's containers that are not in `running`.
    pub fn retain(&self, uid: &str, running: &HashSet<String>) {
        self.entries.lock_or_recover().retain(|id, e| e.state.uid != uid || running.contains(id));
    }

    /// Stops every probe of the pod.
    pub fn forget_pod(&self, uid: &str) {
        self.entries.lock_or_recover().retain(|_, e| e.state.uid != uid);
    }
}

struct Worker {
    kind: Kind,
    probe: Probe,
    target: Target,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    poke: Poke,
    metrics: Metrics,
    container: String,
}

impl Worker {
    async fn run(self) {
        let p = &self.probe;
        let initial = Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let period = Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
        let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
        let success_threshold = p.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = p.failure_threshold.unwrap_or(3).max(1);
        tokio::time::sleep(initial).await;
        let (mut successes, mut failures) = (0, 0);
        loop {
            let outcome = if self.target.fake { Ok(()) } else { run_probe(&self.probe, &self.target, timeout).await };
            let result = if outcome.is_ok() { "success" } else { "failure" };
            self.metrics.probes.get_or_create(&ProbeLabels { probe: self.kind.name().into(), result: result.into() }).inc();
            match &outcome {
                Ok(()) => {
                    successes += 1;
                    failures = 0;
                }
                Err(why) => {
                    failures += 1;
                    successes = 0;
                    debug!(container = %self.container, id = %self.target.container_id, probe = self.kind.name(), cause = %why, "probe failed");
                }
            }
            let changed = {
                let mut entries = self.entries.lock_or_recover();
                let Some(e) = entries.get_mut(&self.target.container_id) else { return };
                match (self.kind, &outcome) {
                    (Kind::Readiness, Ok(())) if successes >= success_threshold && e.state.ready != Some(true) => {
                        e.state.ready = Some(true);
                        true
                    }
                    (Kind::Readiness, Err(_)) if failures >= failure_threshold && e.state.ready != Some(false) => {
                        e.state.ready = Some(false);
                        true
                    }
                    (Kind::Liveness, Err(why)) if failures >= failure_threshold => {
                        e.state.live_failed = Some(format!("Liveness probe failed: {why}"));
                        true
                    }
                    _ => false,
                }
            };
            if changed {
                info!(container = %self.container, id = %self.target.container_id, probe = self.kind.name(), result, "probe result changed");
                (self.poke)();
                if self.kind == Kind::Liveness {
                    // The container is killed; a new instance gets new probes.
                    return;
                }
            }
            tokio::time::sleep(period).await;
        }
    }
}

/// A port number, or the number of a named port of the container.
fn resolve_port(port: &str, ports: &[ContainerPort]) -> Result<u16, String> {
    if let Ok(n) = port.parse::<u16>() {
        return Ok(n);
    }
    ports
        .iter()
        .find(|p| p.name == port)
        .and_then(|p| u16::try_from(p.container_port).ok())
        .ok_or_else(|| format!("no port named {port:?} in the container"))
}

async fn run_probe(probe: &Probe, t: &Target, timeout: Duration) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let r = t.runtime.exec_sync(&t.container_id, &exec.command, timeout).await.map_err(|e| e.to_string())?;
        return if r.exit_code == 0 {
            Ok(())
        } else {
            Err(format!("command {:?} exited with {}: {}", exec.command, r.exit_code, String::from_utf8_lossy(&r.output).trim()))
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = if tcp.host.is_empty() { t.pod_ip.clone() } else { tcp.host.clone() };
        let port = resolve_port(&tcp.port, &t.ports)?;
        return match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Err(format!("dial tcp {host}:{port}: timed out after {timeout:?}")),
        };
    }
    if let Some(http) = &probe.http_get {
        let host = if http.host.is_empty() { t.pod_ip.clone() } else { http.host.clone() };
        let port = resolve_port(&http.port, &t.ports)?;
        if http.scheme.eq_ignore_ascii_case("HTTPS") {
            return Err("HTTPS probes are not supported yet".into());
        }
        let path = if http.path.is_empty() { "/" } else { http.path.as_str() };
        let mut headers = String::new();
        let mut has_host = false;
        for h in &http.http_headers {
            has_host |= h.name.eq_ignore_ascii_case("host");
            headers.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        if !has_host {
            headers.push_str(&format!("Host: {host}:{port}\r\n"));
        }
        let request = format!("GET {path} HTTP/1.1\r\n{headers}User-Agent: berth-probe/1.0\r\nAccept: */*\r\nConnection: close\r\n\r\n");
        let get = async {
            let mut s = TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
            s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
            let mut buf = Vec::with_capacity(256);
            let mut chunk = [0u8; 256];
            while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 4096 {
                let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            http_status(&buf).ok_or_else(|| "malformed HTTP response".to_string())
        };
        let status = tokio::time::timeout(timeout, get).await.map_err(|_| format!("GET {path}: timed out after {timeout:?}"))??;
        return if (200..400).contains(&status) { Ok(()) } else { Err(format!("HTTP probe failed with statuscode: {status}")) };
    }
    Err("the probe has no handler (exec, tcpSocket or httpGet)".into())
}

/// The status code of an HTTP response's first line.
fn http_status(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_the_status_of_an_http_response() {
        assert_eq!(http_status(b"HTTP/1.1 204 No Content\r\n\r\n"), Some(204));
        assert_eq!(http_status(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(http_status(b"garbage"), None);
    }

    #[test]
    fn should_resolve_named_ports() {
        let ports = vec![ContainerPort { name: "http".into(), container_port: 8080, ..Default::default() }];
        assert_eq!(resolve_port("80", &ports), Ok(80));
        assert_eq!(resolve_port("http", &ports), Ok(8080));
        assert!(resolve_port("grpc", &ports).is_err());
    }

    #[tokio::test]
    async fn should_succeed_for_2xx_3xx_and_fail_otherwise() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for status in ["200 OK", "302 Found", "500 Oops"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let probe = |path: &str| Probe {
            http_get: Some(berth_api::pb::core::HttpGetAction {
                path: path.into(),
                port: port.to_string(),
                host: "127.0.0.1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let target = Target {
            runtime: Arc::new(crate::runtime::fake::FakeRuntime::new()),
            container_id: "c".into(),
            pod_ip: "127.0.0.1".into(),
            ports: vec![],
            fake: false,
        };
        let t = Duration::from_secs(5);
        assert_eq!(run_probe(&probe("/a"), &target, t).await, Ok(()));
        assert_eq!(run_probe(&probe("/b"), &target, t).await, Ok(()));
        assert_eq!(run_probe(&probe("/c"), &target, t).await, Err("HTTP probe failed with statuscode: 500".into()));
    }
}
