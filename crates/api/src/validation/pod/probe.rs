//! Probes and lifecycle handlers: exactly one handler (exec, httpGet or
//! tcpSocket) with valid ports, and the timings and thresholds each kind of
//! probe allows.

use crate::pb::core::{ExecAction, HttpGetAction, Probe, TcpSocketAction};
use crate::validation::{Check, at, idx, port_num_or_name};

/// Which probe is checked: each allows different numbers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

pub(super) fn probe(c: &mut Check, pr: &Probe, p: &str, kind: ProbeKind) {
    handler(c, pr.exec.as_ref(), pr.http_get.as_ref(), pr.tcp_socket.as_ref(), p);
    if let Some(v) = pr.initial_delay_seconds {
        c.non_negative(&at(p, "initialDelaySeconds"), v.into());
    }
    for (field, v) in [
        ("timeoutSeconds", pr.timeout_seconds),
        ("periodSeconds", pr.period_seconds),
        ("successThreshold", pr.success_threshold),
        ("failureThreshold", pr.failure_threshold),
    ] {
        if let Some(v) = v
            && v < 1
        {
            c.invalid(&at(p, field), v, "must be greater than or equal to 1");
        }
    }
    if kind != ProbeKind::Readiness
        && let Some(v) = pr.success_threshold
        && v > 1
    {
        c.invalid(&at(p, "successThreshold"), v, "must be 1");
    }
    if let Some(v) = pr.termination_grace_period_seconds {
        let fp = at(p, "terminationGracePeriodSeconds");
        if kind == ProbeKind::Readiness {
            c.invalid(&fp, v, "must not be set for readinessProbes");
        } else if v <= 0 {
            c.invalid(&fp, v, "must be greater than 0");
        }
    }
}

/// A probe or lifecycle handler: exactly one of exec, httpGet, tcpSocket.
pub(super) fn handler(c: &mut Check, exec: Option<&ExecAction>, http: Option<&HttpGetAction>, tcp: Option<&TcpSocketAction>, p: &str) {
    let set: Vec<&str> = [("exec", exec.is_some()), ("httpGet", http.is_some()), ("tcpSocket", tcp.is_some())]
        .into_iter()
        .filter_map(|(n, s)| s.then_some(n))
        .collect();
    match set.as_slice() {
        [] => c.required(p, "must specify a handler type"),
        [_] => {}
        [_, second, ..] => c.forbidden(&at(p, second), "may not specify more than 1 handler type"),
    }
    if let Some(e) = exec
        && e.command.is_empty()
    {
        c.required(&at(&at(p, "exec"), "command"), "");
    }
    if let Some(h) = http {
        let hp = at(p, "httpGet");
        port_num_or_name(c, &at(&hp, "port"), &h.port);
        c.one_of(&at(&hp, "scheme"), &h.scheme, &["HTTP", "HTTPS"], false);
        for (i, hdr) in h.http_headers.iter().enumerate() {
            let np = at(&idx(&at(&hp, "httpHeaders"), i), "name");
            if hdr.name.is_empty() || !hdr.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                c.invalid(
                    &np,
                    &hdr.name,
                    "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
                );
            }
        }
    }
    if let Some(t) = tcp {
        port_num_or_name(c, &at(&at(p, "tcpSocket"), "port"), &t.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::api::Object;
    use crate::pb::core::{Lifecycle, LifecycleHandler};
    use crate::validation::test_support::*;

    fn with_probe(p: Probe) -> Object {
        ctr_with(|c| c.liveness_probe = Some(p))
    }

    #[test]
    fn should_require_exactly_one_probe_handler() {
        assert_eq!(
            assert_error_at(&with_probe(Probe::default()), "spec.containers[0].livenessProbe"),
            "spec.containers[0].livenessProbe: Required value: must specify a handler type"
        );
        let two = Probe {
            http_get: http("80"),
            tcp_socket: Some(TcpSocketAction { port: "80".into(), host: String::new() }),
            ..Default::default()
        };
        assert_error_at(&with_probe(two), "spec.containers[0].livenessProbe.tcpSocket");
        assert_error_at(
            &with_probe(Probe { exec: Some(ExecAction::default()), ..Default::default() }),
            "spec.containers[0].livenessProbe.exec.command",
        );
    }

    #[test]
    fn should_check_probe_numbers_and_ports() {
        let p = |f: fn(&mut Probe)| {
            let mut pr = Probe { http_get: http("8080"), ..Default::default() };
            f(&mut pr);
            with_probe(pr)
        };
        assert_error_at(&p(|x| x.initial_delay_seconds = Some(-1)), "spec.containers[0].livenessProbe.initialDelaySeconds");
        assert_error_at(&p(|x| x.period_seconds = Some(0)), "spec.containers[0].livenessProbe.periodSeconds");
        assert_error_at(&p(|x| x.timeout_seconds = Some(0)), "spec.containers[0].livenessProbe.timeoutSeconds");
        assert_error_at(&p(|x| x.failure_threshold = Some(0)), "spec.containers[0].livenessProbe.failureThreshold");
        assert_eq!(
            assert_error_at(&p(|x| x.success_threshold = Some(2)), "spec.containers[0].livenessProbe.successThreshold"),
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
        );
        assert_valid(&ctr_with(|c| {
            c.readiness_probe = Some(Probe { http_get: http("80"), success_threshold: Some(2), ..Default::default() })
        }));
        assert_error_at(
            &ctr_with(|c| {
                c.readiness_probe = Some(Probe { http_get: http("80"), termination_grace_period_seconds: Some(5), ..Default::default() })
            }),
            "spec.containers[0].readinessProbe.terminationGracePeriodSeconds",
        );
        assert_error_at(&with_probe(Probe { http_get: http("0"), ..Default::default() }), "spec.containers[0].livenessProbe.httpGet.port");
        assert_error_at(
            &with_probe(Probe { http_get: http("70000"), ..Default::default() }),
            "spec.containers[0].livenessProbe.httpGet.port",
        );
        assert_error_at(
            &with_probe(Probe { http_get: http("Web_Port"), ..Default::default() }),
            "spec.containers[0].livenessProbe.httpGet.port",
        );
        assert_error_at(
            &with_probe(Probe { tcp_socket: Some(TcpSocketAction::default()), ..Default::default() }),
            "spec.containers[0].livenessProbe.tcpSocket.port",
        );
        let bad_scheme =
            Probe { http_get: Some(HttpGetAction { port: "80".into(), scheme: "FTP".into(), ..Default::default() }), ..Default::default() };
        assert_error_at(&with_probe(bad_scheme), "spec.containers[0].livenessProbe.httpGet.scheme");
    }

    #[test]
    fn should_check_lifecycle_handlers() {
        let o = ctr_with(|c| c.lifecycle = Some(Lifecycle { post_start: Some(LifecycleHandler::default()), pre_stop: None }));
        assert_error_at(&o, "spec.containers[0].lifecycle.postStart");
    }
}
