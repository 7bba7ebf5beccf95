//! Shared by the controllers' end-to-end tests: a control plane of real
//! processes — the apiserver (from `kubelet_support`), `berth-scheduler` and
//! `berth-controller-manager` — to which tests add real kubelets on Docker
//! (`kubelet_support::Kubelet`, each with its own node name and podCIDR,
//! its containers removed on drop). Every process is killed on drop and
//! its log printed when the test fails.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{
    Container, ExecAction, ObjectMeta, Pod, PodSpec, PodTemplateSpec, Probe, ReplicationController, ReplicationControllerSpec,
};
use berth_client::{Client, ListParams};
use berth_e2e::{Apiserver, bin, free_port};

use crate::kubelet_support::{self, IMAGE, Kubelet};

/// A daemon process of the control plane; killed on drop.
pub struct Daemon {
    name: &'static str,
    child: Option<Child>,
    pub log: PathBuf,
    pub health: u16,
}

impl Daemon {
    fn start(name: &'static str, package: &str, dir: &std::path::Path, args: &[String]) -> Daemon {
        let health = free_port();
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin(name, package))
            .args(args)
            .args(["--health-listen", &format!("127.0.0.1:{health}")])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon { name, child: Some(child), log, health }
    }

    pub fn logs(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.logs());
        }
    }
}

/// The apiserver, the scheduler and the controller-manager.
pub struct ControlPlane {
    pub api: Apiserver,
    client: Client,
    pub scheduler: Daemon,
    pub controller_manager: Daemon,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts the control plane; `cm_args` go to the controller-manager
    /// (e.g. short node monitoring periods).
    pub async fn start(cm_args: &[&str]) -> ControlPlane {
        Self::start_with(&[], cm_args).await
    }

    /// Like [`ControlPlane::start`], with flags for the apiserver too.
    pub async fn start_with(api_args: &[&str], cm_args: &[&str]) -> ControlPlane {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let api = Apiserver::start(&data, free_port(), api_args).await;
        let client = api.client().await;
        let server = api.url();
        let scheduler = Daemon::start(
            "berth-scheduler",
            "berth-scheduler",
            dir.path(),
            &["--server".into(), server.clone(), "--leader-elect=false".into()],
        );
        let mut args = vec!["--server".to_string(), server, "--leader-elect=false".into()];
        args.extend(cm_args.iter().map(|s| s.to_string()));
        let controller_manager = Daemon::start("berth-controller-manager", "berth-controller-manager", dir.path(), &args);
        ControlPlane { api, client, scheduler, controller_manager, dir }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn url(&self) -> String {
        self.api.url()
    }

    /// A kubelet registered and Ready.
    pub async fn kubelet(&self, what: &str) -> Kubelet {
        let k = Kubelet::start(&self.url(), what, &[]);
        k.wait_ready(&self.client).await;
        k
    }

    /// Runs berthctl against this cluster.
    pub fn berthctl(&self, args: &[&str]) -> Output {
        berth_e2e::berthctl(&self.url(), args, None)
    }

    /// Runs berthctl, failing the test (with its output) unless it succeeds.
    pub fn berthctl_ok(&self, args: &[&str]) -> String {
        let out = self.berthctl(args);
        assert!(
            out.status.success(),
            "berthctl {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where logs and scratch files of this test live.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Polls `f` until it gives a value; panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    kubelet_support::wait_for(limit, what, f).await
}

/// An RC of `replicas` pods (label `app=<name>`) running `sleep` in the
/// test image, Ready once their exec readiness probe passes.
pub fn rc(name: &str, namespace: &str, replicas: i32, image: &str) -> ReplicationController {
    let labels: BTreeMap<String, String> = [("app".to_string(), name.to_string())].into();
    ReplicationController {
        metadata: Some(ObjectMeta { name: name.into(), namespace: namespace.into(), ..Default::default() }),
        spec: Some(ReplicationControllerSpec {
            replicas: Some(replicas),
            selector: labels.clone(),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta { labels, ..Default::default() }),
                spec: Some(PodSpec {
                    termination_grace_period_seconds: Some(1),
                    containers: vec![Container {
                        name: "app".into(),
                        image: image.into(),
                        command: vec!["sh".into(), "-c".into(), "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp".into()],
                        readiness_probe: Some(Probe {
                            exec: Some(ExecAction { command: vec!["true".into()] }),
                            period_seconds: Some(1),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The default image of the tests.
pub fn image() -> &'static str {
    IMAGE
}

/// The pods of `namespace` matching `labels`.
pub async fn pods(client: &Client, namespace: &str, labels: &str) -> Vec<Pod> {
    client.list::<Pod>(namespace, &ListParams::default().labels(labels)).await.map(|(p, _)| p).unwrap_or_default()
}

/// Whether the pod is Running, Ready and not being deleted.
pub fn serving(p: &Pod) -> bool {
    p.meta().deletion_timestamp.is_empty() && kubelet_support::phase(p) == "Running" && kubelet_support::condition(p, "Ready")
}

/// The pods of `labels` that serve, as (name, node).
pub async fn serving_pods(client: &Client, namespace: &str, labels: &str) -> Vec<(String, String)> {
    pods(client, namespace, labels)
        .await
        .iter()
        .filter(|p| serving(p))
        .map(|p| (p.name().to_string(), p.spec.as_ref().map(|s| s.node_name.clone()).unwrap_or_default()))
        .collect()
}

/// Tags the test image under another name, so that a template can change image without a registry.
pub fn tag_image(target: &str) {
    kubelet_support::ensure_test_image();
    let out = Command::new("docker").args(["tag", IMAGE, target]).output().expect("docker tag");
    assert!(out.status.success(), "docker tag {IMAGE} {target}: {}", String::from_utf8_lossy(&out.stderr));
}
