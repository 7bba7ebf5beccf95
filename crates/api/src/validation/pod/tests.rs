//! Tests of the pod-level rules: a pod using every feature, pod spec and
//! status fields, host ports across containers, and updates.

use super::*;
use crate::Resource;
use crate::pb::core::{
    Affinity, Capabilities, ConfigMapEnvSource, ConfigMapVolumeSource, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource,
    ExecAction, HostPathVolumeSource, HttpGetAction, KeyToPath, Lifecycle, LifecycleHandler, LocalObjectReference, NodeAffinity,
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector, PersistentVolumeClaimVolumeSource, PodDnsConfig,
    PodDnsConfigOption, PodSecurityContext, PreferredSchedulingTerm, Probe, ResourceFieldSelector, ResourceRequirements, SecretKeySelector,
    SecretVolumeSource, SecurityContext, TcpSocketAction, Toleration, Volume,
};
use crate::validation::test_support::*;
use crate::validation::validate_update;

// The builder, not the check of the same name that `super::*` brings.
use crate::validation::test_support::pod_spec;

#[test]
fn should_accept_a_pod_using_every_feature() {
    let o = pod_with(|s| {
        s.volumes = vec![
            empty_dir("scratch"),
            Volume {
                name: "certs".into(),
                secret: Some(SecretVolumeSource { secret_name: "tls".into(), default_mode: Some(0o400), ..Default::default() }),
                ..Default::default()
            },
            Volume {
                name: "conf".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "app".into(),
                    items: vec![KeyToPath { key: "app.properties".into(), path: "conf/app.properties".into(), mode: None }],
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "logs".into(),
                host_path: Some(HostPathVolumeSource { path: "/var/log".into(), r#type: "Directory".into() }),
                ..Default::default()
            },
            Volume {
                name: "db".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: "db".into(), read_only: None }),
                ..Default::default()
            },
        ];
        s.init_containers = vec![ctr("setup")];
        s.init_containers[0].volume_mounts = vec![mount("scratch", "/scratch")];
        let c = &mut s.containers[0];
        c.ports = vec![
            ContainerPort { name: "http".into(), host_port: 8080, ..port(80) },
            ContainerPort { name: "dns".into(), protocol: "UDP".into(), ..port(53) },
        ];
        c.env = vec![
            EnvVar { name: "MODE".into(), value: "prod".into(), ..Default::default() },
            EnvVar {
                name: "POD_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector { api_version: "v1".into(), field_path: "metadata.name".into() }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "APP".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector { api_version: String::new(), field_path: "metadata.labels['app']".into() }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "CPU".into(),
                value_from: Some(EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "limits.cpu".into(),
                        divisor: "1m".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "PASSWORD".into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector { name: "creds".into(), key: "password".into(), optional: None }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        c.env_from = vec![EnvFromSource {
            prefix: "CFG_".into(),
            config_map_ref: Some(ConfigMapEnvSource { name: "app".into(), optional: None }),
            secret_ref: None,
        }];
        c.resources = Some(ResourceRequirements {
            limits: map(&[("cpu", "1"), ("memory", "128Mi"), ("example.com/gpu", "1")]),
            requests: map(&[("cpu", "500m"), ("memory", "64Mi"), ("example.com/gpu", "1"), ("hugepages-2Mi", "0")]),
        });
        c.volume_mounts = vec![
            mount("scratch", "/scratch"),
            mount("certs", "/etc/tls"),
            mount("conf", "/etc/app"),
            mount("logs", "/var/log/app"),
            mount("db", "/data"),
        ];
        c.liveness_probe = Some(Probe {
            http_get: Some(HttpGetAction { path: "/healthz".into(), port: "http".into(), scheme: "HTTP".into(), ..Default::default() }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(10),
            success_threshold: Some(1),
            ..Default::default()
        });
        c.readiness_probe = Some(Probe {
            tcp_socket: Some(TcpSocketAction { port: "80".into(), host: String::new() }),
            success_threshold: Some(3),
            ..Default::default()
        });
        c.startup_probe =
            Some(Probe { exec: Some(ExecAction { command: vec!["true".into()] }), failure_threshold: Some(30), ..Default::default() });
        c.lifecycle = Some(Lifecycle {
            pre_stop: Some(LifecycleHandler { exec: Some(ExecAction { command: vec!["sleep".into(), "5".into()] }), ..Default::default() }),
            post_start: None,
        });
        c.security_context = Some(SecurityContext {
            capabilities: Some(Capabilities { add: vec!["NET_ADMIN".into()], drop: vec!["ALL".into()] }),
            run_as_user: Some(1000),
            ..Default::default()
        });
        s.containers.push(Container { ports: vec![ContainerPort { host_port: 8080, ..port(8080) }], ..ctr("sidecar") });
        s.containers[1].ports[0].protocol = "UDP".into();
        s.node_selector = map(&[("kubernetes.io/os", "linux")]);
        s.termination_grace_period_seconds = Some(0);
        s.active_deadline_seconds = Some(600);
        s.service_account_name = "default".into();
        s.tolerations = vec![
            Toleration {
                key: "dedicated".into(),
                operator: "Equal".into(),
                value: "web".into(),
                effect: "NoSchedule".into(),
                toleration_seconds: None,
            },
            Toleration { operator: "Exists".into(), ..Default::default() },
            Toleration {
                key: "node.kubernetes.io/unreachable".into(),
                operator: "Exists".into(),
                effect: "NoExecute".into(),
                toleration_seconds: Some(300),
                ..Default::default()
            },
        ];
        s.affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: vec![
                            NodeSelectorRequirement { key: "zone".into(), operator: "In".into(), values: vec!["a".into(), "b".into()] },
                            NodeSelectorRequirement { key: "gpu".into(), operator: "Exists".into(), values: vec![] },
                            NodeSelectorRequirement { key: "cores".into(), operator: "Gt".into(), values: vec!["4".into()] },
                        ],
                        match_fields: vec![NodeSelectorRequirement {
                            key: "metadata.name".into(),
                            operator: "In".into(),
                            values: vec!["node-1".into()],
                        }],
                    }],
                }),
                preferred_during_scheduling_ignored_during_execution: vec![PreferredSchedulingTerm {
                    weight: 50,
                    preference: Some(NodeSelectorTerm {
                        match_expressions: vec![NodeSelectorRequirement {
                            key: "ssd".into(),
                            operator: "DoesNotExist".into(),
                            values: vec![],
                        }],
                        match_fields: vec![],
                    }),
                }],
            }),
        });
    });
    assert_valid(&o);
}

