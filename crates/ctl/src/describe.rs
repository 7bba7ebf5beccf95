//! The readable multi-line view of `describe`: metadata, the fields that
//! matter for each kind (every kind the API serves has its own view), and the
//! object's events, aligned like kubectl's.

use std::collections::BTreeMap;
use std::fmt::Display;

use berth_api::pb::api::object::Kind as K;
use berth_api::pb::core::{
    ConfigMap, Container, ContainerState, ContainerStatus, Endpoints, Event, Lease, LimitRange, Namespace, Node, ObjectMeta, Pod, Probe,
    ReplicationController, ResourceQuota, Secret, Service, ServiceAccount, Volume,
};
use berth_api::pb::rbac::{PolicyRule, RoleRef, Subject};
use berth_api::printers::{age, event_age, format_endpoints, node_roles};
use berth_api::quantity::Quantity;
use berth_api::{Object, Resource as _};
use chrono::{DateTime, Utc};

use crate::merge::LAST_APPLIED;
use crate::tabwriter;

/// What `describe` shows besides the object itself.
#[derive(Debug, Clone, Default)]
pub struct Related {
    /// Events about the object, oldest first.
    pub events: Vec<Event>,
    /// For a replication controller: the pods its selector matches; for a
    /// node: the pods bound to it that have not finished.
    pub pods: Option<Vec<Pod>>,
    /// For a service: its endpoints.
    pub endpoints: Option<Endpoints>,
    /// For a namespace: its resource quotas and limit ranges.
    pub quotas: Vec<ResourceQuota>,
    pub limit_ranges: Vec<LimitRange>,
}

/// Whether an event is about `object`.
pub fn is_about(ev: &Event, object: &Object) -> bool {
    let Some(io) = &ev.involved_object else { return false };
    let uid = object.metadata().map(|m| m.uid.as_str()).unwrap_or("");
    io.kind == object.kind_name()
        && io.name == object.name()
        && (io.namespace.is_empty() || io.namespace == object.namespace())
        && (io.uid.is_empty() || uid.is_empty() || io.uid == uid)
}

/// The description of one object.
pub fn describe(object: &Object, related: &Related, now: DateTime<Utc>) -> String {
    let mut d = Doc::default();
    let empty = ObjectMeta::default();
    let meta = object.metadata().unwrap_or(&empty);
    match &object.kind {
        Some(K::Pod(p)) => pod(&mut d, p, now),
        Some(K::ReplicationController(rc)) => replication_controller(&mut d, rc, related),
        Some(K::Service(s)) => service(&mut d, s, related),
        Some(K::Node(n)) => node(&mut d, n, related, now),
        Some(K::Namespace(n)) => namespace(&mut d, n, related),
        Some(K::Secret(s)) => secret(&mut d, s),
        Some(K::ConfigMap(c)) => config_map(&mut d, c),
        Some(K::Endpoints(e)) => endpoints(&mut d, e),
        Some(K::ResourceQuota(q)) => resource_quota(&mut d, q),
        Some(K::LimitRange(l)) => limit_range(&mut d, l),
        Some(K::Event(e)) => event(&mut d, e),
        Some(K::Lease(l)) => lease(&mut d, l),
        Some(K::ServiceAccount(sa)) => service_account(&mut d, sa),
        Some(K::Role(r)) => role(&mut d, meta, &r.rules),
        Some(K::ClusterRole(r)) => role(&mut d, meta, &r.rules),
        Some(K::RoleBinding(b)) => binding(&mut d, meta, b.role_ref.as_ref(), &b.subjects),
        Some(K::ClusterRoleBinding(b)) => binding(&mut d, meta, b.role_ref.as_ref(), &b.subjects),
        None => header(&mut d, meta),
    }
    events(&mut d, &related.events, now);
    tabwriter::align(&d.text, 2)
}

/// Lines with tab-separated cells, aligned at the end.
#[derive(Default)]
struct Doc {
    text: String,
}

