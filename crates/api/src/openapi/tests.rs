//! Tests of the OpenAPI documents: what kubectl reads from them (patch
//! parameters, GVKs, merge keys) and that every ref resolves.

use std::collections::BTreeSet;

use super::schemas::{REQUIRED, message_schema_name, schema_name};
use super::*;
use crate::docs;
use crate::patch::meta;
use crate::resource::KINDS;

fn all_kinds() -> Vec<&'static KindInfo> {
    KINDS.iter().collect()
}

fn doc(api: &OpenApi, path: &str) -> Value {
    let (bytes, _) = api.document(path).unwrap_or_else(|| panic!("no document {path}"));
    serde_json::from_slice(bytes).expect("a document is JSON")
}

fn schema<'a>(d: &'a Value, name: &str) -> &'a Value {
    let s = &d["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

#[test]
fn should_list_every_served_group_version_in_the_index_with_its_hash() {
    let api = OpenApi::new(&all_kinds());
    let index: Value = serde_json::from_slice(api.index()).expect("JSON");
    let paths = index["paths"].as_object().expect("paths");
    let keys: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["api/v1", "apis/coordination.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1"]));
    for (path, entry) in paths {
        let (bytes, hash) = api.document(path).expect("listed documents are served");
        let want = Sha256::digest(bytes).iter().map(|b| format!("{b:02X}")).collect::<String>();
        assert_eq!(hash, want);
        assert_eq!(entry["serverRelativeURL"], json!(format!("/openapi/v3/{path}?hash={hash}")));
    }
    assert!(api.document("apis/apps/v1").is_none());
    assert!(api.document("/api/v1").is_some(), "a leading slash is tolerated");
}

#[test]
fn should_leave_out_disabled_kinds() {
    let served: Vec<&KindInfo> = KINDS.iter().filter(|k| k.kind != "Lease" && k.kind != "Secret").collect();
    let api = OpenApi::new(&served);
    let index: Value = serde_json::from_slice(api.index()).expect("JSON");
    assert!(index["paths"].get("apis/coordination.k8s.io/v1").is_none());
    assert!(api.document("apis/coordination.k8s.io/v1").is_none());
    let d = doc(&api, "api/v1");
    let paths = d["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|p| !p.contains("/secrets")),
        "secrets paths left: {:?}",
        paths.keys().filter(|p| p.contains("secrets")).collect::<Vec<_>>()
    );
    assert!(d["components"]["schemas"].get("io.k8s.api.core.v1.Secret").is_none());
    assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods/{name}"));
}

#[test]
fn should_declare_field_validation_and_strategic_merge_on_every_patch_of_every_kind() {
    let api = OpenApi::new(&all_kinds());
    for kind in KINDS {
        let d = doc(&api, &document_path(kind.api_version));
        // As kubectl's query parameter verifier does: the PATCH operations carrying the kind's GVK.
        let patches: Vec<&Value> = d["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|p| p.get("patch"))
            .filter(|op| op["x-kubernetes-group-version-kind"] == kind_gvk(kind))
            .collect();
        assert!(!patches.is_empty(), "no PATCH for {}", kind.kind);
        for op in patches {
            let params = op["parameters"].as_array().expect("parameters");
            assert!(params.iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"), "{}: {op}", kind.kind);
            assert!(op["requestBody"]["content"].get("application/strategic-merge-patch+json").is_some());
        }
    }
    let d = doc(&api, "api/v1");
    let pod_patch = &d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert_eq!(pod_patch["x-kubernetes-action"], "patch");
    assert_eq!(pod_patch["x-kubernetes-group-version-kind"], json!({"group": "", "kind": "Pod", "version": "v1"}));
    let content = pod_patch["requestBody"]["content"].as_object().expect("content");
    for media_type in ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"] {
        assert_eq!(content[media_type]["schema"]["$ref"], "#/components/schemas/io.k8s.api.core.v1.Pod");
    }
    let names: Vec<&str> = pod_patch["parameters"].as_array().expect("parameters").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["dryRun", "fieldManager", "fieldValidation", "force"]);
}

