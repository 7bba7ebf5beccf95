//! The environment variables that tell a container where the Services of
//! its namespace are, as Kubernetes' kubelet makes them (its `envvars`
//! package): `{SVC}_SERVICE_HOST`, `{SVC}_SERVICE_PORT`,
//! `{SVC}_SERVICE_PORT_{NAME}` and the Docker-links forms `{SVC}_PORT…`,
//! for Services with a ClusterIP only. The `kubernetes` Service of the
//! `default` namespace is always included, even with
//! `enableServiceLinks: false`.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::Resource;
use berth_api::pb::core::Service;

/// The Services whose variables every pod gets, from the `default` namespace.
const MASTER_SERVICES: &[&str] = &["kubernetes"];
const MASTER_NAMESPACE: &str = "default";

/// A Service name as a variable prefix: upper case, `-` as `_`.
pub fn variable_name(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

/// Whether the Service has a virtual IP (not headless, not ExternalName).
fn has_cluster_ip(s: &Service) -> bool {
    let ip = s.spec.as_ref().map(|s| s.cluster_ip.as_str()).unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// `ip:port`, with brackets around an IPv6 address.
fn host_port(ip: &str, port: i32) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

/// The variables of one Service, in Kubernetes' order (none when it has no
/// ClusterIP or no port).
pub fn service_variables(s: &Service) -> Vec<(String, String)> {
    let Some(spec) = s.spec.as_ref().filter(|_| has_cluster_ip(s)) else { return Vec::new() };
    let Some(first) = spec.ports.first() else { return Vec::new() };
    let prefix = variable_name(s.name());
    let ip = &spec.cluster_ip;
    let mut out = vec![(format!("{prefix}_SERVICE_HOST"), ip.clone()), (format!("{prefix}_SERVICE_PORT"), first.port.to_string())];
    for p in spec.ports.iter().filter(|p| !p.name.is_empty()) {
        out.push((format!("{prefix}_SERVICE_PORT_{}", variable_name(&p.name)), p.port.to_string()));
    }
    for (i, p) in spec.ports.iter().enumerate() {
        let protocol = if p.protocol.is_empty() { "TCP" } else { p.protocol.as_str() };
        let (lower, upper) = (protocol.to_ascii_lowercase(), protocol.to_ascii_uppercase());
        let url = format!("{lower}://{}", host_port(ip, p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let port_prefix = format!("{prefix}_PORT_{}_{upper}", p.port);
        out.push((format!("{port_prefix}_PROTO"), lower));
        out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
        out.push((format!("{port_prefix}_ADDR"), ip.clone()));
        out.push((port_prefix, url));
    }
    out
}

/// The Service variables of a pod in `namespace`: the `kubernetes` Service
/// of `default` always, the namespace's Services when `enable_service_links`
/// (a Service of the pod's namespace wins over a master Service of the same
/// name, as in Kubernetes).
pub fn for_pod(namespace: &str, enable_service_links: bool, services: &[Arc<Service>]) -> BTreeMap<String, String> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for s in services.iter().filter(|s| has_cluster_ip(s)) {
        if s.namespace() == MASTER_NAMESPACE && MASTER_SERVICES.contains(&s.name()) {
            chosen.entry(s.name()).or_insert(s);
        } else if s.namespace() == namespace && enable_service_links {
            chosen.insert(s.name(), s);
        }
    }
    chosen.values().flat_map(|s| service_variables(s)).collect()
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::*;

    use super::*;

    fn service(ns: &str, name: &str, ip: &str, ports: &[(&str, i32, &str)]) -> Arc<Service> {
        Arc::new(Service {
            metadata: Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() }),
            spec: Some(ServiceSpec {
                cluster_ip: ip.into(),
                ports: ports
                    .iter()
                    .map(|(n, p, proto)| ServicePort { name: n.to_string(), port: *p, protocol: proto.to_string(), ..Default::default() })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn pairs(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn should_name_the_variables_of_a_service_with_two_named_ports() {
        let s = service("shop", "redis-master", "10.96.0.11", &[("redis", 6379, "TCP"), ("metrics-udp", 9121, "UDP")]);
        let got: BTreeMap<String, String> = service_variables(&s).into_iter().collect();
        assert_eq!(
            got,
            pairs(&[
                ("REDIS_MASTER_SERVICE_HOST", "10.96.0.11"),
                ("REDIS_MASTER_SERVICE_PORT", "6379"),
                ("REDIS_MASTER_SERVICE_PORT_REDIS", "6379"),
                ("REDIS_MASTER_SERVICE_PORT_METRICS_UDP", "9121"),
                ("REDIS_MASTER_PORT", "tcp://10.96.0.11:6379"),
                ("REDIS_MASTER_PORT_6379_TCP", "tcp://10.96.0.11:6379"),
                ("REDIS_MASTER_PORT_6379_TCP_PROTO", "tcp"),
                ("REDIS_MASTER_PORT_6379_TCP_PORT", "6379"),
                ("REDIS_MASTER_PORT_6379_TCP_ADDR", "10.96.0.11"),
                ("REDIS_MASTER_PORT_9121_UDP", "udp://10.96.0.11:9121"),
                ("REDIS_MASTER_PORT_9121_UDP_PROTO", "udp"),
                ("REDIS_MASTER_PORT_9121_UDP_PORT", "9121"),
                ("REDIS_MASTER_PORT_9121_UDP_ADDR", "10.96.0.11"),
            ])
        );
    }

    #[test]
    fn should_default_the_protocol_to_tcp_and_bracket_ipv6() {
        let s = service("a", "web", "fd00::10", &[("", 80, "")]);
        let got: BTreeMap<String, String> = service_variables(&s).into_iter().collect();
        assert_eq!(got["WEB_PORT"], "tcp://[fd00::10]:80");
        assert_eq!(got["WEB_PORT_80_TCP_ADDR"], "fd00::10");
        assert_eq!(got.len(), 7, "{got:?}");
    }

    #[test]
    fn should_skip_headless_and_external_name_services() {
        assert!(service_variables(&service("a", "db", "None", &[("", 5432, "TCP")])).is_empty());
        assert!(service_variables(&service("a", "ext", "", &[])).is_empty());
    }

    #[test]
    fn should_give_the_namespace_services_and_always_the_kubernetes_one() {
        let services = vec![
            service("default", "kubernetes", "10.96.0.1", &[("https", 443, "TCP")]),
            service("default", "other", "10.96.0.20", &[("", 80, "TCP")]),
            service("shop", "web", "10.96.0.30", &[("http", 80, "TCP")]),
            service("shop", "db", "None", &[("", 5432, "TCP")]),
        ];
        let env = for_pod("shop", true, &services);
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
        assert_eq!(env["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
        assert_eq!(env["WEB_SERVICE_HOST"], "10.96.0.30");
        assert!(!env.contains_key("OTHER_SERVICE_HOST") && !env.contains_key("DB_SERVICE_HOST"), "{env:?}");

        let off = for_pod("shop", false, &services);
        assert!(off.keys().all(|k| k.starts_with("KUBERNETES_")), "{off:?}");
        assert_eq!(off["KUBERNETES_PORT"], "tcp://10.96.0.1:443");

        // A namespace's own Service named kubernetes wins.
        let mut mine = services.clone();
        mine.push(service("shop", "kubernetes", "10.96.0.99", &[("", 8443, "TCP")]));
        assert_eq!(for_pod("shop", true, &mine)["KUBERNETES_SERVICE_HOST"], "10.96.0.99");
        assert_eq!(for_pod("shop", false, &mine)["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
        assert_eq!(for_pod("default", true, &services)["OTHER_SERVICE_HOST"], "10.96.0.20");
    }
}
