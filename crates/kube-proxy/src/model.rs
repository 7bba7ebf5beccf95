//! What the proxy programs: every service port of the cluster with its VIP, NodePort, affinity and ready endpoints, built from Services and Endpoints, and what changed between two syncs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use berth_api::pb::core::{Endpoints, Service};

/// The longest ClientIP affinity Kubernetes accepts (one day).
pub const MAX_AFFINITY: Duration = Duration::from_secs(86_400);
/// ClientIP affinity without an explicit timeout (Kubernetes' default, 3 h).
pub const DEFAULT_AFFINITY: Duration = Duration::from_secs(10_800);

/// The transport protocols the proxy forwards (SCTP ports are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// Kubernetes' spelling (`TCP`, `UDP`; empty means TCP).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "" | "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            _ => None,
        }
    }

    /// Lower case, as iptables, nft and ipvsadm write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names one port of one service, as Kubernetes' `ServicePortName`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortName {
    pub namespace: String,
    pub name: String,
    /// The port's name; empty for the single unnamed port of a service.
    pub port: String,
    pub protocol: Protocol,
}

impl PortName {
    /// The key of the service this port belongs to (`namespace/name`).
    pub fn service_key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for PortName {
    /// `namespace/name:port` (`namespace/name` for an unnamed port), as Kubernetes writes it in rule comments.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port.is_empty() {
            write!(f, "{}/{}", self.namespace, self.name)
        } else {
            write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
        }
    }
}

/// One port of one service, as the proxy forwards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: PortName,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// The NodePort, for services of type NodePort or LoadBalancer.
    pub node_port: Option<u16>,
    /// How long a client stays with its endpoint (`sessionAffinity: ClientIP`).
    pub affinity: Option<Duration>,
    /// The ready endpoints, sorted and without duplicates.
    pub endpoints: Vec<SocketAddrV4>,
}

impl ServicePort {
    pub fn protocol(&self) -> Protocol {
        self.name.protocol
    }

    /// The VIP and port clients connect to.
    pub fn vip(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.cluster_ip, self.port)
    }

    /// The affinity timeout in whole seconds (at least 1).
    pub fn affinity_seconds(&self) -> Option<u64> {
        self.affinity.map(|d| d.as_secs().max(1))
    }
}

/// Why a service, or one of its ports, is not proxied (logged at debug level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// ExternalName services are DNS names only.
    ExternalName,
    /// Headless (`clusterIP: None`) or not allocated yet.
    NoClusterIp,
    /// Only IPv4 VIPs are proxied.
    NotIpv4(String),
}

/// The service ports of `svc`, with their ready endpoints from `endpoints`
/// (the Endpoints object of the same name), sorted by port name.
pub fn service_ports(svc: &Service, endpoints: Option<&Endpoints>) -> Result<Vec<ServicePort>, Skip> {
    let Some(spec) = svc.spec.as_ref() else { return Err(Skip::NoClusterIp) };
    if spec.r#type == "ExternalName" {
        return Err(Skip::ExternalName);
    }
    if spec.cluster_ip.is_empty() || spec.cluster_ip == "None" {
        return Err(Skip::NoClusterIp);
    }
    let cluster_ip: Ipv4Addr = spec.cluster_ip.parse().map_err(|_| Skip::NotIpv4(spec.cluster_ip.clone()))?;
    let meta = svc.metadata.clone().unwrap_or_default();
    let with_node_ports = matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer");
    let affinity = (spec.session_affinity == "ClientIP").then(|| {
        let secs = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_AFFINITY, Duration::from_secs);
        secs.min(MAX_AFFINITY)
    });

    let mut ports = Vec::with_capacity(spec.ports.len());
    for p in &spec.ports {
        let Some(protocol) = Protocol::parse(&p.protocol) else { continue };
        let Ok(port) = u16::try_from(p.port) else { continue };
        if port == 0 {
            continue;
        }
        let node_port = with_node_ports.then(|| u16::try_from(p.node_port).ok()).flatten().filter(|n| *n > 0);
        let name = PortName { namespace: meta.namespace.clone(), name: meta.name.clone(), port: p.name.clone(), protocol };
        let endpoints = endpoints.map(|e| ready_endpoints(e, &p.name, protocol)).unwrap_or_default();
        ports.push(ServicePort { name, cluster_ip, port, node_port, affinity, endpoints });
    }
    ports.sort_by(|a, b| a.name.cmp(&b.name));
    ports.dedup_by(|a, b| a.name == b.name);
    Ok(ports)
}

