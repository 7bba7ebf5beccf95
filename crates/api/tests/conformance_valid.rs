//! Every conformance manifest (real Kubernetes examples) passes validation
//! after the minimal defaulting the apiserver does before validating.

use std::path::PathBuf;

use berth_api::Object;
use berth_api::pb::api::object::Kind;
use berth_api::pb::core::{EmptyDirVolumeSource, PodSpec};

fn manifests() -> PathBuf {
    berth_api::manifest::conformance_dir().unwrap_or_else(|e| panic!("{e}")).join("manifests")
}

fn default_pod_spec(spec: &mut PodSpec) {
    if spec.restart_policy.is_empty() {
        spec.restart_policy = "Always".into();
    }
    for c in spec.init_containers.iter_mut().chain(spec.containers.iter_mut()) {
        if c.image_pull_policy.is_empty() {
            c.image_pull_policy = "IfNotPresent".into();
        }
        for p in &mut c.ports {
            if p.protocol.is_empty() {
                p.protocol = "TCP".into();
            }
        }
    }
    // As Kubernetes' SetDefaults_Volume: a volume without a source is an emptyDir.
    for v in &mut spec.volumes {
        let no_source = v.host_path.is_none()
            && v.empty_dir.is_none()
            && v.secret.is_none()
            && v.config_map.is_none()
            && v.persistent_volume_claim.is_none();
        if no_source {
            v.empty_dir = Some(EmptyDirVolumeSource::default());
        }
    }
}

/// The defaults Kubernetes (and Berth's apiserver) fill in before validating.
fn default(o: &mut Object) {
    let namespaced = o.info().is_some_and(|i| i.namespaced);
    if namespaced
        && let Some(m) = o.metadata_mut()
        && m.namespace.is_empty()
    {
        m.namespace = "default".into();
    }
    match &mut o.kind {
        Some(Kind::Pod(p)) => default_pod_spec(p.spec.get_or_insert_with(Default::default)),
        Some(Kind::ReplicationController(rc)) => {
            let spec = rc.spec.get_or_insert_with(Default::default);
            spec.replicas.get_or_insert(1);
            if let Some(t) = spec.template.as_mut() {
                if spec.selector.is_empty() {
                    spec.selector = t.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
                }
                default_pod_spec(t.spec.get_or_insert_with(Default::default));
            }
        }
        Some(Kind::Service(s)) => {
            let spec = s.spec.get_or_insert_with(Default::default);
            if spec.r#type.is_empty() {
                spec.r#type = "ClusterIP".into();
            }
            for p in &mut spec.ports {
                if p.protocol.is_empty() {
                    p.protocol = "TCP".into();
                }
                if p.target_port.is_empty() {
                    p.target_port = p.port.to_string();
                }
            }
        }
        Some(Kind::Secret(s)) if s.r#type.is_empty() => s.r#type = "Opaque".into(),
        _ => {}
    }
}

#[test]
#[ignore = "reads the shared conformance corpus: set BERTH_CONFORMANCE_DIR and run with --ignored (.ci/run does)"]
fn should_accept_every_conformance_manifest_after_defaulting() {
    let mut count = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(manifests()).expect("conformance dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let objects = berth_api::manifest::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for mut o in objects {
            default(&mut o);
            if let Err(e) = berth_api::validation::validate(&o) {
                failures.push(format!("{} ({} {}): {e}", path.display(), o.kind_name(), o.name()));
            }
            count += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(count > 20, "only {count} objects");
}
