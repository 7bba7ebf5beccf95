//! The cluster zone as records: pure functions from Services and Endpoints to the A, SRV, CNAME, PTR, SOA and TXT records that Kubernetes' DNS specification (kubernetes/dns `docs/specification.md`, version 1.1.0) defines, gathered into an [`Index`] that answers lookups by name.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::str::FromStr;

use berth_api::pb::core::{EndpointAddress, Endpoints, Service};
use hickory_proto::rr::rdata::{A, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// TTL of every answer from the cluster zone (CoreDNS' kubernetes plugin default).
pub const TTL: u32 = 5;
/// The version of the DNS specification served (`dns-version.<zone>` TXT).
pub const SPEC_VERSION: &str = "1.1.0";

/// Why a name could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster domain is not a DNS name.
    #[error("invalid cluster domain {domain:?}: {source}")]
    Domain {
        domain: String,
        #[source]
        source: hickory_proto::ProtoError,
    },
}

/// The cluster domain (`cluster.local.`) as a lower-case, fully qualified name.
pub fn zone_name(domain: &str) -> Result<Name, Error> {
    let fqdn = format!("{}.", domain.trim().trim_end_matches('.'));
    Name::from_str(&fqdn).map(|n| n.to_lowercase()).map_err(|source| Error::Domain { domain: domain.into(), source })
}

/// `label.label…` under `parent`, or `None` when a label is not a valid DNS label
/// (objects with such names get no records rather than breaking the zone).
fn child(labels: &[&str], parent: &Name) -> Option<Name> {
    let mut name = Name::from_labels(labels.iter().map(|l| l.as_bytes())).ok()?;
    name.set_fqdn(false);
    name.append_domain(parent).ok().map(|n| n.to_lowercase())
}

/// `d.c.b.a.in-addr.arpa.` for `a.b.c.d`.
pub fn reverse_name(ip: Ipv4Addr) -> Name {
    let [a, b, c, d] = ip.octets();
    Name::from_str(&format!("{d}.{c}.{b}.{a}.in-addr.arpa.")).unwrap_or_else(|_| Name::root())
}

/// The SOA of the zone: Kubernetes' `ns.dns.<zone> hostmaster.<zone>`, negative TTL = [`TTL`].
pub fn soa(zone: &Name, serial: u32) -> Record {
    let mname = child(&["ns", "dns"], zone).unwrap_or_else(|| zone.clone());
    let rname = child(&["hostmaster"], zone).unwrap_or_else(|| zone.clone());
    Record::from_rdata(zone.clone(), TTL, RData::SOA(SOA::new(mname, rname, serial, 7200, 1800, 86400, TTL)))
}

/// An endpoint's DNS label: its hostname, or its IP with dashes (`10-1-2-3`),
/// the unique identifier CoreDNS gives endpoints without one.
fn endpoint_label(addr: &EndpointAddress, ip: Ipv4Addr) -> String {
    if addr.hostname.is_empty() { ip.to_string().replace('.', "-") } else { addr.hostname.clone() }
}

/// A named port of an endpoint: name, protocol (`tcp`, `udp`, `sctp`), number.
type NamedPort<'a> = (&'a str, &'static str, u16);

/// A ready endpoint: its address, IP and named ports.
type ReadyEndpoint<'a> = (&'a EndpointAddress, Ipv4Addr, Vec<NamedPort<'a>>);

/// The ready endpoint addresses (never `notReadyAddresses`), each once, with their named ports.
fn ready_endpoints(endpoints: Option<&Endpoints>) -> Vec<ReadyEndpoint<'_>> {
    let mut out: Vec<ReadyEndpoint<'_>> = Vec::new();
    for subset in endpoints.map(|e| e.subsets.as_slice()).unwrap_or_default() {
        let ports: Vec<NamedPort<'_>> = subset
            .ports
            .iter()
            .filter(|p| !p.name.is_empty())
            .filter_map(|p| Some((p.name.as_str(), protocol(&p.protocol), u16::try_from(p.port).ok()?)))
            .collect();
        for addr in &subset.addresses {
            let Ok(ip) = addr.ip.parse::<Ipv4Addr>() else { continue };
            match out.iter_mut().find(|(a, i, _)| *i == ip && a.hostname == addr.hostname) {
                Some(existing) => existing.2.extend(ports.iter().copied()),
                None => out.push((addr, ip, ports.clone())),
            }
        }
    }
    out
}

/// `tcp`, `udp` or `sctp` for a Kubernetes protocol (empty is TCP).
fn protocol(p: &str) -> &'static str {
    match p {
        "UDP" => "udp",
        "SCTP" => "sctp",
        _ => "tcp",
    }
}

