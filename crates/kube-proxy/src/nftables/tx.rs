//! A sync's transactions being written: the `nft -f` scripts ([`Tx`]), whose statements go
//! before or after the element changes, and the element changes themselves ([`ElementTx`]),
//! sent as one netlink batch.

use std::fmt::Write as _;

use super::model::{Element, Map, Value, lb_chain, nodeport_lb_chain, port_bytes};
use crate::exec::ElementBatch;
use crate::nfnetlink::{self, Batch, Data, Op};

/// The element changes of one sync: flushed maps, then deletions, then
/// additions, in one netlink batch.
pub(super) struct ElementTx<'a> {
    pub(super) table: &'a str,
    pub(super) flush: Vec<Map>,
    pub(super) delete: Vec<Element>,
    pub(super) add: Vec<Element>,
}

impl ElementTx<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.flush.is_empty() && self.delete.is_empty() && self.add.is_empty()
    }
}

impl ElementBatch for ElementTx<'_> {
    fn encode(&self) -> nfnetlink::Finished {
        let mut b = Batch::with_capacity(256 + (self.delete.len() + self.add.len()) * 64);
        for m in &self.flush {
            b.flush(self.table, m.name());
        }
        let mut key = [0u8; 12];
        let mut chain = String::new();
        for (op, list) in [(Op::Delete, &self.delete), (Op::Add, &self.add)] {
            for map in Map::all() {
                for e in list.iter().filter(|e| e.map == map) {
                    let len = e.key.encode(&mut key);
                    let mut value = [0u8; 8];
                    let data = match (&e.value, op) {
                        (_, Op::Delete) | (None, _) => Data::None,
                        (Some(Value::Endpoint(ep)), _) => {
                            value[..4].copy_from_slice(&ep.ip().octets());
                            value[4..].copy_from_slice(&port_bytes(ep.port()));
                            Data::Value(&value)
                        }
                        (Some(Value::Goto(c)), _) => Data::Goto(c.as_str()),
                        (Some(Value::Lb(n)), _) => {
                            chain.clear();
                            chain.push_str(&lb_chain(*n));
                            Data::Goto(&chain)
                        }
                        (Some(Value::NodePortLb(n)), _) => {
                            chain.clear();
                            chain.push_str(&nodeport_lb_chain(*n));
                            Data::Goto(&chain)
                        }
                    };
                    b.element(op, self.table, map.name(), &key[..len], data);
                }
            }
        }
        b.finish()
    }

    fn describe(&self) -> String {
        let t = self.table;
        let mut out = String::new();
        for m in &self.flush {
            let _ = writeln!(out, "flush {} ip {t} {}", m.declaration().0, m.name());
        }
        for (verb, list) in [("delete", &self.delete), ("add", &self.add)] {
            for map in Map::all() {
                let mut first = true;
                for e in list.iter().filter(|e| e.map == map) {
                    let _ = if first { write!(out, "{verb} element ip {t} {} {{ ", map.name()) } else { write!(out, ", ") };
                    first = false;
                    let _ = write!(out, "{}", e.key);
                    if let (Some(v), "add") = (&e.value, verb) {
                        let _ = write!(out, " : {v}");
                    }
                }
                if !first {
                    out.push_str(" }\n");
                }
            }
        }
        out
    }
}

/// Where a statement goes. nft resolves names as it reads, so everything
/// is declared before any rule refers to it; removals go in a second
/// script, after the elements that referred to them are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    /// Declarations of the table, chains, maps and sets; flushes of chains.
    Head,
    /// Rules.
    Body,
    /// Emptying and deleting chains and sets nothing refers to any more.
    Post,
}

/// The `nft -f` scripts of a sync being written.
pub(super) struct Tx {
    head: String,
    body: String,
    post: String,
}

impl Tx {
    pub(super) fn new() -> Tx {
        Tx { head: String::with_capacity(1 << 12), body: String::with_capacity(1 << 12), post: String::new() }
    }

    fn section(&mut self, s: Section) -> &mut String {
        match s {
            Section::Head => &mut self.head,
            Section::Body => &mut self.body,
            Section::Post => &mut self.post,
        }
    }

    pub(super) fn line(&mut self, s: Section, args: std::fmt::Arguments<'_>) {
        let out = self.section(s);
        let _ = out.write_fmt(args);
        out.push('\n');
    }

    pub(super) fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.post.len()
    }

    /// The script that runs before the elements change, and the one after.
    pub(super) fn finish(self) -> (String, String) {
        let mut first = self.head;
        first.push_str(&self.body);
        (first, self.post)
    }

    /// Declares (if needed) and flushes a chain, and writes its rules.
    pub(super) fn chain(&mut self, table: &str, name: &str, rules: &[String]) {
        self.line(Section::Head, format_args!("add chain ip {table} {name}"));
        self.line(Section::Head, format_args!("flush chain ip {table} {name}"));
        for r in rules {
            self.line(Section::Body, format_args!("add rule ip {table} {name} {r}"));
        }
    }
}
