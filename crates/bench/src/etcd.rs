//! The generated client of etcd's `KV.Put` (proto/etcd.proto), used to run
//! the create workload against etcd for comparison.

use anyhow::Context as _;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Generated from proto/etcd.proto.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

pub use pb::kv_client::KvClient;

/// Opens `n` separate HTTP/2 connections to etcd.
pub async fn connect(url: &str, n: usize) -> anyhow::Result<Vec<KvClient<Channel>>> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("bad --etcd URL {url}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let channel = endpoint.connect().await.with_context(|| format!("cannot reach etcd at {url}"))?;
        clients.push(KvClient::new(channel));
    }
    Ok(clients)
}