#[test]
fn should_serve_cluster_scoped_status_and_scale_paths() {
    let api = OpenApi::new(&all_kinds());
    let d = doc(&api, "api/v1");
    let paths = &d["paths"];
    assert!(paths["/api/v1/nodes/{name}"]["patch"].is_object());
    assert!(paths["/api/v1/nodes/{name}/status"]["patch"].is_object());
    assert!(paths["/api/v1/namespaces/{name}"]["get"].is_object());
    assert!(paths["/api/v1/pods"]["get"].is_object(), "pods across namespaces");
    assert!(paths.get("/api/v1/namespaces/{namespace}/configmaps/{name}/status").is_none(), "config maps have no status");
    let scale = &paths["/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale"]["patch"];
    assert_eq!(scale["x-kubernetes-group-version-kind"], json!({"group": "autoscaling", "kind": "Scale", "version": "v1"}));
    let scale_schema = schema(&d, SCALE);
    assert_eq!(scale_schema["x-kubernetes-group-version-kind"], json!([{"group": "autoscaling", "kind": "Scale", "version": "v1"}]));
    assert!(schema(&d, "io.k8s.api.autoscaling.v1.ScaleStatus")["properties"]["selector"].is_object());

    let rbac = doc(&api, "apis/rbac.authorization.k8s.io/v1");
    assert_eq!(
        rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["get"]["operationId"],
        "readRbacAuthorizationV1ClusterRole"
    );
    assert!(rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/{name}"]["patch"].is_object());
    assert!(schema(&rbac, "io.k8s.api.rbac.v1.Role")["x-kubernetes-group-version-kind"].is_array());
    let lease = doc(&api, "apis/coordination.k8s.io/v1");
    assert_eq!(
        schema(&lease, "io.k8s.api.coordination.v1.Lease")["x-kubernetes-group-version-kind"],
        json!([{"group": "coordination.k8s.io", "kind": "Lease", "version": "v1"}])
    );
}

#[test]
fn should_carry_the_patch_tables_merge_keys_and_strategies() {
    let api = OpenApi::new(&all_kinds());
    let d = doc(&api, "api/v1");
    let containers = &schema(&d, "io.k8s.api.core.v1.PodSpec")["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(containers["items"]["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.core.v1.Container");
    let volumes = &schema(&d, "io.k8s.api.core.v1.PodSpec")["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    let finalizers = &schema(&d, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"]["finalizers"];
    assert_eq!((&finalizers["x-kubernetes-patch-strategy"], &finalizers["x-kubernetes-list-type"]), (&json!("merge"), &json!("set")));
    assert!(finalizers.get("x-kubernetes-patch-merge-key").is_none());
    let tolerations = &schema(&d, "io.k8s.api.core.v1.PodSpec")["properties"]["tolerations"];
    assert!(tolerations.get("x-kubernetes-patch-strategy").is_none(), "atomic lists carry no strategy");

    // Every entry of the table is in the documents that hold its message, the same.
    // (The table also holds Kubernetes fields Berth has not got, such as PodSpec.hostAliases.)
    let exists = |m: &str, f: &str| docs::type_doc_of(m).is_some_and(|t| t.fields.iter().any(|x| x.name == f));
    let mut checked = BTreeSet::new();
    for name in ["api/v1", "apis/rbac.authorization.k8s.io/v1", "apis/coordination.k8s.io/v1"] {
        let d = doc(&api, name);
        for (message, field, m) in meta::TABLE {
            let Some(s) = d["components"]["schemas"].get(message_schema_name(message)) else { continue };
            if !exists(message, field) {
                continue;
            }
            let p = &s["properties"][*field];
            assert_eq!(p["x-kubernetes-patch-merge-key"].as_str(), m.merge_key, "{message}.{field}");
            assert_eq!(p["x-kubernetes-list-type"], m.list_type, "{message}.{field}");
            checked.insert((*message, *field));
        }
    }
    let unreachable: Vec<_> = meta::TABLE.iter().filter(|(m, f, _)| exists(m, f) && !checked.contains(&(*m, *f))).collect();
    assert!(unreachable.is_empty(), "table entries no served kind reaches: {unreachable:?}");
    assert!(checked.len() >= 15, "only {} table entries checked", checked.len());
}

/// Every `$ref` below `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn should_resolve_every_ref_within_its_document() {
    let api = OpenApi::new(&all_kinds());
    for name in ["api/v1", "apis/rbac.authorization.k8s.io/v1", "apis/coordination.k8s.io/v1"] {
        let d = doc(&api, name);
        let mut found = Vec::new();
        refs(&d, &mut found);
        assert!(found.len() > 20, "{name}: only {} refs", found.len());
        for r in found {
            let target = r.strip_prefix(REF_PREFIX).unwrap_or_else(|| panic!("{name}: {r} is not a schema ref"));
            assert!(d["components"]["schemas"].get(target).is_some(), "{name}: {r} resolves to nothing");
        }
    }
}

#[test]
fn should_give_every_field_of_every_message_a_property() {
    let api = OpenApi::new(&all_kinds());
    let mut messages = 0;
    for name in ["api/v1", "apis/rbac.authorization.k8s.io/v1", "apis/coordination.k8s.io/v1"] {
        let d = doc(&api, name);
        for t in docs::types().values() {
            let Some(s) = d["components"]["schemas"].get(schema_name(&t.name, &t.package)) else { continue };
            messages += 1;
            let properties = s["properties"].as_object().unwrap_or_else(|| panic!("{} has no properties", t.name));
            let want: BTreeSet<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
            let got: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
            assert_eq!(got, want, "{}", t.name);
            for (field, p) in properties {
                assert!(p["description"].as_str().is_some_and(|d| !d.is_empty()), "{}.{field} has no description", t.name);
            }
        }
    }
    assert!(messages > 60, "only {messages} message schemas");
    let d = doc(&api, "api/v1");
    let object_meta = &schema(&d, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"];
    for map in ["labels", "annotations"] {
        assert_eq!(object_meta[map]["type"], "object");
        assert_eq!(object_meta[map]["additionalProperties"], json!({"type": "string"}));
    }
    assert_eq!(object_meta["generation"]["format"], "int64");
    let pod = schema(&d, "io.k8s.api.core.v1.Pod");
    assert_eq!(pod["x-kubernetes-group-version-kind"], json!([{"group": "", "kind": "Pod", "version": "v1"}]));
    assert_eq!(pod["properties"]["apiVersion"]["type"], "string");
    assert_eq!(pod["properties"]["kind"]["type"], "string");
    assert_eq!(pod["properties"]["spec"]["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.core.v1.PodSpec");
    assert!(schema(&d, "io.k8s.api.core.v1.PodSpec").get("x-kubernetes-group-version-kind").is_none());
    let limits = &schema(&d, "io.k8s.api.core.v1.ResourceRequirements")["properties"]["limits"];
    assert_eq!(limits["additionalProperties"]["allOf"][0]["$ref"], format!("{REF_PREFIX}{QUANTITY}"));
    let target_port = &schema(&d, "io.k8s.api.core.v1.ServicePort")["properties"]["targetPort"];
    assert_eq!(target_port["allOf"][0]["$ref"], format!("{REF_PREFIX}{INT_OR_STRING}"));
    assert_eq!(schema(&d, INT_OR_STRING)["x-kubernetes-int-or-string"], true);
    assert_eq!(schema(&d, "io.k8s.api.core.v1.Secret")["properties"]["data"]["additionalProperties"]["format"], "byte");
    assert_eq!(schema(&d, "io.k8s.api.core.v1.Container")["required"], json!(["name"]));
    assert_eq!(schema(&d, "io.k8s.api.core.v1.PodList")["x-kubernetes-group-version-kind"][0]["kind"], "PodList");
}

#[test]
fn should_name_only_fields_that_exist_as_required() {
    for (message, field) in REQUIRED {
        let t = docs::type_doc_of(message).unwrap_or_else(|| panic!("no message {message}"));
        assert!(t.fields.iter().any(|f| f.name == *field), "{message} has no field {field}");
    }
}
