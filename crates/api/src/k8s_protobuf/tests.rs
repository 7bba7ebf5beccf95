//! Tests of the protobuf bodies: kubectl's captured requests, every field of the messages, and the
//! refusals.

use std::collections::BTreeMap;

use prost::Message as _;
use serde_json::json;

use super::*;

/// What kubectl 1.32.4 sent (captured from its requests to a recording server).
fn captured(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/k8s-protobuf/{name}.bin", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn meta(name: &str, namespace: &str) -> Option<messages::ObjectMeta> {
    Some(messages::ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..Default::default() })
}

/// `kubectl auth can-i create pods --subresource=exec -n default`, written out field by field; kubectl's
/// encoder writes every proto2 field of the Go structs, the empty ones too.
#[rustfmt::skip]
const SSAR_EXEC: &[u8] = &[
    b'k', b'8', b's', 0,
    0x0a, 0x32, // typeMeta, 50 bytes
        0x0a, 0x17, b'a', b'u', b't', b'h', b'o', b'r', b'i', b'z', b'a', b't', b'i', b'o', b'n', b'.', b'k', b'8', b's',
            b'.', b'i', b'o', b'/', b'v', b'1', // apiVersion
        0x12, 0x17, b'S', b'e', b'l', b'f', b'S', b'u', b'b', b'j', b'e', b'c', b't', b'A', b'c', b'c', b'e', b's', b's',
            b'R', b'e', b'v', b'i', b'e', b'w', // kind
    0x12, 0x43, // raw, 67 bytes: the SelfSubjectAccessReview
        0x0a, 0x10, // metadata, 16 bytes
            0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, // name ... resourceVersion: ""
            0x38, 0x00, // generation: 0
            0x42, 0x00, // creationTimestamp: {} (not decoded)
        0x12, 0x25, // spec, 37 bytes
            0x0a, 0x23, // resourceAttributes, 35 bytes
                0x0a, 0x07, b'd', b'e', b'f', b'a', b'u', b'l', b't', // namespace
                0x12, 0x06, b'c', b'r', b'e', b'a', b't', b'e', // verb
                0x1a, 0x00, // group
                0x22, 0x00, // version
                0x2a, 0x04, b'p', b'o', b'd', b's', // resource
                0x32, 0x04, b'e', b'x', b'e', b'c', // subresource
                0x3a, 0x00, // name
        0x1a, 0x08, // status, 8 bytes
            0x08, 0x00, // allowed: false
            0x12, 0x00, // reason
            0x1a, 0x00, // evaluationError
            0x20, 0x00, // denied: false
    0x1a, 0x00, // contentEncoding
    0x22, 0x00, // contentType
];

#[test]
fn should_read_kubectls_self_subject_access_review() {
    assert_eq!(SSAR_EXEC, captured("ssar-resource").as_slice(), "the bytes written out are what kubectl sends");
    assert_eq!(
        decode(SSAR_EXEC).unwrap(),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods", "subresource": "exec"}},
            "status": {"allowed": false}
        })
    );
    assert_eq!(
        decode(&captured("ssar-nonresource")).unwrap(),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}},
            "status": {"allowed": false}
        })
    );
}

#[test]
fn should_read_what_kubectl_create_sends() {
    assert_eq!(
        decode(&captured("namespace")).unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "capns"}, "spec": {}, "status": {}})
    );
    assert_eq!(
        decode(&captured("configmap")).unwrap(),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "capcm", "namespace": "default"},
            "data": {"a": "b"}, "binaryData": {"bin": "/wAB"}
        })
    );
    assert_eq!(
        decode(&captured("secret")).unwrap(),
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "capsec", "namespace": "default"},
            "data": {"k": "dg=="}, "type": "Opaque"
        })
    );
    assert_eq!(
        decode(&captured("serviceaccount")).unwrap(),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "capsa", "namespace": "default"}})
    );
    assert_eq!(
        decode(&captured("selfsubjectreview")).unwrap(),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}, "status": {"userInfo": {}}})
    );
}

#[test]
fn should_give_json_that_berth_reads_as_its_own_objects() {
    for name in ["namespace", "configmap", "secret", "serviceaccount"] {
        let json = decode(&captured(name)).unwrap();
        let objects = crate::manifest::parse(&json.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].to_json_value()["metadata"]["name"], json["metadata"]["name"], "{name}");
    }
}

