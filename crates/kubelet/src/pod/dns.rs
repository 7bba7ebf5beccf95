//! A pod's name resolution, as Kubernetes' kubelet forms it: the
//! `/etc/resolv.conf` its `dnsPolicy` and `dnsConfig` give, and its
//! `/etc/hosts` (localhost, then the pod's own address, hostname and FQDN).
//! Both are written into the pod's data directory and bind-mounted
//! read-only over the container's own, so that Docker's resolv.conf (its
//! embedded resolver at 127.0.0.11 on user-defined networks) never wins.

use std::path::{Path, PathBuf};

use berth_api::Resource;
use berth_api::pb::core::{Container, Pod, PodDnsConfig};

/// The most nameservers, search domains and characters of the search line a
/// resolver honours (Kubernetes' limits; glibc reads 3 nameservers).
pub const MAX_NAMESERVERS: usize = 3;
pub const MAX_SEARCHES: usize = 32;
pub const MAX_SEARCH_LINE_CHARS: usize = 2048;

/// The options ClusterFirst gives.
const CLUSTER_FIRST_OPTIONS: &[&str] = &["ndots:5"];

pub const RESOLV_CONF_PATH: &str = "/etc/resolv.conf";
pub const HOSTS_PATH: &str = "/etc/hosts";

/// The contents of a resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    /// `name` or `name:value`, in order.
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Reads resolv.conf text as the C resolver does: comments start with
    /// `#` or `;`; the last `search` line wins; options accumulate, a later
    /// one replacing an earlier one of the same name.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => conf.nameservers.extend(fields.next().map(str::to_string)),
                Some("search") => {
                    conf.searches = fields.filter(|s| *s != ".").map(|s| s.trim_end_matches('.').to_string()).collect();
                }
                Some("domain") => conf.searches = fields.next().map(|s| vec![s.trim_end_matches('.').to_string()]).unwrap_or_default(),
                Some("options") => {
                    for o in fields {
                        set_option(&mut conf.options, o);
                    }
                }
                _ => {}
            }
        }
        conf
    }

    /// The file's text: `nameserver` lines, then `search` and `options`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }

    /// Whether every nameserver is a loopback address (127.0.0.53 of
    /// systemd-resolved): a pod in its own network namespace cannot reach them.
    pub fn only_loopback(&self) -> bool {
        !self.nameservers.is_empty() && self.nameservers.iter().all(|n| n.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
    }
}

/// Sets option `o` (`name` or `name:value`), replacing one of the same name.
fn set_option(options: &mut Vec<String>, o: &str) {
    let name = o.split(':').next().unwrap_or(o);
    match options.iter_mut().find(|x| x.split(':').next() == Some(name)) {
        Some(slot) => *slot = o.to_string(),
        None => options.push(o.to_string()),
    }
}

fn dedup_push(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !list.contains(&i) {
            list.push(i);
        }
    }
}

/// The node's DNS settings (the kubelet's flags).
#[derive(Debug, Clone)]
pub struct ClusterDns {
    /// `--cluster-dns`: empty when the cluster has no DNS.
    pub servers: Vec<String>,
    /// `--cluster-domain`.
    pub domain: String,
}

/// Where a pod's resolv.conf starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The cluster DNS with the pod's namespace's search path.
    Cluster,
    /// The node's resolv.conf (`--resolv-conf`).
    Host,
    /// Nothing: only the pod's dnsConfig.
    Empty,
}

/// The base that `dnsPolicy` (empty: ClusterFirst) selects, as Kubernetes
/// reads it: ClusterFirst on the host network falls back to the node's
/// resolvers; ClusterFirstWithHostNet always uses the cluster DNS.
pub fn base_of(dns_policy: &str, host_network: bool) -> Base {
    match dns_policy {
        "None" => Base::Empty,
        "Default" => Base::Host,
        "ClusterFirstWithHostNet" => Base::Cluster,
        _ if host_network => Base::Host,
        _ => Base::Cluster,
    }
}

/// A formed resolv.conf, with what had to be left out to fit the limits
/// (for a warning event, as Kubernetes' `DNSConfigForming`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formed {
    pub conf: ResolvConf,
    pub warnings: Vec<String>,
}

