//! The iptables mode: NAT chains in Kubernetes' shape (`KUBE-SERVICES`, `KUBE-SVC-*`, `KUBE-SEP-*`, `KUBE-EXT-*`, `KUBE-NODEPORTS`, `KUBE-MARK-MASQ`, `KUBE-POSTROUTING`, with a configurable prefix), written atomically with `iptables-restore --noflush`; a partial sync rewrites the dispatch chains and only the chains of the services that changed, as Kubernetes' `MinimizeIPTablesRestore` does.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::config::{Cidr, IptablesBackend};
use crate::exec::Exec;
use crate::model::{Changed, ServicePort, State};
use crate::proxier::{Error, Programmed, Proxier, Result, short_hash};

/// Checks a chain prefix: chain names are at most 28 characters, and
/// `PREFIX-SVC-` plus a 13-character hash must fit.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty() && prefix.len() <= 10 && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok { Ok(()) } else { Err(format!("invalid --chain-prefix {prefix:?}: 1 to 10 letters, digits, '-' or '_'")) }
}

/// What the iptables mode needs to know.
#[derive(Debug, Clone)]
pub struct IptConfig {
    pub prefix: String,
    pub backend: IptablesBackend,
    /// Traffic to a VIP from outside this range is masqueraded.
    pub cluster_cidr: Option<Cidr>,
    /// Non-loopback addresses NodePorts answer on.
    pub nodeport_addresses: Vec<Ipv4Addr>,
    /// The fwmark bit that asks for masquerading.
    pub mark: u32,
}

/// The built-in chains that jump into ours, with the comment that marks the jump.
const JUMPS: [(&str, &str, &str); 3] = [
    ("PREROUTING", "SERVICES", "berth service portals"),
    ("OUTPUT", "SERVICES", "berth service portals"),
    ("POSTROUTING", "POSTROUTING", "berth postrouting rules"),
];

/// Above this many endpoints (all service ports together) the per-endpoint
/// rules carry no `-m comment`, as in Kubernetes' large-cluster mode: at
/// 100,000 endpoints the comments are a third of the payload and of the
/// matches the kernel checks.
pub const LARGE_CLUSTER_ENDPOINTS: usize = 1000;

/// The chains of one service port with their rules.
#[derive(Debug, Default)]
struct PortChains {
    chains: Vec<(String, Vec<String>)>,
}

/// The iptables mode's rule writer.
pub struct Iptables<E: Exec> {
    cfg: IptConfig,
    exec: Arc<E>,
    /// Our chains as last written.
    chains: BTreeSet<String>,
    /// Rules in the per-port chains as last written, for the metrics.
    port_rules: usize,
    /// More than [`LARGE_CLUSTER_ENDPOINTS`] at the last sync: no per-endpoint comments.
    large: bool,
}

impl<E: Exec> Iptables<E> {
    pub fn new(cfg: IptConfig, exec: Arc<E>) -> Result<Self> {
        check_prefix(&cfg.prefix).map_err(Error::Config)?;
        Ok(Iptables { cfg, exec, chains: BTreeSet::new(), port_rules: 0, large: false })
    }

    fn tool(&self, what: &str) -> String {
        format!("iptables-{}{what}", self.cfg.backend.as_str())
    }

    fn chain(&self, kind: &str) -> String {
        format!("{}-{kind}", self.cfg.prefix)
    }

    fn hashed(&self, kind: &str, input: &str) -> String {
        format!("{}-{kind}-{}", self.cfg.prefix, short_hash(input, 13))
    }

    fn svc_chain(&self, p: &ServicePort) -> String {
        self.hashed("SVC", &format!("{}/{}", p.name, p.protocol()))
    }

    fn ext_chain(&self, p: &ServicePort) -> String {
        self.hashed("EXT", &format!("{}/{}", p.name, p.protocol()))
    }

    fn sep_chain(&self, p: &ServicePort, ep: SocketAddrV4) -> String {
        self.hashed("SEP", &format!("{}/{}/{ep}", p.name, p.protocol()))
    }

