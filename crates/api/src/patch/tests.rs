//! The patch types through [`super::apply`], on Berth's kinds, with the
//! patches kubectl 1.32 sends.

use serde_json::{Value, json};

use super::*;
use crate::resource::KINDS;

fn kind(name: &str) -> &'static KindInfo {
    KINDS.iter().find(|k| k.kind == name).expect("a served kind")
}

fn strategic(kind_name: &str, current: &Value, patch: Value) -> Result<Value, PatchError> {
    apply(kind(kind_name), PatchType::Strategic, current, patch.to_string().as_bytes())
}

fn rc() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {
            "name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
            "labels": {"app": "web", "tier": "old"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}", "owner": "team-a"},
            "finalizers": ["a.example/x", "b.example/y"]
        },
        "spec": {
            "replicas": 2,
            "selector": {"app": "web"},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web", "image": "nginx:1.27",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "imagePullPolicy": "IfNotPresent"
                        },
                        {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "old"}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "nodeSelector": {"disk": "ssd", "zone": "a"},
                    "restartPolicy": "Always"
                }
            }
        },
        "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1}
    })
}

/// `rc()` with `edit` applied to it.
fn rc_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = rc();
    edit(&mut v);
    v
}

fn pod_spec(v: &mut Value) -> &mut Value {
    &mut v["spec"]["template"]["spec"]
}

#[test]
fn should_apply_kubectls_observed_apply_patch_removing_env_b_and_changing_the_image() {
    // FINDINGS §4.2: what kubectl 1.32 sent for "change image, remove env B".
    let patch = json!({"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"new\":true}"}},
        "spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],
        "containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"$patch":"delete","name":"B"}],"image":"nginx:1.28","name":"web"}]}}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    let want = rc_with(|v| {
        v["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!("{\"new\":true}");
        let web = &mut pod_spec(v)["containers"][0];
        web["image"] = json!("nginx:1.28");
        web["env"] = json!([{"name": "A", "value": "1"}]);
    });
    assert_eq!(got, want);
}

#[test]
fn should_merge_labels_and_annotations_and_delete_keys_set_to_null() {
    let patch = json!({"metadata": {"labels": {"tier": null, "env": "prod"}, "annotations": {"note": "hi"}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    assert_eq!(got["metadata"]["labels"], json!({"app": "web", "env": "prod"}));
    assert_eq!(got["metadata"]["annotations"]["owner"], "team-a");
    assert_eq!(got["metadata"]["annotations"]["note"], "hi");
    // A null for a key the object lacks is no change (and not stored).
    let got = strategic("ReplicationController", &rc(), json!({"spec": {"minReadySeconds": null}})).expect("applies");
    assert_eq!(got, rc());
    // A map the object lacks is taken from the patch, its nulls dropped.
    let got =
        strategic("ReplicationController", &rc(), json!({"spec": {"template": {"metadata": {"annotations": {"a": "1", "b": null}}}}}))
            .expect("applies");
    assert_eq!(got["spec"]["template"]["metadata"]["annotations"], json!({"a": "1"}));
}

#[test]
fn should_merge_containers_by_name_in_set_element_order() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}, {"name": "logger"}],
        "containers": [{"name": "web", "image": "nginx:1.28"}, {"name": "logger", "image": "fluentd"}]
    }}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    let containers = &got["spec"]["template"]["spec"]["containers"];
    let names: Vec<&str> = containers.as_array().expect("a list").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["sidecar", "web", "logger"]);
    assert_eq!(containers[0]["command"], json!(["sleep", "3600"]), "the untouched container keeps its fields");
    assert_eq!(containers[1]["image"], "nginx:1.28");
    assert_eq!(containers[1]["env"], rc()["spec"]["template"]["spec"]["containers"][0]["env"], "the merged one keeps the rest");
    assert_eq!(containers[2], json!({"name": "logger", "image": "fluentd"}));
}

#[test]
fn should_put_a_new_container_first_without_set_element_order_as_kubernetes_does() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "logger", "image": "fluentd"}]}}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    let names: Vec<&str> =
        got["spec"]["template"]["spec"]["containers"].as_array().expect("a list").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["logger", "web", "sidecar"]);
}