/// Every record one Service (with its Endpoints) contributes to the zone.
///
/// - ClusterIP: `svc.ns.svc.zone A clusterIP`, `_port._proto.svc.ns.svc.zone SRV 0 100 port svc.ns.svc.zone`
///   per named port, and `PTR` from the ClusterIP.
/// - Headless (`clusterIP: None`): `svc.ns.svc.zone A` per ready endpoint, `label.svc.ns.svc.zone A` per ready
///   endpoint (label = hostname or dashed IP), SRV per named port and endpoint targeting that name, PTR from each.
/// - ExternalName: `svc.ns.svc.zone CNAME externalName`.
pub fn service_records(zone: &Name, svc: &Service, endpoints: Option<&Endpoints>) -> Vec<Record> {
    let Some(meta) = svc.metadata.as_ref() else { return Vec::new() };
    let Some(spec) = svc.spec.as_ref() else { return Vec::new() };
    let Some(svc_zone) = child(&["svc"], zone) else { return Vec::new() };
    let Some(name) = child(&[&meta.name, &meta.namespace], &svc_zone) else { return Vec::new() };
    let mut records = Vec::new();
    if spec.r#type == "ExternalName" {
        if let Ok(mut target) = Name::from_str(spec.external_name.trim_end_matches('.')) {
            target.set_fqdn(true);
            records.push(Record::from_rdata(name, TTL, RData::CNAME(CNAME(target.to_lowercase()))));
        }
        return records;
    }
    let srv = |port_name: &str, proto: &str, port: u16, target: &Name| -> Option<Record> {
        let owner = child(&[&format!("_{port_name}"), &format!("_{proto}")], &name)?;
        Some(Record::from_rdata(owner, TTL, RData::SRV(SRV::new(0, 100, port, target.clone()))))
    };
    if spec.cluster_ip == "None" {
        for (addr, ip, ports) in ready_endpoints(endpoints) {
            records.push(Record::from_rdata(name.clone(), TTL, RData::A(A(ip))));
            let Some(host) = child(&[&endpoint_label(addr, ip)], &name) else { continue };
            records.push(Record::from_rdata(host.clone(), TTL, RData::A(A(ip))));
            records.push(Record::from_rdata(reverse_name(ip), TTL, RData::PTR(PTR(host.clone()))));
            records.extend(ports.iter().filter_map(|(port_name, proto, port)| srv(port_name, proto, *port, &host)));
        }
    } else if let Ok(ip) = spec.cluster_ip.parse::<Ipv4Addr>() {
        records.push(Record::from_rdata(name.clone(), TTL, RData::A(A(ip))));
        records.push(Record::from_rdata(reverse_name(ip), TTL, RData::PTR(PTR(name.clone()))));
        for p in spec.ports.iter().filter(|p| !p.name.is_empty()) {
            if let Ok(port) = u16::try_from(p.port) {
                records.extend(srv(&p.name, protocol(&p.protocol), port, &name));
            }
        }
    }
    records
}

/// The zone's own records: SOA and NS at the apex, `ns.dns.<zone>` and `dns-version.<zone>`.
fn apex_records(zone: &Name, serial: u32, dns_ip: Option<Ipv4Addr>) -> Vec<Record> {
    let mut records = vec![soa(zone, serial)];
    if let Some(ns) = child(&["ns", "dns"], zone) {
        records.push(Record::from_rdata(zone.clone(), TTL, RData::NS(NS(ns.clone()))));
        if let Some(ip) = dns_ip {
            records.push(Record::from_rdata(ns, TTL, RData::A(A(ip))));
        }
    }
    if let Some(version) = child(&["dns-version"], zone) {
        records.push(Record::from_rdata(version, TTL, RData::TXT(TXT::new(vec![SPEC_VERSION.into()]))));
    }
    records
}

/// What a lookup in the index found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Records of the asked type (or a CNAME, which answers every type).
    Records(Vec<Record>),
    /// The name exists (it has records of other types, or names below it) but none of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// The records of the cluster zone and of the reverse names of its addresses, by lower-case name.
#[derive(Debug, Default)]
pub struct Index {
    zone: Name,
    records: HashMap<Name, Vec<Record>>,
    /// Every name that exists in the zone: owners and the names between them and the apex.
    names: HashSet<Name>,
    serial: u32,
    /// False until built from synced informers: cluster names then get SERVFAIL (clients retry), not NXDOMAIN.
    synced: bool,
}

