//! What operators scrape and probe, end to end: a real apiserver,
//! controller-manager, scheduler, a kubelet on Docker, a proxy in the
//! userspace mode and berth-dns, with a ReplicationController whose pod goes through all
//! of them. Each daemon's `/metrics` must parse as Prometheus (OpenMetrics)
//! text and follow the naming conventions, and carry the figures the
//! operations issue lists; `/readyz?verbose` must list the daemon's checks;
//! the gRPC health service must answer SERVING.

mod controllers_support;
mod kubelet_support;
mod proxy_support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use controllers_support::{ControlPlane, eventually, image, rc};
use proxy_support::{Lease, Proxy, http_get_path};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// One metric family of an exposition.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: bool,
    /// Every sample: its full name and labels.
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// Parses the OpenMetrics text prometheus_client writes, strictly: every
/// family has HELP and TYPE before its samples, names and labels have the
/// allowed syntax, values are numbers, sample names fit their type
/// (counters `_total`, histograms `_bucket{le}`/`_sum`/`_count`), and the
/// text ends with `# EOF`.
fn parse(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut eof = false;
    for (i, line) in text.lines().enumerate() {
        let at = |what: &str| format!("line {}: {what}: {line:?}", i + 1);
        if eof {
            return Err(at("text after # EOF"));
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let value = parts.next().unwrap_or("");
            if !metric_name(name) {
                return Err(at("bad metric name"));
            }
            let family = families.entry(name.to_string()).or_default();
            match keyword {
                "HELP" => family.help = true,
                "TYPE" => {
                    if !["counter", "gauge", "histogram", "summary", "info", "stateset", "unknown"].contains(&value) {
                        return Err(at("unknown type"));
                    }
                    family.kind = value.to_string();
                }
                "UNIT" => {}
                _ => return Err(at("unknown comment")),
            }
            current = Some(name.to_string());
            continue;
        }
        let family_name = current.clone().ok_or_else(|| at("a sample before any TYPE"))?;
        let (name, labels, value) = sample(line).map_err(|e| at(&e))?;
        let family = families.get_mut(&family_name).ok_or_else(|| at("no family"))?;
        if family.kind.is_empty() || !family.help {
            return Err(at("a sample of a family without HELP and TYPE"));
        }
        let suffix = name.strip_prefix(family_name.as_str()).ok_or_else(|| at("a sample outside its family"))?;
        let fits = match family.kind.as_str() {
            "counter" => suffix == "_total" || suffix == "_created",
            "gauge" | "unknown" => suffix.is_empty(),
            "histogram" => (suffix == "_bucket" && labels.contains_key("le")) || suffix == "_sum" || suffix == "_count",
            "info" => suffix == "_info",
            _ => true,
        };
        if !fits {
            return Err(at(&format!("sample name does not fit a {}", family.kind)));
        }
        family.samples.push((name, labels, value));
    }
    if !eof {
        return Err("no # EOF at the end".into());
    }
    Ok(families)
}

