//! The sync loop: Service and Endpoints informers feed a work queue of service keys; changes are batched and applied at most once per `--min-sync-period`, only for the services that changed, and everything is rewritten every `--sync-period` (and after any failed partial sync).
//!
//! A sync binds new VIPs first, then programs the mode's kernel rules (off
//! the async runtime: they run tools), then the relays, and unbinds VIPs
//! that are no longer used last, so that a VIP never answers without rules
//! and is never left unbound while rules point at it.

use berth_base::sync::MutexExt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_api::pb::core::{Endpoints, Service};
use berth_client::ListParams;
use berth_runtime::reflector::Reader;
use berth_runtime::{Informer, WorkQueue, key_of};
use futures::FutureExt;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::exec::Exec;
use crate::metrics::Metrics;
use crate::model::{Changed, ServicePort, Skip, State, service_ports};
use crate::proxier::{Programmed, Proxier};
use crate::userspace::Relays;
use crate::vip::VipInterface;

/// The longest wait before a failed full sync is tried again.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// What the blocking part of a sync touches: the VIP interface and the mode's rule writer.
pub struct Kernel<E: Exec> {
    pub vip: VipInterface<E>,
    pub proxier: Option<Box<dyn Proxier>>,
}

/// The sync loop's parts.
pub struct Syncer<E: Exec> {
    pub kernel: Arc<Mutex<Kernel<E>>>,
    pub relays: Relays,
    pub metrics: Arc<Metrics>,
    pub min_sync_period: Duration,
    pub sync_period: Duration,
}

