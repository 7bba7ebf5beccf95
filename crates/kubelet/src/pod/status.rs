//! A pod's status from what the runtime shows: phase, conditions
//! (PodScheduled, Initialized, ContainersReady, Ready), addresses, start
//! time and each container's state, last state, restarts and readiness —
//! computed the way Kubernetes' kubelet computes them.

use std::collections::HashMap;

use berth_api::pb::core::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition, PodIp, PodStatus,
};
use chrono::{DateTime, Utc};

use crate::runtime::{ContainerInfo, ContainerState, labels};

/// RFC 3339 in seconds, as Kubernetes writes status times.
pub use berth_api::time::format_rfc3339 as rfc3339;

/// Why a container is waiting, decided by this sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// What the status is computed from.
pub struct Observed<'a> {
    pub pod: &'a Pod,
    /// Every container of the pod on the runtime (all instances).
    pub containers: &'a [ContainerInfo],
    /// Waiting reasons decided by this sync, by (container type, name).
    pub waiting: &'a HashMap<(&'static str, String), Waiting>,
    /// A running container's readiness as its probes last said (None: no
    /// readiness result yet, and then only a container without a readiness
    /// probe is ready).
    pub ready: &'a (dyn Fn(&str) -> Option<bool> + Sync),
    pub host_ip: &'a str,
    /// The running sandbox's address, if any.
    pub pod_ip: Option<&'a str>,
    /// `docker`, `fake`.
    pub scheme: &'a str,
    /// Set when the pod cannot start at all (no podCIDR, a missing volume).
    pub message: Option<(String, String)>,
    /// An init container failed with restartPolicy Never.
    pub init_failed: bool,
    pub now: DateTime<Utc>,
}

/// The instances of one container, newest first.
pub fn instances<'a>(containers: &'a [ContainerInfo], kind: &str, name: &str) -> Vec<&'a ContainerInfo> {
    let mut v: Vec<&ContainerInfo> =
        containers.iter().filter(|c| c.label(labels::CONTAINER_TYPE) == kind && c.label(labels::CONTAINER_NAME) == name).collect();
    v.sort_by(|a, b| b.restart_count().cmp(&a.restart_count()).then(b.created.cmp(&a.created)));
    v
}

fn terminated(c: &ContainerInfo, scheme: &str) -> ContainerStateTerminated {
    let reason = if c.oom_killed {
        "OOMKilled"
    } else if c.state == ContainerState::Created && !c.error.is_empty() {
        "StartError"
    } else if c.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let exit_code = if c.state == ContainerState::Created && c.exit_code == 0 { 128 } else { c.exit_code as i32 };
    ContainerStateTerminated {
        exit_code,
        signal: 0,
        reason: reason.into(),
        message: c.error.clone(),
        started_at: c.started_at.map(rfc3339).unwrap_or_default(),
        finished_at: c.finished_at.or(c.created).map(rfc3339).unwrap_or_default(),
        container_id: format!("{scheme}://{}", c.id),
    }
}

/// Whether an instance has ended (exited, or created and failed to start).
pub fn has_ended(c: &ContainerInfo) -> bool {
    c.state == ContainerState::Exited || (c.state == ContainerState::Created && !c.error.is_empty())
}