#[test]
fn should_merge_container_ports_by_container_port() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "ports": [
        {"containerPort": 443, "protocol": "TCP"}, {"containerPort": 80, "name": "http"}
    ]}]}}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 443, "protocol": "TCP"}, {"containerPort": 80, "protocol": "TCP", "name": "http"}])
    );
    // Deleting one by its key.
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "ports": [{"$patch": "delete", "containerPort": 80}]}]}}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    assert_eq!(got["spec"]["template"]["spec"]["containers"][0]["ports"], json!([]));
}

#[test]
fn should_keep_only_the_retained_keys_of_a_volume() {
    // kubectl's patch for a volume switched from emptyDir to a configMap.
    let patch = json!({"spec": {"template": {"spec": {"volumes": [
        {"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "app-config"}}
    ]}}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    assert_eq!(
        got["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "app-config"}}, {"name": "cfg", "configMap": {"name": "old"}}])
    );
    // A key the patch sets must be listed.
    let patch = json!({"spec": {"template": {"spec": {"volumes": [
        {"$retainKeys": ["name"], "name": "data", "configMap": {"name": "app-config"}}
    ]}}}});
    let err = strategic("ReplicationController", &rc(), patch).expect_err("configMap is not retained");
    assert_eq!(err.http_status(), 400, "{err}");
    assert!(err.to_string().contains("retainKeys"), "{err}");
}

#[test]
fn should_merge_finalizers_as_a_set_and_delete_from_them() {
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["b.example/y", "c.example/z"],
        "$deleteFromPrimitiveList/finalizers": ["a.example/x"],
        "finalizers": ["c.example/z"]
    }});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    assert_eq!(got["metadata"]["finalizers"], json!(["b.example/y", "c.example/z"]));
    // Adding one already there does not duplicate it.
    let got = strategic("ReplicationController", &rc(), json!({"metadata": {"finalizers": ["b.example/y"]}})).expect("applies");
    assert_eq!(got["metadata"]["finalizers"], json!(["a.example/x", "b.example/y"]));
    // A malformed directive name.
    let err = strategic("ReplicationController", &rc(), json!({"metadata": {"$deleteFromPrimitiveList": ["a.example/x"]}}))
        .expect_err("no list named");
    assert_eq!(err.http_status(), 400, "{err}");
}

#[test]
fn should_replace_a_map_or_a_list_marked_patch_replace() {
    let patch = json!({"spec": {"template": {"spec": {"nodeSelector": {"$patch": "replace", "disk": "hdd"}}}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    assert_eq!(got["spec"]["template"]["spec"]["nodeSelector"], json!({"disk": "hdd"}));

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    assert_eq!(got["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "x"}]));

    let patch = json!({"spec": {"template": {"spec": {"nodeSelector": {"$patch": "delete"}}}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    assert_eq!(got["spec"]["template"]["spec"]["nodeSelector"], json!({}));
}

#[test]
fn should_replace_atomic_lists_whole() {
    let patch = json!({"spec": {"template": {"spec": {
        "tolerations": [{"key": "b", "operator": "Equal", "value": "1"}],
        "containers": [{"name": "sidecar", "command": ["sh"]}]
    }}}});
    let got = strategic("ReplicationController", &rc(), patch).expect("applies");
    let spec = &got["spec"]["template"]["spec"];
    assert_eq!(spec["tolerations"], json!([{"key": "b", "operator": "Equal", "value": "1"}]));
    assert_eq!(spec["containers"][1], json!({"name": "sidecar", "image": "busybox", "command": ["sh"]}));
}

#[test]
fn should_merge_service_ports_by_port() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
    "spec": {"clusterIP": "10.0.0.9", "selector": {"app": "web"}, "ports": [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
    ]}});
    let got = strategic("Service", &svc, json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})).expect("applies");
    assert_eq!(
        got["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
        ])
    );
    assert_eq!(got["spec"]["clusterIP"], "10.0.0.9");
}

#[test]
fn should_refuse_malformed_strategic_patches_with_400() {
    let cases = [
        (
            "an item without its merge key",
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            "does not contain declared merge key: name",
        ),
        (
            "a deletion without its merge key",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"$patch": "delete"}]}]}}}}),
            "does not contain declared merge key: name",
        ),
        ("an unknown $patch in a map", json!({"metadata": {"labels": {"$patch": "explode"}}}), "unknown patch type"),
        (
            "an unknown $patch in a list",
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "explode", "name": "web"}]}}}}),
            "unknown patch type",
        ),
        ("$patch merge in a list", json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}), "merging lists cannot"),
        ("$retainKeys not a list", json!({"metadata": {"$retainKeys": "name"}}), "retainKeys"),
        ("$setElementOrder not a list", json!({"metadata": {"$setElementOrder/finalizers": "x"}}), "setElementOrder"),
        (
            "an order the patch list breaks",
            json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"name": "sidecar", "image": "a"}, {"name": "web", "image": "b"}]}}}}),
            "doesn't match",
        ),
    ];
    for (what, patch, message) in cases {
        let err = strategic("ReplicationController", &rc(), patch).expect_err(what);
        assert_eq!(err.http_status(), 400, "{what}: {err}");
        assert!(err.to_string().contains(message), "{what}: {err}");
    }
}

