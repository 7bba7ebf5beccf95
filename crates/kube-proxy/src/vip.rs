//! The interface that holds the service VIPs, like Kubernetes' `kube-ipvs0`: a dummy interface, or a bridge with no ports where the kernel has no dummy driver, so that every ClusterIP is a local address and traffic to it never leaves the host.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use tracing::{debug, info};

use crate::exec::{self, Exec};

/// Default name of the interface.
pub const DEFAULT_INTERFACE: &str = "berth-vips";

/// Why the interface could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name is not a valid Linux interface name.
    #[error("invalid interface name {0:?}: 1 to 15 characters, letters, digits, '-', '_' or '.'")]
    BadName(String),
    /// An interface of that name exists and is not one the proxy would own.
    #[error("interface {name} exists and is not a dummy or a bridge without ports ({what}); choose another --interface")]
    NotOurs { name: String, what: String },
    /// Neither a dummy nor a bridge could be created.
    #[error("cannot create interface {name} (tried type dummy, then bridge): {source}")]
    Create {
        name: String,
        #[source]
        source: exec::Error,
    },
    /// An `ip` command failed.
    #[error(transparent)]
    Exec(#[from] exec::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks a Linux interface name (IFNAMSIZ is 16 with the NUL).
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(Error::BadName(name.to_string())) }
}

/// The VIP interface and the addresses bound to it.
pub struct VipInterface<E: Exec> {
    name: String,
    exec: Arc<E>,
    bound: BTreeSet<Ipv4Addr>,
    /// `dummy` or `bridge`, once the interface is known to exist.
    kind: Option<&'static str>,
}