fn container_status(o: &Observed, kind: &'static str, spec: &Container, default_wait: &str) -> ContainerStatus {
    let all = instances(o.containers, kind, &spec.name);
    let current = all.first().copied();
    let previous = all.get(1).copied();
    let mut s = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone(),
        restart_count: current.map(|c| c.restart_count()).unwrap_or(0),
        ..Default::default()
    };
    if let Some(c) = current {
        s.image_id = format!("{}://{}", o.scheme, c.image_id);
        s.container_id = format!("{}://{}", o.scheme, c.id);
    }
    let waiting = o.waiting.get(&(kind, spec.name.clone()));
    let last = |c: Option<&ContainerInfo>| {
        c.filter(|c| has_ended(c)).map(|c| ApiState { terminated: Some(terminated(c, o.scheme)), ..Default::default() })
    };
    match (waiting, current) {
        (Some(w), cur) => {
            s.state = Some(ApiState {
                waiting: Some(ContainerStateWaiting { reason: w.reason.clone(), message: w.message.clone() }),
                ..Default::default()
            });
            // Waiting to restart: the instance that ended is the last state.
            s.last_state = last(cur).or_else(|| last(previous));
            s.started = Some(false);
        }
        (None, Some(c)) if c.is_running() => {
            s.state = Some(ApiState {
                running: Some(ContainerStateRunning { started_at: c.started_at.map(rfc3339).unwrap_or_default() }),
                ..Default::default()
            });
            s.last_state = last(previous);
            // A container with a readiness probe is not ready until the probe
            // says so, even before its prober has started.
            s.ready = (o.ready)(&c.id).unwrap_or(spec.readiness_probe.is_none());
            s.started = Some(true);
        }
        (None, Some(c)) if has_ended(c) => {
            s.state = Some(ApiState { terminated: Some(terminated(c, o.scheme)), ..Default::default() });
            s.last_state = last(previous);
            s.started = Some(false);
        }
        (None, _) => {
            s.state = Some(ApiState {
                waiting: Some(ContainerStateWaiting { reason: default_wait.into(), message: String::new() }),
                ..Default::default()
            });
            s.last_state = last(previous);
            s.started = Some(false);
        }
    }
    if s.last_state.is_none() {
        s.last_state = Some(ApiState::default());
    }
    s
}

fn condition(old: &PodStatus, kind: &str, ok: bool, reason: &str, message: String, now: &str) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = old
        .conditions
        .iter()
        .find(|c| c.r#type == kind && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| now.to_string());
    PodCondition {
        r#type: kind.into(),
        status: status.into(),
        last_probe_time: String::new(),
        last_transition_time: since,
        reason: if ok { String::new() } else { reason.into() },
        message: if ok { String::new() } else { message },
    }
}