#[test]
fn should_refuse_bodies_that_are_not_json_objects_with_400() {
    for patch_type in [PatchType::Strategic, PatchType::Merge, PatchType::Json] {
        let err = apply(kind("Pod"), patch_type, &rc(), b"{\"metadata\":").expect_err("malformed");
        assert_eq!(err.http_status(), 400, "{patch_type:?}: {err}");
    }
    let err = apply(kind("Pod"), PatchType::Strategic, &rc(), b"[1]").expect_err("not an object");
    assert_eq!(err.http_status(), 400, "{err}");
    let err = apply(kind("Pod"), PatchType::Json, &rc(), br#"[{"op":"frobnicate","path":"/a"}]"#).expect_err("no such op");
    assert_eq!(err.http_status(), 400, "{err}");
}

#[test]
fn should_apply_a_json_merge_patch_replacing_lists() {
    let body =
        br#"{"metadata":{"labels":{"tier":null,"env":"prod"}},"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"}]}}}}"#;
    let got = apply(kind("ReplicationController"), PatchType::Merge, &rc(), body).expect("applies");
    assert_eq!(got["metadata"]["labels"], json!({"app": "web", "env": "prod"}));
    assert_eq!(got["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "x"}]));
    assert_eq!(got["status"], rc()["status"]);
}

#[test]
fn should_apply_a_json_patch_and_answer_422_when_it_cannot() {
    let body = br#"[{"op":"test","path":"/spec/replicas","value":2},
        {"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.28"},
        {"op":"add","path":"/metadata/labels/env","value":"prod"}]"#;
    let got = apply(kind("ReplicationController"), PatchType::Json, &rc(), body).expect("applies");
    assert_eq!(got["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.28");
    assert_eq!(got["metadata"]["labels"]["env"], "prod");

    let failed_test = br#"[{"op":"test","path":"/spec/replicas","value":3},{"op":"add","path":"/metadata/labels/env","value":"prod"}]"#;
    let err = apply(kind("ReplicationController"), PatchType::Json, &rc(), failed_test).expect_err("replicas is 2");
    assert_eq!(err.http_status(), 422, "{err}");
    let missing = br#"[{"op":"remove","path":"/metadata/labels/nope"}]"#;
    let err = apply(kind("ReplicationController"), PatchType::Json, &rc(), missing).expect_err("no such label");
    assert_eq!(err.http_status(), 422, "{err}");
}

#[test]
fn should_read_the_patch_type_from_the_content_type() {
    assert_eq!(PatchType::from_content_type("application/strategic-merge-patch+json"), Some(PatchType::Strategic));
    assert_eq!(PatchType::from_content_type("application/merge-patch+json; charset=utf-8"), Some(PatchType::Merge));
    assert_eq!(PatchType::from_content_type("Application/JSON-Patch+JSON"), Some(PatchType::Json));
    assert_eq!(PatchType::from_content_type("application/apply-patch+yaml"), Some(PatchType::Apply));
    assert_eq!(PatchType::from_content_type("application/json"), None);
    assert_eq!(PatchType::from_content_type(""), None);
}

#[test]
fn should_refuse_server_side_apply_with_415() {
    let err = apply(kind("Pod"), PatchType::Apply, &rc(), b"apiVersion: v1\nkind: Pod\n").expect_err("unsupported");
    assert_eq!(err.http_status(), 415);
    assert!(err.to_string().contains("server-side apply"), "{err}");
}
