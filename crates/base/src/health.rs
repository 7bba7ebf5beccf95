//! Health as every daemon reports it: named checks behind `/livez`,
//! `/readyz` and `/healthz` (Kubernetes' format, `?verbose` lists each
//! check, `?exclude=NAME` skips one), the gRPC health service
//! (`grpc.health.v1.Health`) whose status follows readiness, and the
//! endpoint the daemons without a gRPC port serve on `--health-listen`:
//! those plus Prometheus `/metrics`, gRPC and plain HTTP on one listener.

use crate::sync::MutexExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

/// What one check answers: `Err` carries the reason it fails.
pub type CheckResult = Result<(), String>;

/// The future of an asynchronous check.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;

type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// A check that takes longer than this fails: a probe must not hang.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the gRPC health status is brought in line with readiness.
const GRPC_STATUS_PERIOD: Duration = Duration::from_secs(1);

/// After shutdown begins, how long open connections (a gRPC health Watch
/// never ends by itself) may hold the endpoint before it closes anyway.
const DRAIN: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct Named {
    name: &'static str,
    check: CheckFn,
}

/// The named checks of one daemon; cheap to clone. Liveness checks run for
/// `/livez`; readiness runs them too, its own checks, and `shutdown`, which
/// fails once [`Checks::shutting_down`] was called.
#[derive(Clone)]
pub struct Checks {
    inner: Arc<Inner>,
}

struct Inner {
    live: Vec<Named>,
    ready: Vec<Named>,
    stopping: watch::Sender<bool>,
}

/// Collects checks before the daemon starts serving them.
#[derive(Default)]
pub struct Builder {
    live: Vec<Named>,
    ready: Vec<Named>,
}

/// A check whose state the daemon sets as things happen (synced, leading,
/// registered), read by the endpoints without doing any work.
#[derive(Clone, Debug)]
pub struct Flag(Arc<Mutex<CheckResult>>);

impl Flag {
    /// A flag failing with `reason` until [`Flag::ok`].
    pub fn failing(reason: impl Into<String>) -> Flag {
        Flag(Arc::new(Mutex::new(Err(reason.into()))))
    }

    /// A flag that passes until [`Flag::fail`].
    pub fn passing() -> Flag {
        Flag(Arc::new(Mutex::new(Ok(()))))
    }

    pub fn ok(&self) {
        self.set(Ok(()));
    }

    pub fn fail(&self, reason: impl Into<String>) {
        self.set(Err(reason.into()));
    }

    pub fn set(&self, state: CheckResult) {
        *self.0.lock_or_recover() = state;
    }

    pub fn get(&self) -> CheckResult {
        self.0.lock_or_recover().clone()
    }
}

impl Builder {
    /// A liveness check (also part of readiness), evaluated on each request.
    pub fn live(mut self, name: &'static str, check: impl Fn() -> CheckResult + Send + Sync + 'static) -> Self {
        self.live.push(sync_check(name, check));
        self
    }

    /// A readiness check, evaluated on each request.
    pub fn ready(mut self, name: &'static str, check: impl Fn() -> CheckResult + Send + Sync + 'static) -> Self {
        self.ready.push(sync_check(name, check));
        self
    }

    /// A readiness check that does I/O (pings a runtime, touches a disk).
    pub fn ready_async<F>(mut self, name: &'static str, check: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = CheckResult> + Send + 'static,
    {
        self.ready.push(Named { name, check: Arc::new(move || Box::pin(check())) });
        self
    }

    /// A readiness check that reads `flag`.
    pub fn ready_flag(self, name: &'static str, flag: &Flag) -> Self {
        let flag = flag.clone();
        self.ready(name, move || flag.get())
    }

    pub fn build(self) -> Checks {
        let mut live = vec![sync_check("ping", || Ok(()))];
        live.extend(self.live);
        Checks { inner: Arc::new(Inner { live, ready: self.ready, stopping: watch::channel(false).0 }) }
    }
}

fn sync_check(name: &'static str, check: impl Fn() -> CheckResult + Send + Sync + 'static) -> Named {
    Named {
        name,
        check: Arc::new(move || {
            let r = check();
            Box::pin(async move { r })
        }),
    }
}

/// Which endpoint a report is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Live,
    Ready,
    Healthz,
}