/// The pod's phase from its containers' statuses (Kubernetes' getPhase).
fn phase(restart_policy: &str, statuses: &[ContainerStatus]) -> &'static str {
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = &st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s.last_state.as_ref().is_some_and(|l| l.terminated.is_some()) {
            // Waiting to restart after a run.
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded && statuses.iter().all(|s| s.state.as_ref().is_some_and(|x| x.terminated.is_some())) => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

/// The pod's new status.
pub fn compute(o: &Observed) -> PodStatus {
    let old = o.pod.status.clone().unwrap_or_default();
    let spec = o.pod.spec.clone().unwrap_or_default();
    let now = rfc3339(o.now);

    let init_statuses: Vec<ContainerStatus> =
        spec.init_containers.iter().map(|c| container_status(o, labels::TYPE_INIT, c, "PodInitializing")).collect();
    // Initialized: every init container completed, or an app container already ran.
    let app_started = spec.containers.iter().any(|c| !instances(o.containers, labels::TYPE_APP, &c.name).is_empty());
    let incomplete: Vec<String> = init_statuses
        .iter()
        .filter(|s| s.state.as_ref().and_then(|x| x.terminated.as_ref()).is_none_or(|t| t.exit_code != 0))
        .map(|s| s.name.clone())
        .collect();
    let initialized = app_started || incomplete.is_empty();
    let app_default = if initialized { "ContainerCreating" } else { "PodInitializing" };
    let statuses: Vec<ContainerStatus> = spec.containers.iter().map(|c| container_status(o, labels::TYPE_APP, c, app_default)).collect();

    let mut phase = if o.init_failed {
        "Failed"
    } else if !initialized {
        "Pending"
    } else {
        phase(&spec.restart_policy, &statuses)
    };
    // A pod never leaves a terminal phase.
    if matches!(old.phase.as_str(), "Succeeded" | "Failed") {
        phase = if old.phase == "Succeeded" { "Succeeded" } else { "Failed" };
    }
    let unready: Vec<String> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.clone()).collect();
    let ready = unready.is_empty() && phase == "Running";
    let (ready_reason, ready_message) = if phase == "Succeeded" || phase == "Failed" {
        ("PodCompleted", String::new())
    } else {
        ("ContainersNotReady", format!("containers with unready status: [{}]", unready.join(" ")))
    };
    let scheduled = old
        .conditions
        .iter()
        .find(|c| c.r#type == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| condition(&old, "PodScheduled", true, "", String::new(), &now));
    let conditions = vec![
        condition(
            &old,
            "Initialized",
            initialized,
            "ContainersNotInitialized",
            format!("containers with incomplete status: [{}]", incomplete.join(" ")),
            &now,
        ),
        condition(&old, "Ready", ready, ready_reason, ready_message.clone(), &now),
        condition(&old, "ContainersReady", ready, ready_reason, ready_message, &now),
        scheduled,
    ];
    let pod_ip = o.pod_ip.map(str::to_string).unwrap_or_else(|| {
        // A finished pod keeps the address it had.
        if matches!(phase, "Succeeded" | "Failed") { old.pod_ip.clone() } else { String::new() }
    });
    let (reason, message) = o.message.clone().unwrap_or_default();
    PodStatus {
        phase: phase.into(),
        conditions,
        message,
        reason,
        host_ip: o.host_ip.to_string(),
        pod_ips: if pod_ip.is_empty() { Vec::new() } else { vec![PodIp { ip: pod_ip.clone() }] },
        pod_ip,
        start_time: if old.start_time.is_empty() { now.clone() } else { old.start_time.clone() },
        init_container_statuses: init_statuses,
        container_statuses: statuses,
        qos_class: old.qos_class.clone(),
        nominated_node_name: old.nominated_node_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::{Container, ObjectMeta, PodSpec};

    use super::*;

    fn info(name: &str, kind: &str, state: ContainerState, exit: i64, restarts: i32) -> ContainerInfo {
        ContainerInfo {
            id: format!("{name}-{restarts}"),
            name: name.into(),
            labels: [
                (labels::CONTAINER_NAME.to_string(), name.to_string()),
                (labels::CONTAINER_TYPE.to_string(), kind.to_string()),
                (labels::RESTART_COUNT.to_string(), restarts.to_string()),
            ]
            .into(),
            image: "img".into(),
            image_id: "sha256:abc".into(),
            state,
            exit_code: exit,
            oom_killed: false,
            error: String::new(),
            created: Some(Utc::now()),
            started_at: Some(Utc::now()),
            finished_at: (state == ContainerState::Exited).then(Utc::now),
        }
    }

    fn pod(policy: &str, containers: &[&str]) -> Pod {
        Pod {
            metadata: Some(ObjectMeta { name: "p".into(), uid: "u".into(), ..Default::default() }),
            spec: Some(PodSpec {
                restart_policy: policy.into(),
                containers: containers
                    .iter()
                    .map(|n| Container { name: n.to_string(), image: "img".into(), ..Default::default() })
                    .collect(),
                ..Default::default()
            }),
            status: Some(PodStatus { phase: "Pending".into(), ..Default::default() }),
            ..Default::default()
        }
    }

    fn observe(pod: &Pod, containers: &[ContainerInfo], waiting: &HashMap<(&'static str, String), Waiting>) -> PodStatus {
        let ready = |_: &str| Some(true);
        compute(&Observed {
            pod,
            containers,
            waiting,
            ready: &ready,
            host_ip: "127.0.0.1",
            pod_ip: Some("172.30.1.2"),
            scheme: "docker",
            message: None,
            init_failed: false,
            now: Utc::now(),
        })
    }

    fn cond<'a>(s: &'a PodStatus, kind: &str) -> &'a str {
        s.conditions.iter().find(|c| c.r#type == kind).map(|c| c.status.as_str()).unwrap_or("")
    }

    #[test]
    fn should_be_running_and_ready_when_every_container_runs() {
        let p = pod("Always", &["a", "b"]);
        let cs = [info("a", labels::TYPE_APP, ContainerState::Running, 0, 0), info("b", labels::TYPE_APP, ContainerState::Running, 0, 0)];
        let s = observe(&p, &cs, &HashMap::new());
        assert_eq!(s.phase, "Running");
        assert_eq!(cond(&s, "Ready"), "True");
        assert_eq!(cond(&s, "Initialized"), "True");
        assert_eq!(s.pod_ip, "172.30.1.2");
        assert_eq!(s.container_statuses[0].container_id, "docker://a-0");
    }

    #[test]
    fn should_show_crash_loop_back_off_with_the_last_termination() {
        let p = pod("Always", &["a"]);
        let cs = [info("a", labels::TYPE_APP, ContainerState::Exited, 1, 3), info("a", labels::TYPE_APP, ContainerState::Exited, 1, 2)];
        let mut w = HashMap::new();
        w.insert((labels::TYPE_APP, "a".to_string()), Waiting { reason: "CrashLoopBackOff".into(), message: "back-off".into() });
        let s = observe(&p, &cs, &w);
        let c = &s.container_statuses[0];
        assert_eq!(c.restart_count, 3);
        assert_eq!(c.state.as_ref().unwrap().waiting.as_ref().unwrap().reason, "CrashLoopBackOff");
        assert_eq!(c.last_state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 1);
        assert_eq!(s.phase, "Running");
        assert_eq!(cond(&s, "Ready"), "False");
    }

    #[test]
    fn should_finish_per_restart_policy() {
        let done = [info("a", labels::TYPE_APP, ContainerState::Exited, 0, 0)];
        let failed = [info("a", labels::TYPE_APP, ContainerState::Exited, 2, 0)];
        assert_eq!(observe(&pod("Never", &["a"]), &done, &HashMap::new()).phase, "Succeeded");
        assert_eq!(observe(&pod("OnFailure", &["a"]), &done, &HashMap::new()).phase, "Succeeded");
        assert_eq!(observe(&pod("Never", &["a"]), &failed, &HashMap::new()).phase, "Failed");
        assert_eq!(observe(&pod("OnFailure", &["a"]), &failed, &HashMap::new()).phase, "Running");
    }

    #[test]
    fn should_report_oom_kills() {
        let mut c = info("a", labels::TYPE_APP, ContainerState::Exited, 137, 0);
        c.oom_killed = true;
        let s = observe(&pod("Never", &["a"]), &[c], &HashMap::new());
        assert_eq!(s.container_statuses[0].state.as_ref().unwrap().terminated.as_ref().unwrap().reason, "OOMKilled");
    }

    #[test]
    fn should_stay_pending_while_init_containers_run() {
        let mut p = pod("Always", &["a"]);
        p.spec.as_mut().unwrap().init_containers = vec![Container { name: "init".into(), image: "img".into(), ..Default::default() }];
        let cs = [info("init", labels::TYPE_INIT, ContainerState::Running, 0, 0)];
        let s = observe(&p, &cs, &HashMap::new());
        assert_eq!(s.phase, "Pending");
        assert_eq!(cond(&s, "Initialized"), "False");
        assert_eq!(s.container_statuses[0].state.as_ref().unwrap().waiting.as_ref().unwrap().reason, "PodInitializing");
    }

    #[test]
    fn should_keep_transition_times_of_unchanged_conditions() {
        let mut p = pod("Always", &["a"]);
        let cs = [info("a", labels::TYPE_APP, ContainerState::Running, 0, 0)];
        let first = observe(&p, &cs, &HashMap::new());
        let mut old = first.clone();
        for c in &mut old.conditions {
            c.last_transition_time = "2020-01-01T00:00:00Z".into();
        }
        p.status = Some(old);
        let second = observe(&p, &cs, &HashMap::new());
        assert!(second.conditions.iter().all(|c| c.last_transition_time == "2020-01-01T00:00:00Z"));
    }
}