impl Doc {
    fn line(&mut self, indent: usize, s: impl Display) {
        self.text.push_str(&format!("{:indent$}{s}\n", ""));
    }
    fn kv(&mut self, indent: usize, key: &str, value: impl Display) {
        self.text.push_str(&format!("{:indent$}{key}:\t{value}\n", ""));
    }
    /// `Key:` then `k=v` lines (or `<none>`), each value in the value column.
    fn map(&mut self, indent: usize, key: &str, map: &BTreeMap<String, String>, sep: &str) {
        if map.is_empty() {
            return self.kv(indent, key, "<none>");
        }
        for (i, (k, v)) in map.iter().enumerate() {
            let cell = if i == 0 { format!("{key}:") } else { String::new() };
            self.text.push_str(&format!("{:indent$}{cell}\t{k}{sep}{v}\n", ""));
        }
    }
    /// `Key:` then `name:  value` lines one level deeper (or `Key:  <none>`).
    fn section(&mut self, indent: usize, key: &str, map: &BTreeMap<String, String>) {
        if map.is_empty() {
            return self.kv(indent, key, "<none>");
        }
        self.line(indent, format!("{key}:"));
        for (k, v) in map {
            self.kv(indent + 2, k, v);
        }
    }
}

fn header(d: &mut Doc, m: &ObjectMeta) {
    d.kv(0, "Name", &m.name);
    if !m.namespace.is_empty() {
        d.kv(0, "Namespace", &m.namespace);
    }
    labels_and_annotations(d, m);
}

fn labels_and_annotations(d: &mut Doc, m: &ObjectMeta) {
    d.map(0, "Labels", &m.labels, "=");
    let mut ann = m.annotations.clone();
    ann.remove(LAST_APPLIED);
    d.map(0, "Annotations", &ann, ": ");
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

/// A timestamp as kubectl's describe prints it (`Wed, 01 May 2024 12:00:00 +0000`).
fn time(ts: &str) -> String {
    match DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t.format("%a, %d %b %Y %H:%M:%S %z").to_string(),
        Err(_) => ts.to_string(),
    }
}

fn selector_text(selector: &BTreeMap<String, String>) -> String {
    let s = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    if s.is_empty() { "<none>".into() } else { s }
}

// ----------------------------------------------------------------- pod

