//! The pod view: where it runs, its status, containers, conditions, volumes and scheduling.

use berth_api::pb::core::{ObjectMeta, Pod, Volume};
use berth_api::printers::age;
use chrono::{DateTime, Utc};

use super::container::containers;
use super::{Doc, labels_and_annotations, list, or_none, selector_text, time};

pub(super) fn view(d: &mut Doc, p: &Pod, now: DateTime<Utc>) {
    let empty = ObjectMeta::default();
    let m = p.metadata.as_ref().unwrap_or(&empty);
    let spec = p.spec.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    d.kv(0, "Name", &m.name);
    d.kv(0, "Namespace", &m.namespace);
    if let Some(prio) = spec.priority {
        d.kv(0, "Priority", prio);
    }
    if !spec.service_account_name.is_empty() {
        d.kv(0, "Service Account", &spec.service_account_name);
    }
    let node = match (spec.node_name.is_empty(), status.host_ip.is_empty()) {
        (true, _) => "<none>".to_string(),
        (false, true) => spec.node_name.clone(),
        (false, false) => format!("{}/{}", spec.node_name, status.host_ip),
    };
    d.kv(0, "Node", node);
    if !status.start_time.is_empty() {
        d.kv(0, "Start Time", time(&status.start_time));
    }
    labels_and_annotations(d, m);
    if m.deletion_timestamp.is_empty() {
        d.kv(0, "Status", or_none(&status.phase));
    } else {
        d.kv(0, "Status", format!("Terminating (lasts {})", age(&m.deletion_timestamp, now).trim_start_matches('-')));
        if let Some(g) = m.deletion_grace_period_seconds {
            d.kv(0, "Termination Grace Period", format!("{g}s"));
        }
    }
    if !status.reason.is_empty() {
        d.kv(0, "Reason", &status.reason);
    }
    if !status.message.is_empty() {
        d.kv(0, "Message", &status.message);
    }
    d.kv(0, "IP", &status.pod_ip);
    if let Some(owner) = m.owner_references.iter().find(|o| o.controller == Some(true)) {
        d.kv(0, "Controlled By", format!("{}/{}", owner.kind, owner.name));
    }
    if !spec.init_containers.is_empty() {
        containers(d, 0, "Init Containers", &spec.init_containers, &status.init_container_statuses);
    }
    containers(d, 0, "Containers", &spec.containers, &status.container_statuses);
    if !status.conditions.is_empty() {
        d.line(0, "Conditions:");
        d.line(2, "Type\tStatus");
        for c in &status.conditions {
            d.line(2, format!("{}\t{}", c.r#type, c.status));
        }
    }
    volumes(d, &spec.volumes);
    if !status.qos_class.is_empty() {
        d.kv(0, "QoS Class", &status.qos_class);
    }
    d.kv(0, "Node-Selectors", selector_text(&spec.node_selector));
    let tolerations: Vec<String> = spec
        .tolerations
        .iter()
        .map(|t| {
            let mut s = t.key.clone();
            if !t.value.is_empty() {
                s.push_str(&format!("={}", t.value));
            }
            if !t.effect.is_empty() {
                s.push_str(&format!(":{}", t.effect));
            }
            if !t.operator.is_empty() {
                s.push_str(&format!(" op={}", t.operator));
            }
            if let Some(secs) = t.toleration_seconds {
                s.push_str(&format!(" for {secs}s"));
            }
            s
        })
        .collect();
    list(d, 0, "Tolerations", &tolerations);
}

fn volumes(d: &mut Doc, volumes: &[Volume]) {
    if volumes.is_empty() {
        return d.kv(0, "Volumes", "<none>");
    }
    d.line(0, "Volumes:");
    for v in volumes {
        d.line(2, format!("{}:", v.name));
        if let Some(h) = &v.host_path {
            d.kv(4, "Type", "HostPath (bare host directory volume)");
            d.kv(4, "Path", &h.path);
        } else if let Some(e) = &v.empty_dir {
            d.kv(4, "Type", "EmptyDir (a temporary directory that shares a pod's lifetime)");
            d.kv(4, "Medium", &e.medium);
            d.kv(4, "SizeLimit", or_none(&e.size_limit).replace("<none>", "<unset>"));
        } else if let Some(s) = &v.secret {
            d.kv(4, "Type", "Secret (a volume populated by a Secret)");
            d.kv(4, "SecretName", &s.secret_name);
            d.kv(4, "Optional", s.optional.unwrap_or(false));
        } else if let Some(c) = &v.config_map {
            d.kv(4, "Type", "ConfigMap (a volume populated by a ConfigMap)");
            d.kv(4, "Name", &c.name);
            d.kv(4, "Optional", c.optional.unwrap_or(false));
        } else if let Some(c) = &v.persistent_volume_claim {
            d.kv(4, "Type", "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)");
            d.kv(4, "ClaimName", &c.claim_name);
            d.kv(4, "ReadOnly", c.read_only.unwrap_or(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_api::manifest::parse;
    use berth_api::pb::core::Event;

    use crate::describe::{Related, describe, is_about, test_now as now};

    #[test]
    fn should_describe_a_pod_with_containers_and_events() {
        let objs = parse(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, uid: u1, labels: {app: web, tier: fe}}
spec:
  nodeName: n1
  containers:
  - name: c
    image: busybox
    ports: [{containerPort: 80}]
    env: [{name: FOO, value: bar}]
    resources: {limits: {cpu: 500m}, requests: {memory: 64Mi}}
status:
  phase: Running
  podIP: 172.30.0.5
  hostIP: 10.0.0.1
  conditions: [{type: Ready, status: "True"}]
  containerStatuses: [{name: c, ready: true, restartCount: 1, state: {running: {startedAt: "2024-05-01T11:59:00Z"}}}]
---
apiVersion: v1
kind: Event
metadata: {name: web.1, namespace: default}
involvedObject: {kind: Pod, name: web, namespace: default, uid: u1}
reason: Scheduled
message: Successfully assigned default/web to n1
type: Normal
source: {component: default-scheduler}
lastTimestamp: "2024-05-01T11:59:55Z"
"#,
        )
        .expect("parses");
        let ev: Event = objs[1].clone().into_resource().expect("event");
        assert!(is_about(&ev, &objs[0]));
        let text = describe(&objs[0], &Related { events: vec![ev], ..Default::default() }, now());
        let want = "\
Name:         web
Namespace:    default
Node:         n1/10.0.0.1
Labels:       app=web
              tier=fe
Annotations:  <none>
Status:       Running
IP:           172.30.0.5
Containers:
  c:
    Container ID:
    Image:          busybox
    Image ID:
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Wed, 01 May 2024 11:59:00 +0000
    Ready:          True
    Restart Count:  1
    Limits:
      cpu:  500m
    Requests:
      memory:  64Mi
    Environment:
      FOO:   bar
    Mounts:  <none>
Conditions:
  Type           Status
  Ready          True
Volumes:         <none>
Node-Selectors:  <none>
Tolerations:     <none>
Events:
  Type    Reason     Age   From               Message
  ----    ------     ----  ----               -------
  Normal  Scheduled  5s    default-scheduler  Successfully assigned default/web to n1
";
        assert_eq!(text, want);
    }
}
