//! One container of a pod: name (unique across the pod), image, pull and
//! termination-message policies, ports, environment sources, resources,
//! volume mounts, probes and lifecycle handlers (not on init containers) and
//! security context.

use std::collections::{BTreeSet, HashSet};

use super::env::env_var;
use super::id_range;
use super::probe::{ProbeKind, handler, probe};
use super::volume::local_descending_path;
use crate::names;
use crate::pb::core::Container;
use crate::validation::resources::resources;
use crate::validation::{Check, PROTOCOLS, at, idx};

/// What a container's checks need from its pod.
pub(super) struct ContainerCtx<'a> {
    pub(super) volumes: &'a BTreeSet<String>,
    pub(super) volumes_path: &'a str,
    pub(super) host_network: bool,
}

pub(super) fn container(c: &mut Check, ctr: &Container, p: &str, init: bool, ctx: &ContainerCtx<'_>, names_seen: &mut HashSet<String>) {
    let np = at(p, "name");
    if ctr.name.is_empty() {
        c.required(&np, "");
    } else {
        c.invalid_all(&np, &ctr.name, names::dns1123_label(&ctr.name));
        if !names_seen.insert(ctr.name.clone()) {
            c.duplicate(&np, &ctr.name);
        }
    }
    let ip = at(p, "image");
    if ctr.image.is_empty() {
        c.required(&ip, "");
    } else if ctr.image.trim() != ctr.image {
        c.invalid(&ip, &ctr.image, "must not have leading or trailing whitespace");
    }
    c.one_of(&at(p, "imagePullPolicy"), &ctr.image_pull_policy, &["Always", "IfNotPresent", "Never"], true);
    c.one_of(&at(p, "terminationMessagePolicy"), &ctr.termination_message_policy, &["File", "FallbackToLogsOnError"], false);

    // Ports.
    let mut port_names = HashSet::new();
    for (i, port) in ctr.ports.iter().enumerate() {
        let pp = idx(&at(p, "ports"), i);
        if !port.name.is_empty() {
            let fp = at(&pp, "name");
            c.invalid_all(&fp, &port.name, names::port_name(&port.name));
            if !port_names.insert(port.name.as_str()) {
                c.duplicate(&fp, &port.name);
            }
        }
        let cp = at(&pp, "containerPort");
        if port.container_port == 0 {
            c.required(&cp, "");
        } else {
            c.invalid_all(&cp, port.container_port, names::port_number(port.container_port.into()));
        }
        if port.host_port != 0 {
            c.invalid_all(&at(&pp, "hostPort"), port.host_port, names::port_number(port.host_port.into()));
            if ctx.host_network && port.host_port != port.container_port {
                c.invalid(&cp, port.container_port, "must match `hostPort` when `hostNetwork` is true");
            }
        }
        c.one_of(&at(&pp, "protocol"), &port.protocol, PROTOCOLS, true);
        if !port.host_ip.is_empty() {
            c.invalid_all(&at(&pp, "hostIP"), &port.host_ip, names::ip_address(&port.host_ip));
        }
    }

    // Environment.
    for (i, ef) in ctr.env_from.iter().enumerate() {
        let ep = idx(&at(p, "envFrom"), i);
        if !ef.prefix.is_empty() {
            c.invalid_all(&at(&ep, "prefix"), &ef.prefix, names::env_var_name(&ef.prefix));
        }
        match (&ef.config_map_ref, &ef.secret_ref) {
            (None, None) => c.invalid(&ep, "", "must specify one of: `configMapRef` or `secretRef`"),
            (Some(_), Some(_)) => c.invalid(&ep, "", "may not have more than one field specified at a time"),
            _ => {}
        }
        if let Some(r) = &ef.config_map_ref
            && r.name.is_empty()
        {
            c.required(&at(&at(&ep, "configMapRef"), "name"), "");
        }
        if let Some(r) = &ef.secret_ref
            && r.name.is_empty()
        {
            c.required(&at(&at(&ep, "secretRef"), "name"), "");
        }
    }
    for (i, e) in ctr.env.iter().enumerate() {
        env_var(c, e, &idx(&at(p, "env"), i));
    }

    if let Some(r) = &ctr.resources {
        resources(c, r, &at(p, "resources"));
    }

    // Volume mounts.
    let mut mount_paths = HashSet::new();
    let privileged = ctr.security_context.as_ref().and_then(|s| s.privileged) == Some(true);
    for (i, m) in ctr.volume_mounts.iter().enumerate() {
        let mp = idx(&at(p, "volumeMounts"), i);
        let np = at(&mp, "name");
        if m.name.is_empty() {
            c.required(&np, "");
        } else if !ctx.volumes.contains(&m.name) {
            c.invalid(&np, &m.name, format!("must be the name of a volume in {}", ctx.volumes_path));
        }
        let pp = at(&mp, "mountPath");
        if m.mount_path.is_empty() {
            c.required(&pp, "");
        } else {
            if !m.mount_path.starts_with('/') {
                c.invalid(&pp, &m.mount_path, "must be an absolute path");
            }
            if !mount_paths.insert(m.mount_path.as_str()) {
                c.invalid(&pp, &m.mount_path, "must be unique");
            }
        }
        if !m.sub_path.is_empty() {
            local_descending_path(c, &at(&mp, "subPath"), &m.sub_path);
        }
        let prop = at(&mp, "mountPropagation");
        c.one_of(&prop, &m.mount_propagation, &["None", "HostToContainer", "Bidirectional"], false);
        if m.mount_propagation == "Bidirectional" && !privileged {
            c.forbidden(&prop, "Bidirectional mount propagation is available only to privileged containers");
        }
    }

    // Probes and lifecycle.
    let probes = [
        ("livenessProbe", &ctr.liveness_probe, ProbeKind::Liveness),
        ("readinessProbe", &ctr.readiness_probe, ProbeKind::Readiness),
        ("startupProbe", &ctr.startup_probe, ProbeKind::Startup),
    ];
    for (field, pr, kind) in probes {
        let Some(pr) = pr else { continue };
        let pp = at(p, field);
        if init {
            c.forbidden(&pp, "may not be set for init containers");
            continue;
        }
        probe(c, pr, &pp, kind);
    }
    if let Some(l) = &ctr.lifecycle {
        let lp = at(p, "lifecycle");
        if init {
            c.forbidden(&lp, "may not be set for init containers");
        } else {
            for (field, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
                if let Some(h) = h {
                    handler(c, h.exec.as_ref(), h.http_get.as_ref(), h.tcp_socket.as_ref(), &at(&lp, field));
                }
            }
        }
    }

    if let Some(sc) = &ctr.security_context {
        let sp = at(p, "securityContext");
        if let Some(caps) = &sc.capabilities {
            for (field, list) in [("add", &caps.add), ("drop", &caps.drop)] {
                for (i, cap) in list.iter().enumerate() {
                    let fp = idx(&at(&at(&sp, "capabilities"), field), i);
                    if cap.is_empty() {
                        c.invalid(&fp, cap, "must not be empty");
                    } else if !cap.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        c.invalid(&fp, cap, "a capability name must consist of letters, digits and '_' (e.g. 'NET_ADMIN')");
                    }
                }
            }
        }
        id_range(c, &at(&sp, "runAsUser"), sc.run_as_user);
        id_range(c, &at(&sp, "runAsGroup"), sc.run_as_group);
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            c.invalid(&sp, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::core::{Capabilities, ContainerPort, Lifecycle, Probe, SecurityContext, VolumeMount};
    use crate::validation::test_support::*;

    #[test]
    fn should_refuse_container_names_repeated_across_init_and_app_containers() {
        let o = pod_with(|s| s.init_containers = vec![ctr("web")]);
        assert_eq!(assert_error_at(&o, "spec.containers[0].name"), "spec.containers[0].name: Duplicate value: \"web\"");
        let o = pod_with(|s| s.containers.push(ctr("web")));
        assert_eq!(assert_error_at(&o, "spec.containers[1].name"), "spec.containers[1].name: Duplicate value: \"web\"");
        assert_error_at(&ctr_with(|c| c.name = "Web_1".into()), "spec.containers[0].name");
        assert_error_at(&ctr_with(|c| c.name.clear()), "spec.containers[0].name");
    }

    #[test]
    fn should_require_an_image_without_surrounding_blanks() {
        assert_eq!(assert_error_at(&ctr_with(|c| c.image.clear()), "spec.containers[0].image"), "spec.containers[0].image: Required value");
        assert_error_at(&ctr_with(|c| c.image = " nginx".into()), "spec.containers[0].image");
    }

    #[test]
    fn should_check_container_ports() {
        assert_eq!(
            assert_error_at(&ctr_with(|c| c.ports = vec![port(0)]), "spec.containers[0].ports[0].containerPort"),
            "spec.containers[0].ports[0].containerPort: Required value"
        );
        assert_eq!(
            assert_error_at(&ctr_with(|c| c.ports = vec![port(70000)]), "spec.containers[0].ports[0].containerPort"),
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_error_at(&ctr_with(|c| c.ports = vec![ContainerPort { host_port: -1, ..port(80) }]), "spec.containers[0].ports[0].hostPort");
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { protocol: "HTTP".into(), ..port(80) }]),
            "spec.containers[0].ports[0].protocol",
        );
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { protocol: String::new(), ..port(80) }]),
            "spec.containers[0].ports[0].protocol",
        );
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { name: "HTTP".into(), ..port(80) }]),
            "spec.containers[0].ports[0].name",
        );
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { name: "a-very-long-port-name".into(), ..port(80) }]),
            "spec.containers[0].ports[0].name",
        );
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { host_ip: "10.0.0.256".into(), ..port(80) }]),
            "spec.containers[0].ports[0].hostIP",
        );
        let dup = ctr_with(|c| {
            c.ports = vec![ContainerPort { name: "http".into(), ..port(80) }, ContainerPort { name: "http".into(), ..port(81) }]
        });
        assert_eq!(
            assert_error_at(&dup, "spec.containers[0].ports[1].name"),
            "spec.containers[0].ports[1].name: Duplicate value: \"http\""
        );
    }

    #[test]
    fn should_require_host_port_to_match_container_port_on_host_network() {
        let o = pod_with(|s| {
            s.host_network = Some(true);
            s.containers[0].ports = vec![ContainerPort { host_port: 8080, ..port(80) }];
        });
        assert_error_at(&o, "spec.containers[0].ports[0].containerPort");
    }

    #[test]
    fn should_require_mounts_of_defined_volumes_at_unique_absolute_paths() {
        let o = |mounts: Vec<VolumeMount>| {
            pod_with(|s| {
                s.volumes = vec![empty_dir("data")];
                s.containers[0].volume_mounts = mounts;
            })
        };
        assert_valid(&o(vec![mount("data", "/data")]));
        assert!(assert_error_at(&o(vec![mount("cache", "/cache")]), "spec.containers[0].volumeMounts[0].name").contains("spec.volumes"));
        assert_error_at(&o(vec![mount("data", "")]), "spec.containers[0].volumeMounts[0].mountPath");
        assert_error_at(&o(vec![mount("data", "data")]), "spec.containers[0].volumeMounts[0].mountPath");
        assert!(
            assert_error_at(&o(vec![mount("data", "/a"), mount("data", "/a")]), "spec.containers[0].volumeMounts[1].mountPath")
                .contains("must be unique")
        );
        assert_error_at(
            &o(vec![VolumeMount { sub_path: "../x".into(), ..mount("data", "/a") }]),
            "spec.containers[0].volumeMounts[0].subPath",
        );
        assert_error_at(
            &o(vec![VolumeMount { mount_propagation: "Bidirectional".into(), ..mount("data", "/a") }]),
            "spec.containers[0].volumeMounts[0].mountPropagation",
        );
    }

    #[test]
    fn should_forbid_probes_and_lifecycle_on_init_containers() {
        let o = pod_with(|s| {
            s.init_containers =
                vec![Container { liveness_probe: Some(Probe { http_get: http("80"), ..Default::default() }), ..ctr("init") }]
        });
        assert_error_at(&o, "spec.initContainers[0].livenessProbe");
        let o = pod_with(|s| s.init_containers = vec![Container { lifecycle: Some(Lifecycle::default()), ..ctr("init") }]);
        assert_error_at(&o, "spec.initContainers[0].lifecycle");
    }

    #[test]
    fn should_check_container_security_context() {
        let caps = |add: &[&str]| {
            ctr_with(|c| {
                c.security_context = Some(SecurityContext {
                    capabilities: Some(Capabilities { add: add.iter().map(|s| s.to_string()).collect(), drop: vec![] }),
                    ..Default::default()
                })
            })
        };
        assert_valid(&caps(&["IPC_LOCK", "CAP_SYS_ADMIN"]));
        assert_error_at(&caps(&[""]), "spec.containers[0].securityContext.capabilities.add[0]");
        assert_error_at(&caps(&["NET ADMIN"]), "spec.containers[0].securityContext.capabilities.add[0]");
        let esc = ctr_with(|c| {
            c.security_context =
                Some(SecurityContext { privileged: Some(true), allow_privilege_escalation: Some(false), ..Default::default() })
        });
        assert_error_at(&esc, "spec.containers[0].securityContext");
    }
}
