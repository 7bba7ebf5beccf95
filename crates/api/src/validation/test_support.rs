//! Builders of valid objects and assertions on the errors found in them,
//! shared by the tests of the validation modules.

use std::collections::BTreeMap;

use super::{FieldError, validate, validate_update};
use crate::Resource;
use crate::pb::api::Object;
use crate::pb::core::{
    ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, HttpGetAction, Node, NodeSpec, NodeStatus, ObjectMeta, Pod, PodSpec,
    Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};

pub(super) fn meta(name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() })
}

pub(super) fn cluster_meta(name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), ..Default::default() })
}

pub(super) fn ctr(name: &str) -> Container {
    Container { name: name.into(), image: "busybox:1.36".into(), image_pull_policy: "IfNotPresent".into(), ..Default::default() }
}

pub(super) fn port(n: i32) -> ContainerPort {
    ContainerPort { container_port: n, protocol: "TCP".into(), ..Default::default() }
}

pub(super) fn pod_spec() -> PodSpec {
    PodSpec { containers: vec![ctr("web")], restart_policy: "Always".into(), dns_policy: "ClusterFirst".into(), ..Default::default() }
}

pub(super) fn pod_of(spec: PodSpec) -> Pod {
    Pod { metadata: meta("web"), spec: Some(spec), ..Default::default() }
}

pub(super) fn pod_with(f: impl FnOnce(&mut PodSpec)) -> Object {
    let mut s = pod_spec();
    f(&mut s);
    pod_of(s).into_object()
}

pub(super) fn ctr_with(f: impl FnOnce(&mut Container)) -> Object {
    pod_with(|s| f(&mut s.containers[0]))
}

pub(super) fn empty_dir(name: &str) -> Volume {
    Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }
}

pub(super) fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), ..Default::default() }
}

pub(super) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub(super) fn svc_port(name: &str, p: i32) -> ServicePort {
    ServicePort { name: name.into(), port: p, protocol: "TCP".into(), target_port: p.to_string(), ..Default::default() }
}

pub(super) fn svc_with(f: impl FnOnce(&mut ServiceSpec)) -> Object {
    let mut spec = ServiceSpec {
        r#type: "ClusterIP".into(),
        ports: vec![svc_port("", 80)],
        selector: map(&[("app", "web")]),
        session_affinity: "None".into(),
        ..Default::default()
    };
    f(&mut spec);
    Service { metadata: meta("web"), spec: Some(spec), ..Default::default() }.into_object()
}

pub(super) fn cm_with(f: impl FnOnce(&mut ConfigMap)) -> Object {
    let mut m = ConfigMap { metadata: meta("config"), data: map(&[("app.properties", "a=b")]), ..Default::default() };
    f(&mut m);
    m.into_object()
}

pub(super) fn node_with(f: impl FnOnce(&mut Node)) -> Object {
    let mut n = Node {
        metadata: cluster_meta("node-1.example.com"),
        spec: Some(NodeSpec { pod_cidr: "172.30.1.0/24".into(), ..Default::default() }),
        status: Some(NodeStatus { capacity: map(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]), ..Default::default() }),
        ..Default::default()
    };
    f(&mut n);
    n.into_object()
}

pub(super) fn pod_obj(f: impl FnOnce(&mut PodSpec)) -> Object {
    pod_with(f)
}

pub(super) fn http(port: &str) -> Option<HttpGetAction> {
    Some(HttpGetAction { path: "/".into(), port: port.into(), ..Default::default() })
}

pub(super) fn errors(o: &Object) -> Vec<FieldError> {
    validate(o).err().map(|e| e.0).unwrap_or_default()
}

pub(super) fn update_errors(old: &Object, new: &Object) -> Vec<FieldError> {
    validate_update(old, new).err().map(|e| e.0).unwrap_or_default()
}

#[track_caller]
pub(super) fn assert_valid(o: &Object) {
    if let Err(e) = validate(o) {
        panic!("expected valid, got: {e}");
    }
}

/// The message of the first error at `field`, failing if there is none.
#[track_caller]
pub(super) fn error_at(errs: &[FieldError], field: &str) -> String {
    match errs.iter().find(|e| e.field == field) {
        Some(e) => e.to_string(),
        None => panic!("expected an error at {field}, got {:?}", errs.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
}

#[track_caller]
pub(super) fn assert_error_at(o: &Object, field: &str) -> String {
    error_at(&errors(o), field)
}