    /// ` -m comment --comment TEXT` for a per-endpoint rule, or nothing in a large cluster.
    fn endpoint_comment(&self, text: &str) -> String {
        if self.large {
            String::new()
        } else if text.contains(' ') {
            format!(" -m comment --comment \"{text}\"")
        } else {
            format!(" -m comment --comment {text}")
        }
    }

    /// The SVC, SEP and EXT chains of one port (none without endpoints).
    fn port_chains(&self, p: &ServicePort) -> PortChains {
        let mut out = PortChains::default();
        let n = p.endpoints.len();
        if n == 0 {
            return out;
        }
        let proto = p.protocol().as_str();
        let svc = self.svc_chain(p);
        let mark_masq = self.chain("MARK-MASQ");
        let mut svc_rules = Vec::with_capacity(n * 2 + 1);
        if let Some(cidr) = self.cfg.cluster_cidr {
            svc_rules.push(format!(
                "-A {svc} -m comment --comment \"{} cluster IP\" -d {}/32 -p {proto} -m {proto} --dport {} ! -s {cidr} -j {mark_masq}",
                p.name, p.cluster_ip, p.port
            ));
        }
        let seps: Vec<(SocketAddrV4, String)> = p.endpoints.iter().map(|ep| (*ep, self.sep_chain(p, *ep))).collect();
        if let Some(secs) = p.affinity_seconds() {
            for (ep, sep) in &seps {
                let comment = self.endpoint_comment(&format!("{} -> {ep}", p.name));
                svc_rules.push(format!("-A {svc}{comment} -m recent --name {sep} --rcheck --seconds {secs} --reap -j {sep}"));
            }
        }
        for (i, (ep, sep)) in seps.iter().enumerate() {
            let left = n - i;
            let comment = self.endpoint_comment(&format!("{} -> {ep}", p.name));
            if left > 1 {
                svc_rules.push(format!("-A {svc}{comment} -m statistic --mode random --probability {:.10} -j {sep}", 1.0 / left as f64));
            } else {
                svc_rules.push(format!("-A {svc}{comment} -j {sep}"));
            }
        }
        let comment = self.endpoint_comment(&p.name.to_string());
        for (ep, sep) in &seps {
            let recent = if p.affinity.is_some() { format!(" -m recent --name {sep} --set") } else { String::new() };
            out.chains.push((
                sep.clone(),
                vec![
                    format!("-A {sep}{comment} -s {}/32 -j {mark_masq}", ep.ip()),
                    format!("-A {sep}{comment} -p {proto}{recent} -m {proto} -j DNAT --to-destination {ep}"),
                ],
            ));
        }
        if p.node_port.is_some() && !self.cfg.nodeport_addresses.is_empty() {
            let ext = self.ext_chain(p);
            out.chains.push((
                ext.clone(),
                vec![
                    format!("-A {ext} -m comment --comment \"masquerade traffic for {} external destinations\" -j {mark_masq}", p.name),
                    format!("-A {ext} -j {svc}"),
                ],
            ));
        }
        out.chains.push((svc, svc_rules));
        out
    }

    /// The dispatch chains, rewritten on every sync: SERVICES and NODEPORTS.
    fn dispatch(&self, state: &State, text: &mut String) -> usize {
        let services = self.chain("SERVICES");
        let nodeports = self.chain("NODEPORTS");
        let mut rules = 0;
        for p in state.ports().filter(|p| !p.endpoints.is_empty()) {
            let proto = p.protocol().as_str();
            let _ = writeln!(
                text,
                "-A {services} -m comment --comment \"{} cluster IP\" -d {}/32 -p {proto} -m {proto} --dport {} -j {}",
                p.name,
                p.cluster_ip,
                p.port,
                self.svc_chain(p)
            );
            rules += 1;
            if let (Some(np), false) = (p.node_port, self.cfg.nodeport_addresses.is_empty()) {
                let _ = writeln!(
                    text,
                    "-A {nodeports} -m comment --comment {} -p {proto} -m {proto} --dport {np} -j {}",
                    p.name,
                    self.ext_chain(p)
                );
                rules += 1;
            }
        }
        for addr in &self.cfg.nodeport_addresses {
            let _ = writeln!(text, "-A {services} -m comment --comment \"berth service nodeports\" -d {addr}/32 -j {nodeports}");
            rules += 1;
        }
        rules
    }