impl Index {
    /// Builds the index from all Services, finding each one's Endpoints with `endpoints_of`.
    pub fn build<'a>(
        zone: &Name,
        serial: u32,
        dns_ip: Option<Ipv4Addr>,
        services: impl IntoIterator<Item = &'a Service>,
        endpoints_of: impl Fn(&Service) -> Option<std::sync::Arc<Endpoints>>,
    ) -> Index {
        let mut index = Index { zone: zone.clone(), serial, synced: true, ..Default::default() };
        for record in apex_records(zone, serial, dns_ip) {
            index.insert(record);
        }
        for svc in services {
            let eps = endpoints_of(svc);
            for record in service_records(zone, svc, eps.as_deref()) {
                index.insert(record);
            }
        }
        index
    }

    /// The index before the informers have synced: it knows the zone and nothing in it.
    pub fn unsynced(zone: &Name) -> Index {
        Index { zone: zone.clone(), ..Default::default() }
    }

    /// Whether the index was built from synced informers.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    fn insert(&mut self, record: Record) {
        let name = record.name().to_lowercase();
        if self.zone.zone_of(&name) {
            let mut n = name.clone();
            while n.num_labels() > self.zone.num_labels() && self.names.insert(n.clone()) {
                n = n.base_name();
            }
            self.names.insert(self.zone.clone());
        }
        let list = self.records.entry(name).or_default();
        if !list.contains(&record) {
            list.push(record);
        }
    }

    /// The cluster domain.
    pub fn zone(&self) -> &Name {
        &self.zone
    }

    /// Whether `name` lies in the cluster domain (answered here, never forwarded).
    pub fn is_cluster_name(&self, name: &Name) -> bool {
        self.zone.zone_of(name)
    }

    /// The zone's SOA, for the authority section of negative answers.
    pub fn soa(&self) -> Record {
        soa(&self.zone, self.serial)
    }

    /// How many records the index holds.
    pub fn len(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }

    /// Whether the index holds no records (never true once built: the apex has some).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records of `name` for `qtype`.
    pub fn lookup(&self, name: &Name, qtype: RecordType) -> Found {
        let name = name.to_lowercase();
        let Some(records) = self.records.get(&name) else {
            return if self.names.contains(&name) { Found::NoData } else { Found::NxDomain };
        };
        let matching: Vec<Record> = records.iter().filter(|r| qtype == RecordType::ANY || r.record_type() == qtype).cloned().collect();
        if !matching.is_empty() {
            return Found::Records(matching);
        }
        let cname: Vec<Record> = records.iter().filter(|r| r.record_type() == RecordType::CNAME).cloned().collect();
        if cname.is_empty() { Found::NoData } else { Found::Records(cname) }
    }
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::{EndpointPort, EndpointSubset, ObjectMeta, ServicePort, ServiceSpec};

    use super::*;

    fn zone() -> Name {
        zone_name("cluster.local").unwrap()
    }

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn service(ns: &str, svc: &str, cluster_ip: &str, ports: &[(&str, i32, &str)]) -> Service {
        Service {
            metadata: Some(ObjectMeta { name: svc.into(), namespace: ns.into(), ..Default::default() }),
            spec: Some(ServiceSpec {
                cluster_ip: cluster_ip.into(),
                ports: ports
                    .iter()
                    .map(|(n, p, proto)| ServicePort { name: (*n).into(), port: *p, protocol: (*proto).into(), ..Default::default() })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn address(ip: &str, hostname: &str) -> EndpointAddress {
        EndpointAddress { ip: ip.into(), hostname: hostname.into(), ..Default::default() }
    }

    fn endpoints(ready: Vec<EndpointAddress>, not_ready: Vec<EndpointAddress>, ports: &[(&str, i32)]) -> Endpoints {
        Endpoints {
            subsets: vec![EndpointSubset {
                addresses: ready,
                not_ready_addresses: not_ready,
                ports: ports.iter().map(|(n, p)| EndpointPort { name: (*n).into(), port: *p, ..Default::default() }).collect(),
            }],
            ..Default::default()
        }
    }

    fn rdatas(found: Found) -> Vec<String> {
        let Found::Records(records) = found else { panic!("no records: {found:?}") };
        let mut out: Vec<String> = records.iter().map(|r| r.data().to_string()).collect();
        out.sort();
        out
    }

    #[test]
    fn should_answer_a_cluster_ip_service_with_its_address_srv_per_named_port_and_ptr() {
        let svc = service("prod", "web", "10.96.3.4", &[("http", 80, ""), ("", 81, ""), ("dns", 53, "UDP")]);
        let index = Index::build(&zone(), 1, None, [&svc], |_| None);
        assert_eq!(rdatas(index.lookup(&name("web.prod.svc.cluster.local."), RecordType::A)), ["10.96.3.4"]);
        assert_eq!(rdatas(index.lookup(&name("WEB.Prod.svc.cluster.local."), RecordType::A)), ["10.96.3.4"], "names are case-insensitive");
        assert_eq!(
            rdatas(index.lookup(&name("_http._tcp.web.prod.svc.cluster.local."), RecordType::SRV)),
            ["0 100 80 web.prod.svc.cluster.local."]
        );
        assert_eq!(
            rdatas(index.lookup(&name("_dns._udp.web.prod.svc.cluster.local."), RecordType::SRV)),
            ["0 100 53 web.prod.svc.cluster.local."]
        );
        assert_eq!(index.lookup(&name("_http._udp.web.prod.svc.cluster.local."), RecordType::SRV), Found::NxDomain);
        assert_eq!(rdatas(index.lookup(&name("4.3.96.10.in-addr.arpa."), RecordType::PTR)), ["web.prod.svc.cluster.local."]);
        assert_eq!(index.lookup(&name("web.prod.svc.cluster.local."), RecordType::AAAA), Found::NoData);
    }

    #[test]
    fn should_answer_a_headless_service_with_ready_endpoints_only_and_name_each_endpoint() {
        let svc = service("prod", "db", "None", &[("pg", 5432, "")]);
        let eps = std::sync::Arc::new(endpoints(
            vec![address("172.30.0.5", "db-0"), address("172.30.0.6", "")],
            vec![address("172.30.0.7", "db-2")],
            &[("pg", 5432)],
        ));
        let index = Index::build(&zone(), 1, None, [&svc], |_| Some(eps.clone()));
        assert_eq!(rdatas(index.lookup(&name("db.prod.svc.cluster.local."), RecordType::A)), ["172.30.0.5", "172.30.0.6"]);
        assert_eq!(rdatas(index.lookup(&name("db-0.db.prod.svc.cluster.local."), RecordType::A)), ["172.30.0.5"]);
        assert_eq!(rdatas(index.lookup(&name("172-30-0-6.db.prod.svc.cluster.local."), RecordType::A)), ["172.30.0.6"]);
        assert_eq!(index.lookup(&name("db-2.db.prod.svc.cluster.local."), RecordType::A), Found::NxDomain, "not ready");
        assert_eq!(
            rdatas(index.lookup(&name("_pg._tcp.db.prod.svc.cluster.local."), RecordType::SRV)),
            ["0 100 5432 172-30-0-6.db.prod.svc.cluster.local.", "0 100 5432 db-0.db.prod.svc.cluster.local."]
        );
        assert_eq!(rdatas(index.lookup(&name("5.0.30.172.in-addr.arpa."), RecordType::PTR)), ["db-0.db.prod.svc.cluster.local."]);
        assert_eq!(index.lookup(&name("7.0.30.172.in-addr.arpa."), RecordType::PTR), Found::NxDomain);
    }

    #[test]
    fn should_answer_an_external_name_service_with_a_cname_for_every_type() {
        let mut svc = service("prod", "ext", "", &[]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.r#type = "ExternalName".into();
            spec.external_name = "Example.COM".into();
        }
        let index = Index::build(&zone(), 1, None, [&svc], |_| None);
        assert_eq!(rdatas(index.lookup(&name("ext.prod.svc.cluster.local."), RecordType::A)), ["example.com."]);
        assert_eq!(rdatas(index.lookup(&name("ext.prod.svc.cluster.local."), RecordType::CNAME)), ["example.com."]);
    }

    #[test]
    fn should_tell_names_between_records_and_the_apex_from_names_that_do_not_exist() {
        let svc = service("prod", "web", "10.96.3.4", &[]);
        let index = Index::build(&zone(), 7, Some(Ipv4Addr::new(10, 96, 0, 10)), [&svc], |_| None);
        assert_eq!(index.lookup(&name("prod.svc.cluster.local."), RecordType::A), Found::NoData);
        assert_eq!(index.lookup(&name("svc.cluster.local."), RecordType::A), Found::NoData);
        assert_eq!(index.lookup(&name("nope.prod.svc.cluster.local."), RecordType::A), Found::NxDomain);
        assert_eq!(index.lookup(&name("other.svc.cluster.local."), RecordType::A), Found::NxDomain);
        assert_eq!(rdatas(index.lookup(&name("dns-version.cluster.local."), RecordType::TXT)), ["1.1.0"]);
        assert_eq!(rdatas(index.lookup(&name("ns.dns.cluster.local."), RecordType::A)), ["10.96.0.10"]);
        let Found::Records(soa) = index.lookup(&name("cluster.local."), RecordType::SOA) else { panic!("no SOA") };
        assert_eq!(soa[0].data().to_string(), "ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 5");
        assert!(index.is_cluster_name(&name("x.cluster.local.")));
        assert!(!index.is_cluster_name(&name("example.com.")));
    }

    #[test]
    fn should_skip_objects_whose_names_are_not_dns_labels_without_breaking_the_zone() {
        let bad = service("prod", &"x".repeat(70), "10.96.3.5", &[]);
        let good = service("prod", "web", "10.96.3.4", &[]);
        let index = Index::build(&zone(), 1, None, [&bad, &good], |_| None);
        assert_eq!(rdatas(index.lookup(&name("web.prod.svc.cluster.local."), RecordType::A)), ["10.96.3.4"]);
    }
}