#[test]
fn should_require_at_least_one_container() {
    assert_eq!(assert_error_at(&pod_with(|s| s.containers.clear()), "spec.containers"), "spec.containers: Required value");
}

#[test]
fn should_refuse_unknown_restart_and_pull_policies() {
    let o = pod_with(|s| s.restart_policy = "Sometimes".into());
    assert_eq!(
        assert_error_at(&o, "spec.restartPolicy"),
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
    );
    assert_eq!(assert_error_at(&pod_with(|s| s.restart_policy.clear()), "spec.restartPolicy"), "spec.restartPolicy: Required value");
    assert_error_at(&ctr_with(|c| c.image_pull_policy = "Sometimes".into()), "spec.containers[0].imagePullPolicy");
    assert_error_at(&ctr_with(|c| c.image_pull_policy.clear()), "spec.containers[0].imagePullPolicy");
}

#[test]
fn should_refuse_a_host_port_used_twice_in_a_pod() {
    let o = pod_with(|s| {
        s.containers[0].ports = vec![ContainerPort { host_port: 8080, ..port(80) }];
        s.containers.push(Container { ports: vec![ContainerPort { host_port: 8080, ..port(81) }], ..ctr("b") });
    });
    assert_eq!(
        assert_error_at(&o, "spec.containers[1].ports[0].hostPort"),
        "spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//8080\""
    );
}