    /// The fixed chains and their rules.
    fn fixed(&self) -> Vec<(String, Vec<String>)> {
        let mark = self.cfg.mark;
        let (masq, post) = (self.chain("MARK-MASQ"), self.chain("POSTROUTING"));
        vec![
            (masq.clone(), vec![format!("-A {masq} -j MARK --or-mark {mark:#x}")]),
            (
                post.clone(),
                vec![
                    format!("-A {post} -m mark ! --mark {mark:#x}/{mark:#x} -j RETURN"),
                    format!("-A {post} -j MARK --xor-mark {mark:#x}"),
                    format!("-A {post} -m comment --comment \"berth service traffic requiring SNAT\" -j MASQUERADE --random-fully"),
                ],
            ),
        ]
    }

    /// Our chains in the nat table now.
    fn existing_chains(&self) -> Result<BTreeSet<String>> {
        Ok(self.save()?.0)
    }

    /// Our chains in the nat table now, and the built-in chains that
    /// already jump into ours (one `iptables-save`: with legacy iptables
    /// every `iptables -C` reads the whole table, seconds at 10,000 services).
    fn save(&self) -> Result<(BTreeSet<String>, BTreeSet<&'static str>)> {
        let out = self.exec.run(&self.tool("-save"), &["-t", "nat"], None)?;
        let jumps = JUMPS
            .iter()
            .filter(|(builtin, target, comment)| {
                let rule = format!("-A {builtin} -m comment --comment \"{comment}\" -j {}", self.chain(target));
                out.lines().any(|l| l == rule)
            })
            .map(|(builtin, _, _)| *builtin)
            .collect();
        Ok((parse_chains(&out, &format!("{}-", self.cfg.prefix)), jumps))
    }

    fn restore(&self, text: &str) -> Result<()> {
        self.exec.run(&self.tool("-restore"), &["-w", "5", "--noflush"], Some(text.as_bytes()))?;
        Ok(())
    }

    fn jump_args<'a>(&self, builtin: &'a str, target: &str, comment: &'a str) -> Vec<String> {
        ["-w", "5", "-t", "nat"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                builtin.to_string(),
                "-m".into(),
                "comment".into(),
                "--comment".into(),
                comment.to_string(),
                "-j".into(),
                self.chain(target),
            ])
            .collect()
    }

    /// Makes the built-in chains jump into ours (once each).
    fn ensure_jumps(&self, present: &BTreeSet<&'static str>) -> Result<()> {
        let iptables = self.tool("");
        for (builtin, target, comment) in JUMPS {
            if present.contains(builtin) {
                continue;
            }
            let mut check = self.jump_args(builtin, target, comment);
            check.insert(4, "-C".into());
            let check: Vec<&str> = check.iter().map(String::as_str).collect();
            if self.exec.run(&iptables, &check, None).is_ok() {
                continue;
            }
            let mut insert = self.jump_args(builtin, target, comment);
            insert.insert(4, "-I".into());
            let insert: Vec<&str> = insert.iter().map(String::as_str).collect();
            self.exec.run(&iptables, &insert, None)?;
        }
        Ok(())
    }
}

/// The chains this mode writes, found in `iptables-save` output: the fixed
/// ones and the per-port ones of prefix `prefix` (e.g. `KUBE-`); other chains
/// that share the prefix are left alone.
fn parse_chains(out: &str, prefix: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| {
            c.strip_prefix(prefix).is_some_and(|rest| {
                matches!(rest, "SERVICES" | "NODEPORTS" | "POSTROUTING" | "MARK-MASQ")
                    || ["SVC-", "SEP-", "EXT-"].iter().any(|k| rest.starts_with(k))
            })
        })
        .map(str::to_string)
        .collect()
}