impl Probe {
    fn name(self) -> &'static str {
        match self {
            Probe::Live => "livez",
            Probe::Ready => "readyz",
            Probe::Healthz => "healthz",
        }
    }
}

/// The outcome of every check of one probe, in order.
#[derive(Clone, Debug)]
pub struct Report {
    pub probe: Probe,
    pub checks: Vec<(&'static str, CheckResult)>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }

    /// Kubernetes' verbose form: `[+]name ok` / `[-]name failed: reason`
    /// per check, then `readyz check passed` or `readyz check failed`.
    pub fn verbose(&self) -> String {
        let mut out = String::new();
        for (name, r) in &self.checks {
            match r {
                Ok(()) => out.push_str(&format!("[+]{name} ok\n")),
                Err(reason) => out.push_str(&format!("[-]{name} failed: {reason}\n")),
            }
        }
        let verdict = if self.passed() { "passed" } else { "failed" };
        out.push_str(&format!("{} check {verdict}\n", self.probe.name()));
        out
    }
}

impl Checks {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Marks the daemon as stopping: readiness fails from now on and the
    /// gRPC health status turns NOT_SERVING.
    pub fn shutting_down(&self) {
        self.inner.stopping.send_replace(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.inner.stopping.borrow()
    }

    /// Runs the checks of `probe` but those named in `exclude`.
    pub async fn report(&self, probe: Probe, exclude: &[String]) -> Report {
        let mut named: Vec<&Named> = self.inner.live.iter().collect();
        if probe != Probe::Live {
            named.extend(self.inner.ready.iter());
        }
        let mut checks = Vec::with_capacity(named.len() + 1);
        for n in named.into_iter().filter(|n| !exclude.iter().any(|e| e == n.name)) {
            let r = match tokio::time::timeout(CHECK_TIMEOUT, (n.check)()).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            checks.push((n.name, r));
        }
        if probe != Probe::Live && !exclude.iter().any(|e| e == "shutdown") {
            checks.push(("shutdown", if self.is_shutting_down() { Err("the process is shutting down".into()) } else { Ok(()) }));
        }
        Report { probe, checks }
    }

    /// `/livez`, `/readyz` and `/healthz` (the latter runs the readiness checks).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/livez", get(|s, q| respond(s, q, Probe::Live)))
            .route("/readyz", get(|s, q| respond(s, q, Probe::Ready)))
            .route("/healthz", get(|s, q| respond(s, q, Probe::Healthz)))
            .with_state(self.clone())
    }

    /// The gRPC health service. Its overall status (service `""`) is
    /// SERVING while the readiness checks pass, NOT_SERVING otherwise and
    /// for good once shutdown begins; a task keeps it in line.
    pub fn grpc(&self) -> HealthServer<impl Health + use<>> {
        let (reporter, server) = tonic_health::server::health_reporter();
        tokio::spawn(follow_readiness(Arc::downgrade(&self.inner), reporter));
        server
    }
}

async fn follow_readiness(inner: Weak<Inner>, reporter: HealthReporter) {
    loop {
        let Some(inner) = inner.upgrade() else { return };
        let checks = Checks { inner };
        let mut stopping = checks.inner.stopping.subscribe();
        let serving = !checks.is_shutting_down() && checks.report(Probe::Ready, &[]).await.passed();
        let status = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
        reporter.set_service_status("", status).await;
        if checks.is_shutting_down() {
            // Shutdown may have begun while the checks ran: the last word is NOT_SERVING.
            reporter.set_service_status("", ServingStatus::NotServing).await;
            return;
        }
        drop(checks);
        tokio::select! {
            () = tokio::time::sleep(GRPC_STATUS_PERIOD) => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
    }
}

async fn respond(State(checks): State<Checks>, RawQuery(query): RawQuery, probe: Probe) -> (StatusCode, String) {
    let (verbose, exclude) = parse_query(query.as_deref().unwrap_or(""));
    let report = checks.report(probe, &exclude).await;
    match (report.passed(), verbose) {
        (true, false) => (StatusCode::OK, "ok".into()),
        (true, true) => (StatusCode::OK, report.verbose()),
        // A failure always says which check failed, as Kubernetes does.
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, report.verbose()),
    }
}

/// `verbose` (with or without a value) and every `exclude=NAME`.
fn parse_query(query: &str) -> (bool, Vec<String>) {
    let mut verbose = false;
    let mut exclude = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "verbose" => verbose = value != "false" && value != "0",
            "exclude" => exclude.push(value.to_string()),
            _ => {}
        }
    }
    (verbose, exclude)
}

