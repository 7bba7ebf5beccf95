//! The scenarios, one module each; every scenario turns its flags into one
//! run's [`Figures`](crate::report::Figures), and `--repeat` runs it again.
//!
//! The helpers here are what every scenario against the apiserver needs: a
//! pool of connections and a throwaway namespace.

pub mod api;
pub mod converge;
pub mod dns;
pub mod pod_startup;
pub mod proxy;
pub mod schedule;
pub mod store;
pub mod watch;

use anyhow::Context as _;
use berth_api::Resource;
use berth_api::pb::core::{Namespace, ObjectMeta};
use berth_client::{Client, DeleteParams};
use rand::Rng;
use tokio::time::Instant;
use tracing::warn;

use crate::Ctx;

/// Opens `n` clients, each on its own HTTP/2 connection.
pub async fn connect_pool(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<Client>> {
    let config = ctx.client_config();
    let mut clients = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        let c = tokio::time::timeout_at(ctx.deadline, Client::connect(&config))
            .await
            .context("timed out connecting to the API server")?
            .with_context(|| format!("cannot connect to the API server at {}", config.server))?;
        clients.push(c);
    }
    Ok(clients)
}

/// `bench-` and six random lowercase letters and digits.
pub fn random_namespace() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..6).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect();
    format!("bench-{suffix}")
}

/// A random alphanumeric string, as the payload of an object.
pub fn random_text(len: usize) -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(len).map(char::from).collect()
}

/// Creates a fresh `bench-*` namespace and returns its name and the
/// revision it was created at.
pub async fn create_namespace(client: &Client, deadline: Instant) -> anyhow::Result<(String, u64)> {
    let name = random_namespace();
    let ns = Namespace { metadata: Some(ObjectMeta { name: name.clone(), ..Default::default() }), ..Default::default() };
    let created = tokio::time::timeout_at(deadline, client.create(ns))
        .await
        .context("timed out creating the benchmark namespace")?
        .with_context(|| format!("cannot create namespace {name}"))?;
    let rv = created.meta().resource_version.parse().unwrap_or(0);
    Ok((name, rv))
}

/// Deletes the benchmark namespace (after its objects); a failure only warns,
/// as the figures are already taken.
pub async fn delete_namespace(client: &Client, name: &str, deadline: Instant) {
    match tokio::time::timeout_at(deadline, client.delete::<Namespace>("", name, &DeleteParams::default())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(namespace = name, error = %e, "cannot delete the benchmark namespace"),
        Err(_) => warn!(namespace = name, "timed out deleting the benchmark namespace"),
    }
}

/// Deletes `names` of `kind` in `namespace` with `workers` concurrent
/// requests, immediately (grace period 0).
pub async fn delete_all(
    clients: &[Client],
    workers: usize,
    kind: &'static str,
    namespace: &str,
    names: Vec<String>,
    deadline: Instant,
) -> crate::phase::Phase {
    let clients = clients.to_vec();
    let namespace = namespace.to_string();
    let names = std::sync::Arc::new(names);
    let total = names.len();
    crate::phase::run("delete", workers, total, deadline, move |w, i| {
        let client = clients[w % clients.len()].clone();
        let (namespace, names) = (namespace.clone(), names.clone());
        async move {
            let params = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
            match client.delete_object(kind, &namespace, &names[i], &params).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e),
            }
        }
    })
    .await
}
