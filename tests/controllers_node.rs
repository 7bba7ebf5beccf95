//! The node controller end to end, with short periods: a kubelet that is
//! killed makes its node NotReady (Unknown, tainted unreachable) within the
//! grace period, and its pods come back on the other node.

mod controllers_support;
mod kubelet_support;

use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{Namespace, Node, ObjectMeta};
use controllers_support::{ControlPlane, eventually, image, pods, rc, serving_pods};

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn should_mark_a_lost_node_and_move_its_pods_to_another() {
    let cp = ControlPlane::start(&[
        "--node-monitor-period=1s",
        "--node-monitor-grace-period=6s",
        "--pod-eviction-timeout=4s",
        "--node-eviction-rate=1",
    ])
    .await;
    let mut a = cp.kubelet("node-a").await;
    let mut b = cp.kubelet("node-b").await;
    let c = cp.client();
    c.create(Namespace { metadata: Some(ObjectMeta { name: "e2e-node".into(), ..Default::default() }), ..Default::default() })
        .await
        .expect("namespace");
    c.create(rc("web", "e2e-node", 4, image())).await.expect("rc");
    let placed = eventually(LIMIT, "4 pods serving", || async {
        let s = serving_pods(c, "e2e-node", "app=web").await;
        (s.len() == 4).then_some(s)
    })
    .await;
    // Lose the node that runs the most pods.
    let on_a = placed.iter().filter(|(_, n)| *n == a.node).count();
    let lose_a = on_a >= 2;
    let (lost_name, kept_name) = if lose_a { (a.node.clone(), b.node.clone()) } else { (b.node.clone(), a.node.clone()) };
    if lose_a {
        a.kill_9();
    } else {
        b.kill_9();
    }

    let node = eventually(LIMIT, "the lost node is Unknown and tainted unreachable", || async {
        let n: Node = c.get("", &lost_name).await.ok()?;
        let ready = n.status.as_ref()?.conditions.iter().find(|c| c.r#type == "Ready")?.status.clone();
        let tainted = n.spec.as_ref()?.taints.iter().any(|t| t.key == "node.kubernetes.io/unreachable");
        (ready == "Unknown" && tainted).then_some(n)
    })
    .await;
    assert!(node.meta().name == lost_name);
    let out = cp.berthctl_ok(&["get", "nodes"]);
    // kubectl prints NotReady for Ready=Unknown; berthctl may print Unknown.
    assert!(
        out.lines().any(|l| l.starts_with(&lost_name) && (l.contains("NotReady") || l.contains("Unknown"))),
        "berthctl shows it not ready:\n{out}"
    );

    eventually(LIMIT, "4 pods serving on the remaining node", || async {
        let s = serving_pods(c, "e2e-node", "app=web").await;
        (s.len() == 4 && s.iter().all(|(_, n)| *n == kept_name)).then_some(())
    })
    .await;
    let evicted = pods(c, "e2e-node", "app=web")
        .await
        .into_iter()
        .filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name == lost_name))
        .collect::<Vec<_>>();
    assert!(evicted.iter().all(|p| !p.meta().deletion_timestamp.is_empty()), "the lost node's pods are being deleted");
}