#[test]
fn should_transcode_every_field_of_object_meta() {
    let metadata = messages::ObjectMeta {
        name: Some("web".into()),
        generate_name: Some("web-".into()),
        namespace: Some("prod".into()),
        uid: Some("u-1".into()),
        resource_version: Some("42".into()),
        labels: BTreeMap::from([("app".into(), "web".into())]),
        annotations: BTreeMap::from([("note".into(), "x".into())]),
        owner_references: vec![messages::OwnerReference {
            api_version: Some("v1".into()),
            kind: Some("ReplicationController".into()),
            name: Some("rc".into()),
            uid: Some("u-0".into()),
            controller: Some(true),
            block_owner_deletion: Some(false),
        }],
        finalizers: vec!["example.com/f".into()],
    };
    let cm = messages::ConfigMap { metadata: Some(metadata), immutable: Some(true), ..Default::default() };
    assert_eq!(
        decode(&envelope("v1", "ConfigMap", cm.encode_to_vec())).unwrap(),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "web", "generateName": "web-", "namespace": "prod", "uid": "u-1", "resourceVersion": "42",
                "labels": {"app": "web"}, "annotations": {"note": "x"},
                "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "uid": "u-0",
                    "controller": true, "blockOwnerDeletion": false
                }],
                "finalizers": ["example.com/f"]
            },
            "immutable": true
        })
    );
    // An owner reference's four identifying fields are always printed, as in Kubernetes.
    let cm = messages::ConfigMap {
        metadata: Some(messages::ObjectMeta { owner_references: vec![Default::default()], ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(
        decode(&envelope("v1", "ConfigMap", cm.encode_to_vec())).unwrap()["metadata"],
        json!({"ownerReferences": [{"apiVersion": "", "kind": "", "name": "", "uid": ""}]})
    );
}

#[test]
fn should_transcode_secrets_service_accounts_and_reviews() {
    let secret = messages::Secret {
        metadata: meta("tls", "prod"),
        data: BTreeMap::from([("tls.key".into(), vec![0, 1, 255])]),
        r#type: Some("kubernetes.io/tls".into()),
        string_data: BTreeMap::from([("note".into(), "plain".into())]),
        immutable: Some(false),
    };
    assert_eq!(
        decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap(),
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", "namespace": "prod"},
            "data": {"tls.key": "AAH/"}, "stringData": {"note": "plain"}, "type": "kubernetes.io/tls", "immutable": false
        })
    );
    let account = messages::ServiceAccount {
        metadata: meta("robot", "prod"),
        secrets: vec![messages::ObjectReference { name: Some("robot-token".into()), kind: Some(String::new()), ..Default::default() }],
        image_pull_secrets: vec![messages::LocalObjectReference { name: Some("registry".into()) }],
        automount_service_account_token: Some(false),
    };
    assert_eq!(
        decode(&envelope("v1", "ServiceAccount", account.encode_to_vec())).unwrap(),
        json!({
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot", "namespace": "prod"},
            "secrets": [{"name": "robot-token"}], "imagePullSecrets": [{"name": "registry"}],
            "automountServiceAccountToken": false
        })
    );
    let review = messages::SelfSubjectReview {
        metadata: None,
        status: Some(messages::SelfSubjectReviewStatus {
            user_info: Some(messages::UserInfo {
                username: Some("alice".into()),
                uid: None,
                groups: vec!["dev".into()],
                extra: BTreeMap::from([("scopes".into(), messages::ExtraValue { items: vec!["a".into(), "b".into()] })]),
            }),
        }),
    };
    assert_eq!(
        decode(&envelope("authentication.k8s.io/v1", "SelfSubjectReview", review.encode_to_vec())).unwrap(),
        json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {},
            "status": {"userInfo": {"username": "alice", "groups": ["dev"], "extra": {"scopes": ["a", "b"]}}}
        })
    );
    let ssar = messages::SelfSubjectAccessReview {
        metadata: None,
        spec: Some(messages::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(messages::ResourceAttributes {
                group: Some("rbac.authorization.k8s.io".into()),
                version: Some("v1".into()),
                resource: Some("roles".into()),
                name: Some("admin".into()),
                verb: Some("get".into()),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: None,
    };
    assert_eq!(
        decode(&envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar.encode_to_vec())).unwrap(),
        json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
            "spec": {"resourceAttributes": {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "roles", "name": "admin", "verb": "get"}}
        })
    );
}