/// The ready addresses of `endpoints` on the port named `port_name`
/// (Endpoints carry the resolved target port under the service port's name).
fn ready_endpoints(endpoints: &Endpoints, port_name: &str, protocol: Protocol) -> Vec<SocketAddrV4> {
    let mut out = Vec::new();
    for subset in &endpoints.subsets {
        let Some(port) = subset
            .ports
            .iter()
            .find(|p| p.name == port_name && Protocol::parse(&p.protocol) == Some(protocol))
            .and_then(|p| u16::try_from(p.port).ok())
            .filter(|p| *p > 0)
        else {
            continue;
        };
        out.extend(subset.addresses.iter().filter_map(|a| a.ip.parse::<Ipv4Addr>().ok()).map(|ip| SocketAddrV4::new(ip, port)));
    }
    out.sort();
    out.dedup();
    out
}

/// The ports of one service before and after a change (either may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub key: String,
    pub old: Vec<ServicePort>,
    pub new: Vec<ServicePort>,
}

impl Changed {
    /// The ports that were there before and are gone or different now.
    pub fn removed_or_changed(&self) -> impl Iterator<Item = &ServicePort> {
        self.old.iter().filter(|o| !self.new.contains(o))
    }

    /// The ports that are new or different now.
    pub fn added_or_changed(&self) -> impl Iterator<Item = &ServicePort> {
        self.new.iter().filter(|n| !self.old.contains(n))
    }
}

