//! Services and Endpoints: a Service's type, ports, cluster IPs, external
//! name, session affinity, traffic policies and load balancer fields, and the
//! cluster IP an update may not change; the addresses and ports of Endpoints.

use std::collections::HashSet;
use std::net::IpAddr;

use super::meta::{NameRule, labels, object_meta};
use super::{Check, PROTOCOLS, at, idx, is_cidr, port_num_or_name};
use crate::names;
use crate::pb::core::{Endpoints, Service, ServiceSpec};

// ------------------------------------------------------------------- Service

pub(super) fn service(c: &mut Check, svc: &Service) {
    object_meta(c, svc.metadata.as_ref(), true, NameRule::Dns1035);
    let empty = ServiceSpec::default();
    let s = svc.spec.as_ref().unwrap_or(&empty);
    let ty = s.r#type.as_str();
    c.one_of("spec.type", ty, &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"], true);
    let headless = s.cluster_ip == "None";
    if ty == "ExternalName" {
        if !s.cluster_ip.is_empty() {
            c.forbidden("spec.clusterIP", "may not be set for ExternalName services");
        }
        if s.external_name.is_empty() {
            c.required("spec.externalName", "");
        } else {
            let name = s.external_name.strip_suffix('.').unwrap_or(&s.external_name);
            c.invalid_all("spec.externalName", &s.external_name, names::dns1123_subdomain(name));
        }
    } else if s.ports.is_empty() && !headless {
        c.required("spec.ports", "");
    }
    if !s.cluster_ip.is_empty() && !headless {
        c.invalid_all("spec.clusterIP", &s.cluster_ip, names::ip_address(&s.cluster_ip));
    }
    if headless && matches!(ty, "NodePort" | "LoadBalancer") {
        c.invalid("spec.clusterIP", &s.cluster_ip, format!("may not be set to 'None' for {ty} services"));
    }
    for (i, ip) in s.cluster_ips.iter().enumerate() {
        let p = idx("spec.clusterIPs", i);
        if ip != "None" {
            c.invalid_all(&p, ip, names::ip_address(ip));
        }
        if i == 0 && !s.cluster_ip.is_empty() && *ip != s.cluster_ip {
            c.invalid(&p, ip, "must match `clusterIP`");
        }
    }

    let require_name = s.ports.len() > 1;
    let mut port_names = HashSet::new();
    let mut ports_seen = HashSet::new();
    let mut node_ports = HashSet::new();
    for (i, sp) in s.ports.iter().enumerate() {
        let pp = idx("spec.ports", i);
        let np = at(&pp, "name");
        if sp.name.is_empty() {
            if require_name {
                c.required(&np, "");
            }
        } else {
            c.invalid_all(&np, &sp.name, names::dns1123_label(&sp.name));
            if !port_names.insert(sp.name.as_str()) {
                c.duplicate(&np, &sp.name);
            }
        }
        c.invalid_all(&at(&pp, "port"), sp.port, names::port_number(sp.port.into()));
        c.one_of(&at(&pp, "protocol"), &sp.protocol, PROTOCOLS, true);
        port_num_or_name(c, &at(&pp, "targetPort"), &sp.target_port);
        if !sp.app_protocol.is_empty() {
            c.invalid_all(&at(&pp, "appProtocol"), &sp.app_protocol, names::qualified_name(&sp.app_protocol));
        }
        let k = format!("{}/{}", sp.port, sp.protocol);
        if !ports_seen.insert(k.clone()) {
            c.duplicate(&pp, k);
        }
        if sp.node_port != 0 {
            let npp = at(&pp, "nodePort");
            if matches!(ty, "ClusterIP" | "ExternalName") {
                c.forbidden(&npp, format!("may not be used when `type` is '{ty}'"));
            }
            if !(0..=65535).contains(&sp.node_port) {
                c.invalid(&npp, sp.node_port, "must be between 0 and 65535, inclusive");
            }
            if !node_ports.insert((sp.node_port, sp.protocol.as_str())) {
                c.duplicate(&npp, sp.node_port);
            }
        }
    }

    match s.session_affinity.as_str() {
        "" | "None" => {
            if s.session_affinity_config.is_some() {
                c.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None");
            }
        }
        "ClientIP" => {
            if let Some(t) = s.session_affinity_config.as_ref().and_then(|x| x.client_ip.as_ref()).and_then(|x| x.timeout_seconds)
                && !(1..=86400).contains(&t)
            {
                c.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t, "must be greater than 0 and less than 86400");
            }
        }
        other => c.not_supported("spec.sessionAffinity", other, &["ClientIP", "None"]),
    }
    labels(c, "spec.selector", &s.selector);
    for (i, ip) in s.external_ips.iter().enumerate() {
        c.invalid_all(&idx("spec.externalIPs", i), ip, names::ip_address(ip));
    }
    if !s.external_traffic_policy.is_empty() {
        if !matches!(ty, "NodePort" | "LoadBalancer") {
            c.invalid(
                "spec.externalTrafficPolicy",
                &s.external_traffic_policy,
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            );
        } else {
            c.one_of("spec.externalTrafficPolicy", &s.external_traffic_policy, &["Cluster", "Local"], false);
        }
    }
    c.one_of("spec.internalTrafficPolicy", &s.internal_traffic_policy, &["Cluster", "Local"], false);
    if !s.load_balancer_ip.is_empty() {
        if ty != "LoadBalancer" {
            c.forbidden("spec.loadBalancerIP", "may only be used when `type` is 'LoadBalancer'");
        }
        c.invalid_all("spec.loadBalancerIP", &s.load_balancer_ip, names::ip_address(&s.load_balancer_ip));
    }
    if !s.load_balancer_source_ranges.is_empty() {
        if ty != "LoadBalancer" {
            c.forbidden("spec.loadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'");
        }
        for (i, r) in s.load_balancer_source_ranges.iter().enumerate() {
            if !is_cidr(r.trim()) {
                c.invalid(
                    &idx("spec.loadBalancerSourceRanges", i),
                    r,
                    "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
                );
            }
        }
    }
    if let Some(lb) = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()) {
        for (i, ing) in lb.ingress.iter().enumerate() {
            let ip = idx("status.loadBalancer.ingress", i);
            if !ing.ip.is_empty() {
                c.invalid_all(&at(&ip, "ip"), &ing.ip, names::ip_address(&ing.ip));
            }
            if !ing.hostname.is_empty() {
                let hp = at(&ip, "hostname");
                c.invalid_all(&hp, &ing.hostname, names::dns1123_subdomain(&ing.hostname));
                if ing.hostname.parse::<IpAddr>().is_ok() {
                    c.invalid(&hp, &ing.hostname, "must be a DNS name, not an IP address");
                }
            }
        }
    }
}