#[test]
fn should_transcode_evictions_with_their_delete_options() {
    let eviction = messages::Eviction {
        metadata: meta("web-1", "prod"),
        delete_options: Some(messages::DeleteOptions {
            grace_period_seconds: Some(0),
            preconditions: Some(messages::Preconditions { uid: Some("u-7".into()), resource_version: Some("9".into()) }),
            orphan_dependents: None,
            propagation_policy: Some("Foreground".into()),
            dry_run: vec!["All".into()],
        }),
    };
    assert_eq!(
        decode(&envelope("policy/v1", "Eviction", eviction.encode_to_vec())).unwrap(),
        json!({
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "prod"},
            "deleteOptions": {
                "gracePeriodSeconds": 0, "preconditions": {"uid": "u-7", "resourceVersion": "9"},
                "propagationPolicy": "Foreground", "dryRun": ["All"]
            }
        })
    );
    let bare = messages::Eviction { metadata: meta("web-1", "prod"), delete_options: None };
    assert_eq!(
        decode(&envelope("policy/v1", "Eviction", bare.encode_to_vec())).unwrap(),
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "prod"}})
    );
}

#[test]
fn should_refuse_bodies_that_are_not_kubernetes_protobuf() {
    let json_body = br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}"#;
    assert!(matches!(decode(json_body), Err(ProtobufError::BadMagic)));
    assert!(matches!(decode(b""), Err(ProtobufError::BadMagic)));
    assert!(matches!(decode(b"k8s"), Err(ProtobufError::BadMagic)));
    assert!(matches!(decode(b"k8s\0"), Err(ProtobufError::NoKind)));
    let err = decode(json_body).unwrap_err().to_string();
    assert_eq!(err, "the body is not Kubernetes protobuf: it does not start with the 4 bytes \"k8s\\0\"");
}

#[test]
fn should_refuse_truncated_bodies() {
    let body = captured("namespace");
    // The envelope ends inside raw (and, earlier, inside typeMeta): its length prefixes overrun.
    for cut in [6, 12, 30, 40, body.len() - 5] {
        let err = decode(&body[..cut]).unwrap_err();
        assert!(matches!(err, ProtobufError::Envelope(_)), "cut at {cut}: {err:?}");
        assert!(err.to_string().starts_with("the protobuf envelope (runtime.Unknown) is malformed: "), "{err}");
    }
    // A whole envelope around a broken object: metadata claims 5 bytes and has 1.
    let err = decode(&envelope("v1", "Namespace", vec![0x0a, 0x05, b'x'])).unwrap_err();
    assert!(matches!(&err, ProtobufError::Object { kind, .. } if kind == "Namespace"), "{err:?}");
    assert!(err.to_string().starts_with("the Namespace (v1) in the protobuf body is malformed: "), "{err}");
}

#[test]
fn should_refuse_other_kinds_and_say_to_send_json() {
    let pod = envelope("v1", "Pod", meta("web", "default").unwrap().encode_to_vec());
    let err = decode(&pod).unwrap_err();
    assert!(matches!(&err, ProtobufError::Unsupported { api_version, kind } if api_version == "v1" && kind == "Pod"), "{err:?}");
    assert_eq!(
        err.to_string(),
        "protobuf request bodies are supported only for SelfSubjectAccessReview (authorization.k8s.io/v1), \
         SelfSubjectReview (authentication.k8s.io/v1), Namespace (v1), ConfigMap (v1), Secret (v1), ServiceAccount (v1), \
         Eviction (policy/v1); send Pod (v1) as JSON (Content-Type: application/json)"
    );
    // The kind alone is not enough: a Namespace of another group is another kind.
    let err = decode(&envelope("example.com/v1", "Namespace", Vec::new())).unwrap_err();
    assert!(matches!(err, ProtobufError::Unsupported { .. }), "{err:?}");
}

#[test]
fn should_refuse_encoded_content() {
    let unknown = messages::Unknown {
        type_meta: Some(messages::TypeMeta { api_version: Some("v1".into()), kind: Some("Namespace".into()) }),
        raw: Some(vec![1, 2, 3]),
        content_encoding: Some("gzip".into()),
        content_type: None,
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    let err = decode(&body).unwrap_err();
    assert_eq!(err.to_string(), "the protobuf body of Namespace is encoded with \"gzip\"; send it unencoded, or as JSON");
}
