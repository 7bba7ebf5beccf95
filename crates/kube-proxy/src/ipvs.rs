//! The ipvs mode: an IPVS virtual server per service port (and per NodePort address) with round robin over its ready endpoints as real servers in NAT ("masquerading") forwarding, written with `ipvsadm -R`; it needs the kernel's `ip_vs` module and says so at startup when it is missing, never falling back to another mode.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;

use tracing::debug;

use crate::exec::{self, Exec};
use crate::model::{Changed, Protocol, ServicePort, State};
use crate::proxier::{Error, Programmed, Proxier, Result};

/// Where the kernel shows its IPVS table when `ip_vs` is loaded.
pub const PROC_IP_VS: &str = "/proc/net/ip_vs";

/// The NodePort range whose virtual servers on NodePort addresses the ipvs
/// mode considers its own (Kubernetes' default range).
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// Fails, naming what is missing, unless the kernel has IPVS (after one
/// attempt to load the module) and `ipvsadm` runs.
pub fn check_support<E: Exec>(exec: &E, proc_ip_vs: &Path) -> Result<()> {
    if !proc_ip_vs.exists() {
        // The module may just not be loaded yet; modprobe may not exist.
        let _ = exec.run("modprobe", &["ip_vs"], None);
    }
    if !proc_ip_vs.exists() {
        return Err(Error::Unsupported {
            mode: "ipvs",
            what: "the ip_vs kernel module".into(),
            hint: format!(
                "{} is missing, so this kernel has no IPVS (CONFIG_IP_VS) or cannot load it (modprobe ip_vs); choose another --mode (nftables, iptables or userspace): berth-proxy does not fall back on its own",
                proc_ip_vs.display()
            ),
        });
    }
    match exec.run("ipvsadm", &["--version"], None) {
        Err(exec::Error::Spawn { .. }) => Err(Error::Unsupported {
            mode: "ipvs",
            what: "the ipvsadm tool".into(),
            hint: "install it (apt-get install ipvsadm) or choose another --mode".into(),
        }),
        _ => Ok(()),
    }
}

/// What the ipvs mode needs to know.
#[derive(Debug, Clone)]
pub struct IpvsConfig {
    /// The VIP interface, whose addresses mark the virtual servers as ours.
    pub interface: String,
    /// Non-loopback addresses NodePorts answer on.
    pub nodeport_addresses: Vec<Ipv4Addr>,
    /// The scheduler (`rr`: round robin).
    pub scheduler: String,
}

/// A virtual service: protocol and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Virtual {
    pub protocol: Protocol,
    pub addr: SocketAddrV4,
}

impl fmt::Display for Virtual {
    /// `-t 10.96.0.10:80` / `-u …`, as ipvsadm takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = match self.protocol {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
        };
        write!(f, "{flag} {}", self.addr)
    }
}

/// A virtual server: scheduler, persistence (affinity) and real servers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtualServer {
    pub scheduler: String,
    pub persistence: Option<u64>,
    pub reals: BTreeSet<SocketAddrV4>,
}

/// The virtual servers that `ports` need.
fn desired<'a>(cfg: &IpvsConfig, ports: impl Iterator<Item = &'a ServicePort>) -> BTreeMap<Virtual, VirtualServer> {
    let mut out = BTreeMap::new();
    for p in ports {
        let vs = VirtualServer {
            scheduler: cfg.scheduler.clone(),
            persistence: p.affinity_seconds(),
            reals: p.endpoints.iter().copied().collect(),
        };
        if let Some(np) = p.node_port {
            for addr in &cfg.nodeport_addresses {
                out.insert(Virtual { protocol: p.protocol(), addr: SocketAddrV4::new(*addr, np) }, vs.clone());
            }
        }
        out.insert(Virtual { protocol: p.protocol(), addr: p.vip() }, vs);
    }
    out
}

/// Parses `ipvsadm -S -n` output.
pub fn parse_listing(out: &str) -> BTreeMap<Virtual, VirtualServer> {
    let mut table: BTreeMap<Virtual, VirtualServer> = BTreeMap::new();
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let flag_value = |flag: &str| words.iter().position(|w| *w == flag).and_then(|i| words.get(i + 1)).copied();
        let virt = if let Some(a) = flag_value("-t") {
            a.parse().ok().map(|addr| Virtual { protocol: Protocol::Tcp, addr })
        } else if let Some(a) = flag_value("-u") {
            a.parse().ok().map(|addr| Virtual { protocol: Protocol::Udp, addr })
        } else {
            None
        };
        let Some(virt) = virt else { continue };
        match words.first() {
            Some(&"-A") => {
                let vs = table.entry(virt).or_default();
                vs.scheduler = flag_value("-s").unwrap_or("wlc").to_string();
                vs.persistence = flag_value("-p").and_then(|p| p.parse().ok());
            }
            Some(&"-a") => {
                if let Some(real) = flag_value("-r").and_then(|r| r.parse().ok()) {
                    table.entry(virt).or_default().reals.insert(real);
                }
            }
            _ => {}
        }
    }
    table
}

