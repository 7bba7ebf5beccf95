//! The [`Proxier`] implementation: a full sync writes the whole table (and removes what an
//! earlier run left), a partial sync rewrites only the elements, chains and sets of the changed
//! service ports; cleanup deletes the table.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use tracing::{debug, warn};

use super::Nftables;
use super::model::{AffinitySet, Chain, Map, hairpin_element, lb_chain, nodeport_lb_chain};
use super::tx::{ElementTx, Section, Tx};
use crate::exec::{self, Exec};
use crate::model::{Changed, State};
use crate::proxier::{Programmed, Proxier, Result};

impl<E: Exec> Proxier for Nftables<E> {
    fn mode(&self) -> &'static str {
        "nftables"
    }

    fn sync_full(&mut self, state: &State) -> Result<Programmed> {
        self.sync_full_or_recreate(state, true)
    }

    fn sync_changes(&mut self, _state: &State, changes: &[Changed]) -> Result<Programmed> {
        let t = self.cfg.table.clone();
        let mut del_elements = Vec::new();
        let mut add_elements = Vec::new();
        let mut old_chains: BTreeSet<String> = BTreeSet::new();
        let mut old_sets: BTreeSet<String> = BTreeSet::new();
        let mut new_chains: Vec<Chain> = Vec::new();
        let mut new_sets: Vec<AffinitySet> = Vec::new();
        let mut hairpin = self.hairpin.clone();
        let mut lb = self.lb.clone();
        let mut nodeport_lb = self.nodeport_lb.clone();
        let mut old_rules = 0;

        for change in changes {
            for p in change.removed_or_changed() {
                let o = self.port_objects(p);
                del_elements.extend(o.elements);
                old_rules += o.chains.iter().map(|c| c.rules.len()).sum::<usize>();
                old_chains.extend(o.chains.into_iter().map(|c| c.name));
                old_sets.extend(o.sets.into_iter().map(|s| s.name));
                for (counts, n) in [(&mut lb, o.lb), (&mut nodeport_lb, o.nodeport_lb)] {
                    if let Some(c) = n.and_then(|n| counts.get_mut(&n)) {
                        *c = c.saturating_sub(1);
                    }
                }
                for ep in p.endpoints.iter().filter(|ep| self.needs_hairpin(*ep.ip())) {
                    if let Some(n) = hairpin.get_mut(ep.ip()) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            for p in change.added_or_changed() {
                let o = self.port_objects(p);
                add_elements.extend(o.elements);
                new_chains.extend(o.chains);
                new_sets.extend(o.sets);
                for (counts, n) in [(&mut lb, o.lb), (&mut nodeport_lb, o.nodeport_lb)] {
                    if let Some(n) = n {
                        *counts.entry(n).or_default() += 1;
                    }
                }
                for ep in p.endpoints.iter().filter(|ep| self.needs_hairpin(*ep.ip())) {
                    *hairpin.entry(*ep.ip()).or_default() += 1;
                }
            }
        }
        // Hairpin elements follow the count of ports using each endpoint IP.
        for (ip, n) in &hairpin {
            let before = self.hairpin.get(ip).copied().unwrap_or(0);
            if before > 0 && *n == 0 {
                del_elements.push(hairpin_element(*ip));
            } else if before == 0 && *n > 0 {
                add_elements.push(hairpin_element(*ip));
            }
        }
        hairpin.retain(|_, n| *n > 0);
        // Shared lb chains come when first used and go when last unused.
        let mut new_lb_chains: Vec<(String, Vec<String>)> = Vec::new();
        let mut gone_lb_chains: Vec<(String, usize)> = Vec::new();
        for nodeport in [false, true] {
            let (after, before) = if nodeport { (&nodeport_lb, &self.nodeport_lb) } else { (&lb, &self.lb) };
            for (&n, &count) in after {
                let (name, rules) =
                    if nodeport { (nodeport_lb_chain(n), Self::nodeport_lb_rules(n)) } else { (lb_chain(n), self.lb_rules(n)) };
                match (before.get(&n).copied().unwrap_or(0), count) {
                    (0, c) if c > 0 => new_lb_chains.push((name, rules)),
                    (w, 0) if w > 0 => gone_lb_chains.push((name, rules.len())),
                    _ => {}
                }
            }
        }
        lb.retain(|_, c| *c > 0);
        nodeport_lb.retain(|_, c| *c > 0);
        old_rules += gone_lb_chains.iter().map(|(_, r)| r).sum::<usize>();
        old_chains.extend(gone_lb_chains.into_iter().map(|(n, _)| n));
        let new_chain_names: BTreeSet<String> = new_chains.iter().map(|c| c.name.clone()).collect();
        let new_set_names: BTreeSet<String> = new_sets.iter().map(|s| s.name.clone()).collect();

        let mut tx = Tx::new();
        let gone_chains: Vec<&String> = old_chains.difference(&new_chain_names).collect();
        for c in &gone_chains {
            tx.line(Section::Post, format_args!("flush chain ip {t} {c}"));
        }
        for c in &gone_chains {
            tx.line(Section::Post, format_args!("delete chain ip {t} {c}"));
        }
        for s in old_sets.difference(&new_set_names) {
            tx.line(Section::Post, format_args!("delete set ip {t} {s}"));
        }
        for s in &new_sets {
            tx.line(
                Section::Head,
                format_args!("add set ip {t} {} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; }}", s.name, s.timeout_secs),
            );
        }
        for (name, rules) in &new_lb_chains {
            tx.chain(&t, name, rules);
        }
        new_chains.sort_by_key(|c| !c.name.starts_with("ep-"));
        for c in &new_chains {
            tx.chain(&t, &c.name, &c.rules);
        }
        let (removed, added) = (del_elements.len(), add_elements.len());
        let elements = ElementTx { table: &t, flush: Vec::new(), delete: del_elements, add: add_elements };
        if tx.len() == 0 && elements.is_empty() {
            return Ok(Programmed { rules: self.programmed });
        }
        debug!(table = %t, bytes = tx.len(), removed, added, "nft partial sync");
        self.apply(tx, &elements)?;
        let new_rules = new_chains.iter().map(|c| c.rules.len()).sum::<usize>() + new_lb_chains.iter().map(|(_, r)| r.len()).sum::<usize>();
        self.programmed = (self.programmed + added + new_rules).saturating_sub(removed + old_rules);
        self.hairpin = hairpin;
        self.lb = lb;
        self.nodeport_lb = nodeport_lb;
        Ok(Programmed { rules: self.programmed })
    }

    fn cleanup(&mut self) -> Result<()> {
        match self.exec.run("nft", &["delete", "table", "ip", &self.cfg.table], None) {
            Ok(_) => Ok(()),
            Err(e @ exec::Error::Failed { .. }) if e.stderr().contains("No such file or directory") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl<E: Exec> Nftables<E> {
    /// A full sync; when the table cannot be amended and `recreate` is
    /// set, the table is deleted and written once more from nothing.
    fn sync_full_or_recreate(&mut self, state: &State, recreate: bool) -> Result<Programmed> {
        let t = self.cfg.table.clone();
        let (existing_chains, existing_sets) = self.list_objects()?;
        let mut tx = Tx::new();
        self.write_skeleton(&mut tx);
        tx.line(Section::Head, format_args!("flush set ip {t} nodeport-ips"));
        if !self.cfg.nodeport_addresses.is_empty() {
            let ips: Vec<String> = self.cfg.nodeport_addresses.iter().map(|a| a.to_string()).collect();
            tx.line(Section::Body, format_args!("add element ip {t} nodeport-ips {{ {} }}", ips.join(", ")));
        }

        let mut elements = Vec::with_capacity(state.port_count() + state.endpoint_count() * 2);
        let mut chains: Vec<Chain> = Vec::new();
        let mut sets: Vec<AffinitySet> = Vec::new();
        let mut lb: BTreeMap<usize, usize> = BTreeMap::new();
        let mut nodeport_lb: BTreeMap<usize, usize> = BTreeMap::new();
        let mut hairpin: HashMap<Ipv4Addr, usize> = HashMap::new();
        for p in state.ports() {
            let o = self.port_objects(p);
            elements.extend(o.elements);
            chains.extend(o.chains);
            sets.extend(o.sets);
            for (counts, n) in [(&mut lb, o.lb), (&mut nodeport_lb, o.nodeport_lb)] {
                if let Some(n) = n {
                    *counts.entry(n).or_default() += 1;
                }
            }
            for ep in p.endpoints.iter().filter(|ep| self.needs_hairpin(*ep.ip())) {
                *hairpin.entry(*ep.ip()).or_default() += 1;
            }
        }
        elements.extend(hairpin.keys().map(|ip| hairpin_element(*ip)));

        let mut wanted_chains: BTreeSet<String> =
            ["nat-prerouting", "nat-output", "nat-postrouting", "services", "mark-for-masquerade", "masquerading"].map(String::from).into();
        let mut rules = 0;
        for set in &sets {
            tx.line(
                Section::Head,
                format_args!("add set ip {t} {} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; }}", set.name, set.timeout_secs),
            );
        }
        for n in lb.keys() {
            let chain_rules = self.lb_rules(*n);
            rules += chain_rules.len();
            tx.chain(&t, &lb_chain(*n), &chain_rules);
            wanted_chains.insert(lb_chain(*n));
        }
        for n in nodeport_lb.keys() {
            let chain_rules = Self::nodeport_lb_rules(*n);
            rules += chain_rules.len();
            tx.chain(&t, &nodeport_lb_chain(*n), &chain_rules);
            wanted_chains.insert(nodeport_lb_chain(*n));
        }
        // Endpoint chains before the service chains that jump to them.
        chains.sort_by_key(|c| !c.name.starts_with("ep-"));
        for c in &chains {
            rules += c.rules.len();
            tx.chain(&t, &c.name, &c.rules);
            wanted_chains.insert(c.name.clone());
        }
        // What an earlier run left and nobody wants any more: flush every
        // such chain first, so that none is still referenced when deleted.
        let stale_chains: Vec<&String> = existing_chains.difference(&wanted_chains).collect();
        for c in &stale_chains {
            tx.line(Section::Post, format_args!("flush chain ip {t} {c}"));
        }
        for c in &stale_chains {
            tx.line(Section::Post, format_args!("delete chain ip {t} {c}"));
        }
        let fixed_sets: BTreeSet<String> = Map::all().iter().map(|m| m.name().to_string()).chain(["nodeport-ips".to_string()]).collect();
        let wanted_sets: BTreeSet<String> = sets.iter().map(|s| s.name.clone()).collect();
        for s in existing_sets.iter().filter(|s| !fixed_sets.contains(*s) && !wanted_sets.contains(*s)) {
            tx.line(Section::Post, format_args!("delete set ip {t} {s}"));
        }

        let count = elements.len();
        debug!(table = %t, bytes = tx.len(), elements = count, chains = wanted_chains.len(), "nft full sync");
        let elements = ElementTx { table: &t, flush: Map::all().to_vec(), delete: Vec::new(), add: elements };
        if let Err(e) = self.apply(tx, &elements) {
            // A table in a shape this version cannot amend (another version's
            // map types, say): start it again from nothing, once.
            if !recreate {
                return Err(e);
            }
            warn!(table = %t, cause = %e, "cannot amend the table; recreating it");
            self.exec.run("nft", &["delete", "table", "ip", &t], None).ok();
            return self.sync_full_or_recreate(state, false);
        }
        self.hairpin = hairpin;
        self.lb = lb;
        self.nodeport_lb = nodeport_lb;
        self.programmed = rules + count;
        Ok(Programmed { rules: self.programmed })
    }
}