impl<E: Exec> VipInterface<E> {
    pub fn new(name: &str, exec: Arc<E>) -> Result<Self> {
        check_name(name)?;
        Ok(VipInterface { name: name.to_string(), exec, bound: BTreeSet::new(), kind: None })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The addresses bound, as last read or written.
    pub fn addresses(&self) -> &BTreeSet<Ipv4Addr> {
        &self.bound
    }

    /// Creates the interface if it is missing (a dummy, else a bridge with
    /// no ports), brings it up and reads the addresses it holds.
    pub fn ensure(&mut self) -> Result<()> {
        match self.exec.run("ip", &["-d", "-o", "link", "show", "dev", &self.name], None) {
            Ok(details) => {
                let kind = if details.contains(" dummy ") {
                    "dummy"
                } else if details.contains(" bridge ") {
                    "bridge"
                } else {
                    return Err(Error::NotOurs { name: self.name.clone(), what: "another type".into() });
                };
                if kind == "bridge" {
                    let ports = self.exec.run("ip", &["-o", "link", "show", "master", &self.name], None)?;
                    if !ports.trim().is_empty() {
                        return Err(Error::NotOurs { name: self.name.clone(), what: "a bridge with ports".into() });
                    }
                }
                self.kind = Some(kind);
            }
            Err(exec::Error::Failed { .. }) => self.create()?,
            Err(e) => return Err(e.into()),
        }
        self.exec.run("ip", &["link", "set", "dev", &self.name, "up"], None)?;
        self.bound = self.read_addresses()?;
        Ok(())
    }

    fn create(&mut self) -> Result<()> {
        let kind = match self.exec.run("ip", &["link", "add", &self.name, "type", "dummy"], None) {
            Ok(_) => "dummy",
            Err(dummy) => {
                debug!(interface = %self.name, cause = %dummy, "no dummy interfaces here; using a bridge without ports");
                self.exec
                    .run("ip", &["link", "add", &self.name, "type", "bridge"], None)
                    .map_err(|source| Error::Create { name: self.name.clone(), source })?;
                "bridge"
            }
        };
        // VIPs are IPv4 only; an IPv6 link-local address would only add noise.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", self.name), "1");
        info!(interface = %self.name, kind, "created the VIP interface");
        self.kind = Some(kind);
        Ok(())
    }

    /// The IPv4 addresses bound to the interface now.
    pub fn read_addresses(&self) -> Result<BTreeSet<Ipv4Addr>> {
        let out = self.exec.run("ip", &["-o", "-4", "addr", "show", "dev", &self.name], None)?;
        Ok(parse_addresses(&out))
    }

    /// Binds the addresses of `wanted` that are missing (as /32).
    pub fn add(&mut self, wanted: &BTreeSet<Ipv4Addr>) -> Result<usize> {
        let missing: Vec<Ipv4Addr> = wanted.difference(&self.bound).copied().collect();
        self.batch("add", &missing)?;
        self.bound.extend(missing.iter().copied());
        Ok(missing.len())
    }

    /// Unbinds the addresses that are not in `wanted`.
    pub fn remove_others(&mut self, wanted: &BTreeSet<Ipv4Addr>) -> Result<usize> {
        let extra: Vec<Ipv4Addr> = self.bound.difference(wanted).copied().collect();
        self.batch("del", &extra)?;
        for ip in &extra {
            self.bound.remove(ip);
        }
        Ok(extra.len())
    }

    /// One `ip -batch` for many addresses; on failure the bound set is read
    /// again so that the next sync starts from the truth.
    fn batch(&mut self, verb: &str, ips: &[Ipv4Addr]) -> Result<()> {
        if ips.is_empty() {
            return Ok(());
        }
        let mut script = String::with_capacity(ips.len() * 48);
        for ip in ips {
            let _ = writeln!(script, "addr {verb} {ip}/32 dev {}", self.name);
        }
        if let Err(e) = self.exec.run("ip", &["-batch", "-"], Some(script.as_bytes())) {
            self.bound = self.read_addresses().unwrap_or_default();
            return Err(e.into());
        }
        Ok(())
    }

    /// Deletes the interface `name` and with it every address; false if it
    /// did not exist.
    pub fn delete(exec: &E, name: &str) -> Result<bool> {
        check_name(name)?;
        if exec.run("ip", &["-o", "link", "show", "dev", name], None).is_err() {
            return Ok(false);
        }
        exec.run("ip", &["link", "del", "dev", name], None)?;
        Ok(true)
    }
}

/// The addresses in `ip -o -4 addr show` output.
fn parse_addresses(out: &str) -> BTreeSet<Ipv4Addr> {
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Recorder;

    #[test]
    fn should_refuse_names_linux_would_refuse() {
        assert!(check_name("berth-vips").is_ok());
        assert!(check_name("a-name-that-is-too-long").is_err());
        assert!(check_name("bad name").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn should_fall_back_to_a_bridge_when_there_is_no_dummy_driver() {
        let r = Arc::new(Recorder::new());
        r.answer("ip -d -o link show", Err("Device \"bv\" does not exist."));
        r.answer("ip link add bv type dummy", Err("Error: Unknown device type."));
        r.answer("ip -o -4 addr show", Ok("9: bv    inet 10.96.0.1/32 scope global bv\\       valid_lft forever preferred_lft forever\n"));
        let mut vip = VipInterface::new("bv", r.clone()).unwrap();
        vip.ensure().unwrap();
        let lines: Vec<String> = r.calls().iter().map(|c| c.command_line()).collect();
        assert!(lines.contains(&"ip link add bv type bridge".to_string()), "{lines:?}");
        assert!(lines.contains(&"ip link set dev bv up".to_string()), "{lines:?}");
        assert_eq!(vip.addresses().iter().copied().collect::<Vec<_>>(), vec![Ipv4Addr::new(10, 96, 0, 1)]);
    }

    #[test]
    fn should_refuse_an_interface_that_is_not_ours() {
        let r = Arc::new(Recorder::new());
        r.answer("ip -d -o link show", Ok("2: eth0: <BROADCAST,MULTICAST,UP> mtu 1500 veth"));
        let mut vip = VipInterface::new("eth0", r).unwrap();
        assert!(matches!(vip.ensure(), Err(Error::NotOurs { .. })));
    }

    #[test]
    fn should_add_and_remove_only_the_difference_in_one_batch() {
        let r = Arc::new(Recorder::new());
        let mut vip = VipInterface::new("bv", r.clone()).unwrap();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let first: BTreeSet<_> = [ip("10.96.0.1"), ip("10.96.0.2")].into();
        assert_eq!(vip.add(&first).unwrap(), 2);
        let second: BTreeSet<_> = [ip("10.96.0.2"), ip("10.96.0.3")].into();
        assert_eq!(vip.add(&second).unwrap(), 1);
        assert_eq!(vip.remove_others(&second).unwrap(), 1);
        let batches: Vec<String> = r.calls().into_iter().map(|c| c.stdin).collect();
        assert_eq!(
            batches,
            vec![
                "addr add 10.96.0.1/32 dev bv\naddr add 10.96.0.2/32 dev bv\n",
                "addr add 10.96.0.3/32 dev bv\n",
                "addr del 10.96.0.1/32 dev bv\n",
            ]
        );
    }
}
