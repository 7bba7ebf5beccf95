//! Defaulting: the values Kubernetes fills in when a manifest leaves them
//! out, applied on create and update before validation.

use berth_api::Object;
use berth_api::pb::api::object::Kind;
use berth_api::pb::core::*;

/// Fills in defaults for any kind.
pub fn apply(object: &mut Object) {
    match &mut object.kind {
        Some(Kind::Pod(p)) => {
            let spec = p.spec.get_or_insert_with(Default::default);
            pod_spec(spec);
            let status = p.status.get_or_insert_with(Default::default);
            if status.phase.is_empty() {
                status.phase = "Pending".into();
            }
            if status.qos_class.is_empty() {
                status.qos_class = qos_class(spec).into();
            }
        }
        Some(Kind::ReplicationController(rc)) => {
            let spec = rc.spec.get_or_insert_with(Default::default);
            if spec.replicas.is_none() {
                spec.replicas = Some(1);
            }
            if let Some(t) = spec.template.as_mut() {
                let labels = t.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
                if spec.selector.is_empty() {
                    spec.selector = labels.clone();
                }
                // Like Kubernetes, an RC without labels of its own takes its template's.
                if let Some(m) = rc.metadata.as_mut()
                    && m.labels.is_empty()
                {
                    m.labels = labels;
                }
                pod_spec(t.spec.get_or_insert_with(Default::default));
            }
        }
        Some(Kind::Service(s)) => {
            let spec = s.spec.get_or_insert_with(Default::default);
            if spec.r#type.is_empty() {
                spec.r#type = "ClusterIP".into();
            }
            if spec.session_affinity.is_empty() {
                spec.session_affinity = "None".into();
            }
            if spec.session_affinity == "ClientIP" {
                let cfg = spec.session_affinity_config.get_or_insert_with(Default::default);
                let ip = cfg.client_ip.get_or_insert_with(Default::default);
                ip.timeout_seconds.get_or_insert(10_800);
            }
            if matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer") && spec.external_traffic_policy.is_empty() {
                spec.external_traffic_policy = "Cluster".into();
            }
            for port in &mut spec.ports {
                if port.protocol.is_empty() {
                    port.protocol = "TCP".into();
                }
                if port.target_port.is_empty() || port.target_port == "0" {
                    port.target_port = port.port.to_string();
                }
            }
        }
        Some(Kind::Namespace(n)) => {
            let spec = n.spec.get_or_insert_with(Default::default);
            let status = n.status.get_or_insert_with(Default::default);
            if status.phase.is_empty() {
                status.phase = "Active".into();
            }
            // The namespace controller removes this once the namespace is empty.
            if status.phase == "Active" && !spec.finalizers.iter().any(|f| f == "kubernetes") {
                spec.finalizers.push("kubernetes".into());
            }
        }
        Some(Kind::Secret(s)) => {
            if s.r#type.is_empty() {
                s.r#type = "Opaque".into();
            }
            // stringData is write-only: merged into data, never stored.
            for (k, v) in std::mem::take(&mut s.string_data) {
                s.data.insert(k, v.into_bytes());
            }
        }
        Some(Kind::LimitRange(l)) => {
            // Kubernetes: a max without a default makes the max the default limit.
            for item in &mut l.spec.get_or_insert_with(Default::default).limits {
                if item.r#type == "Container" {
                    for (k, v) in item.max.clone() {
                        item.default.entry(k).or_insert(v);
                    }
                    for (k, v) in item.default.clone() {
                        item.default_request.entry(k).or_insert(v);
                    }
                }
            }
        }
        Some(Kind::Event(e)) => {
            if e.r#type.is_empty() {
                e.r#type = "Normal".into();
            }
            if e.count == 0 {
                e.count = 1;
            }
        }
        _ => {}
    }
}

