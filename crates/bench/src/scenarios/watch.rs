//! The `watch` scenario: watch fan-out latency. W watch streams on one
//! kind and namespace share a handful of HTTP/2 connections; then E objects
//! are created at a steady pace, and each (watcher, event) delivery is timed
//! from the moment the create was acknowledged to the moment the watcher
//! received the event, both read from the same clock in this process.
//!
//! Receive times are recorded raw per watcher and compared with the write
//! times only at the end, so watchers share nothing while they run. An event
//! may reach a watcher before its create's response reaches the writer; such
//! deliveries count as 0 ms (and as `early_deliveries`). The same deliveries
//! timed from the moment the create was sent are the `watch_send_*` figures.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use berth_api::pb::core::{ConfigMap, ObjectMeta};
use berth_base::duration::parse_duration;
use berth_client::{Client, ListParams};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use super::{connect_pool, create_namespace, delete_all, delete_namespace};
use crate::Ctx;
use crate::phase::{self, histogram, quantile_ms, record};
use crate::report::Figures;

/// Flags of the `watch` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Concurrent watch streams, all on ConfigMaps of one namespace.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Objects created while they watch; each is one event for every watcher.
    #[arg(long, default_value_t = 500)]
    pub events: usize,
    /// Time between two writes (e.g. 5ms).
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Watch streams per HTTP/2 connection. Each watch is one stream; a
    /// handful of connections carry them all, as informers in a few daemons
    /// would (HTTP/2 servers commonly cap streams per connection, hyper at 200
    /// by default; tonic's server leaves it unlimited unless configured).
    #[arg(long, default_value_t = 100)]
    pub streams_per_connection: usize,
    /// After the last write, how long to wait for deliveries still on their way.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
}

/// What one watcher saw: when it received each event (by index).
struct Seen {
    received: Vec<Option<Instant>>,
    error: Option<String>,
}

fn event_name(i: usize) -> String {
    format!("ev-{i:05}")
}

fn event_index(name: &str) -> Option<usize> {
    name.strip_prefix("ev-")?.parse().ok()
}

/// One run.
pub async fn run(ctx: &Ctx, args: &Args) -> anyhow::Result<Figures> {
    anyhow::ensure!(args.watchers > 0 && args.events > 0, "--watchers and --events must be at least 1");
    let connections = args.watchers.div_ceil(args.streams_per_connection.max(1));
    let pool = connect_pool(ctx, connections).await?;
    // The writer has a connection of its own, so that its acknowledgements
    // do not queue behind the events it causes on the watchers' connections.
    let writer = connect_pool(ctx, 1).await?.remove(0);
    let (ns, ns_rv) = create_namespace(&writer, ctx.deadline).await?;
    info!(server = %pool[0].server(), namespace = %ns, watchers = args.watchers, connections, events = args.events, "watch: opening watches");
    let result = measure(ctx, args, &pool, &writer, &ns, ns_rv).await;

    let cleanup = ctx.cleanup_deadline();
    let d = delete_all(std::slice::from_ref(&writer), 16, "ConfigMap", &ns, (0..args.events).map(event_name).collect(), cleanup).await;
    if d.errors > 0 {
        warn!(errors = d.errors, "some event objects were not deleted");
    }
    delete_namespace(&writer, &ns, cleanup).await;
    result
}