/// The `ipvsadm -R` script that turns `current` into `wanted`, touching
/// only the virtual servers for which `owned` holds (and those wanted).
pub fn diff_script(
    current: &BTreeMap<Virtual, VirtualServer>,
    wanted: &BTreeMap<Virtual, VirtualServer>,
    owned: impl Fn(&Virtual) -> bool,
) -> String {
    let mut s = String::new();
    for (v, _) in current.iter().filter(|(v, _)| owned(v) && !wanted.contains_key(*v)) {
        let _ = writeln!(s, "-D {v}");
    }
    for (v, vs) in wanted {
        let persistence = vs.persistence.map(|p| format!(" -p {p}")).unwrap_or_default();
        match current.get(v) {
            None => {
                let _ = writeln!(s, "-A {v} -s {}{persistence}", vs.scheduler);
                for r in &vs.reals {
                    let _ = writeln!(s, "-a {v} -r {r} -m -w 1");
                }
            }
            Some(cur) => {
                if cur.scheduler != vs.scheduler || cur.persistence != vs.persistence {
                    let _ = writeln!(s, "-E {v} -s {}{persistence}", vs.scheduler);
                }
                for r in cur.reals.difference(&vs.reals) {
                    let _ = writeln!(s, "-d {v} -r {r}");
                }
                for r in vs.reals.difference(&cur.reals) {
                    let _ = writeln!(s, "-a {v} -r {r} -m -w 1");
                }
            }
        }
    }
    s
}

/// The ipvs mode's rule writer.
pub struct Ipvs<E: Exec> {
    cfg: IpvsConfig,
    exec: Arc<E>,
    /// The virtual servers as last written.
    table: BTreeMap<Virtual, VirtualServer>,
}

impl<E: Exec> Ipvs<E> {
    /// Checks that the kernel has IPVS first: an error names what is missing.
    pub fn new(cfg: IpvsConfig, exec: Arc<E>, proc_ip_vs: &Path) -> Result<Self> {
        check_support(exec.as_ref(), proc_ip_vs)?;
        Ok(Ipvs { cfg, exec, table: BTreeMap::new() })
    }

    fn listing(&self) -> Result<BTreeMap<Virtual, VirtualServer>> {
        Ok(parse_listing(&self.exec.run("ipvsadm", &["-S", "-n"], None)?))
    }

    fn interface_addresses(&self) -> BTreeSet<Ipv4Addr> {
        let out = self.exec.run("ip", &["-o", "-4", "addr", "show", "dev", &self.cfg.interface], None).unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                w.find(|x| *x == "inet")?;
                w.next()?.split('/').next()?.parse().ok()
            })
            .collect()
    }

    fn apply(&self, script: &str) -> Result<()> {
        if !script.is_empty() {
            self.exec.run("ipvsadm", &["-R"], Some(script.as_bytes()))?;
        }
        Ok(())
    }

    fn is_ours(&self, vips: &BTreeSet<Ipv4Addr>, v: &Virtual) -> bool {
        vips.contains(v.addr.ip()) || (self.cfg.nodeport_addresses.contains(v.addr.ip()) && NODE_PORTS.contains(&v.addr.port()))
    }

    fn count(&self) -> usize {
        self.table.values().map(|vs| 1 + vs.reals.len()).sum()
    }
}