impl<E: Exec> Proxier for Iptables<E> {
    fn mode(&self) -> &'static str {
        "iptables"
    }

    fn sync_full(&mut self, state: &State) -> Result<Programmed> {
        let (existing, jumps) = self.save()?;
        self.large = state.endpoint_count() > LARGE_CLUSTER_ENDPOINTS;
        let mut wanted: Vec<(String, Vec<String>)> = self.fixed();
        wanted.push((self.chain("SERVICES"), Vec::new()));
        wanted.push((self.chain("NODEPORTS"), Vec::new()));
        for p in state.ports() {
            wanted.extend(self.port_chains(p).chains);
        }
        let names: BTreeSet<String> = wanted.iter().map(|(n, _)| n.clone()).collect();
        let stale: Vec<&String> = existing.difference(&names).collect();

        let mut text = String::with_capacity(256 * wanted.len());
        text.push_str("*nat\n");
        // The fixed chains are declared last. iptables-restore remembers
        // every declared chain in a hash table of 512 buckets where the
        // newest is found first, and looks a rule's `-j` target up there:
        // declared last, MARK-MASQ (the target of two rules per endpoint) is
        // found at once rather than behind ~200 SEP chains in its bucket.
        let fixed: BTreeSet<String> = ["SERVICES", "NODEPORTS", "POSTROUTING", "MARK-MASQ"].iter().map(|k| self.chain(k)).collect();
        let (fixed_names, per_port): (Vec<&String>, Vec<&String>) = names.iter().partition(|n| fixed.contains(*n));
        for name in per_port.into_iter().chain(stale.iter().copied()).chain(fixed_names) {
            let _ = writeln!(text, ":{name} - [0:0]");
        }
        let dispatch_rules = self.dispatch(state, &mut text);
        let mut rules = 0;
        for (_, chain_rules) in &wanted {
            for r in chain_rules {
                text.push_str(r);
                text.push('\n');
            }
            rules += chain_rules.len();
        }
        let fixed_rules: usize = self.fixed().iter().map(|(_, r)| r.len()).sum();
        for name in &stale {
            let _ = writeln!(text, "-X {name}");
        }
        text.push_str("COMMIT\n");
        debug!(backend = self.cfg.backend.as_str(), bytes = text.len(), chains = names.len(), stale = stale.len(), "iptables full sync");
        self.restore(&text)?;
        self.ensure_jumps(&jumps)?;
        self.chains = names;
        self.port_rules = rules - fixed_rules;
        Ok(Programmed { rules: rules + dispatch_rules })
    }

    fn sync_changes(&mut self, state: &State, changes: &[Changed]) -> Result<Programmed> {
        // Crossing the threshold changes only comments: the chains not rewritten keep theirs.
        self.large = state.endpoint_count() > LARGE_CLUSTER_ENDPOINTS;
        let mut old: BTreeSet<String> = BTreeSet::new();
        let mut old_rules = 0;
        let mut new: Vec<(String, Vec<String>)> = Vec::new();
        for change in changes {
            for p in change.removed_or_changed() {
                for (name, rules) in self.port_chains(p).chains {
                    old_rules += rules.len();
                    old.insert(name);
                }
            }
            for p in change.added_or_changed() {
                new.extend(self.port_chains(p).chains);
            }
        }
        let new_names: BTreeSet<String> = new.iter().map(|(n, _)| n.clone()).collect();
        let gone: Vec<&String> = old.difference(&new_names).collect();
        let (services, nodeports) = (self.chain("SERVICES"), self.chain("NODEPORTS"));

        let mut text = String::with_capacity(4096);
        text.push_str("*nat\n");
        for name in [&services, &nodeports].into_iter().chain(new_names.iter()).chain(gone.iter().copied()) {
            let _ = writeln!(text, ":{name} - [0:0]");
        }
        let dispatch_rules = self.dispatch(state, &mut text);
        let mut new_rules = 0;
        for (_, rules) in &new {
            for r in rules {
                text.push_str(r);
                text.push('\n');
            }
            new_rules += rules.len();
        }
        for name in &gone {
            let _ = writeln!(text, "-X {name}");
        }
        text.push_str("COMMIT\n");
        debug!(bytes = text.len(), rewritten = new_names.len(), removed = gone.len(), "iptables partial sync");
        self.restore(&text)?;
        for name in &gone {
            self.chains.remove(*name);
        }
        self.chains.extend(new_names);
        self.port_rules = self.port_rules.saturating_sub(old_rules) + new_rules;
        let fixed_rules: usize = self.fixed().iter().map(|(_, r)| r.len()).sum();
        Ok(Programmed { rules: fixed_rules + dispatch_rules + self.port_rules })
    }

    fn cleanup(&mut self) -> Result<()> {
        let iptables = self.tool("");
        for (builtin, target, comment) in JUMPS {
            // Remove every copy of the jump (bounded: a few at most).
            for _ in 0..16 {
                let mut delete = self.jump_args(builtin, target, comment);
                delete.insert(4, "-D".into());
                let delete: Vec<&str> = delete.iter().map(String::as_str).collect();
                if self.exec.run(&iptables, &delete, None).is_err() {
                    break;
                }
            }
        }
        let existing = self.existing_chains()?;
        if existing.is_empty() {
            return Ok(());
        }
        let mut text = String::from("*nat\n");
        for name in &existing {
            let _ = writeln!(text, ":{name} - [0:0]");
        }
        for name in &existing {
            let _ = writeln!(text, "-X {name}");
        }
        text.push_str("COMMIT\n");
        match self.restore(&text) {
            Ok(()) => {
                info!(backend = self.cfg.backend.as_str(), chains = existing.len(), "removed the iptables chains");
                self.chains.clear();
                Ok(())
            }
            Err(e) => {
                warn!(cause = %e, "cannot remove the iptables chains");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Recorder;
    use crate::model::service_ports;
    use crate::model::tests::{endpoints, service};

    fn ipt(r: &Arc<Recorder>) -> Iptables<Recorder> {
        let cfg = IptConfig {
            prefix: "KUBE".into(),
            backend: IptablesBackend::Legacy,
            cluster_cidr: Some("172.30.0.0/16".parse().unwrap()),
            nodeport_addresses: vec!["172.29.0.1".parse().unwrap()],
            mark: 0x4000,
        };
        Iptables::new(cfg, r.clone()).unwrap()
    }

    fn restores(r: &Recorder) -> Vec<String> {
        r.calls().into_iter().filter(|c| c.program.ends_with("-restore")).map(|c| c.stdin).collect()
    }

    fn web(eps: &[&str]) -> Vec<ServicePort> {
        let svc = service("web", "10.96.0.10", &[("http", "TCP", 80, 30080)]);
        let e = endpoints("web", eps, &[], &[("http", "TCP", 8080)]);
        service_ports(&svc, Some(&e)).unwrap()
    }

    #[test]
    fn should_write_kubernetes_shaped_chains_with_statistic_balancing() {
        let r = Arc::new(Recorder::new());
        r.answer("iptables-legacy-save", Ok("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-OLDOLDOLDOLDO - [0:0]\nCOMMIT\n"));
        let mut p = ipt(&r);
        let mut state = State::new();
        state.set("default/web", web(&["172.30.0.2", "172.30.0.3", "172.30.0.4"]));
        p.sync_full(&state).unwrap();
        let text = &restores(&r)[0];
        let port = &state.get("default/web")[0];
        let svc = p.svc_chain(port);
        assert!(text.starts_with("*nat\n"), "{text}");
        assert!(text.contains(&format!(
            "-A KUBE-SERVICES -m comment --comment \"default/web:http cluster IP\" -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j {svc}"
        )));
        assert!(text.contains("--probability 0.3333333333 -j KUBE-SEP-"), "{text}");
        assert!(text.contains("--probability 0.5000000000 -j KUBE-SEP-"), "{text}");
        assert!(text.contains("-j DNAT --to-destination 172.30.0.4:8080"), "{text}");
        assert!(text.contains("! -s 172.30.0.0/16 -j KUBE-MARK-MASQ"), "{text}");
        assert!(
            text.contains("-A KUBE-NODEPORTS -m comment --comment default/web:http -p tcp -m tcp --dport 30080 -j KUBE-EXT-"),
            "{text}"
        );
        assert!(text.contains("-A KUBE-SERVICES -m comment --comment \"berth service nodeports\" -d 172.29.0.1/32 -j KUBE-NODEPORTS"));
        assert!(text.contains("-A KUBE-POSTROUTING -j MASQUERADE --random-fully") || text.contains("-j MASQUERADE --random-fully"));
        // A chain left by an earlier run is flushed and removed.
        assert!(text.contains(":KUBE-SVC-OLDOLDOLDOLDO - [0:0]\n") && text.contains("-X KUBE-SVC-OLDOLDOLDOLDO\n"), "{text}");
        assert!(text.ends_with("COMMIT\n"));
        let inserts: Vec<String> = r.calls().iter().map(|c| c.command_line()).filter(|l| l.contains(" -I ")).collect();
        assert_eq!(inserts.len(), 0, "the recorder answers -C with success: no insert needed");
    }

    #[test]
    fn should_drop_per_endpoint_comments_in_a_large_cluster_and_declare_the_fixed_chains_last() {
        let r = Arc::new(Recorder::new());
        let mut p = ipt(&r);
        let mut state = State::new();
        let eps: Vec<String> = (1..=10).map(|i| format!("172.30.1.{i}")).collect();
        let eps: Vec<&str> = eps.iter().map(String::as_str).collect();
        state.set("default/web", web(&eps));
        p.sync_full(&state).unwrap();
        let small = restores(&r).remove(0);
        assert!(small.contains("-m comment --comment \"default/web:http -> 172.30.1.1:8080\" -m statistic"), "{small}");
        assert!(small.contains("-m comment --comment default/web:http -p tcp -m tcp -j DNAT"), "{small}");

        for i in 0..100 {
            let svc = service(&format!("s{i}"), &format!("10.96.1.{i}"), &[("", "TCP", 80, 0)]);
            let ports = service_ports(&svc, Some(&endpoints(&format!("s{i}"), &eps, &[], &[("", "TCP", 80)]))).unwrap();
            state.set(&format!("default/s{i}"), ports);
        }
        assert!(state.endpoint_count() > LARGE_CLUSTER_ENDPOINTS);
        r.clear();
        p.sync_full(&state).unwrap();
        let large = restores(&r).remove(0);
        let sep_rules: Vec<&str> = large.lines().filter(|l| l.starts_with("-A KUBE-SEP-")).collect();
        assert_eq!(sep_rules.len(), 2 * 1010);
        assert!(sep_rules.iter().all(|l| !l.contains("--comment")), "{sep_rules:?}");
        assert!(!large.contains(" -> 172.30.1."), "no comment per SVC -> SEP jump");
        assert!(large.contains("-m statistic --mode random --probability 0.1000000000 -j KUBE-SEP-"));
        // Comments that name a service or a chain's purpose stay.
        assert!(large.contains("-A KUBE-SERVICES -m comment --comment \"default/s7 cluster IP\" -d 10.96.1.7/32"), "{large}");
        assert!(large.contains("\"default/s7 cluster IP\" -d 10.96.1.7/32 -p tcp -m tcp --dport 80 ! -s 172.30.0.0/16 -j KUBE-MARK-MASQ"));

        let declared: Vec<&str> = large.lines().filter_map(|l| l.strip_prefix(':')).map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(declared.len(), 1010 + 101 + 1 + 4, "a SEP per endpoint, an SVC per port, web's EXT, 4 fixed chains");
        assert_eq!(&declared[declared.len() - 4..], ["KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-SERVICES"]);
        let first_rule = large.find("\n-A ").unwrap();
        assert!(large[..first_rule].lines().last().unwrap().starts_with(":KUBE-SERVICES "), "every chain is declared before the rules");
    }

    #[test]
    fn should_insert_missing_jumps_from_the_built_in_chains() {
        let r = Arc::new(Recorder::new());
        r.answer("iptables-legacy -w 5 -t nat -C", Err("iptables: No chain/target/match by that name."));
        let mut p = ipt(&r);
        p.sync_full(&State::new()).unwrap();
        let inserts: Vec<String> = r.calls().iter().map(|c| c.command_line()).filter(|l| l.contains(" -I ")).collect();
        assert_eq!(
            inserts,
            vec![
                "iptables-legacy -w 5 -t nat -I PREROUTING -m comment --comment berth service portals -j KUBE-SERVICES",
                "iptables-legacy -w 5 -t nat -I OUTPUT -m comment --comment berth service portals -j KUBE-SERVICES",
                "iptables-legacy -w 5 -t nat -I POSTROUTING -m comment --comment berth postrouting rules -j KUBE-POSTROUTING",
            ]
        );
    }

    #[test]
    fn should_rewrite_only_changed_service_chains_in_a_partial_sync() {
        let r = Arc::new(Recorder::new());
        let mut p = ipt(&r);
        let mut state = State::new();
        state.set("default/web", web(&["172.30.0.2", "172.30.0.3"]));
        let other = service_ports(
            &service("api", "10.96.0.11", &[("", "TCP", 80, 0)]),
            Some(&endpoints("api", &["172.30.0.9"], &[], &[("", "TCP", 80)])),
        )
        .unwrap();
        state.set("default/api", other.clone());
        p.sync_full(&state).unwrap();
        r.clear();
        let change = state.set("default/web", web(&["172.30.0.2"])).unwrap();
        p.sync_changes(&state, &[change]).unwrap();
        let text = &restores(&r)[0];
        let gone_sep = p.sep_chain(&web(&["172.30.0.3"])[0], "172.30.0.3:8080".parse().unwrap());
        assert!(text.contains(&format!("-X {gone_sep}\n")), "{text}");
        assert!(!text.contains(&format!(":{} ", p.svc_chain(&other[0]))), "api's chain is not rewritten: {text}");
        assert!(text.contains(&format!("-j {}", p.svc_chain(&other[0]))), "but KUBE-SERVICES still dispatches to it: {text}");
        assert!(!text.contains("--probability"), "one endpoint left: {text}");
    }

    #[test]
    fn should_mark_affinity_with_the_recent_module() {
        let r = Arc::new(Recorder::new());
        let mut p = ipt(&r);
        let mut svc = service("s", "10.96.0.12", &[("", "TCP", 80, 0)]);
        svc.spec.as_mut().unwrap().session_affinity = "ClientIP".into();
        let ports = service_ports(&svc, Some(&endpoints("s", &["172.30.0.2"], &[], &[("", "TCP", 80)]))).unwrap();
        let mut state = State::new();
        state.set("default/s", ports);
        p.sync_full(&state).unwrap();
        let text = &restores(&r)[0];
        assert!(text.contains("--rcheck --seconds 10800 --reap -j KUBE-SEP-"), "{text}");
        assert!(text.contains("-m recent --name KUBE-SEP-"), "{text}");
        assert!(text.contains(" --set -m tcp -j DNAT --to-destination 172.30.0.2:80"), "{text}");
    }

    #[test]
    fn should_remove_jumps_and_chains_on_cleanup() {
        let r = Arc::new(Recorder::new());
        r.answer("iptables-legacy -w 5 -t nat -D", Ok(""));
        r.answer("iptables-legacy -w 5 -t nat -D", Err("does not exist"));
        r.answer("iptables-legacy-save", Ok(":KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAA - [0:0]\n:DOCKER - [0:0]\n:KUBE-FIREWALL - [0:0]\n"));
        let mut p = ipt(&r);
        p.cleanup().unwrap();
        let text = &restores(&r)[0];
        assert_eq!(text, "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAA - [0:0]\n-X KUBE-SERVICES\n-X KUBE-SVC-AAAA\nCOMMIT\n");
    }
}
