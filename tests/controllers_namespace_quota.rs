//! Namespaces, quotas and limit ranges end to end, through berthctl:
//! deleting a namespace removes everything in it (its pods stopped by their
//! kubelet); a quota refusal and a LimitRange default are what the user sees.

mod controllers_support;
mod kubelet_support;

use std::time::Duration;

use berth_api::pb::core::ResourceQuota;
use controllers_support::{ControlPlane, eventually, serving_pods};

const LIMIT: Duration = Duration::from_secs(90);

fn apply(cp: &ControlPlane, yaml: &str) {
    let out = berth_e2e::berthctl(&cp.url(), &["apply", "-f", "-"], Some(yaml));
    assert!(out.status.success(), "apply failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_remove_everything_in_a_deleted_namespace() {
    let cp = ControlPlane::start(&[]).await;
    let kubelet = cp.kubelet("ns-delete").await;
    apply(
        &cp,
        &format!(
            r#"apiVersion: v1
kind: Namespace
metadata:
  name: e2e-doomed
---
apiVersion: v1
kind: ReplicationController
metadata:
  name: web
  namespace: e2e-doomed
spec:
  replicas: 2
  selector:
    app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: {image}
        command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: e2e-doomed
spec:
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: e2e-doomed
data:
  a: "1"
"#,
            image = controllers_support::image()
        ),
    );
    eventually(LIMIT, "2 pods serving", || async { (serving_pods(cp.client(), "e2e-doomed", "app=web").await.len() == 2).then_some(()) })
        .await;
    let ep = cp.berthctl_ok(&["get", "endpoints", "web", "-n", "e2e-doomed"]);
    assert!(ep.contains(":80") || ep.contains("web"), "{ep}");

    let out = cp.berthctl(&["delete", "namespace", "e2e-doomed", "--wait=false"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(LIMIT, "the namespace is gone", || async {
        let out = cp.berthctl(&["get", "namespace", "e2e-doomed"]);
        String::from_utf8_lossy(&out.stderr).contains("NotFound").then_some(())
    })
    .await;
    for kind in ["pods", "rc", "svc", "endpoints", "configmaps"] {
        let out = cp.berthctl_ok(&["get", kind, "-n", "e2e-doomed", "-o", "name"]);
        assert!(out.trim().is_empty(), "{kind} left behind: {out}");
    }
    eventually(LIMIT, "the pods' containers are stopped", || async {
        kubelet_support::node_containers(&kubelet.node, false).iter().all(|c| !c.contains("e2e-doomed")).then_some(())
    })
    .await;
    let out = cp.berthctl(&["delete", "namespace", "default"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("may not be deleted"), "default is protected");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_show_quota_refusals_and_limit_range_defaults() {
    let cp = ControlPlane::start(&[]).await;
    apply(
        &cp,
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: e2e-quota
---
apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
  namespace: e2e-quota
spec:
  limits:
  - type: Container
    default:
      cpu: 200m
      memory: 64Mi
    defaultRequest:
      cpu: 100m
      memory: 32Mi
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: small
  namespace: e2e-quota
spec:
  hard:
    pods: "2"
    requests.cpu: "1"
"#,
    );
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: e2e-quota\nspec:\n  containers:\n  - name: app\n    image: {}\n    command: [\"sleep\", \"3600\"]\n",
            controllers_support::image()
        )
    };
    apply(&cp, &pod("p1"));
    apply(&cp, &pod("p2"));
    // The defaults are in the stored pod, and it says who set them.
    let yaml = cp.berthctl_ok(&["get", "pod", "p1", "-n", "e2e-quota", "-o", "yaml"]);
    for want in ["cpu: 200m", "memory: 64Mi", "cpu: 100m", "memory: 32Mi", "LimitRanger plugin set"] {
        assert!(yaml.contains(want), "the pod lacks {want:?}:\n{yaml}");
    }
    // The third pod is refused, and the message says by which quota and why.
    let out = berth_e2e::berthctl(&cp.url(), &["apply", "-f", "-"], Some(&pod("p3")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Forbidden") && stderr.contains("exceeded quota: small, requested: pods=1, used: pods=2, limited: pods=2"),
        "{stderr}"
    );
    let out = cp.berthctl(&["get", "pod", "p3", "-n", "e2e-quota"]);
    assert!(!out.status.success(), "nothing was written");
    // The quota's status shows the usage.
    eventually(LIMIT, "quota usage reported", || async {
        let q: ResourceQuota = cp.client().get("e2e-quota", "small").await.ok()?;
        let used = q.status?.used;
        (used.get("pods").map(String::as_str) == Some("2") && used.get("requests.cpu").map(String::as_str) == Some("200m")).then_some(())
    })
    .await;
    let yaml = cp.berthctl_ok(&["get", "quota", "small", "-n", "e2e-quota", "-o", "yaml"]);
    assert!(yaml.contains("used:") && yaml.contains("requests.cpu: 200m"), "{yaml}");
}