/// The pod's resolv.conf: the base its policy selects, with its dnsConfig
/// merged in (nameservers and searches appended without duplicates, options
/// replacing those of the same name), cut to the resolver's limits.
pub fn resolv_conf(pod: &Pod, cluster: &ClusterDns, host: &ResolvConf) -> Formed {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut warnings = Vec::new();
    let mut base = base_of(&spec.dns_policy, spec.host_network.unwrap_or(false));
    if base == Base::Cluster && cluster.servers.is_empty() {
        warnings.push("the kubelet has no --cluster-dns: the pod uses the node's resolvers (dnsPolicy Default)".to_string());
        base = Base::Host;
    }
    let mut conf = match base {
        Base::Empty => ResolvConf::default(),
        Base::Host => host.clone(),
        Base::Cluster => {
            let domain = &cluster.domain;
            let mut searches = Vec::new();
            dedup_push(&mut searches, [format!("{}.svc.{domain}", pod.namespace()), format!("svc.{domain}"), domain.clone()]);
            dedup_push(&mut searches, host.searches.iter().cloned());
            ResolvConf {
                nameservers: cluster.servers.clone(),
                searches,
                options: CLUSTER_FIRST_OPTIONS.iter().map(|s| s.to_string()).collect(),
            }
        }
    };
    if let Some(d) = &spec.dns_config {
        merge(&mut conf, d);
    }
    fit_limits(&mut conf, &mut warnings);
    Formed { conf, warnings }
}

/// Merges a pod's dnsConfig into `conf`, as Kubernetes' `appendDNSConfig`.
pub fn merge(conf: &mut ResolvConf, d: &PodDnsConfig) {
    let mut nameservers = Vec::new();
    dedup_push(&mut nameservers, conf.nameservers.drain(..).chain(d.nameservers.iter().cloned()));
    conf.nameservers = nameservers;
    let mut searches = Vec::new();
    dedup_push(&mut searches, conf.searches.drain(..).chain(d.searches.iter().cloned()));
    conf.searches = searches;
    for o in &d.options {
        match o.value.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => set_option(&mut conf.options, &format!("{}:{v}", o.name)),
            None => set_option(&mut conf.options, &o.name),
        }
    }
}

/// Cuts nameservers to 3, searches to 32 and the search line to 2048
/// characters, saying what was left out.
fn fit_limits(conf: &mut ResolvConf, warnings: &mut Vec<String>) {
    if conf.nameservers.len() > MAX_NAMESERVERS {
        conf.nameservers.truncate(MAX_NAMESERVERS);
        warnings.push(format!(
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
            conf.nameservers.join(" ")
        ));
    }
    let mut cut = false;
    if conf.searches.len() > MAX_SEARCHES {
        conf.searches.truncate(MAX_SEARCHES);
        cut = true;
    }
    while conf.searches.iter().map(|s| s.len() + 1).sum::<usize>().saturating_sub(1) > MAX_SEARCH_LINE_CHARS {
        conf.searches.pop();
        cut = true;
    }
    if cut {
        warnings.push(format!(
            "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
            conf.searches.join(" ")
        ));
    }
}

/// The pod's hostname: `spec.hostname`, else its name, cut to 63
/// characters without a trailing `-` or `.` (Kubernetes' rule).
pub fn hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    let name = spec.map(|s| s.hostname.as_str()).filter(|h| !h.is_empty()).unwrap_or_else(|| pod.name());
    let cut: String = name.chars().take(63).collect();
    if cut.len() < name.len() { cut.trim_end_matches(['-', '.']).to_string() } else { cut }
}

/// The pod's /etc/hosts: localhost entries, then its address with its FQDN
/// (`<hostname>.<subdomain>.<namespace>.svc.<domain>`, when it has a
/// subdomain) and its hostname.
pub fn hosts_file(pod: &Pod, pod_ip: &str, cluster_domain: &str) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    if pod_ip.is_empty() {
        return out;
    }
    let host = hostname(pod);
    let subdomain = pod.spec.as_ref().map(|s| s.subdomain.as_str()).unwrap_or("");
    if subdomain.is_empty() {
        out.push_str(&format!("{pod_ip}\t{host}\n"));
    } else {
        out.push_str(&format!("{pod_ip}\t{host}.{subdomain}.{}.svc.{cluster_domain}\t{host}\n", pod.namespace()));
    }
    out
}

/// The pod's two files on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDnsFiles {
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
}

impl PodDnsFiles {
    /// Where they live in the pod's data directory.
    pub fn in_dir(pod_dir: &Path) -> PodDnsFiles {
        PodDnsFiles { resolv_conf: pod_dir.join("resolv.conf"), hosts: pod_dir.join("etc-hosts") }
    }

