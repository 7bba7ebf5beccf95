use chrono::TimeDelta;
use serde_json::json;

use super::*;
use crate::manifest::parse;
use crate::pb::core::Pod;
use crate::resource::{KINDS, find_kind};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("valid").with_timezone(&Utc)
}

fn objects(yaml: &str) -> Vec<Object> {
    parse(yaml).expect("test manifest parses")
}

fn kind(name: &str) -> &'static KindInfo {
    find_kind(name).expect("a served kind")
}

/// The columns of a kind as `(name, priority)`.
fn names(info: &KindInfo) -> Vec<(&'static str, i32)> {
    columns(info).iter().map(|c| (c.name, c.priority)).collect()
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, labels: {app: web}, resourceVersion: "41", creationTimestamp: "2024-05-01T11:59:55Z"}
spec:
  nodeName: n1
  containers: [{name: a, image: busybox}, {name: b, image: busybox}]
status:
  phase: Running
  podIP: 172.30.0.5
  containerStatuses:
  - {name: a, ready: true, restartCount: 0, state: {running: {startedAt: "2024-05-01T11:59:58Z"}}}
  - name: b
    ready: false
    restartCount: 3
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {exitCode: 1, finishedAt: "2024-05-01T11:58:00Z"}}
"#;

#[test]
fn should_print_durations_like_kubectl() {
    let cases = [
        (5, "5s"),
        (119, "119s"),
        (182, "3m2s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (4 * 3600 + 30 * 60, "4h30m"),
        (20 * 3600, "20h"),
        (2 * 86400, "2d"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (10 * 365 * 86400, "10y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(TimeDelta::seconds(secs)), want, "{secs}s");
    }
    assert_eq!(human_duration(TimeDelta::seconds(-1)), "0s");
    assert_eq!(human_duration(TimeDelta::seconds(-5)), "<invalid>");
    assert_eq!(age("", now()), "<unknown>");
    assert_eq!(age("2024-05-01T11:57:00Z", now()), "3m");
}

#[test]
fn should_derive_pod_status_like_kubectl() {
    let pod = |status: &str, deleting: bool| -> Pod {
        let del = if deleting { ", deletionTimestamp: \"2024-05-01T11:00:00Z\"" } else { "" };
        let y = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{del}}}\nspec:\n  initContainers: [{{name: i, image: x}}]\n  containers: [{{name: a, image: x}}]\nstatus:\n{status}"
        );
        objects(&y).remove(0).into_resource().expect("a pod")
    };
    let init = pod("  phase: Pending\n  initContainerStatuses: [{name: i, state: {running: {}}}]\n", false);
    assert_eq!(pod_summary(&init).status, "Init:0/1");
    let init_fail = pod("  phase: Pending\n  initContainerStatuses: [{name: i, state: {terminated: {exitCode: 2}}}]\n", false);
    assert_eq!(pod_summary(&init_fail).status, "Init:ExitCode:2");
    let done = pod(
        "  phase: Succeeded\n  initContainerStatuses: [{name: i, state: {terminated: {exitCode: 0, reason: Completed}}}]\n  containerStatuses: [{name: a, state: {terminated: {exitCode: 0, reason: Completed}}}]\n",
        false,
    );
    assert_eq!(pod_summary(&done).status, "Completed");
    let creating = pod("  phase: Pending\n  containerStatuses: [{name: a, state: {waiting: {reason: ContainerCreating}}}]\n", false);
    assert_eq!(pod_summary(&creating).status, "ContainerCreating");
    let deleting = pod("  phase: Running\n", true);
    assert_eq!(pod_summary(&deleting).status, "Terminating");
}