pub(super) fn service_update(c: &mut Check, old: &Service, new: &Service) {
    let empty = ServiceSpec::default();
    let (o, n) = (old.spec.as_ref().unwrap_or(&empty), new.spec.as_ref().unwrap_or(&empty));
    if o.cluster_ip.is_empty() || o.cluster_ip == n.cluster_ip {
        return;
    }
    // Becoming an ExternalName service releases the cluster IP.
    if n.r#type == "ExternalName" && n.cluster_ip.is_empty() {
        return;
    }
    c.invalid("spec.clusterIP", &n.cluster_ip, "field is immutable");
}

// ----------------------------------------------------------------- Endpoints

pub(super) fn endpoints(c: &mut Check, e: &Endpoints) {
    object_meta(c, e.metadata.as_ref(), true, NameRule::Subdomain);
    for (i, ss) in e.subsets.iter().enumerate() {
        let sp = idx("subsets", i);
        if ss.addresses.is_empty() && ss.not_ready_addresses.is_empty() {
            c.required(&sp, "must specify `addresses` or `notReadyAddresses`");
        }
        for (field, list) in [("addresses", &ss.addresses), ("notReadyAddresses", &ss.not_ready_addresses)] {
            for (j, a) in list.iter().enumerate() {
                let ap = idx(&at(&sp, field), j);
                let ipp = at(&ap, "ip");
                if a.ip.is_empty() {
                    c.required(&ipp, "");
                } else {
                    c.invalid_all(&ipp, &a.ip, names::ip_address(&a.ip));
                }
                if !a.hostname.is_empty() {
                    c.invalid_all(&at(&ap, "hostname"), &a.hostname, names::dns1123_label(&a.hostname));
                }
                if let Some(n) = &a.node_name
                    && !n.is_empty()
                {
                    c.invalid_all(&at(&ap, "nodeName"), n, names::dns1123_subdomain(n));
                }
            }
        }
        let require_name = ss.ports.len() > 1;
        let mut port_names = HashSet::new();
        for (j, port) in ss.ports.iter().enumerate() {
            let pp = idx(&at(&sp, "ports"), j);
            let np = at(&pp, "name");
            if port.name.is_empty() {
                if require_name {
                    c.required(&np, "");
                }
            } else {
                c.invalid_all(&np, &port.name, names::dns1123_label(&port.name));
                if !port_names.insert(port.name.as_str()) {
                    c.duplicate(&np, &port.name);
                }
            }
            c.invalid_all(&at(&pp, "port"), port.port, names::port_number(port.port.into()));
            c.one_of(&at(&pp, "protocol"), &port.protocol, PROTOCOLS, false);
            if let Some(ap) = &port.app_protocol
                && !ap.is_empty()
            {
                c.invalid_all(&at(&pp, "appProtocol"), ap, names::qualified_name(ap));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::api::Object;
    use crate::pb::core::{ClientIpConfig, EndpointAddress, EndpointPort, EndpointSubset, ServicePort, SessionAffinityConfig};
    use crate::validation::test_support::*;
    use crate::validation::validate_update;

    fn endpoints_with(f: impl FnOnce(&mut EndpointSubset)) -> Object {
        let mut ss = EndpointSubset {
            addresses: vec![EndpointAddress { ip: "172.30.0.5".into(), ..Default::default() }],
            ports: vec![EndpointPort { port: 8080, protocol: "TCP".into(), ..Default::default() }],
            ..Default::default()
        };
        f(&mut ss);
        Endpoints { metadata: meta("web"), subsets: vec![ss], ..Default::default() }.into_object()
    }

    #[test]
    fn should_accept_valid_services_of_every_type() {
        assert_valid(&svc_with(|_| {}));
        assert_valid(&svc_with(|s| {
            s.r#type = "NodePort".into();
            s.ports = vec![ServicePort { node_port: 30080, ..svc_port("http", 80) }, svc_port("https", 443)];
            s.external_traffic_policy = "Local".into();
        }));
        assert_valid(&svc_with(|s| {
            s.r#type = "LoadBalancer".into();
            s.load_balancer_source_ranges = vec!["10.0.0.0/8".into()];
        }));
        assert_valid(&svc_with(|s| {
            s.cluster_ip = "None".into();
            s.ports.clear();
        }));
        assert_valid(&svc_with(|s| {
            s.r#type = "ExternalName".into();
            s.external_name = "db.example.com.".into();
            s.ports.clear();
        }));
        assert_valid(&svc_with(|s| {
            s.cluster_ip = "10.96.0.10".into();
            s.session_affinity = "ClientIP".into();
            s.session_affinity_config = Some(SessionAffinityConfig { client_ip: Some(ClientIpConfig { timeout_seconds: Some(10800) }) });
        }));
    }

    #[test]
    fn should_check_service_type_and_ports() {
        assert_eq!(
            assert_error_at(&svc_with(|s| s.r#type = "Internal".into()), "spec.type"),
            "spec.type: Unsupported value: \"Internal\": supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\", \"ExternalName\""
        );
        assert_error_at(&svc_with(|s| s.r#type.clear()), "spec.type");
        assert_eq!(assert_error_at(&svc_with(|s| s.ports.clear()), "spec.ports"), "spec.ports: Required value");
        assert_error_at(&svc_with(|s| s.ports[0].port = 0), "spec.ports[0].port");
        assert_error_at(&svc_with(|s| s.ports[0].protocol = "ICMP".into()), "spec.ports[0].protocol");
        assert_error_at(&svc_with(|s| s.ports[0].target_port = "70000".into()), "spec.ports[0].targetPort");
        assert_error_at(&svc_with(|s| s.ports[0].target_port = "Http_Port".into()), "spec.ports[0].targetPort");
        assert_valid(&svc_with(|s| s.ports[0].target_port = "http".into()));
    }

    #[test]
    fn should_require_unique_names_when_a_service_has_several_ports() {
        assert_eq!(
            assert_error_at(&svc_with(|s| s.ports = vec![svc_port("", 80), svc_port("b", 81)]), "spec.ports[0].name"),
            "spec.ports[0].name: Required value"
        );
        assert_eq!(
            assert_error_at(&svc_with(|s| s.ports = vec![svc_port("a", 80), svc_port("a", 81)]), "spec.ports[1].name"),
            "spec.ports[1].name: Duplicate value: \"a\""
        );
        assert_error_at(&svc_with(|s| s.ports = vec![svc_port("Web", 80)]), "spec.ports[0].name");
        // Kubernetes checks service port names as DNS labels, not IANA names.
        assert_valid(&svc_with(|s| s.ports = vec![svc_port("state-snapshot-transfer", 4444)]));
        assert_error_at(&svc_with(|s| s.ports = vec![svc_port("a", 80), svc_port("b", 80)]), "spec.ports[1]");
    }

    #[test]
    fn should_allow_node_ports_only_for_node_port_and_load_balancer_services() {
        assert_eq!(
            assert_error_at(&svc_with(|s| s.ports[0].node_port = 30080), "spec.ports[0].nodePort"),
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        );
        let range = svc_with(|s| {
            s.r#type = "NodePort".into();
            s.ports[0].node_port = 70000;
        });
        assert_error_at(&range, "spec.ports[0].nodePort");
        let dup = svc_with(|s| {
            s.r#type = "NodePort".into();
            s.ports = vec![ServicePort { node_port: 30001, ..svc_port("a", 80) }, ServicePort { node_port: 30001, ..svc_port("b", 81) }];
        });
        assert_error_at(&dup, "spec.ports[1].nodePort");
    }

    #[test]
    fn should_check_cluster_ip_and_external_name() {
        assert_error_at(&svc_with(|s| s.cluster_ip = "10.96.0.300".into()), "spec.clusterIP");
        let headless_np = svc_with(|s| {
            s.cluster_ip = "None".into();
            s.r#type = "NodePort".into();
        });
        assert!(assert_error_at(&headless_np, "spec.clusterIP").contains("may not be set to 'None' for NodePort services"));
        let ext = |f: fn(&mut ServiceSpec)| {
            svc_with(|s| {
                s.r#type = "ExternalName".into();
                s.external_name = "db.example.com".into();
                f(s);
            })
        };
        assert_error_at(&ext(|s| s.external_name.clear()), "spec.externalName");
        assert_error_at(&ext(|s| s.external_name = "DB_host".into()), "spec.externalName");
        assert_error_at(&ext(|s| s.cluster_ip = "10.96.0.1".into()), "spec.clusterIP");
    }

    #[test]
    fn should_check_service_affinity_selector_and_policies() {
        assert_error_at(&svc_with(|s| s.session_affinity = "Cookie".into()), "spec.sessionAffinity");
        let timeout = svc_with(|s| {
            s.session_affinity = "ClientIP".into();
            s.session_affinity_config = Some(SessionAffinityConfig { client_ip: Some(ClientIpConfig { timeout_seconds: Some(0) }) });
        });
        assert_error_at(&timeout, "spec.sessionAffinityConfig.clientIP.timeoutSeconds");
        assert_error_at(&svc_with(|s| s.selector = map(&[("app", "web app")])), "spec.selector");
        assert_error_at(&svc_with(|s| s.external_traffic_policy = "Local".into()), "spec.externalTrafficPolicy");
        assert_error_at(&svc_with(|s| s.external_ips = vec!["1.2.3".into()]), "spec.externalIPs[0]");
        assert_error_at(&svc_with(|s| s.load_balancer_source_ranges = vec!["10.0.0.0/8".into()]), "spec.loadBalancerSourceRanges");
    }

    #[test]
    fn should_check_endpoints_addresses_and_ports() {
        assert_valid(&endpoints_with(|_| {}));
        assert_valid(&endpoints_with(|ss| ss.ports[0].protocol.clear()));
        assert_error_at(&endpoints_with(|ss| ss.addresses[0].ip = "172.30.0".into()), "subsets[0].addresses[0].ip");
        assert_error_at(&endpoints_with(|ss| ss.addresses[0].ip.clear()), "subsets[0].addresses[0].ip");
        assert_error_at(&endpoints_with(|ss| ss.ports[0].port = 0), "subsets[0].ports[0].port");
        assert_error_at(&endpoints_with(|ss| ss.ports[0].protocol = "tcp".into()), "subsets[0].ports[0].protocol");
        assert_error_at(&endpoints_with(|ss| ss.addresses.clear()), "subsets[0]");
        assert_error_at(
            &endpoints_with(|ss| ss.ports.push(EndpointPort { port: 9090, protocol: "TCP".into(), ..Default::default() })),
            "subsets[0].ports[0].name",
        );
    }

    #[test]
    fn should_keep_a_service_cluster_ip_once_set() {
        let old = svc_with(|s| s.cluster_ip = "10.96.0.10".into());
        let changed = svc_with(|s| s.cluster_ip = "10.96.0.11".into());
        assert_eq!(
            error_at(&update_errors(&old, &changed), "spec.clusterIP"),
            "spec.clusterIP: Invalid value: \"10.96.0.11\": field is immutable"
        );
        error_at(&update_errors(&old, &svc_with(|_| {})), "spec.clusterIP");
        let external = svc_with(|s| {
            s.r#type = "ExternalName".into();
            s.external_name = "db.example.com".into();
        });
        assert!(validate_update(&old, &external).is_ok());
        assert!(validate_update(&external, &old).is_ok());
        assert!(validate_update(&svc_with(|_| {}), &old).is_ok());
    }
}
