//! The containers section shared by the pod and replication controller views: each container
//! with its image, ports, state, resources, probes, environment and mounts.

use berth_api::pb::core::{Container, ContainerState, ContainerStatus, Probe};

use super::{Doc, time};

pub(super) fn containers(d: &mut Doc, indent: usize, title: &str, specs: &[Container], statuses: &[ContainerStatus]) {
    d.line(indent, format!("{title}:"));
    for c in specs {
        let i = indent + 4;
        d.line(indent + 2, format!("{}:", c.name));
        let status = statuses.iter().find(|s| s.name == c.name);
        if let Some(s) = status {
            d.kv(i, "Container ID", &s.container_id);
        }
        d.kv(i, "Image", &c.image);
        if let Some(s) = status {
            d.kv(i, "Image ID", &s.image_id);
        }
        let ports: Vec<String> =
            c.ports.iter().map(|p| format!("{}/{}", p.container_port, if p.protocol.is_empty() { "TCP" } else { &p.protocol })).collect();
        let host_ports: Vec<String> =
            c.ports.iter().map(|p| format!("{}/{}", p.host_port, if p.protocol.is_empty() { "TCP" } else { &p.protocol })).collect();
        match ports.len() {
            0 => d.kv(i, "Port", "<none>"),
            1 => d.kv(i, "Port", &ports[0]),
            _ => d.kv(i, "Ports", ports.join(", ")),
        }
        match host_ports.len() {
            0 => d.kv(i, "Host Port", "<none>"),
            1 => d.kv(i, "Host Port", &host_ports[0]),
            _ => d.kv(i, "Host Ports", host_ports.join(", ")),
        }
        for (key, words) in [("Command", &c.command), ("Args", &c.args)] {
            if !words.is_empty() {
                d.line(i, format!("{key}:"));
                for w in words {
                    d.line(i + 2, w);
                }
            }
        }
        if let Some(s) = status {
            state(d, i, "State", s.state.as_ref());
            if s.last_state.as_ref().is_some_and(|l| l.running.is_some() || l.waiting.is_some() || l.terminated.is_some()) {
                state(d, i, "Last State", s.last_state.as_ref());
            }
            d.kv(i, "Ready", if s.ready { "True" } else { "False" });
            d.kv(i, "Restart Count", s.restart_count);
        }
        let res = c.resources.clone().unwrap_or_default();
        if !res.limits.is_empty() {
            d.section(i, "Limits", &res.limits);
        }
        if !res.requests.is_empty() {
            d.section(i, "Requests", &res.requests);
        }
        for (key, probe) in [("Liveness", &c.liveness_probe), ("Readiness", &c.readiness_probe), ("Startup", &c.startup_probe)] {
            if let Some(p) = probe {
                d.kv(i, key, probe_text(p));
            }
        }
        let env: Vec<(String, String)> = c
            .env
            .iter()
            .map(|e| {
                let v = match &e.value_from {
                    None => e.value.clone(),
                    Some(src) => {
                        if let Some(f) = &src.field_ref {
                            format!("({}:{})", if f.api_version.is_empty() { "v1" } else { &f.api_version }, f.field_path)
                        } else if let Some(r) = &src.resource_field_ref {
                            format!("{} ({})", r.resource, r.container_name)
                        } else if let Some(k) = &src.config_map_key_ref {
                            format!("<set to the key '{}' of config map '{}'>", k.key, k.name)
                        } else if let Some(k) = &src.secret_key_ref {
                            format!("<set to the key '{}' in secret '{}'>", k.key, k.name)
                        } else {
                            String::new()
                        }
                    }
                };
                (e.name.clone(), v)
            })
            .collect();
        if env.is_empty() && c.env_from.is_empty() {
            d.kv(i, "Environment", "<none>");
        } else {
            if !c.env_from.is_empty() {
                d.line(i, "Environment Variables from:");
                for f in &c.env_from {
                    let (what, name) = match (&f.config_map_ref, &f.secret_ref) {
                        (Some(cm), _) => ("ConfigMap", cm.name.clone()),
                        (_, Some(s)) => ("Secret", s.name.clone()),
                        _ => ("", String::new()),
                    };
                    d.line(i + 2, format!("{name}\t{what}\tOptional: false"));
                }
            }
            if !env.is_empty() {
                d.line(i, "Environment:");
                for (k, v) in &env {
                    d.kv(i + 2, k, v);
                }
            }
        }
        let mounts: Vec<String> = c
            .volume_mounts
            .iter()
            .map(|m| {
                let ro = if m.read_only == Some(true) { "ro" } else { "rw" };
                let sub = if m.sub_path.is_empty() { String::new() } else { format!(",path={:?}", m.sub_path) };
                format!("{} from {} ({ro}{sub})", m.mount_path, m.name)
            })
            .collect();
        if mounts.is_empty() {
            d.kv(i, "Mounts", "<none>");
        } else {
            d.line(i, "Mounts:");
            for m in mounts {
                d.line(i + 2, m);
            }
        }
    }
}

fn state(d: &mut Doc, indent: usize, key: &str, state: Option<&ContainerState>) {
    let s = state.cloned().unwrap_or_default();
    if let Some(r) = &s.running {
        d.kv(indent, key, "Running");
        d.kv(indent + 2, "Started", time(&r.started_at));
    } else if let Some(w) = &s.waiting {
        d.kv(indent, key, "Waiting");
        if !w.reason.is_empty() {
            d.kv(indent + 2, "Reason", &w.reason);
        }
        if !w.message.is_empty() {
            d.kv(indent + 2, "Message", &w.message);
        }
    } else if let Some(t) = &s.terminated {
        d.kv(indent, key, "Terminated");
        if !t.reason.is_empty() {
            d.kv(indent + 2, "Reason", &t.reason);
        }
        if !t.message.is_empty() {
            d.kv(indent + 2, "Message", &t.message);
        }
        d.kv(indent + 2, "Exit Code", t.exit_code);
        if t.signal != 0 {
            d.kv(indent + 2, "Signal", t.signal);
        }
        d.kv(indent + 2, "Started", time(&t.started_at));
        d.kv(indent + 2, "Finished", time(&t.finished_at));
    } else {
        d.kv(indent, key, "Waiting");
    }
}

/// `http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3`
fn probe_text(p: &Probe) -> String {
    let action = if let Some(h) = &p.http_get {
        let scheme = if h.scheme.is_empty() { "http" } else { &h.scheme }.to_ascii_lowercase();
        format!("http-get {scheme}://{}:{}{}", h.host, h.port, h.path)
    } else if let Some(t) = &p.tcp_socket {
        format!("tcp-socket {}:{}", t.host, t.port)
    } else if let Some(e) = &p.exec {
        format!("exec [{}]", e.command.join(" "))
    } else {
        "unknown".to_string()
    };
    format!(
        "{action} delay={}s timeout={}s period={}s #success={} #failure={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap_or(1),
        p.period_seconds.unwrap_or(10),
        p.success_threshold.unwrap_or(1),
        p.failure_threshold.unwrap_or(3)
    )
}