async fn measure(ctx: &Ctx, args: &Args, pool: &[Client], writer: &Client, ns: &str, ns_rv: u64) -> anyhow::Result<Figures> {
    let (w_count, e_count, deadline) = (args.watchers, args.events, ctx.deadline);
    let ns: Arc<str> = ns.into();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(w_count);
    let (seen_tx, mut seen_rx) = mpsc::channel::<Seen>(w_count);

    // open every watch and wait until each has its response headers, so
    // that none misses the first event
    let setup = Instant::now();
    for w in 0..w_count {
        let client = pool[w % pool.len()].clone();
        let (ns, ready, seen, stop) = (ns.clone(), ready_tx.clone(), seen_tx.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let s = watcher(client, &ns, ns_rv, e_count, ready, stop, deadline).await;
            let _ = seen.send(s).await;
        });
    }
    drop((ready_tx, seen_tx));
    let mut open = 0;
    while open < w_count {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(())) => open += 1,
            Ok(None) => break,
            Err(_) => {
                let _ = stop_tx.send(true);
                anyhow::bail!("timed out opening watches: {open} of {w_count} open");
            }
        }
    }
    let setup_ms = setup.elapsed().as_secs_f64() * 1000.0;
    info!(open, setup_ms, "watch: writing events");
    let written_at = Instant::now();

    // write the events at a steady pace, open loop: a slow write does not
    // delay the next one
    let mut sent = vec![None; e_count];
    let mut acked = vec![None; e_count];
    let mut writes = histogram();
    let mut write_errors = 0u64;
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut in_flight = tokio::task::JoinSet::new();
    for i in 0..e_count {
        ticker.tick().await;
        if Instant::now() >= deadline {
            let _ = stop_tx.send(true);
            anyhow::bail!("the --timeout passed after {i} of {e_count} writes");
        }
        let cm = ConfigMap {
            metadata: Some(ObjectMeta { name: event_name(i), namespace: ns.to_string(), ..Default::default() }),
            data: BTreeMap::from([("event".into(), i.to_string())]),
            ..Default::default()
        };
        let writer = writer.clone();
        in_flight.spawn(async move {
            let t0 = Instant::now();
            let r = tokio::time::timeout_at(deadline, writer.create(cm)).await;
            (i, t0, Instant::now(), r)
        });
    }
    while let Some(joined) = in_flight.join_next().await {
        let (i, t0, t1, r) = joined.context("a write task failed")?;
        match r {
            Ok(Ok(_)) => {
                record(&mut writes, t1 - t0);
                sent[i] = Some(t0);
                acked[i] = Some(t1);
            }
            Ok(Err(e)) => {
                write_errors += 1;
                warn!(event = i, error = %e, "write failed");
            }
            Err(_) => {
                let _ = stop_tx.send(true);
                anyhow::bail!("the --timeout passed before write {i} was acknowledged");
            }
        }
    }

    let writes_took = written_at.elapsed();

    // wait for the watchers to see everything, then stop the stragglers
    let drain_until = std::cmp::min(Instant::now() + args.drain, deadline);
    let mut results = Vec::with_capacity(w_count);
    while results.len() < w_count {
        match tokio::time::timeout_at(drain_until, seen_rx.recv()).await {
            Ok(Some(s)) => results.push(s),
            Ok(None) | Err(_) => break,
        }
    }
    let _ = stop_tx.send(true);
    let stragglers_until = Instant::now() + Duration::from_secs(5);
    while results.len() < w_count {
        match tokio::time::timeout_at(stragglers_until, seen_rx.recv()).await {
            Ok(Some(s)) => results.push(s),
            Ok(None) | Err(_) => break,
        }
    }

    // every (watcher, event) delivery
    let written = acked.iter().filter(|a| a.is_some()).count() as u64;
    let (mut from_ack, mut from_send) = (histogram(), histogram());
    let (mut deliveries, mut missed, mut early, mut watch_errors) = (0u64, 0u64, 0u64, 0u64);
    let mut first_error = None;
    for s in &results {
        if let Some(e) = &s.error {
            watch_errors += 1;
            first_error.get_or_insert_with(|| e.clone());
        }
        for i in 0..e_count {
            let (Some(t_sent), Some(t_acked)) = (sent[i], acked[i]) else {
                continue;
            };
            match s.received[i] {
                Some(r) => {
                    deliveries += 1;
                    if r < t_acked {
                        early += 1;
                    }
                    record(&mut from_ack, r.saturating_duration_since(t_acked));
                    record(&mut from_send, r.saturating_duration_since(t_sent));
                }
                None => missed += 1,
            }
        }
    }
    // watchers that never reported missed everything
    missed += (w_count - results.len()) as u64 * written;
    if let Some(e) = first_error {
        warn!(watch_errors, first = %e, "watches ended with an error");
    }
    if missed > 0 {
        warn!(missed, "some watchers did not receive every event");
    }

    let mut f = Figures::new();
    f.count("watchers", w_count as u64);
    f.count("connections", pool.len() as u64);
    f.count("events", e_count as u64);
    f.measure("interval_ms", args.interval.as_secs_f64() * 1000.0);
    f.measure("watch_setup_ms", setup_ms);
    f.measure("watch_p50_ms", quantile_ms(&from_ack, 0.50));
    f.measure("watch_p99_ms", quantile_ms(&from_ack, 0.99));
    f.measure("watch_max_ms", phase::max_ms(&from_ack));
    f.measure("watch_send_p50_ms", quantile_ms(&from_send, 0.50));
    f.measure("watch_send_p99_ms", quantile_ms(&from_send, 0.99));
    f.measure("write_p50_ms", quantile_ms(&writes, 0.50));
    f.measure("write_p99_ms", quantile_ms(&writes, 0.99));
    f.measure("writes_per_s", written as f64 / writes_took.as_secs_f64().max(1e-9));
    f.count("deliveries", deliveries);
    f.count("missed", missed);
    f.count("early_deliveries", early);
    f.count("watch_errors", watch_errors);
    f.count("write_errors", write_errors);
    anyhow::ensure!(deliveries > 0, "no watcher received any of the {written} acknowledged events");
    Ok(f)
}

/// One watcher: opens its watch, says so on `ready`, then records when each
/// event arrives until it has all `events`, the watch ends, or it is stopped.
async fn watcher(
    client: Client,
    ns: &str,
    resource_version: u64,
    events: usize,
    ready: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
    deadline: Instant,
) -> Seen {
    let mut seen = Seen { received: vec![None; events], error: None };
    let opened = tokio::time::timeout_at(deadline, client.watch_objects("ConfigMap", ns, &ListParams::default(), resource_version)).await;
    let mut stream = match opened.context("timed out opening the watch").and_then(|r| r.context("cannot open the watch")) {
        Ok(s) => s,
        Err(e) => {
            seen.error = Some(format!("{e:#}"));
            let _ = ready.send(()).await;
            return seen;
        }
    };
    let _ = ready.send(()).await;
    drop(ready);
    let mut got = 0;
    while got < events {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(ev)) => {
                    let at = Instant::now();
                    if ev.r#type != "ADDED" {
                        continue;
                    }
                    if let Some(i) = ev.object.as_ref().and_then(|o| event_index(o.name()))
                        && i < events
                        && seen.received[i].is_none()
                    {
                        seen.received[i] = Some(at);
                        got += 1;
                    }
                }
                Some(Err(e)) => {
                    seen.error = Some(e.to_string());
                    break;
                }
                None => {
                    seen.error = Some("the server ended the watch".into());
                    break;
                }
            },
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_the_event_index_back_from_the_name() {
        assert_eq!(event_index(&event_name(42)), Some(42));
        assert_eq!(event_index("cm-00042"), None);
    }
}