/// The ports of service `key` from the caches (none when it is gone or not proxied).
fn compute(services: &Reader<Service>, endpoints: &Reader<Endpoints>, key: &str) -> Vec<ServicePort> {
    let Some(svc) = services.get_by_key(key) else { return Vec::new() };
    let eps = endpoints.get_by_key(key);
    match service_ports(&svc, eps.as_deref()) {
        Ok(ports) => ports,
        Err(Skip::NotIpv4(ip)) => {
            debug!(service = key, cluster_ip = %ip, "not proxied: only IPv4 ClusterIPs are");
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl<E: Exec> Syncer<E> {
    /// Runs the informers and the loop until `shutdown`; `ready` turns true
    /// after the first full sync.
    pub async fn run(
        mut self,
        client: berth_client::Client,
        ready: watch::Sender<bool>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let queue: WorkQueue<String> = WorkQueue::new("proxy");
        let (trigger, stop) = berth_base::shutdown::channel();
        let services_informer = Informer::<Service>::new(client.clone(), "", ListParams::default())
            .on_add({
                let q = queue.clone();
                move |s| q.add(key_of(&**s))
            })
            .on_update({
                let q = queue.clone();
                move |_, s| q.add(key_of(&**s))
            })
            .on_delete({
                let q = queue.clone();
                move |s| q.add(key_of(&**s))
            });
        let endpoints_informer = Informer::<Endpoints>::new(client, "", ListParams::default())
            .on_add({
                let q = queue.clone();
                move |e| q.add(key_of(&**e))
            })
            .on_update({
                let q = queue.clone();
                move |_, e| q.add(key_of(&**e))
            })
            .on_delete({
                let q = queue.clone();
                move |e| q.add(key_of(&**e))
            });
        let services = services_informer.reader();
        let endpoints = endpoints_informer.reader();
        let informers =
            [tokio::spawn(services_informer.run(stop.clone().wait())), tokio::spawn(endpoints_informer.run(stop.clone().wait()))];

        tokio::pin!(shutdown);
        let synced = async { services.wait_until_ready().await.is_ok() && endpoints.wait_until_ready().await.is_ok() };
        let caches_ready = tokio::select! {
            () = &mut shutdown => false,
            ok = synced => ok,
        };
        if caches_ready {
            info!(services = services.len(), endpoints = endpoints.len(), "caches synced; programming");
            self.sync_loop(&queue, &services, &endpoints, &ready, &mut shutdown).await;
        }
        let _ = ready.send(false);
        queue.shut_down();
        trigger.fire();
        for task in informers {
            let _ = task.await;
        }
        self.relays.shutdown().await;
    }

    async fn sync_loop(
        &mut self,
        queue: &WorkQueue<String>,
        services: &Reader<Service>,
        endpoints: &Reader<Endpoints>,
        ready: &watch::Sender<bool>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) {
        let mut state = Arc::new(State::new());
        let mut full_timer = tokio::time::interval_at(Instant::now() + self.sync_period, self.sync_period);
        full_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut need_full = true;
        let mut failures: u32 = 0;
        let mut retry_at: Option<Instant> = None;
        let mut last_sync: Option<Instant> = None;
        loop {
            let mut keys: Vec<String> = Vec::new();
            if !need_full {
                tokio::select! {
                    biased;
                    () = &mut *shutdown => return,
                    _ = full_timer.tick() => need_full = true,
                    () = sleep_until_opt(retry_at) => need_full = true,
                    key = queue.get() => match key {
                        Some(k) => keys.push(k),
                        None => return,
                    },
                }
            }
            // At most one sync per min-sync-period: later changes wait and
            // are batched into the next one.
            if let Some(last) = last_sync {
                let earliest = last + self.min_sync_period;
                if Instant::now() < earliest {
                    tokio::select! {
                        biased;
                        () = &mut *shutdown => return,
                        () = tokio::time::sleep_until(earliest) => {}
                    }
                }
            }
            while let Some(Some(k)) = queue.get().now_or_never() {
                keys.push(k);
            }
            // Done before reading the caches: a change that lands from now
            // on queues its key again.
            for k in &keys {
                queue.done(k);
            }
            last_sync = Some(Instant::now());

            if need_full {
                let mut fresh = State::new();
                for key in services.keys() {
                    fresh.set(&key, compute(services, endpoints, &key));
                }
                state = Arc::new(fresh);
                let ok = self.full(&state).await;
                full_timer.reset();
                if ok {
                    need_full = false;
                    failures = 0;
                    retry_at = None;
                    if !*ready.borrow() {
                        info!(services = state.services(), ports = state.port_count(), "initial sync done; ready");
                        let _ = ready.send(true);
                    }
                } else {
                    failures = failures.saturating_add(1);
                    let delay = (Duration::from_millis(500) * 2u32.saturating_pow(failures.min(10))).min(MAX_RETRY);
                    retry_at = Some(Instant::now() + delay);
                    need_full = false;
                }
                continue;
            }

            let changes: Vec<Changed> = {
                let s = Arc::make_mut(&mut state);
                keys.iter().filter_map(|k| s.set(k, compute(services, endpoints, k))).collect()
            };
            if changes.is_empty() {
                continue;
            }
            if !self.partial(&state, changes).await {
                // Fall back to rewriting everything, right away.
                need_full = true;
            }
        }
    }

    /// Publishes the state's sizes.
    fn observe_state(&self, state: &State, programmed: Option<Programmed>, vips: usize) {
        let m = &self.metrics;
        m.services.set(state.services() as i64);
        m.service_ports.set(state.port_count() as i64);
        m.endpoints.set(state.endpoint_count() as i64);
        m.vips.set(vips as i64);
        m.relays.set(self.relays.listening().len() as i64);
        if let Some(p) = programmed {
            m.programmed_rules.set(p.rules as i64);
        }
    }

    /// Rewrites everything; false if it failed (it is retried with backoff).
    async fn full(&mut self, state: &Arc<State>) -> bool {
        let started = Instant::now();
        let kernel = self.kernel.clone();
        let st = state.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut k = kernel.lock_or_recover();
            let t0 = Instant::now();
            k.vip.ensure().map_err(|e| format!("VIP interface: {e}"))?;
            let wanted = st.vips();
            let bound = k.vip.add(&wanted).map_err(|e| format!("VIP interface: {e}"))?;
            let t1 = Instant::now();
            let programmed = match k.proxier.as_mut() {
                Some(p) => Some(p.sync_full(&st).map_err(|e| format!("{} rules: {e}", p.mode()))?),
                None => None,
            };
            debug!(
                vips_bound = bound,
                vip_ms = (t1 - t0).as_millis() as u64,
                rules_ms = t1.elapsed().as_millis() as u64,
                "full sync: kernel part"
            );
            Ok::<_, String>(programmed)
        })
        .await
        .unwrap_or_else(|e| Err(format!("sync task failed: {e}")));
        let programmed = match result {
            Ok(p) => p,
            Err(e) => {
                error!(cause = %e, "full sync failed; retrying");
                self.metrics.observe_sync("full", started.elapsed().as_secs_f64(), false);
                return false;
            }
        };
        let relay_errors = self.relays.sync_full(state).await;
        let vips = self.unbind_unused(state).await;
        let took = started.elapsed();
        let ok = relay_errors.is_empty() && vips.is_ok();
        self.metrics.observe_sync("full", took.as_secs_f64(), ok);
        if !relay_errors.is_empty() {
            warn!(errors = ?relay_errors, "some relays could not listen; retrying");
        }
        let vips = vips.unwrap_or_else(|e| {
            warn!(cause = %e, "cannot unbind unused VIPs; retrying");
            0
        });
        self.observe_state(state, programmed, vips);
        if ok {
            self.metrics.last_sync.set(now_unix());
        }
        info!(
            services = state.services(),
            ports = state.port_count(),
            endpoints = state.endpoint_count(),
            rules = programmed.map(|p| p.rules),
            took_ms = took.as_millis() as u64,
            "full sync"
        );
        ok
    }

    /// Rewrites what `changes` touch; false if the kernel part failed.
    async fn partial(&mut self, state: &Arc<State>, changes: Vec<Changed>) -> bool {
        let started = Instant::now();
        let kernel = self.kernel.clone();
        let st = state.clone();
        let changes = Arc::new(changes);
        let ch = changes.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut k = kernel.lock_or_recover();
            let wanted: std::collections::BTreeSet<_> = ch.iter().flat_map(|c| c.new.iter().map(|p| p.cluster_ip)).collect();
            k.vip.add(&wanted).map_err(|e| format!("VIP interface: {e}"))?;
            let programmed = match k.proxier.as_mut() {
                Some(p) => Some(p.sync_changes(&st, &ch).map_err(|e| format!("{} rules: {e}", p.mode()))?),
                None => None,
            };
            Ok::<_, String>(programmed)
        })
        .await
        .unwrap_or_else(|e| Err(format!("sync task failed: {e}")));
        let programmed = match result {
            Ok(p) => p,
            Err(e) => {
                warn!(cause = %e, "partial sync failed; rewriting everything");
                self.metrics.observe_sync("partial", started.elapsed().as_secs_f64(), false);
                return false;
            }
        };
        let relay_errors = self.relays.apply(&changes).await;
        let vips = self.unbind_unused(state).await;
        let took = started.elapsed();
        self.metrics.observe_sync("partial", took.as_secs_f64(), true);
        if !relay_errors.is_empty() {
            warn!(errors = ?relay_errors, "some relays could not listen; the next full sync retries them");
        }
        let vips = vips.unwrap_or_else(|e| {
            warn!(cause = %e, "cannot unbind unused VIPs; the next full sync retries");
            0
        });
        self.observe_state(state, programmed, vips);
        self.metrics.last_sync.set(now_unix());
        let names: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        debug!(services = ?names, took_ms = took.as_millis() as u64, "partial sync");
        true
    }

    /// Unbinds VIPs no service uses any more (after rules and relays let go of them).
    async fn unbind_unused(&self, state: &Arc<State>) -> Result<usize, String> {
        let kernel = self.kernel.clone();
        let st = state.clone();
        tokio::task::spawn_blocking(move || {
            let mut k = kernel.lock_or_recover();
            k.vip.remove_others(&st.vips()).map_err(|e| e.to_string())?;
            Ok(k.vip.addresses().len())
        })
        .await
        .unwrap_or_else(|e| Err(format!("sync task failed: {e}")))
    }
}

/// Sleeps until `at`, or forever without it.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
