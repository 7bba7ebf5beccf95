//! The manager as a whole against a real apiserver: health and metrics on
//! its health port, and leader election — one instance works while another
//! waits, and the standby takes over when the leader leaves.

mod common;

use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::*;
use common::*;

fn elect(c: &mut berth_controller_manager::Config) {
    c.leader.enabled = true;
    c.leader.lease_duration = Duration::from_secs(2);
    c.leader.renew_deadline = Duration::from_millis(1500);
    c.leader.retry_period = Duration::from_millis(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_serve_health_and_queue_metrics() {
    let cl = Cluster::start("replication,endpoints").await;
    let c = &cl.client;
    namespace(c, "m1").await;
    c.create(rc("web", "m1", 2)).await.expect("rc");
    eventually("pods", || async { (list::<Pod>(c, "m1", "app=web").await.len() == 2).then_some(()) }).await;
    for path in ["/livez", "/readyz", "/healthz"] {
        let (code, _) = eventually(path, || async { Some(cl.http_get(path).await).filter(|(code, _)| *code == 200) }).await;
        assert_eq!(code, 200);
    }
    let (_, metrics) = cl.http_get("/metrics").await;
    for want in [
        "berth_controller_manager_build_info{",
        "berth_controller_manager_workqueue_depth{name=\"replication\"}",
        "berth_controller_manager_workqueue_depth{name=\"endpoints\"}",
        "berth_controller_manager_workqueue_adds_total{name=\"replication\"}",
        "berth_controller_manager_workqueue_queue_duration_seconds_total{name=\"replication\"}",
        "berth_controller_manager_syncs_total{controller=\"replication\",result=\"success\"}",
        "berth_controller_manager_sync_duration_seconds_bucket{",
        "berth_controller_manager_is_leader 1",
    ] {
        assert!(metrics.contains(want), "/metrics lacks {want}:\n{metrics}");
    }
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_run_controllers_only_on_the_leader_and_fail_over() {
    let mut cl = Cluster::start_with("replication", elect).await;
    let c = cl.client.clone();
    let lease = eventually("a leader", || async {
        let l: Lease = c.get("kube-system", "berth-controller-manager").await.ok()?;
        l.spec?.holder_identity.filter(|h| !h.is_empty())
    })
    .await;
    // A second instance waits as a standby: it is healthy but does not lead.
    let first_stop = cl.detach_manager();
    cl.start_manager("replication", elect).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (code, metrics) = cl.http_get("/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("berth_controller_manager_is_leader 0"), "{metrics}");
    let still: Lease = c.get("kube-system", "berth-controller-manager").await.expect("lease");
    assert_eq!(still.spec.and_then(|s| s.holder_identity).as_deref(), Some(lease.as_str()));

    // The leader leaves (and releases the lease): the standby takes over and does the work.
    first_stop.stop().await;
    eventually("the standby leads", || async {
        let l: Lease = c.get("kube-system", "berth-controller-manager").await.ok()?;
        l.spec?.holder_identity.filter(|h| !h.is_empty() && *h != lease)
    })
    .await;
    namespace(&c, "m2").await;
    c.create(rc("web", "m2", 2)).await.expect("rc");
    eventually("the new leader creates the pods", || async { (list::<Pod>(&c, "m2", "app=web").await.len() == 2).then_some(()) }).await;
    let (_, metrics) = cl.http_get("/metrics").await;
    assert!(metrics.contains("berth_controller_manager_is_leader 1"), "{metrics}");
    let rc: ReplicationController = c.get("m2", "web").await.expect("rc");
    assert!(rc.meta().generation > 0);
    cl.stop().await;
}