    /// Writes both files when their content differs from `resolv` and
    /// `hosts`. In place (same inode), so that containers that bind-mount
    /// them see the change. Returns whether anything was written.
    pub fn write(&self, resolv: &str, hosts: &str) -> std::io::Result<bool> {
        let mut wrote = false;
        for (path, text) in [(&self.resolv_conf, resolv), (&self.hosts, hosts)] {
            if std::fs::read(path).ok().as_deref() != Some(text.as_bytes()) {
                std::fs::write(path, text)?;
                wrote = true;
            }
        }
        Ok(wrote)
    }

    /// The read-only bind mounts of both files into container `c`, except
    /// over a path the container mounts a volume at itself.
    pub fn binds(&self, c: &Container) -> Vec<String> {
        let mounted = |p: &str| c.volume_mounts.iter().any(|m| m.mount_path.trim_end_matches('/') == p);
        let mut out = Vec::new();
        for (host, path) in [(&self.resolv_conf, RESOLV_CONF_PATH), (&self.hosts, HOSTS_PATH)] {
            if !mounted(path) {
                out.push(format!("{}:{path}:ro", host.display()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::*;

    use super::*;

    fn pod(ns: &str, f: impl FnOnce(&mut PodSpec)) -> Pod {
        let mut spec = PodSpec { dns_policy: "ClusterFirst".into(), ..Default::default() };
        f(&mut spec);
        Pod {
            metadata: Some(ObjectMeta { name: "web-0".into(), namespace: ns.into(), ..Default::default() }),
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn cluster() -> ClusterDns {
        ClusterDns { servers: vec!["10.96.0.10".into()], domain: "cluster.local".into() }
    }

    fn host() -> ResolvConf {
        ResolvConf::parse(
            "# the node's\nnameserver 192.168.1.1\nnameserver 192.168.1.2 ; second\nsearch corp.example lab.example.\noptions timeout:2 rotate\n",
        )
    }

    fn option(name: &str, value: Option<&str>) -> PodDnsConfigOption {
        PodDnsConfigOption { name: name.into(), value: value.map(str::to_string) }
    }

    #[test]
    fn should_parse_a_host_resolv_conf() {
        let h = host();
        assert_eq!(h.nameservers, ["192.168.1.1", "192.168.1.2"]);
        assert_eq!(h.searches, ["corp.example", "lab.example"]);
        assert_eq!(h.options, ["timeout:2", "rotate"]);
        assert!(!h.only_loopback());
        assert!(ResolvConf::parse("nameserver 127.0.0.53\noptions edns0\n").only_loopback());
        let later = ResolvConf::parse("search a.example\nsearch b.example\noptions ndots:1\noptions ndots:3\n");
        assert_eq!((later.searches, later.options), (vec!["b.example".to_string()], vec!["ndots:3".to_string()]));
    }

    #[test]
    fn should_give_cluster_first_the_cluster_dns_and_the_namespace_search_path() {
        let f = resolv_conf(&pod("shop", |_| {}), &cluster(), &host());
        assert_eq!(
            f.conf.render(),
            "nameserver 10.96.0.10\n\
             search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n\
             options ndots:5\n"
        );
        assert!(f.warnings.is_empty());
        // The empty policy (defaulted by the apiserver) is ClusterFirst too.
        let f = resolv_conf(&pod("shop", |s| s.dns_policy.clear()), &cluster(), &ResolvConf::default());
        assert_eq!(f.conf.searches, ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
    }

    #[test]
    fn should_fall_back_to_the_node_on_the_host_network_unless_with_host_net() {
        let on_host = resolv_conf(&pod("a", |s| s.host_network = Some(true)), &cluster(), &host());
        assert_eq!(on_host.conf, host());
        let with_host_net = resolv_conf(
            &pod("a", |s| {
                s.host_network = Some(true);
                s.dns_policy = "ClusterFirstWithHostNet".into();
            }),
            &cluster(),
            &host(),
        );
        assert_eq!(with_host_net.conf.nameservers, ["10.96.0.10"]);
        let no_dns = ClusterDns { servers: vec![], domain: "cluster.local".into() };
        let f = resolv_conf(&pod("a", |_| {}), &no_dns, &host());
        assert_eq!(f.conf, host());
        assert_eq!(f.warnings.len(), 1);
    }

    #[test]
    fn should_give_default_the_node_resolvers_with_dns_config_merged() {
        let f = resolv_conf(
            &pod("a", |s| {
                s.dns_policy = "Default".into();
                s.dns_config = Some(PodDnsConfig {
                    nameservers: vec!["192.168.1.1".into(), "1.1.1.1".into()],
                    searches: vec!["lab.example".into(), "ns1.svc.cluster-domain.example".into()],
                    options: vec![option("timeout", Some("5")), option("edns0", None)],
                });
            }),
            &cluster(),
            &host(),
        );
        assert_eq!(
            f.conf.render(),
            "nameserver 192.168.1.1\nnameserver 192.168.1.2\nnameserver 1.1.1.1\n\
             search corp.example lab.example ns1.svc.cluster-domain.example\n\
             options timeout:5 rotate edns0\n"
        );
    }

    #[test]
    fn should_give_none_exactly_the_dns_config() {
        // The example of Kubernetes' "DNS for Services and Pods" page.
        let p = pod("default", |s| {
            s.dns_policy = "None".into();
            s.dns_config = Some(PodDnsConfig {
                nameservers: vec!["192.0.2.1".into()],
                searches: vec!["ns1.svc.cluster-domain.example".into(), "my.dns.search.suffix".into()],
                options: vec![option("ndots", Some("2")), option("edns0", None)],
            });
        });
        let f = resolv_conf(&p, &cluster(), &host());
        assert_eq!(
            f.conf.render(),
            "nameserver 192.0.2.1\nsearch ns1.svc.cluster-domain.example my.dns.search.suffix\noptions ndots:2 edns0\n"
        );
    }

    #[test]
    fn should_override_cluster_first_options_by_name_and_cut_to_the_limits() {
        let p = pod("a", |s| {
            s.dns_config = Some(PodDnsConfig {
                nameservers: vec!["10.96.0.10".into(), "8.8.8.8".into(), "8.8.4.4".into(), "1.1.1.1".into()],
                searches: (0..40).map(|i| format!("d{i}.example")).collect(),
                options: vec![option("ndots", Some("1"))],
            });
        });
        let f = resolv_conf(&p, &cluster(), &ResolvConf::default());
        assert_eq!(f.conf.nameservers, ["10.96.0.10", "8.8.8.8", "8.8.4.4"]);
        assert_eq!(f.conf.searches.len(), MAX_SEARCHES);
        assert_eq!(f.conf.searches[0], "a.svc.cluster.local");
        assert_eq!(f.conf.options, ["ndots:1"]);
        assert_eq!(f.warnings.len(), 2, "{:?}", f.warnings);
        assert!(f.warnings[0].ends_with("10.96.0.10 8.8.8.8 8.8.4.4"), "{}", f.warnings[0]);
    }

    #[test]
    fn should_write_hosts_with_the_fqdn_when_a_subdomain_is_set() {
        let p = pod("shop", |s| {
            s.hostname = "db-0".into();
            s.subdomain = "db".into();
        });
        let text = hosts_file(&p, "172.30.1.7", "cluster.local");
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(text.ends_with("\n172.30.1.7\tdb-0.db.shop.svc.cluster.local\tdb-0\n"), "{text}");
        let plain = hosts_file(&pod("shop", |_| {}), "172.30.1.8", "cluster.local");
        assert!(plain.ends_with("\n172.30.1.8\tweb-0\n"), "{plain}");
    }

    #[test]
    fn should_cut_a_long_pod_name_to_a_63_character_hostname() {
        let mut p = pod("a", |_| {});
        p.metadata.as_mut().unwrap().name = format!("{}-{}", "x".repeat(62), "tail");
        assert_eq!(hostname(&p), "x".repeat(62));
        p.metadata.as_mut().unwrap().name = "short".into();
        assert_eq!(hostname(&p), "short");
    }

    #[test]
    fn should_bind_both_files_read_only_unless_the_container_mounts_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let files = PodDnsFiles::in_dir(tmp.path());
        assert!(files.write("nameserver 10.96.0.10\n", "127.0.0.1\tlocalhost\n").unwrap());
        assert!(!files.write("nameserver 10.96.0.10\n", "127.0.0.1\tlocalhost\n").unwrap());
        assert_eq!(std::fs::read_to_string(&files.resolv_conf).unwrap(), "nameserver 10.96.0.10\n");
        let c = Container::default();
        assert_eq!(
            files.binds(&c),
            [
                format!("{}:/etc/resolv.conf:ro", tmp.path().join("resolv.conf").display()),
                format!("{}:/etc/hosts:ro", tmp.path().join("etc-hosts").display())
            ]
        );
        let own = Container {
            volume_mounts: vec![VolumeMount { name: "h".into(), mount_path: "/etc/hosts".into(), ..Default::default() }],
            ..Default::default()
        };
        assert_eq!(files.binds(&own).len(), 1);
    }
}