fn metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name{a="x",b="y"} value`.
fn sample(line: &str) -> Result<(String, BTreeMap<String, String>, f64), String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !metric_name(name) {
        return Err("bad sample name".into());
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut s = inner;
        loop {
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find('=').ok_or("a label without '='")?;
            let key = &s[..eq];
            if !label_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            let body = s[eq + 1..].strip_prefix('"').ok_or("a label value without quotes")?;
            let mut value = String::new();
            let mut chars = body.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => return Err("a bad escape in a label value".into()),
                    },
                    Some((j, '"')) => break j,
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".into()),
                }
            };
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            s = &body[end + 1..];
            if let Some(after) = s.strip_prefix(',') {
                s = after;
            } else if !s.starts_with('}') {
                return Err("labels not separated by ','".into());
            }
        }
    }
    let mut fields = rest.strip_prefix(' ').ok_or("no space before the value")?.split(' ');
    let raw = fields.next().unwrap_or("");
    let value = match raw {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|_| format!("bad value {v:?}"))?,
    };
    if let Some(ts) = fields.next()
        && ts.parse::<f64>().is_err()
    {
        return Err(format!("bad timestamp {ts:?}"));
    }
    Ok((name.to_string(), labels, value))
}

/// Fetches and checks one daemon's metrics: the conventions hold for every
/// family, and each of `wanted` (family names without the prefix, with the
/// type they must have) is there.
async fn check_metrics(daemon: &str, port: u16, prefix: &str, wanted: &[(&str, &str)]) {
    let text =
        http_get_path(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), "/metrics").await.unwrap_or_else(|e| panic!("{daemon} /metrics: {e}"));
    let families = parse(&text).unwrap_or_else(|e| panic!("{daemon} /metrics does not parse: {e}\n{text}"));
    for (name, f) in &families {
        assert!(name.starts_with(prefix), "{daemon}: {name} lacks the prefix {prefix}");
        assert!(!(f.kind == "counter" && name.ends_with("_total")), "{daemon}: counter family {name} repeats _total (samples add it)");
        assert!(f.kind != "gauge" || !name.ends_with("_total"), "{daemon}: gauge {name} is named like a counter");
        for unit in ["duration", "latency"] {
            assert!(!name.contains(unit) || name.contains("_seconds"), "{daemon}: {name} is a time not in seconds");
        }
        assert!(
            !name.contains("_milliseconds") && !name.contains("_kilobytes") && !name.contains("_megabytes"),
            "{daemon}: {name} is not in base units"
        );
    }
    let info = families.get(&format!("{prefix}build_info")).unwrap_or_else(|| panic!("{daemon}: no {prefix}build_info\n{text}"));
    assert_eq!(info.kind, "gauge", "{daemon}: build_info is a gauge");
    assert!(
        info.samples.iter().any(|(_, labels, v)| *v == 1.0 && labels.get("version").is_some_and(|v| !v.is_empty())),
        "{daemon}: build_info is 1 with a version label: {:?}",
        info.samples
    );
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(name, kind)| families.get(&format!("{prefix}{name}")).is_none_or(|f| f.kind != *kind))
        .map(|(name, kind)| format!("{prefix}{name} ({kind})"))
        .collect();
    assert!(missing.is_empty(), "{daemon}: missing {missing:?}\n{text}");
}

/// `/readyz?verbose` answers 200 and lists each of `checks`, passed.
async fn check_readyz(daemon: &str, port: u16, checks: &[&str]) {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let body = http_get_path(addr, "/readyz?verbose").await.unwrap_or_else(|e| panic!("{daemon} /readyz?verbose: {e}"));
    assert!(body.ends_with("readyz check passed\n"), "{daemon}: {body}");
    for check in checks.iter().chain(&["ping", "shutdown"]) {
        assert!(body.lines().any(|l| l == format!("[+]{check} ok")), "{daemon}: no [+]{check} ok in\n{body}");
    }
    let plain = http_get_path(addr, "/readyz").await.unwrap_or_else(|e| panic!("{daemon} /readyz: {e}"));
    assert_eq!(plain, "ok", "{daemon}: /readyz without ?verbose");
    let live = http_get_path(addr, "/livez?verbose").await.unwrap_or_else(|e| panic!("{daemon} /livez?verbose: {e}"));
    assert!(live.ends_with("livez check passed\n") && live.contains("[+]ping ok"), "{daemon}: {live}");
}

/// The gRPC health service on `port` reports the server SERVING.
async fn check_grpc_health(daemon: &str, port: u16) {
    let url = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(30), &format!("{daemon}: gRPC health SERVING on {url}"), || {
        let url = url.clone();
        async move {
            let channel = tonic::transport::Endpoint::from_shared(url).ok()?.connect().await.ok()?;
            let mut client = HealthClient::new(channel);
            let status = client.check(HealthCheckRequest { service: String::new() }).await.ok()?.into_inner().status;
            (status == ServingStatus::Serving as i32).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_expose_conventional_metrics_readiness_checks_and_grpc_health_on_every_daemon() {
    let lease = Lease::take();
    let cp = ControlPlane::start_with(&["--service-cidr", &lease.service_cidr()], &[]).await;
    let kubelet = cp.kubelet("metrics").await;
    let mut proxy = Proxy::start(&cp.url(), "userspace", &lease, cp.dir(), &[]);
    proxy.wait_ready().await;
    // berth-dns on loopback (names outside the cluster refused: no upstream).
    let dns_health = berth_e2e::free_port();
    let dns_log = std::fs::File::create(cp.dir().join("berth-dns.log")).expect("berth-dns log");
    let dns = std::process::Command::new(berth_e2e::bin("berth-dns", "berth-dns"))
        .args(["--server", &cp.url(), "--listen", &format!("127.0.0.1:{}", berth_e2e::free_port())])
        .args(["--health-listen", &format!("127.0.0.1:{dns_health}"), "--resolv-conf", ""])
        .stderr(dns_log)
        .spawn()
        .expect("start berth-dns");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _dns = KillOnDrop(dns);
    eventually(Duration::from_secs(30), "berth-dns ready", || async {
        http_get_path(SocketAddrV4::new(Ipv4Addr::LOCALHOST, dns_health), "/readyz").await.ok().filter(|b| b == "ok")
    })
    .await;

    // One pod through every daemon: the controller creates it, the
    // scheduler binds it, the kubelet starts it and probes it.
    cp.client().create(rc("metrics", "default", 1, image())).await.expect("create rc");
    eventually(Duration::from_secs(90), "the pod runs and is ready", || async {
        let pods = controllers_support::serving_pods(cp.client(), "default", "app=metrics").await;
        (!pods.is_empty()).then_some(())
    })
    .await;

    let api = cp.api.port;
    check_metrics(
        "apiserver",
        api,
        "berth_apiserver_",
        &[
            ("request", "counter"),
            ("request_duration_seconds", "histogram"),
            ("inflight_requests", "gauge"),
            ("watchers", "gauge"),
            ("storage_operation_duration_seconds", "histogram"),
            ("storage_size_bytes", "gauge"),
            ("storage_objects", "gauge"),
        ],
    )
    .await;
    check_metrics(
        "scheduler",
        cp.scheduler.health,
        "berth_scheduler_",
        &[("schedule_attempts", "counter"), ("scheduling_attempt_duration_seconds", "histogram"), ("pending_pods", "gauge")],
    )
    .await;
    check_metrics(
        "controller-manager",
        cp.controller_manager.health,
        "berth_controller_manager_",
        &[
            ("workqueue_depth", "gauge"),
            ("workqueue_queue_duration_seconds", "counter"),
            ("workqueue_work_duration_seconds", "counter"),
            ("workqueue_retries", "counter"),
            ("sync_duration_seconds", "histogram"),
        ],
    )
    .await;
    check_metrics(
        "kubelet",
        kubelet.health,
        "berth_kubelet_",
        &[
            ("pod_start_duration_seconds", "histogram"),
            ("running_pods", "gauge"),
            ("running_containers", "gauge"),
            ("probes", "counter"),
            ("runtime_operations_duration_seconds", "histogram"),
            ("runtime_operations", "counter"),
        ],
    )
    .await;
    check_metrics("proxy", proxy.health, "berth_proxy_", &[("sync_duration_seconds", "histogram"), ("programmed_rules", "gauge")]).await;
    check_metrics(
        "berth-dns",
        dns_health,
        "berth_dns_",
        &[("malformed_queries", "counter"), ("rate_limited_queries", "counter"), ("records", "gauge"), ("index_rebuilds", "counter")],
    )
    .await;

    check_readyz("apiserver", api, &["store", "store-writable", "watch-cache"]).await;
    check_readyz("scheduler", cp.scheduler.health, &["informers-synced", "leader-election"]).await;
    check_readyz("controller-manager", cp.controller_manager.health, &["informers-synced", "leader-election"]).await;
    check_readyz("kubelet", kubelet.health, &["registered", "runtime"]).await;
    check_readyz("proxy", proxy.health, &["synced", "interface"]).await;
    check_readyz("berth-dns", dns_health, &["informers"]).await;

    let node: berth_api::pb::core::Node = cp.client().get("", &kubelet.node).await.expect("node");
    let kubelet_port = node.status.and_then(|s| s.daemon_endpoints).and_then(|d| d.kubelet_endpoint).map(|e| e.port).expect("kubelet port");
    for (daemon, port) in [
        ("apiserver", api),
        ("scheduler", cp.scheduler.health),
        ("controller-manager", cp.controller_manager.health),
        ("kubelet --health-listen", kubelet.health),
        ("kubelet API", u16::try_from(kubelet_port).expect("port")),
        ("proxy", proxy.health),
        ("berth-dns", dns_health),
    ] {
        check_grpc_health(daemon, port).await;
    }
}

#[test]
fn should_refuse_malformed_expositions() {
    let good = "# HELP a_x X.\n# TYPE a_x counter\na_x_total{k=\"v\"} 1\n# EOF\n";
    assert!(parse(good).is_ok());
    for bad in [
        "# HELP a_x X.\n# TYPE a_x counter\na_x{k=\"v\"} 1\n# EOF\n",
        "# HELP a_x X.\n# TYPE a_x gauge\na_x{k=v} 1\n# EOF\n",
        "# HELP a_x X.\n# TYPE a_x histogram\na_x_bucket 1\n# EOF\n",
        "# HELP a_x X.\n# TYPE a_x gauge\na_x 1\n",
        "a_x 1\n# EOF\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