/// The Prometheus text exposition of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// The content type of what [`render`] writes: prometheus_client encodes
/// OpenMetrics text (counter families named without `_total`, samples with
/// it, a closing `# EOF`), which Prometheus reads when told so.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `checks` (plain HTTP and the gRPC health service) and `/metrics`
/// until `shutdown` resolves; then the gRPC status turns NOT_SERVING and
/// the endpoint closes once its connections are done (at most a few
/// seconds later).
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    checks: Checks,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = checks.router().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], render(&registry)) }
        }),
    );
    // gRPC goes by path (/grpc.health.v1.Health/...), everything else to the plain routes.
    let routes = tonic::service::Routes::new(checks.grpc()).into_axum_router().merge(http);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let signal = {
        let checks = checks.clone();
        async move {
            shutdown.await;
            checks.shutting_down();
            let _ = stop_tx.send(true);
        }
    };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(routes))
        .serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);
    let drained = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        r = &mut server => r.map_err(std::io::Error::other),
        () = drained => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn should_list_each_check_and_fail_while_one_fails() {
        let synced = Flag::failing("caches not synced yet");
        let checks = Checks::builder().ready_flag("informers-synced", &synced).ready("leader-election", || Ok(())).build();
        let r = checks.report(Probe::Ready, &[]).await;
        assert!(!r.passed());
        assert_eq!(
            r.verbose(),
            "[+]ping ok\n[-]informers-synced failed: caches not synced yet\n[+]leader-election ok\n[+]shutdown ok\nreadyz check failed\n"
        );
        synced.ok();
        assert!(checks.report(Probe::Ready, &[]).await.passed());
        // Liveness does not run readiness checks.
        synced.fail("lost");
        assert!(checks.report(Probe::Live, &[]).await.passed());
        assert!(checks.report(Probe::Ready, &["informers-synced".into()]).await.passed());
        checks.shutting_down();
        let r = checks.report(Probe::Ready, &["informers-synced".into()]).await;
        assert_eq!(r.checks.last().map(|c| c.0), Some("shutdown"));
        assert!(!r.passed());
    }

    /// The status the server reports to a gRPC health client, once it is `want` (bounded wait).
    async fn grpc_status_becomes(
        client: &mut tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>,
        want: ServingStatus,
    ) -> bool {
        for _ in 0..100 {
            let got = client.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.map(|r| r.into_inner().status);
            if got.is_ok_and(|s| s == want as i32) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    #[tokio::test]
    async fn should_serve_grpc_health_that_follows_readiness_and_turns_not_serving_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let synced = Flag::failing("not synced");
        let checks = Checks::builder().ready_flag("informers-synced", &synced).build();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(Registry::default()), checks, async {
            let _ = stop_rx.await;
        }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("url").connect().await.expect("connect");
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        assert!(grpc_status_becomes(&mut client, ServingStatus::NotServing).await, "NOT_SERVING while a check fails");
        synced.ok();
        assert!(grpc_status_becomes(&mut client, ServingStatus::Serving).await, "SERVING once ready");
        let mut watch = client.watch(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
        assert_eq!(watch.message().await.expect("first status").map(|r| r.status), Some(ServingStatus::Serving as i32));
        let _ = stop_tx.send(());
        assert_eq!(watch.message().await.expect("status on shutdown").map(|r| r.status), Some(ServingStatus::NotServing as i32));
        server.await.expect("server task").expect("server");
    }

    #[test]
    fn should_parse_verbose_and_exclude() {
        assert_eq!(parse_query("verbose"), (true, vec![]));
        assert_eq!(parse_query("verbose=1&exclude=a&exclude=b"), (true, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(parse_query(""), (false, vec![]));
    }
}