/// Every service port the proxy forwards, by service key (`namespace/name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    services: BTreeMap<String, Arc<Vec<ServicePort>>>,
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    /// Sets the ports of service `key` (none: the service is gone) and says
    /// what changed, if anything.
    pub fn set(&mut self, key: &str, ports: Vec<ServicePort>) -> Option<Changed> {
        let old = self.services.get(key).map(|p| p.as_ref().clone()).unwrap_or_default();
        if old == ports {
            return None;
        }
        if ports.is_empty() {
            self.services.remove(key);
        } else {
            self.services.insert(key.to_string(), Arc::new(ports.clone()));
        }
        Some(Changed { key: key.to_string(), old, new: ports })
    }

    /// The ports of service `key`.
    pub fn get(&self, key: &str) -> &[ServicePort] {
        self.services.get(key).map(|p| p.as_slice()).unwrap_or(&[])
    }

    /// The keys of the services with at least one port.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.services.keys()
    }

    /// Every service port, ordered by service key and port name.
    pub fn ports(&self) -> impl Iterator<Item = &ServicePort> {
        self.services.values().flat_map(|p| p.iter())
    }

    /// Services with at least one port.
    pub fn services(&self) -> usize {
        self.services.len()
    }

    /// Service ports.
    pub fn port_count(&self) -> usize {
        self.services.values().map(|p| p.len()).sum()
    }

    /// Ready endpoints, counted once per service port.
    pub fn endpoint_count(&self) -> usize {
        self.ports().map(|p| p.endpoints.len()).sum()
    }

    /// The ClusterIPs of every service.
    pub fn vips(&self) -> BTreeSet<Ipv4Addr> {
        self.ports().map(|p| p.cluster_ip).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use berth_api::pb::core::{
        ClientIpConfig, EndpointAddress, EndpointPort, EndpointSubset, ObjectMeta, ServicePort as ApiPort, ServiceSpec,
        SessionAffinityConfig,
    };

    use super::*;

    pub(crate) fn service(name: &str, ip: &str, ports: &[(&str, &str, i32, i32)]) -> Service {
        Service {
            metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
            spec: Some(ServiceSpec {
                cluster_ip: ip.into(),
                r#type: if ports.iter().any(|p| p.3 > 0) { "NodePort".into() } else { "ClusterIP".into() },
                ports: ports
                    .iter()
                    .map(|(n, proto, port, np)| ApiPort {
                        name: (*n).into(),
                        protocol: (*proto).into(),
                        port: *port,
                        node_port: *np,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(crate) fn endpoints(name: &str, ready: &[&str], not_ready: &[&str], ports: &[(&str, &str, i32)]) -> Endpoints {
        let addr = |ip: &&str| EndpointAddress { ip: (*ip).into(), ..Default::default() };
        Endpoints {
            metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
            subsets: vec![EndpointSubset {
                addresses: ready.iter().map(addr).collect(),
                not_ready_addresses: not_ready.iter().map(addr).collect(),
                ports: ports
                    .iter()
                    .map(|(n, proto, p)| EndpointPort { name: (*n).into(), protocol: (*proto).into(), port: *p, ..Default::default() })
                    .collect(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn should_pair_each_service_port_with_its_ready_endpoints_by_port_name() {
        let svc = service("web", "10.96.0.10", &[("http", "TCP", 80, 30080), ("dns", "UDP", 53, 0)]);
        let eps = endpoints("web", &["172.30.0.3", "172.30.0.2"], &["172.30.0.9"], &[("http", "TCP", 8080), ("dns", "UDP", 5353)]);
        let ports = service_ports(&svc, Some(&eps)).unwrap();
        assert_eq!(ports.len(), 2);
        let dns = &ports[0];
        assert_eq!(dns.name.to_string(), "default/web:dns");
        assert_eq!(dns.protocol(), Protocol::Udp);
        assert_eq!(dns.node_port, Some(0).filter(|_| false));
        assert_eq!(dns.endpoints, vec!["172.30.0.2:5353".parse().unwrap(), "172.30.0.3:5353".parse().unwrap()]);
        let http = &ports[1];
        assert_eq!(http.vip(), "10.96.0.10:80".parse().unwrap());
        assert_eq!(http.node_port, Some(30080));
        assert_eq!(http.endpoints, vec!["172.30.0.2:8080".parse().unwrap(), "172.30.0.3:8080".parse().unwrap()]);
    }

    #[test]
    fn should_skip_headless_external_name_and_ipv6_services() {
        let mut headless = service("h", "None", &[("", "TCP", 80, 0)]);
        assert_eq!(service_ports(&headless, None), Err(Skip::NoClusterIp));
        headless.spec.as_mut().unwrap().cluster_ip = "fd00::1".into();
        assert!(matches!(service_ports(&headless, None), Err(Skip::NotIpv4(_))));
        let mut ext = service("e", "", &[]);
        ext.spec.as_mut().unwrap().r#type = "ExternalName".into();
        assert_eq!(service_ports(&ext, None), Err(Skip::ExternalName));
    }

    #[test]
    fn should_skip_sctp_ports_and_keep_the_others() {
        let svc = service("s", "10.96.0.11", &[("a", "SCTP", 9, 0), ("b", "TCP", 10, 0)]);
        let ports = service_ports(&svc, None).unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name.port, "b");
        assert!(ports[0].endpoints.is_empty());
    }

    #[test]
    fn should_read_client_ip_affinity_with_its_timeout() {
        let mut svc = service("a", "10.96.0.12", &[("", "TCP", 80, 0)]);
        let spec = svc.spec.as_mut().unwrap();
        spec.session_affinity = "ClientIP".into();
        let ports = service_ports(&svc, None).unwrap();
        assert_eq!(ports[0].affinity, Some(DEFAULT_AFFINITY));
        svc.spec.as_mut().unwrap().session_affinity_config =
            Some(SessionAffinityConfig { client_ip: Some(ClientIpConfig { timeout_seconds: Some(30) }) });
        assert_eq!(service_ports(&svc, None).unwrap()[0].affinity, Some(Duration::from_secs(30)));
    }

    #[test]
    fn should_report_only_real_changes() {
        let svc = service("web", "10.96.0.10", &[("", "TCP", 80, 0)]);
        let eps = endpoints("web", &["172.30.0.2"], &[], &[("", "TCP", 80)]);
        let mut state = State::new();
        let ports = service_ports(&svc, Some(&eps)).unwrap();
        let changed = state.set("default/web", ports.clone()).unwrap();
        assert!(changed.old.is_empty());
        assert_eq!(state.set("default/web", ports.clone()), None);
        assert_eq!(state.vips().into_iter().collect::<Vec<_>>(), vec![Ipv4Addr::new(10, 96, 0, 10)]);
        let gone = state.set("default/web", Vec::new()).unwrap();
        assert_eq!(gone.old, ports);
        assert_eq!(state.services(), 0);
    }
}