fn pod_spec(spec: &mut PodSpec) {
    if spec.restart_policy.is_empty() {
        spec.restart_policy = "Always".into();
    }
    if spec.dns_policy.is_empty() {
        spec.dns_policy = "ClusterFirst".into();
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(30);
    }
    if spec.scheduler_name.is_empty() {
        spec.scheduler_name = "default-scheduler".into();
    }
    // serviceAccount is the deprecated alias of serviceAccountName: keep both in step.
    if spec.service_account_name.is_empty() && !spec.service_account.is_empty() {
        spec.service_account_name = spec.service_account.clone();
    }
    if !spec.service_account_name.is_empty() {
        spec.service_account = spec.service_account_name.clone();
    }
    for c in spec.init_containers.iter_mut().chain(spec.containers.iter_mut()) {
        container(c);
    }
    // Kubernetes: a volume that names no source is an emptyDir.
    for v in &mut spec.volumes {
        if v.host_path.is_none()
            && v.empty_dir.is_none()
            && v.secret.is_none()
            && v.config_map.is_none()
            && v.persistent_volume_claim.is_none()
        {
            v.empty_dir = Some(Default::default());
        }
    }
}

fn container(c: &mut Container) {
    if c.image_pull_policy.is_empty() {
        c.image_pull_policy = if image_tag(&c.image).is_none_or(|t| t == "latest") { "Always" } else { "IfNotPresent" }.into();
    }
    if c.termination_message_path.is_empty() {
        c.termination_message_path = "/dev/termination-log".into();
    }
    if c.termination_message_policy.is_empty() {
        c.termination_message_policy = "File".into();
    }
    for p in &mut c.ports {
        if p.protocol.is_empty() {
            p.protocol = "TCP".into();
        }
    }
    // Kubernetes: limits without requests make the requests equal the limits.
    if let Some(r) = c.resources.as_mut() {
        for (k, v) in r.limits.clone() {
            r.requests.entry(k).or_insert(v);
        }
    }
    for probe in [c.liveness_probe.as_mut(), c.readiness_probe.as_mut(), c.startup_probe.as_mut()].into_iter().flatten() {
        probe.timeout_seconds.get_or_insert(1);
        probe.period_seconds.get_or_insert(10);
        probe.success_threshold.get_or_insert(1);
        probe.failure_threshold.get_or_insert(3);
        if let Some(h) = probe.http_get.as_mut() {
            if h.path.is_empty() {
                h.path = "/".into();
            }
            if h.scheme.is_empty() {
                h.scheme = "HTTP".into();
            }
        }
    }
}

/// The tag of an image reference, if it has one (`nginx:1.25` → `1.25`;
/// a registry port is not a tag; a digest counts as pinned).
fn image_tag(image: &str) -> Option<&str> {
    if image.contains('@') {
        return Some("digest");
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, t)| t)
}

/// The pod's quality-of-service class, as Kubernetes computes it.
fn qos_class(spec: &PodSpec) -> &'static str {
    let containers: Vec<&Container> = spec.init_containers.iter().chain(&spec.containers).collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let r = c.resources.clone().unwrap_or_default();
        for res in ["cpu", "memory"] {
            let (req, lim) = (r.requests.get(res), r.limits.get(res));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            if lim.is_none() || req != lim {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_pull_latest_and_untagged_images_always() {
        assert_eq!(image_tag("nginx"), None);
        assert_eq!(image_tag("nginx:1.25"), Some("1.25"));
        assert_eq!(image_tag("localhost:5000/nginx"), None);
        assert_eq!(image_tag("localhost:5000/nginx:2"), Some("2"));
    }

    #[test]
    fn should_compute_qos_classes() {
        let mut spec = PodSpec { containers: vec![Container::default()], ..Default::default() };
        assert_eq!(qos_class(&spec), "BestEffort");
        let mut r = ResourceRequirements::default();
        r.limits.insert("cpu".into(), "1".into());
        r.limits.insert("memory".into(), "1Gi".into());
        r.requests = r.limits.clone();
        spec.containers[0].resources = Some(r.clone());
        assert_eq!(qos_class(&spec), "Guaranteed");
        r.requests.insert("cpu".into(), "500m".into());
        spec.containers[0].resources = Some(r);
        assert_eq!(qos_class(&spec), "Burstable");
    }
}
