//! Answers one query: names in the cluster domain (and reverse names of cluster addresses) from the current [`Index`], everything else through the [`Forwarder`].

use berth_base::sync::RwLockExt;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use crate::forward::Forwarder;
use crate::records::{Found, Index};

/// An answer to one query.
#[derive(Debug, Clone)]
pub struct Answer {
    pub rcode: ResponseCode,
    /// Answered from the cluster zone (authoritative) rather than forwarded.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
}

impl Answer {
    /// `cluster` or `forward`, the metrics' source label.
    pub fn source(&self) -> &'static str {
        if self.authoritative { "cluster" } else { "forward" }
    }
}

/// The shared, swappable index and the upstreams.
#[derive(Clone)]
pub struct Answerer {
    index: Arc<RwLock<Arc<Index>>>,
    forwarder: Option<Forwarder>,
}

impl Answerer {
    pub fn new(index: Arc<RwLock<Arc<Index>>>, forwarder: Option<Forwarder>) -> Answerer {
        Answerer { index, forwarder }
    }

    fn current(&self) -> Arc<Index> {
        self.index.read_or_recover().clone()
    }

    /// Answers `query`.
    pub async fn answer(&self, query: &Query) -> Answer {
        let index = self.current();
        let name = query.name();
        let found = index.lookup(name, query.query_type());
        if index.is_cluster_name(name) {
            if !index.is_synced() {
                return Answer { rcode: ResponseCode::ServFail, authoritative: false, answers: Vec::new(), authority: Vec::new() };
            }
            return match found {
                Found::Records(answers) => {
                    let cname_target = match answers.first().map(Record::data) {
                        Some(RData::CNAME(target)) if query.query_type() != RecordType::CNAME => Some(target.0.clone()),
                        _ => None,
                    };
                    let mut answer = Answer { rcode: ResponseCode::NoError, authoritative: true, answers, authority: Vec::new() };
                    // An ExternalName's target is resolved upstream, as CoreDNS does.
                    if let (Some(target), Some(forwarder)) = (cname_target, &self.forwarder)
                        && !index.is_cluster_name(&target)
                    {
                        let forwarded = forwarder.forward(&Query::query(target, query.query_type())).await;
                        answer.answers.extend(forwarded.answers);
                    }
                    answer
                }
                Found::NoData => {
                    Answer { rcode: ResponseCode::NoError, authoritative: true, answers: Vec::new(), authority: vec![index.soa()] }
                }
                Found::NxDomain => {
                    Answer { rcode: ResponseCode::NXDomain, authoritative: true, answers: Vec::new(), authority: vec![index.soa()] }
                }
            };
        }
        // Reverse names of cluster addresses are answered here; other ones, like
        // every name outside the cluster domain, go upstream.
        if let Found::Records(answers) = found {
            return Answer { rcode: ResponseCode::NoError, authoritative: true, answers, authority: Vec::new() };
        }
        match &self.forwarder {
            Some(forwarder) => {
                let forwarded = forwarder.forward(query).await;
                Answer { rcode: forwarded.rcode, authoritative: false, answers: forwarded.answers, authority: forwarded.authority }
            }
            None => Answer { rcode: ResponseCode::Refused, authoritative: false, answers: Vec::new(), authority: Vec::new() },
        }
    }
}