#[test]
fn should_check_pod_level_fields() {
    assert_error_at(&pod_with(|s| s.node_selector = map(&[("disk", "fast ssd")])), "spec.nodeSelector");
    assert_eq!(
        assert_error_at(&pod_with(|s| s.termination_grace_period_seconds = Some(-1)), "spec.terminationGracePeriodSeconds"),
        "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_error_at(&pod_with(|s| s.active_deadline_seconds = Some(0)), "spec.activeDeadlineSeconds");
    assert_error_at(&pod_with(|s| s.dns_policy = "Google".into()), "spec.dnsPolicy");
    assert_valid(&pod_with(|s| s.dns_policy.clear()));
    let dns = |nameservers: &[&str], searches: Vec<String>| PodDnsConfig {
        nameservers: nameservers.iter().map(|s| s.to_string()).collect(),
        searches,
        options: vec![PodDnsConfigOption { name: "ndots".into(), value: Some("2".into()) }],
    };
    assert_valid(&pod_with(|s| {
        s.dns_policy = "None".into();
        s.dns_config = Some(dns(&["10.0.0.1", "fd00::1"], vec!["svc.example.".into(), "example.org".into()]));
    }));
    assert_error_at(&pod_with(|s| s.dns_policy = "None".into()), "spec.dnsConfig");
    assert_error_at(
        &pod_with(|s| {
            s.dns_policy = "None".into();
            s.dns_config = Some(dns(&[], vec![]));
        }),
        "spec.dnsConfig.nameservers",
    );
    assert_eq!(
        assert_error_at(
            &pod_with(|s| s.dns_config = Some(dns(&["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"], vec![]))),
            "spec.dnsConfig.nameservers"
        ),
        "spec.dnsConfig.nameservers: Invalid value: [1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4]: must not have more than 3 nameservers"
    );
    assert_error_at(&pod_with(|s| s.dns_config = Some(dns(&["dns.example"], vec![]))), "spec.dnsConfig.nameservers[0]");
    assert_error_at(
        &pod_with(|s| s.dns_config = Some(dns(&[], (0..33).map(|i| format!("d{i}.example")).collect()))),
        "spec.dnsConfig.searches",
    );
    assert_error_at(&pod_with(|s| s.dns_config = Some(dns(&[], vec!["Bad_Domain".into()]))), "spec.dnsConfig.searches[0]");
    assert_error_at(&pod_with(|s| s.node_name = "Node_1".into()), "spec.nodeName");
    assert_error_at(&pod_with(|s| s.service_account_name = "My SA".into()), "spec.serviceAccountName");
    assert_error_at(&pod_with(|s| s.hostname = "a.b".into()), "spec.hostname");
    assert_error_at(&pod_with(|s| s.image_pull_secrets = vec![LocalObjectReference::default()]), "spec.imagePullSecrets[0].name");
    assert_error_at(
        &pod_with(|s| s.security_context = Some(PodSecurityContext { run_as_user: Some(-1), ..Default::default() })),
        "spec.securityContext.runAsUser",
    );
}

#[test]
fn should_check_pod_status_addresses_and_phase() {
    let mut p = pod_of(pod_spec());
    p.status = Some(PodStatus { phase: "Running".into(), pod_ip: "172.30.0.7".into(), host_ip: "10.0.0.1".into(), ..Default::default() });
    assert_valid(&p.clone().into_object());
    p.status = Some(PodStatus { phase: "Sleeping".into(), pod_ip: "172.30.0.300".into(), ..Default::default() });
    let errs = errors(&p.into_object());
    error_at(&errs, "status.phase");
    error_at(&errs, "status.podIP");
}

// ---------------------------------------------------------------- updates

#[test]
fn should_allow_pod_updates_of_images_deadlines_grace_and_new_tolerations() {
    let old = pod_obj(|s| {
        s.init_containers = vec![ctr("init")];
        s.tolerations = vec![Toleration {
            key: "k".into(),
            operator: "Exists".into(),
            effect: "NoExecute".into(),
            toleration_seconds: Some(60),
            ..Default::default()
        }];
        s.active_deadline_seconds = Some(100);
    });
    let new = pod_obj(|s| {
        s.init_containers = vec![Container { image: "busybox:1.37".into(), ..ctr("init") }];
        s.containers[0].image = "nginx:1.27".into();
        s.tolerations = vec![
            Toleration {
                key: "k".into(),
                operator: "Exists".into(),
                effect: "NoExecute".into(),
                toleration_seconds: Some(30),
                ..Default::default()
            },
            Toleration { key: "extra".into(), operator: "Exists".into(), ..Default::default() },
        ];
        s.active_deadline_seconds = Some(50);
        s.termination_grace_period_seconds = Some(5);
    });
    if let Err(e) = validate_update(&old, &new) {
        panic!("{e}");
    }
}

#[test]
fn should_forbid_other_pod_spec_changes() {
    let old = pod_obj(|_| {});
    let new = pod_obj(|s| s.restart_policy = "Never".into());
    let msg = error_at(&update_errors(&old, &new), "spec");
    assert!(msg.starts_with(&format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN}")), "{msg}");
    assert!(msg.contains("spec.restartPolicy"), "{msg}");
    let added = pod_obj(|s| s.containers.push(ctr("sidecar")));
    error_at(&update_errors(&old, &added), "spec");
    let ports = pod_obj(|s| s.containers[0].ports = vec![port(80)]);
    error_at(&update_errors(&old, &ports), "spec");
}

#[test]
fn should_allow_setting_node_name_once() {
    let unbound = pod_obj(|_| {});
    let bound = pod_obj(|s| s.node_name = "node-1".into());
    assert!(validate_update(&unbound, &bound).is_ok());
    let moved = pod_obj(|s| s.node_name = "node-2".into());
    error_at(&update_errors(&bound, &moved), "spec");
    error_at(&update_errors(&bound, &unbound), "spec");
}

#[test]
fn should_refuse_removing_tolerations_or_raising_deadlines() {
    let t = Toleration { key: "k".into(), operator: "Exists".into(), ..Default::default() };
    let old = pod_obj(|s| {
        s.tolerations = vec![t.clone()];
        s.active_deadline_seconds = Some(10);
    });
    let removed = pod_obj(|s| s.active_deadline_seconds = Some(10));
    assert_eq!(
        error_at(&update_errors(&old, &removed), "spec.tolerations"),
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
    );
    let raised = pod_obj(|s| {
        s.tolerations = vec![t.clone()];
        s.active_deadline_seconds = Some(20);
    });
    error_at(&update_errors(&old, &raised), "spec.activeDeadlineSeconds");
    let unset = pod_obj(|s| s.tolerations = vec![t]);
    error_at(&update_errors(&old, &unset), "spec.activeDeadlineSeconds");
}