#[test]
fn should_name_each_kinds_columns_as_kubernetes_does() {
    let want: &[(&str, &[(&str, i32)])] = &[
        (
            "Pod",
            &[
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1),
            ],
        ),
        (
            "Node",
            &[
                ("Name", 0),
                ("Status", 0),
                ("Roles", 0),
                ("Age", 0),
                ("Version", 0),
                ("Internal-IP", 1),
                ("External-IP", 1),
                ("OS-Image", 1),
                ("Kernel-Version", 1),
                ("Container-Runtime", 1),
            ],
        ),
        ("Service", &[("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), ("Age", 0), ("Selector", 1)]),
        (
            "ReplicationController",
            &[("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0), ("Containers", 1), ("Images", 1), ("Selector", 1)],
        ),
        ("Namespace", &[("Name", 0), ("Status", 0), ("Age", 0)]),
        ("Endpoints", &[("Name", 0), ("Endpoints", 0), ("Age", 0)]),
        ("Secret", &[("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)]),
        ("ConfigMap", &[("Name", 0), ("Data", 0), ("Age", 0)]),
        ("ServiceAccount", &[("Name", 0), ("Secrets", 0), ("Age", 0)]),
        (
            "Event",
            &[
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1),
            ],
        ),
        ("ResourceQuota", &[("Name", 0), ("Age", 0), ("Request", 0), ("Limit", 0)]),
        ("LimitRange", &[("Name", 0), ("Created At", 0)]),
        ("Lease", &[("Name", 0), ("Holder", 0), ("Age", 0)]),
        ("Role", &[("Name", 0), ("Created At", 0)]),
        ("ClusterRole", &[("Name", 0), ("Created At", 0)]),
        ("RoleBinding", &[("Name", 0), ("Role", 0), ("Age", 0), ("Users", 1), ("Groups", 1), ("ServiceAccounts", 1)]),
        ("ClusterRoleBinding", &[("Name", 0), ("Role", 0), ("Age", 0), ("Users", 1), ("Groups", 1), ("ServiceAccounts", 1)]),
    ];
    for (k, columns) in want {
        assert_eq!(names(kind(k)), columns.to_vec(), "{k}");
    }
    // every served kind has its own table above
    assert_eq!(want.len(), KINDS.len());
}

#[test]
fn should_give_one_cell_per_column_typed_as_its_column() {
    let integer_columns: Vec<(&str, &str)> =
        KINDS.iter().flat_map(|i| columns(i).iter().filter(|c| c.r#type == "integer").map(|c| (i.kind, c.name))).collect();
    assert_eq!(
        integer_columns,
        [
            ("ReplicationController", "Desired"),
            ("ReplicationController", "Current"),
            ("ReplicationController", "Ready"),
            ("Secret", "Data"),
            ("ConfigMap", "Data"),
            ("Event", "Count"),
            ("ServiceAccount", "Secrets"),
        ]
    );
    for info in KINDS {
        let object = Object::empty(info).expect("every kind has an empty object");
        let cells = row(&object, now());
        let columns = columns(info);
        assert_eq!(cells.len(), columns.len(), "{}", info.kind);
        for (c, cell) in columns.iter().zip(&cells) {
            assert_eq!(matches!(cell, Cell::Int(_)), c.r#type == "integer", "{} {}: {cell:?}", info.kind, c.name);
        }
        let names: Vec<_> = columns.iter().filter(|c| c.format == "name").map(|c| c.name).collect();
        assert_eq!(names, ["Name"], "{}: exactly one name column", info.kind);
    }
}

#[test]
fn should_answer_a_pod_table_as_kube_apiserver_does() {
    let pods = objects(POD);
    let t = table(kind("Pod"), &pods, "107", IncludeObject::Metadata, true, now());
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "107"}));
    let defs = t["columnDefinitions"].as_array().expect("column definitions");
    assert_eq!(defs.len(), 9);
    for d in defs {
        let keys: Vec<&str> = d.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["description", "format", "name", "priority", "type"], "{d}");
        assert!(!d["description"].as_str().unwrap_or("").is_empty(), "{d}");
    }
    assert_eq!(defs[0]["name"], "Name");
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(defs[0]["priority"], 0);
    assert_eq!(defs[3], json!({"name": "Restarts", "type": "string", "format": "", "description": defs[3]["description"], "priority": 0}));
    let wide: Vec<&str> = defs.iter().filter(|d| d["priority"] == 1).filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(wide, ["IP", "Node", "Nominated Node", "Readiness Gates"]);

    let rows = t["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["cells"], json!(["web", "1/2", "CrashLoopBackOff", "3 (2m ago)", "5s", "172.30.0.5", "n1", "<none>", "<none>"]));
    let object = &rows[0]["object"];
    assert_eq!(object["kind"], "PartialObjectMetadata");
    assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(object["metadata"]["name"], "web");
    assert_eq!(object["metadata"]["namespace"], "default");
    assert_eq!(object["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(object["metadata"]["resourceVersion"], "41");
    assert_eq!(object["metadata"]["creationTimestamp"], "2024-05-01T11:59:55Z");
    assert!(object.get("spec").is_none(), "{object}");
}

#[test]
fn should_include_the_whole_object_or_none_as_asked() {
    let pods = objects(POD);
    let t = table(kind("Pod"), &pods, "7", IncludeObject::Object, true, now());
    let object = &t["rows"][0]["object"];
    assert_eq!(object["kind"], "Pod");
    assert_eq!(object["apiVersion"], "v1");
    assert_eq!(object["spec"]["nodeName"], "n1");
    let t = table(kind("Pod"), &pods, "7", IncludeObject::None, true, now());
    assert_eq!(t["rows"][0].as_object().map(|r| r.keys().cloned().collect::<Vec<_>>()), Some(vec!["cells".to_string()]));

    assert_eq!(IncludeObject::parse("None"), IncludeObject::None);
    assert_eq!(IncludeObject::parse("Object"), IncludeObject::Object);
    assert_eq!(IncludeObject::parse("Metadata"), IncludeObject::Metadata);
    assert_eq!(IncludeObject::parse(""), IncludeObject::Metadata);
}

#[test]
fn should_answer_an_empty_list_with_no_rows_and_a_watch_event_without_columns() {
    let t = table(kind("ConfigMap"), &[], "3", IncludeObject::Metadata, true, now());
    assert_eq!(t["rows"], json!([]));
    assert_eq!(t["columnDefinitions"].as_array().map(Vec::len), Some(3));
    let event = table(kind("Pod"), &objects(POD), "42", IncludeObject::Metadata, false, now());
    assert!(event.get("columnDefinitions").is_none(), "{event}");
    assert_eq!(event["metadata"]["resourceVersion"], "42");
    assert_eq!(event["rows"][0]["cells"][0], "web");
}

#[test]
fn should_write_integer_cells_as_json_numbers() {
    let objs = objects(
        r#"
apiVersion: v1
kind: ReplicationController
metadata: {name: r, creationTimestamp: "2024-05-01T11:00:00Z"}
spec:
  replicas: 3
  selector: {app: r}
  template: {metadata: {labels: {app: r}}, spec: {containers: [{name: c, image: busybox}]}}
status: {replicas: 2, readyReplicas: 1}
"#,
    );
    let t = table(kind("ReplicationController"), &objs, "1", IncludeObject::None, true, now());
    assert_eq!(t["rows"][0]["cells"], json!(["r", 3, 2, 1, "60m", "c", "busybox", "app=r"]));
    assert_eq!(t["columnDefinitions"][1]["type"], "integer");

    let secret = objects("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: aGVsbG8=}\nstringData: {k: a, j: b}\n");
    assert_eq!(table(kind("Secret"), &secret, "1", IncludeObject::None, true, now())["rows"][0]["cells"][2], json!(2));
    let cm = objects("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: y, z: w}\n");
    assert_eq!(table(kind("ConfigMap"), &cm, "1", IncludeObject::None, true, now())["rows"][0]["cells"][1], json!(2));
    let sa = objects("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: d}\nsecrets: [{name: t}]\n");
    assert_eq!(table(kind("ServiceAccount"), &sa, "1", IncludeObject::None, true, now())["rows"][0]["cells"][1], json!(1));
    let ev = objects(
        "apiVersion: v1\nkind: Event\nmetadata: {name: web.1, namespace: default}\ninvolvedObject: {kind: Pod, name: web, fieldPath: \"spec.containers{a}\"}\nreason: Scheduled\nmessage: \" assigned to n1 \"\ntype: Normal\ncount: 2\nsource: {component: scheduler}\nfirstTimestamp: \"2024-05-01T11:50:00Z\"\nlastTimestamp: \"2024-05-01T11:59:50Z\"\n",
    );
    assert_eq!(
        table(kind("Event"), &ev, "1", IncludeObject::None, true, now())["rows"][0]["cells"],
        json!([
            "10s (x2 over 10m)",
            "Normal",
            "Scheduled",
            "pod/web",
            "spec.containers{a}",
            "scheduler",
            "assigned to n1",
            "10m",
            2,
            "web.1"
        ])
    );
}

#[test]
fn should_compute_the_wide_cells_of_nodes_and_bindings() {
    let node = objects(
        r#"
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {node-role.kubernetes.io/control-plane: "", kubernetes.io/role: worker}, creationTimestamp: "2024-05-01T07:00:00Z"}
status:
  conditions: [{type: Ready, status: "False"}]
  nodeInfo: {kubeletVersion: v0.1.0, osImage: Debian}
  addresses: [{type: InternalIP, address: 10.0.0.1}, {type: InternalIP, address: 10.0.0.2}]
"#,
    );
    let cells: Vec<String> = row(&node[0], now()).iter().map(Cell::to_string).collect();
    assert_eq!(
        cells,
        ["n1", "NotReady", "control-plane,worker", "5h", "v0.1.0", "10.0.0.1,10.0.0.2", "<none>", "Debian", "<unknown>", "<unknown>"]
    );
    let binding = objects(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: admins, creationTimestamp: "2024-05-01T11:59:00Z"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects:
- {kind: Group, name: ops, apiGroup: rbac.authorization.k8s.io}
- {kind: Group, name: sre, apiGroup: rbac.authorization.k8s.io}
- {kind: ServiceAccount, name: ci, namespace: build}
"#,
    );
    let cells: Vec<String> = row(&binding[0], now()).iter().map(Cell::to_string).collect();
    assert_eq!(cells, ["admins", "ClusterRole/admin", "60s", "", "ops, sre", "build/ci"]);
}
