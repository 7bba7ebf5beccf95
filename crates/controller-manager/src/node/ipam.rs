//! Node IPAM: gives every node without one a podCIDR from `--cluster-cidr`
//! (a `/--node-cidr-mask-size` subnet each), remembers the subnets nodes
//! already have, and frees a node's subnet when the node is deleted.

use berth_base::sync::MutexExt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use berth_api::pb::core::Node;
use berth_client::Client;
use berth_runtime::events::{Recorder, reference};
use berth_runtime::{Reader, key_of};
use tracing::{info, warn};

use super::cidr::{Allocator, Cidr};
use crate::controller::{self, Next, run_workers};
use crate::error::{self, Error, Result};
use crate::informers::Informers;
use berth_client::modify;

use crate::Ctx;

struct Controller {
    client: Client,
    nodes: Reader<Node>,
    allocator: Arc<Mutex<Allocator>>,
    recorder: Recorder,
}

fn pod_cidr(n: &Node) -> Option<Cidr> {
    n.spec.as_ref().map(|s| s.pod_cidr.as_str()).filter(|c| !c.is_empty()).and_then(|c| c.parse().ok())
}

/// Registers the allocator's informer; the returned future runs it until the
/// manager stops. None when no cluster CIDR is configured.
pub fn start(
    ctx: &Ctx,
    informers: &mut Informers,
    settings: &super::Settings,
) -> Option<impl Future<Output = Result<()>> + Send + 'static> {
    let cluster = settings.cluster_cidr?;
    let allocator = match Allocator::new(cluster, settings.node_cidr_mask_size) {
        Ok(a) => Arc::new(Mutex::new(a)),
        Err(e) => {
            warn!(controller = super::IPAM_NAME, cause = %e, "podCIDRs are not allocated");
            return None;
        }
    };
    let queue = controller::queue(super::IPAM_NAME, &ctx.metrics);
    let nodes = informers.of::<Node>();
    let q = queue.clone();
    nodes.on_add(move |n| q.add(key_of(&**n)));
    let q = queue.clone();
    nodes.on_update(move |old, n| {
        if old.spec.as_ref().map(|s| &s.pod_cidr) != n.spec.as_ref().map(|s| &s.pod_cidr) || pod_cidr(n).is_none() {
            q.add(key_of(&**n));
        }
    });
    let a = allocator.clone();
    nodes.on_delete(move |n| {
        if let Some(c) = pod_cidr(n) {
            a.lock_or_recover().release(&c);
        }
    });
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        nodes: nodes.reader(),
        allocator,
        recorder: Recorder::new(ctx.client.clone(), "node-ipam-controller", &ctx.host),
    });
    let (metrics, stop) = (ctx.metrics.clone(), ctx.stop.clone());
    Some(async move {
        c.nodes.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Node", source })?;
        {
            // What nodes already have is taken before anything is handed out,
            // and so is the subnet of the cluster network's gateway (its first
            // address, which the pods' bridge holds).
            let mut a = c.allocator.lock_or_recover();
            a.reserve_gateway();
            for n in c.nodes.list() {
                if let Some(cidr) = pod_cidr(&n) {
                    a.occupy(&cidr);
                }
            }
        }
        info!(controller = super::IPAM_NAME, cluster_cidr = %cluster, "caches synced, starting");
        // One worker: allocations are decided one node at a time.
        run_workers(super::IPAM_NAME, queue, 1, metrics, stop, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    })
}

impl Controller {
    async fn sync(&self, name: &str) -> Result<Next> {
        let Some(node) = self.nodes.get("", name) else { return Ok(Next::Done) };
        if let Some(c) = pod_cidr(&node) {
            self.allocator.lock_or_recover().occupy(&c);
            return Ok(Next::Done);
        }
        let Some(cidr) = self.allocator.lock_or_recover().allocate() else {
            self.recorder.warning(&reference(&*node), "CIDRNotAvailable", format!("Node {name} status is now: CIDRNotAvailable"));
            warn!(node = name, "no podCIDR left in the cluster CIDR");
            return Err(Error::Config("the cluster CIDR has no free node subnet left".into()));
        };
        let text = cidr.to_string();
        let r = modify::update::<Node>(&self.client, "", name, |n| {
            let spec = n.spec.get_or_insert_with(Default::default);
            if !spec.pod_cidr.is_empty() {
                return false;
            }
            spec.pod_cidr = text.clone();
            spec.pod_cidrs = vec![text.clone()];
            true
        })
        .await;
        match r {
            Ok(Some(_)) => {
                info!(node = name, pod_cidr = %text, "allocated podCIDR");
                self.recorder.normal(&reference(&*node), "CIDRAssigned", format!("Node {name} was given podCIDR {text}"));
                Ok(Next::Done)
            }
            // Someone else set it first (or the node went): ours goes back.
            Ok(None) => {
                self.allocator.lock_or_recover().release(&cidr);
                Ok(Next::Done)
            }
            Err(e) => {
                self.allocator.lock_or_recover().release(&cidr);
                if e.is_not_found() {
                    return Ok(Next::Done);
                }
                Err(error::api(format!("setting the podCIDR of node {name}"))(e))
            }
        }
    }
}