impl<E: Exec> Proxier for Ipvs<E> {
    fn mode(&self) -> &'static str {
        "ipvs"
    }

    fn sync_full(&mut self, state: &State) -> Result<Programmed> {
        let current = self.listing()?;
        let wanted = desired(&self.cfg, state.ports());
        let mut vips = self.interface_addresses();
        vips.extend(state.vips());
        let script = diff_script(&current, &wanted, |v| self.is_ours(&vips, v));
        debug!(lines = script.lines().count(), "ipvs full sync");
        self.apply(&script)?;
        self.table = wanted;
        Ok(Programmed { rules: self.count() })
    }

    fn sync_changes(&mut self, _state: &State, changes: &[Changed]) -> Result<Programmed> {
        let mut current = BTreeMap::new();
        let mut wanted = BTreeMap::new();
        let mut owned = BTreeSet::new();
        for change in changes {
            let old = desired(&self.cfg, change.old.iter());
            owned.extend(old.keys().copied());
            for v in old.keys() {
                if let Some(vs) = self.table.get(v) {
                    current.insert(*v, vs.clone());
                }
            }
            wanted.extend(desired(&self.cfg, change.new.iter()));
        }
        let script = diff_script(&current, &wanted, |v| owned.contains(v));
        self.apply(&script)?;
        for v in owned {
            self.table.remove(&v);
        }
        self.table.extend(wanted);
        Ok(Programmed { rules: self.count() })
    }

    fn cleanup(&mut self) -> Result<()> {
        let current = self.listing()?;
        let vips = self.interface_addresses();
        let script = diff_script(&current, &BTreeMap::new(), |v| self.is_ours(&vips, v));
        self.apply(&script)?;
        self.table.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Recorder;
    use crate::model::service_ports;
    use crate::model::tests::{endpoints, service};

    fn cfg() -> IpvsConfig {
        IpvsConfig { interface: "bv".into(), nodeport_addresses: vec!["172.29.0.1".parse().unwrap()], scheduler: "rr".into() }
    }

    fn web(eps: &[&str], affinity: bool) -> Vec<ServicePort> {
        let mut svc = service("web", "10.96.0.10", &[("http", "TCP", 80, 30080), ("dns", "UDP", 53, 0)]);
        if affinity {
            svc.spec.as_mut().unwrap().session_affinity = "ClientIP".into();
        }
        let e = endpoints("web", eps, &[], &[("http", "TCP", 8080), ("dns", "UDP", 5353)]);
        service_ports(&svc, Some(&e)).unwrap()
    }

    #[test]
    fn should_refuse_to_start_without_the_ip_vs_module_and_name_it() {
        let r = Recorder::new();
        r.answer("modprobe", Err("modprobe: FATAL: Module ip_vs not found"));
        let err = check_support(&r, Path::new("/nonexistent/ip_vs")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ipvs mode needs the ip_vs kernel module"), "{text}");
        assert!(text.contains("does not fall back"), "{text}");
        assert_eq!(r.calls()[0].command_line(), "modprobe ip_vs");
    }

    #[test]
    fn should_write_a_virtual_server_per_port_with_round_robin_real_servers() {
        let r = Arc::new(Recorder::new());
        let mut p = Ipvs { cfg: cfg(), exec: r.clone(), table: BTreeMap::new() };
        let mut state = State::new();
        state.set("default/web", web(&["172.30.0.2", "172.30.0.3"], false));
        p.sync_full(&state).unwrap();
        let script = r.calls().into_iter().find(|c| c.args == ["-R"]).unwrap().stdin;
        assert_eq!(
            script,
            "-A -t 10.96.0.10:80 -s rr\n\
             -a -t 10.96.0.10:80 -r 172.30.0.2:8080 -m -w 1\n\
             -a -t 10.96.0.10:80 -r 172.30.0.3:8080 -m -w 1\n\
             -A -t 172.29.0.1:30080 -s rr\n\
             -a -t 172.29.0.1:30080 -r 172.30.0.2:8080 -m -w 1\n\
             -a -t 172.29.0.1:30080 -r 172.30.0.3:8080 -m -w 1\n\
             -A -u 10.96.0.10:53 -s rr\n\
             -a -u 10.96.0.10:53 -r 172.30.0.2:5353 -m -w 1\n\
             -a -u 10.96.0.10:53 -r 172.30.0.3:5353 -m -w 1\n"
        );
    }

    #[test]
    fn should_change_only_the_real_servers_that_changed() {
        let r = Arc::new(Recorder::new());
        let mut p = Ipvs { cfg: cfg(), exec: r.clone(), table: BTreeMap::new() };
        let mut state = State::new();
        let first = state.set("default/web", web(&["172.30.0.2", "172.30.0.3"], false)).unwrap();
        p.sync_changes(&state, &[first]).unwrap();
        r.clear();
        let second = state.set("default/web", web(&["172.30.0.3", "172.30.0.4"], true)).unwrap();
        p.sync_changes(&state, &[second]).unwrap();
        let script = r.calls().into_iter().find(|c| c.args == ["-R"]).unwrap().stdin;
        assert!(script.contains("-E -t 10.96.0.10:80 -s rr -p 10800\n"), "{script}");
        assert!(script.contains("-d -t 10.96.0.10:80 -r 172.30.0.2:8080\n"), "{script}");
        assert!(script.contains("-a -t 10.96.0.10:80 -r 172.30.0.4:8080 -m -w 1\n"), "{script}");
        assert!(!script.contains("-A "), "no virtual server is recreated: {script}");
        r.clear();
        let gone = state.set("default/web", Vec::new()).unwrap();
        p.sync_changes(&state, &[gone]).unwrap();
        let script = r.calls().into_iter().find(|c| c.args == ["-R"]).unwrap().stdin;
        assert_eq!(script, "-D -t 10.96.0.10:80\n-D -t 172.29.0.1:30080\n-D -u 10.96.0.10:53\n");
    }

    #[test]
    fn should_leave_foreign_virtual_servers_alone_in_a_full_sync() {
        let listing = "-A -t 192.168.1.5:443 -s wlc\n-a -t 192.168.1.5:443 -r 10.0.0.1:443 -m -w 1\n-A -t 10.96.0.99:80 -s rr\n";
        let current = parse_listing(listing);
        assert_eq!(current.len(), 2);
        let vips: BTreeSet<Ipv4Addr> = ["10.96.0.99".parse().unwrap()].into();
        let script = diff_script(&current, &BTreeMap::new(), |v| vips.contains(v.addr.ip()));
        assert_eq!(script, "-D -t 10.96.0.99:80\n");
    }
}