fn pod(d: &mut Doc, p: &Pod, now: DateTime<Utc>) {
    let empty = ObjectMeta::default();
    let m = p.metadata.as_ref().unwrap_or(&empty);
    let spec = p.spec.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    d.kv(0, "Name", &m.name);
    d.kv(0, "Namespace", &m.namespace);
    if let Some(prio) = spec.priority {
        d.kv(0, "Priority", prio);
    }
    if !spec.service_account_name.is_empty() {
        d.kv(0, "Service Account", &spec.service_account_name);
    }
    let node = match (spec.node_name.is_empty(), status.host_ip.is_empty()) {
        (true, _) => "<none>".to_string(),
        (false, true) => spec.node_name.clone(),
        (false, false) => format!("{}/{}", spec.node_name, status.host_ip),
    };
    d.kv(0, "Node", node);
    if !status.start_time.is_empty() {
        d.kv(0, "Start Time", time(&status.start_time));
    }
    labels_and_annotations(d, m);
    if m.deletion_timestamp.is_empty() {
        d.kv(0, "Status", or_none(&status.phase));
    } else {
        d.kv(0, "Status", format!("Terminating (lasts {})", age(&m.deletion_timestamp, now).trim_start_matches('-')));
        if let Some(g) = m.deletion_grace_period_seconds {
            d.kv(0, "Termination Grace Period", format!("{g}s"));
        }
    }
    if !status.reason.is_empty() {
        d.kv(0, "Reason", &status.reason);
    }
    if !status.message.is_empty() {
        d.kv(0, "Message", &status.message);
    }
    d.kv(0, "IP", &status.pod_ip);
    if let Some(owner) = m.owner_references.iter().find(|o| o.controller == Some(true)) {
        d.kv(0, "Controlled By", format!("{}/{}", owner.kind, owner.name));
    }
    if !spec.init_containers.is_empty() {
        containers(d, 0, "Init Containers", &spec.init_containers, &status.init_container_statuses);
    }
    containers(d, 0, "Containers", &spec.containers, &status.container_statuses);
    if !status.conditions.is_empty() {
        d.line(0, "Conditions:");
        d.line(2, "Type\tStatus");
        for c in &status.conditions {
            d.line(2, format!("{}\t{}", c.r#type, c.status));
        }
    }
    volumes(d, &spec.volumes);
    if !status.qos_class.is_empty() {
        d.kv(0, "QoS Class", &status.qos_class);
    }
    d.kv(0, "Node-Selectors", selector_text(&spec.node_selector));
    let tolerations: Vec<String> = spec
        .tolerations
        .iter()
        .map(|t| {
            let mut s = t.key.clone();
            if !t.value.is_empty() {
                s.push_str(&format!("={}", t.value));
            }
            if !t.effect.is_empty() {
                s.push_str(&format!(":{}", t.effect));
            }
            if !t.operator.is_empty() {
                s.push_str(&format!(" op={}", t.operator));
            }
            if let Some(secs) = t.toleration_seconds {
                s.push_str(&format!(" for {secs}s"));
            }
            s
        })
        .collect();
    list(d, 0, "Tolerations", &tolerations);
}

/// `Key:  first` then the others under it, or `Key:  <none>`.
fn list(d: &mut Doc, indent: usize, key: &str, items: &[String]) {
    if items.is_empty() {
        return d.kv(indent, key, "<none>");
    }
    for (i, item) in items.iter().enumerate() {
        let cell = if i == 0 { format!("{key}:") } else { String::new() };
        d.line(indent, format!("{cell}\t{item}"));
    }
}

fn containers(d: &mut Doc, indent: usize, title: &str, specs: &[Container], statuses: &[ContainerStatus]) {
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

fn volumes(d: &mut Doc, volumes: &[Volume]) {
    if volumes.is_empty() {
        return d.kv(0, "Volumes", "<none>");
    }
    d.line(0, "Volumes:");
    for v in volumes {
        d.line(2, format!("{}:", v.name));
        if let Some(h) = &v.host_path {
            d.kv(4, "Type", "HostPath (bare host directory volume)");
            d.kv(4, "Path", &h.path);
        } else if let Some(e) = &v.empty_dir {
            d.kv(4, "Type", "EmptyDir (a temporary directory that shares a pod's lifetime)");
            d.kv(4, "Medium", &e.medium);
            d.kv(4, "SizeLimit", or_none(&e.size_limit).replace("<none>", "<unset>"));
        } else if let Some(s) = &v.secret {
            d.kv(4, "Type", "Secret (a volume populated by a Secret)");
            d.kv(4, "SecretName", &s.secret_name);
            d.kv(4, "Optional", s.optional.unwrap_or(false));
        } else if let Some(c) = &v.config_map {
            d.kv(4, "Type", "ConfigMap (a volume populated by a ConfigMap)");
            d.kv(4, "Name", &c.name);
            d.kv(4, "Optional", c.optional.unwrap_or(false));
        } else if let Some(c) = &v.persistent_volume_claim {
            d.kv(4, "Type", "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)");
            d.kv(4, "ClaimName", &c.claim_name);
            d.kv(4, "ReadOnly", c.read_only.unwrap_or(false));
        }
    }
}

// ------------------------------------------------- other kinds with views

fn replication_controller(d: &mut Doc, rc: &ReplicationController, related: &Related) {
    let empty = ObjectMeta::default();
    let m = rc.metadata.as_ref().unwrap_or(&empty);
    let spec = rc.spec.clone().unwrap_or_default();
    let status = rc.status.clone().unwrap_or_default();
    d.kv(0, "Name", &m.name);
    d.kv(0, "Namespace", &m.namespace);
    d.kv(0, "Selector", selector_text(&spec.selector));
    labels_and_annotations(d, m);
    d.kv(0, "Replicas", format!("{} current / {} desired", status.replicas, spec.replicas.unwrap_or(1)));
    if let Some(pods) = &related.pods {
        let count = |phase: &str| pods.iter().filter(|p| p.status.as_ref().is_some_and(|s| s.phase == phase)).count();
        let waiting = pods.iter().filter(|p| p.status.as_ref().is_none_or(|s| s.phase.is_empty() || s.phase == "Pending")).count();
        d.kv(
            0,
            "Pods Status",
            format!("{} Running / {} Waiting / {} Succeeded / {} Failed", count("Running"), waiting, count("Succeeded"), count("Failed")),
        );
    }
    let template = spec.template.clone().unwrap_or_default();
    let tmeta = template.metadata.clone().unwrap_or_default();
    let tspec = template.spec.clone().unwrap_or_default();
    d.line(0, "Pod Template:");
    d.map(2, "Labels", &tmeta.labels, "=");
    if !tmeta.annotations.is_empty() {
        d.map(2, "Annotations", &tmeta.annotations, ": ");
    }
    if !tspec.init_containers.is_empty() {
        containers(d, 2, "Init Containers", &tspec.init_containers, &[]);
    }
    containers(d, 2, "Containers", &tspec.containers, &[]);
    if !status.conditions.is_empty() {
        d.line(0, "Conditions:");
        d.line(2, "Type\tStatus\tReason");
        for c in &status.conditions {
            d.line(2, format!("{}\t{}\t{}", c.r#type, c.status, c.reason));
        }
    }
}

fn service(d: &mut Doc, s: &Service, related: &Related) {
    let empty = ObjectMeta::default();
    let m = s.metadata.as_ref().unwrap_or(&empty);
    let spec = s.spec.clone().unwrap_or_default();
    header(d, m);
    d.kv(0, "Selector", selector_text(&spec.selector));
    d.kv(0, "Type", if spec.r#type.is_empty() { "ClusterIP" } else { &spec.r#type });
    d.kv(0, "IP", or_none(&spec.cluster_ip));
    if !spec.external_ips.is_empty() {
        d.kv(0, "External IPs", spec.external_ips.join(","));
    }
    if !spec.external_name.is_empty() {
        d.kv(0, "External Name", &spec.external_name);
    }
    let endpoints = related.endpoints.as_ref().map(format_endpoints).unwrap_or_else(|| "<none>".into());
    for p in &spec.ports {
        let proto = if p.protocol.is_empty() { "TCP" } else { &p.protocol };
        let name = if p.name.is_empty() { "<unset>" } else { &p.name };
        d.kv(0, "Port", format!("{name}  {}/{proto}", p.port));
        let target = if p.target_port.is_empty() { p.port.to_string() } else { p.target_port.clone() };
        d.kv(0, "TargetPort", format!("{target}/{proto}"));
        if p.node_port != 0 {
            d.kv(0, "NodePort", format!("{name}  {}/{proto}", p.node_port));
        }
        d.kv(0, "Endpoints", &endpoints);
    }
    if spec.ports.is_empty() {
        d.kv(0, "Endpoints", &endpoints);
    }
    d.kv(0, "Session Affinity", if spec.session_affinity.is_empty() { "None" } else { &spec.session_affinity });
}

fn node(d: &mut Doc, n: &Node, related: &Related, now: DateTime<Utc>) {
    let empty = ObjectMeta::default();
    let m = n.metadata.as_ref().unwrap_or(&empty);
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    d.kv(0, "Name", &m.name);
    d.kv(0, "Roles", node_roles(&m.labels));
    labels_and_annotations(d, m);
    d.kv(0, "CreationTimestamp", time(&m.creation_timestamp));
    let taints: Vec<String> = spec
        .taints
        .iter()
        .map(|t| if t.value.is_empty() { format!("{}:{}", t.key, t.effect) } else { format!("{}={}:{}", t.key, t.value, t.effect) })
        .collect();
    list(d, 0, "Taints", &taints);
    d.kv(0, "Unschedulable", spec.unschedulable.unwrap_or(false));
    if status.conditions.is_empty() {
        d.kv(0, "Conditions", "<none>");
    } else {
        d.line(0, "Conditions:");
        d.line(2, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage");
        d.line(2, "----\t------\t-----------------\t------------------\t------\t-------");
        for c in &status.conditions {
            d.line(
                2,
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    c.r#type,
                    c.status,
                    time(&c.last_heartbeat_time),
                    time(&c.last_transition_time),
                    c.reason,
                    c.message
                ),
            );
        }
    }
    if status.addresses.is_empty() {
        d.kv(0, "Addresses", "<none>");
    } else {
        d.line(0, "Addresses:");
        for a in &status.addresses {
            d.kv(2, &a.r#type, &a.address);
        }
    }
    if !status.capacity.is_empty() {
        d.section(0, "Capacity", &status.capacity);
    }
    if !status.allocatable.is_empty() {
        d.section(0, "Allocatable", &status.allocatable);
    }
    if let Some(i) = &status.node_info {
        d.line(0, "System Info:");
        for (k, v) in [
            ("Machine ID", &i.machine_id),
            ("System UUID", &i.system_uuid),
            ("Boot ID", &i.boot_id),
            ("Kernel Version", &i.kernel_version),
            ("OS Image", &i.os_image),
            ("Operating System", &i.operating_system),
            ("Architecture", &i.architecture),
            ("Container Runtime Version", &i.container_runtime_version),
            ("Kubelet Version", &i.kubelet_version),
            ("Kube-Proxy Version", &i.kube_proxy_version),
        ] {
            d.kv(2, k, v);
        }
    }
    d.kv(0, "PodCIDR", or_none(&spec.pod_cidr));
    if let Some(pods) = &related.pods {
        node_pods(d, pods, &status.allocatable, now);
    }
}

/// kubectl's `Non-terminated Pods` and `Allocated resources`: what each pod
/// on the node requests and is limited to, and the sums, as a share of the
/// node's allocatable resources.
fn node_pods(d: &mut Doc, pods: &[Pod], allocatable: &BTreeMap<String, String>, now: DateTime<Utc>) {
    let share = |q: &Quantity, resource: &str| {
        let of = allocatable.get(resource).and_then(|a| Quantity::parse(a).ok()).map(|a| a.milli_value()).unwrap_or(0);
        let percent = (q.milli_value() as i128 * 100).checked_div(of as i128).unwrap_or(0);
        format!("{q} ({percent}%)")
    };
    const COLUMNS: [(&str, &str); 4] =
        [("requests.cpu", "cpu"), ("limits.cpu", "cpu"), ("requests.memory", "memory"), ("limits.memory", "memory")];
    d.kv(0, "Non-terminated Pods", format!("({} in total)", pods.len()));
    d.line(2, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge");
    d.line(2, "---------\t----\t------------\t----------\t---------------\t-------------\t---");
    let mut total = berth_api::quota::Usage::new();
    for p in pods {
        let compute = p.spec.as_ref().map(berth_api::quota::pod_compute).unwrap_or_default();
        let cells: Vec<String> = COLUMNS.iter().map(|(key, res)| share(&compute.get(*key).cloned().unwrap_or_default(), res)).collect();
        for (k, q) in compute {
            *total.entry(k).or_default() += q;
        }
        let m = p.meta();
        d.line(2, format!("{}\t{}\t{}\t{}", m.namespace, m.name, cells.join("\t"), age(&m.creation_timestamp, now)));
    }
    d.line(0, "Allocated resources:");
    d.line(2, "(Total limits may be over 100 percent, i.e., overcommitted.)");
    d.line(2, "Resource\tRequests\tLimits");
    d.line(2, "--------\t--------\t------");
    for res in ["cpu", "memory"] {
        let get = |kind: &str| total.get(&format!("{kind}.{res}")).cloned().unwrap_or_default();
        d.line(2, format!("{res}\t{}\t{}", share(&get("requests"), res), share(&get("limits"), res)));
    }
}

/// kubectl's namespace view: status, then its quotas and limits.
fn namespace(d: &mut Doc, n: &Namespace, related: &Related) {
    let empty = ObjectMeta::default();
    header(d, n.metadata.as_ref().unwrap_or(&empty));
    let phase = n.status.as_ref().map(|s| s.phase.as_str()).filter(|p| !p.is_empty()).unwrap_or("Active");
    d.kv(0, "Status", phase);
    d.line(0, "");
    if related.quotas.is_empty() {
        d.line(0, "No resource quota.");
    } else {
        d.line(0, "Resource Quotas");
        for q in &related.quotas {
            d.kv(2, "Name", &q.meta().name);
            quota_table(d, 2, q);
        }
    }
    d.line(0, "");
    if related.limit_ranges.is_empty() {
        d.line(0, "No LimitRange resource.");
    } else {
        d.line(0, "Resource Limits");
        for l in &related.limit_ranges {
            limits_table(d, 1, l);
        }
    }
}

fn secret(d: &mut Doc, s: &Secret) {
    let empty = ObjectMeta::default();
    header(d, s.metadata.as_ref().unwrap_or(&empty));
    d.line(0, "");
    d.kv(0, "Type", if s.r#type.is_empty() { "Opaque" } else { &s.r#type });
    d.line(0, "");
    d.line(0, "Data");
    d.line(0, "====");
    for (k, v) in &s.data {
        d.kv(0, k, format!("{} bytes", v.len()));
    }
}

fn config_map(d: &mut Doc, c: &ConfigMap) {
    let empty = ObjectMeta::default();
    header(d, c.metadata.as_ref().unwrap_or(&empty));
    d.line(0, "");
    d.line(0, "Data");
    d.line(0, "====");
    for (k, v) in &c.data {
        d.line(0, format!("{k}:"));
        d.line(0, "----");
        // Values are shown verbatim: tabs in them must not become columns.
        d.line(0, v.replace('\t', "    "));
        d.line(0, "");
    }
    d.line(0, "");
    d.line(0, "BinaryData");
    d.line(0, "====");
    for (k, v) in &c.binary_data {
        d.kv(0, k, format!("{} bytes", v.len()));
    }
    d.line(0, "");
}

fn endpoints(d: &mut Doc, e: &Endpoints) {
    let empty = ObjectMeta::default();
    header(d, e.metadata.as_ref().unwrap_or(&empty));
    if e.subsets.is_empty() {
        d.kv(0, "Subsets", "");
    } else {
        d.line(0, "Subsets:");
    }
    for ss in &e.subsets {
        let ips = |addrs: &[berth_api::pb::core::EndpointAddress]| {
            let s = addrs.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>().join(",");
            if s.is_empty() { "<none>".to_string() } else { s }
        };
        d.kv(2, "Addresses", ips(&ss.addresses));
        d.kv(2, "NotReadyAddresses", ips(&ss.not_ready_addresses));
        if ss.ports.is_empty() {
            d.kv(2, "Ports", "<none>");
        } else {
            d.line(2, "Ports:");
            d.line(4, "Name\tPort\tProtocol");
            d.line(4, "----\t----\t--------");
            for p in &ss.ports {
                let proto = if p.protocol.is_empty() { "TCP" } else { &p.protocol };
                d.line(4, format!("{}\t{}\t{proto}", or_none(&p.name).replace("<none>", "<unset>"), p.port));
            }
        }
        d.line(0, "");
    }
}

fn resource_quota(d: &mut Doc, q: &ResourceQuota) {
    let empty = ObjectMeta::default();
    let m = q.metadata.as_ref().unwrap_or(&empty);
    let spec = q.spec.clone().unwrap_or_default();
    d.kv(0, "Name", &m.name);
    d.kv(0, "Namespace", &m.namespace);
    if !spec.scopes.is_empty() {
        d.kv(0, "Scopes", spec.scopes.join(", "));
    }
    quota_table(d, 0, q);
}

/// Resource, Used, Hard: one line per resource the quota limits.
fn quota_table(d: &mut Doc, indent: usize, q: &ResourceQuota) {
    let spec = q.spec.clone().unwrap_or_default();
    let status = q.status.clone().unwrap_or_default();
    d.line(indent, "Resource\tUsed\tHard");
    d.line(indent, "--------\t----\t----");
    let hard = if status.hard.is_empty() { &spec.hard } else { &status.hard };
    for (resource, h) in hard {
        let used = status.used.get(resource).map(String::as_str).unwrap_or("0");
        d.line(indent, format!("{resource}\t{used}\t{h}"));
    }
}

fn limit_range(d: &mut Doc, l: &LimitRange) {
    let empty = ObjectMeta::default();
    let m = l.metadata.as_ref().unwrap_or(&empty);
    d.kv(0, "Name", &m.name);
    d.kv(0, "Namespace", &m.namespace);
    limits_table(d, 0, l);
}

/// One line per object type and resource the limit range sets.
fn limits_table(d: &mut Doc, indent: usize, l: &LimitRange) {
    d.line(indent, "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio");
    d.line(indent, "----\t--------\t---\t---\t---------------\t-------------\t-----------------------");
    for item in l.spec.as_ref().map(|s| s.limits.as_slice()).unwrap_or_default() {
        let maps = [&item.min, &item.max, &item.default_request, &item.default, &item.max_limit_request_ratio];
        let resources: std::collections::BTreeSet<&String> = maps.iter().flat_map(|m| m.keys()).collect();
        for r in resources {
            let cells: Vec<&str> = maps.iter().map(|m| m.get(r).map(String::as_str).unwrap_or("-")).collect();
            d.line(indent, format!("{}\t{r}\t{}", item.r#type, cells.join("\t")));
        }
    }
}

fn event(d: &mut Doc, e: &Event) {
    let empty = ObjectMeta::default();
    header(d, e.metadata.as_ref().unwrap_or(&empty));
    let io = e.involved_object.clone().unwrap_or_default();
    d.line(0, "Involved Object:");
    d.kv(2, "Kind", &io.kind);
    d.kv(2, "Name", &io.name);
    if !io.namespace.is_empty() {
        d.kv(2, "Namespace", &io.namespace);
    }
    if !io.field_path.is_empty() {
        d.kv(2, "Field Path", &io.field_path);
    }
    d.kv(0, "Type", &e.r#type);
    d.kv(0, "Reason", &e.reason);
    d.kv(0, "Message", e.message.trim().replace('\t', " "));
    let src = e.source.clone().unwrap_or_default();
    d.line(0, "Source:");
    d.kv(2, "Component", or_none(&src.component));
    d.kv(2, "Host", or_none(&src.host));
    d.kv(0, "First Timestamp", or_none(&time(&e.first_timestamp)));
    d.kv(0, "Last Timestamp", or_none(&time(&e.last_timestamp)));
    d.kv(0, "Count", e.count);
    if !e.reporting_component.is_empty() {
        d.kv(0, "Reporting Component", &e.reporting_component);
    }
    if !e.reporting_instance.is_empty() {
        d.kv(0, "Reporting Instance", &e.reporting_instance);
    }
}

fn lease(d: &mut Doc, l: &Lease) {
    let empty = ObjectMeta::default();
    header(d, l.metadata.as_ref().unwrap_or(&empty));
    let spec = l.spec.clone().unwrap_or_default();
    d.line(0, "Spec:");
    d.kv(2, "Holder Identity", or_none(spec.holder_identity.as_deref().unwrap_or("")));
    d.kv(2, "Lease Duration Seconds", spec.lease_duration_seconds.map(|s| s.to_string()).unwrap_or_else(|| "<none>".into()));
    d.kv(2, "Acquire Time", or_none(&time(&spec.acquire_time)));
    d.kv(2, "Renew Time", or_none(&time(&spec.renew_time)));
    d.kv(2, "Lease Transitions", spec.lease_transitions.unwrap_or(0));
}

fn service_account(d: &mut Doc, sa: &ServiceAccount) {
    let empty = ObjectMeta::default();
    header(d, sa.metadata.as_ref().unwrap_or(&empty));
    let pull: Vec<String> = sa.image_pull_secrets.iter().map(|s| s.name.clone()).collect();
    list(d, 0, "Image pull secrets", &pull);
    let secrets: Vec<String> = sa.secrets.iter().map(|s| s.name.clone()).collect();
    list(d, 0, "Mountable secrets", &secrets);
    d.kv(0, "Tokens", "<none>");
}

/// kubectl's PolicyRule table: one row per rule and resource.
fn role(d: &mut Doc, m: &ObjectMeta, rules: &[PolicyRule]) {
    header(d, m);
    d.line(0, "PolicyRule:");
    d.line(2, "Resources\tNon-Resource URLs\tResource Names\tVerbs");
    d.line(2, "---------\t-----------------\t--------------\t-----");
    let bracket = |v: &[String]| format!("[{}]", v.join(" "));
    for r in rules {
        let mut resources: Vec<String> = Vec::new();
        for res in &r.resources {
            if r.api_groups.is_empty() {
                resources.push(res.clone());
            }
            for g in &r.api_groups {
                resources.push(if g.is_empty() { res.clone() } else { format!("{res}.{g}") });
            }
        }
        if resources.is_empty() {
            resources.push(String::new());
        }
        for res in resources {
            d.line(2, format!("{res}\t{}\t{}\t{}", bracket(&r.non_resource_urls), bracket(&r.resource_names), bracket(&r.verbs)));
        }
    }
}

fn binding(d: &mut Doc, m: &ObjectMeta, role_ref: Option<&RoleRef>, subjects: &[Subject]) {
    header(d, m);
    let r = role_ref.cloned().unwrap_or_default();
    d.line(0, "Role:");
    d.kv(2, "Kind", &r.kind);
    d.kv(2, "Name", &r.name);
    d.line(0, "Subjects:");
    d.line(2, "Kind\tName\tNamespace");
    d.line(2, "----\t----\t---------");
    for s in subjects {
        d.line(2, format!("{}\t{}\t{}", s.kind, s.name, s.namespace));
    }
}

fn events(d: &mut Doc, events: &[Event], now: DateTime<Utc>) {
    if events.is_empty() {
        return d.kv(0, "Events", "<none>");
    }
    d.line(0, "Events:");
    d.line(2, "Type\tReason\tAge\tFrom\tMessage");
    d.line(2, "----\t------\t----\t----\t-------");
    for ev in events {
        let when = event_age(ev, now);
        let from =
            ev.source.as_ref().map(|s| s.component.clone()).filter(|c| !c.is_empty()).unwrap_or_else(|| ev.reporting_component.clone());
        d.line(2, format!("{}\t{}\t{when}\t{from}\t{}", ev.r#type, ev.reason, ev.message.trim().replace('\t', " ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::manifest::parse;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("valid").with_timezone(&Utc)
    }

    #[test]
    fn should_describe_a_pod_with_containers_and_events() {
        let objs = parse(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, uid: u1, labels: {app: web, tier: fe}}
spec:
  nodeName: n1
  containers:
  - name: c
    image: busybox
    ports: [{containerPort: 80}]
    env: [{name: FOO, value: bar}]
    resources: {limits: {cpu: 500m}, requests: {memory: 64Mi}}
status:
  phase: Running
  podIP: 172.30.0.5
  hostIP: 10.0.0.1
  conditions: [{type: Ready, status: "True"}]
  containerStatuses: [{name: c, ready: true, restartCount: 1, state: {running: {startedAt: "2024-05-01T11:59:00Z"}}}]
---
apiVersion: v1
kind: Event
metadata: {name: web.1, namespace: default}
involvedObject: {kind: Pod, name: web, namespace: default, uid: u1}
reason: Scheduled
message: Successfully assigned default/web to n1
type: Normal
source: {component: default-scheduler}
lastTimestamp: "2024-05-01T11:59:55Z"
"#,
        )
        .expect("parses");
        let ev: Event = objs[1].clone().into_resource().expect("event");
        assert!(is_about(&ev, &objs[0]));
        let text = describe(&objs[0], &Related { events: vec![ev], ..Default::default() }, now());
        let want = "\
Name:         web
Namespace:    default
Node:         n1/10.0.0.1
Labels:       app=web
              tier=fe
Annotations:  <none>
Status:       Running
IP:           172.30.0.5
Containers:
  c:
    Container ID:
    Image:          busybox
    Image ID:
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Wed, 01 May 2024 11:59:00 +0000
    Ready:          True
    Restart Count:  1
    Limits:
      cpu:  500m
    Requests:
      memory:  64Mi
    Environment:
      FOO:   bar
    Mounts:  <none>
Conditions:
  Type           Status
  Ready          True
Volumes:         <none>
Node-Selectors:  <none>
Tolerations:     <none>
Events:
  Type    Reason     Age   From               Message
  ----    ------     ----  ----               -------
  Normal  Scheduled  5s    default-scheduler  Successfully assigned default/web to n1
";
        assert_eq!(text, want);
    }

    #[test]
    fn should_describe_a_quota_as_a_used_and_hard_table() {
        let objs = parse(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: default}\nspec: {hard: {pods: \"10\", cpu: \"2\"}}\nstatus: {hard: {pods: \"10\", cpu: \"2\"}, used: {pods: \"3\"}}\n",
        )
        .expect("parses");
        let text = describe(&objs[0], &Related::default(), now());
        assert_eq!(
            text,
            "Name:       q\nNamespace:  default\nResource    Used  Hard\n--------    ----  ----\ncpu         0     2\npods        3     10\nEvents:     <none>\n"
        );
    }

    #[test]
    fn should_describe_a_cluster_role_as_a_rule_table() {
        let objs = parse(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules:\n- {apiGroups: [\"\"], resources: [pods, pods/log], verbs: [get, list]}\n",
        )
        .expect("parses");
        let text = describe(&objs[0], &Related::default(), now());
        assert_eq!(
            text,
            "Name:         r\nLabels:       <none>\nAnnotations:  <none>\nPolicyRule:\n  Resources  Non-Resource URLs  Resource Names  Verbs\n  ---------  -----------------  --------------  -----\n  pods       []                 []              [get list]\n  pods/log   []                 []              [get list]\nEvents:      <none>\n"
        );
    }
}
