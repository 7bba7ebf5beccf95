//! A shared informer: a [`watcher`](crate::watcher) feeding a [`reflector`](crate::reflector) store, with event handlers and periodic resync.
//!
//! ```ignore
//! let informer = Informer::<Pod>::new(client, "", ListParams::default())
//!     .with_index("node", |p: &Pod| p.spec.iter().map(|s| s.node_name.clone()).filter(|n| !n.is_empty()).collect())
//!     .on_add({ let q = queue.clone(); move |p| q.add(key_of(&**p)) })
//!     .on_update({ let q = queue.clone(); move |_, p| q.add(key_of(&**p)) })
//!     .on_delete({ let q = queue.clone(); move |p| q.add(key_of(&**p)) });
//! let pods = informer.reader();
//! tokio::spawn(informer.run(shutdown));
//! pods.wait_until_ready().await?;
//! ```
//!
//! Handlers are how changes are announced: they are called on the
//! informer's task, in order, after the store has been updated (so a
//! handler that reads the store sees the change), and must not block —
//! push a key into a work queue or onto a channel and return. Every change
//! is announced once: a reconnect resumes the watch where it stopped, and a
//! relist announces only what differs from the cache (adds, updates of
//! objects whose resourceVersion changed, deletes of objects gone).
//! A resync re-announces every cached object as an update with `old` and
//! `new` the same object, as client-go does, so that a controller that
//! missed something in its own work eventually retries.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_api::Resource;
use futures::{Stream, StreamExt};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::reflector::{Change, Reader, Writer};
use crate::watcher::{self, Backoff};
use berth_client::client::{Client, ListParams};

type AddFn<R> = Box<dyn Fn(&Arc<R>) + Send + Sync>;
type UpdateFn<R> = Box<dyn Fn(&Arc<R>, &Arc<R>) + Send + Sync>;
type DeleteFn<R> = Box<dyn Fn(&Arc<R>) + Send + Sync>;

/// Keeps a local cache of the objects of kind `R` in one namespace (empty:
/// all) that match a selector, and announces their changes.
pub struct Informer<R: Resource> {
    client: Client,
    namespace: String,
    params: ListParams,
    writer: Writer<R>,
    backoff: Backoff,
    resync: Option<Duration>,
    on_add: Vec<AddFn<R>>,
    on_update: Vec<UpdateFn<R>>,
    on_delete: Vec<DeleteFn<R>>,
}

impl<R: Resource> Informer<R> {
    /// An informer of kind `R` in `namespace` (empty: all namespaces, and
    /// cluster-scoped kinds) matching `params`. Nothing happens before [`Informer::run`].
    pub fn new(client: Client, namespace: impl Into<String>, params: ListParams) -> Self {
        Informer {
            client,
            namespace: namespace.into(),
            params,
            writer: Writer::new(),
            backoff: Backoff::default(),
            resync: None,
            on_add: Vec::new(),
            on_update: Vec::new(),
            on_delete: Vec::new(),
        }
    }

    /// Adds a secondary index, queried with [`Reader::by_index`]: `func`
    /// gives the values an object is found under (e.g. a pod's node name).
    pub fn with_index(mut self, name: impl Into<String>, func: impl Fn(&R) -> Vec<String> + Send + Sync + 'static) -> Self {
        self.writer.add_index(name, func);
        self
    }

    /// Re-announces every cached object as an update every `period`.
    pub fn with_resync(mut self, period: Duration) -> Self {
        self.resync = Some(period).filter(|p| !p.is_zero());
        self
    }

    /// The delays between failed list and watch calls.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Calls `f` with each new object.
    pub fn on_add(mut self, f: impl Fn(&Arc<R>) + Send + Sync + 'static) -> Self {
        self.on_add.push(Box::new(f));
        self
    }

    /// Calls `f(old, new)` with each changed object (and each object on a resync).
    pub fn on_update(mut self, f: impl Fn(&Arc<R>, &Arc<R>) + Send + Sync + 'static) -> Self {
        self.on_update.push(Box::new(f));
        self
    }

    /// Calls `f` with each deleted object's last state.
    pub fn on_delete(mut self, f: impl Fn(&Arc<R>) + Send + Sync + 'static) -> Self {
        self.on_delete.push(Box::new(f));
        self
    }

    /// A reader of the cache; clone it freely.
    pub fn reader(&self) -> Reader<R> {
        self.writer.as_reader()
    }

    /// Lists, watches and keeps the cache up to date until `shutdown`
    /// resolves. Failures are logged and retried; they never end the run.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let kind = R::INFO.kind;
        let params = &self.params;
        info!(kind, namespace = %self.namespace, labels = %params.label_selector, fields = %params.field_selector, "informer started");
        let events =
            watcher::watcher_with_backoff::<R>(self.client.clone(), self.namespace.clone(), self.params.clone(), self.backoff.clone());
        self.drive(events, shutdown).await;
        info!(kind, "informer stopped");
    }

    /// Applies `events` to the cache and announces the changes until `shutdown`.
    async fn drive(self, mut events: impl Stream<Item = watcher::Result<watcher::Event<R>>> + Unpin, shutdown: impl Future<Output = ()>) {
        let Informer { mut writer, resync, on_add, on_update, on_delete, .. } = self;
        let kind = R::INFO.kind;
        let reader = writer.as_reader();
        let announce = |change: Change<R>| match change {
            Change::Added(o) => on_add.iter().for_each(|f| f(&o)),
            Change::Updated { old, new } => on_update.iter().for_each(|f| f(&old, &new)),
            Change::Deleted(o) => on_delete.iter().for_each(|f| f(&o)),
        };

        let mut resync = resync.map(|period| {
            let mut timer = tokio::time::interval_at(Instant::now() + period, period);
            timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
            timer
        });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        let done = matches!(event, watcher::Event::InitDone);
                        writer.apply_watcher_event(event).into_iter().for_each(&announce);
                        if done {
                            debug!(kind, objects = reader.len(), "cache synced");
                        }
                    }
                    Some(Err(err @ watcher::Error::TooOld { .. })) => info!(kind, cause = %err, "relisting"),
                    Some(Err(err)) => warn!(kind, cause = %err, "list or watch failed, retrying"),
                    // A watcher never ends; should it, there is nothing left to do.
                    None => break,
                },
                () = tick(&mut resync) => {
                    if reader.is_ready() {
                        let objects = reader.list();
                        debug!(kind, objects = objects.len(), "resync");
                        for o in objects {
                            announce(Change::Updated { old: o.clone(), new: o });
                        }
                    }
                }
            }
        }
    }
}

/// The next tick of an optional timer; never, without one.
async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use berth_api::ConfigMap;
    use futures::SinkExt;
    use futures::channel::mpsc;

    use super::*;
    use crate::watcher::Event;
    use crate::watcher::tests::cm;
    use berth_client::ClientConfig;

    type Log = Arc<Mutex<Vec<String>>>;

    fn recording(log: &Log) -> Informer<ConfigMap> {
        // Never contacted: drive() gets its events from the test.
        let client = Client::connect_lazy(&ClientConfig::new("http://127.0.0.1:1")).expect("lazy client");
        let (a, u, d) = (log.clone(), log.clone(), log.clone());
        Informer::<ConfigMap>::new(client, "", ListParams::default())
            .on_add(move |o| a.lock().unwrap().push(format!("+{}", o.name())))
            .on_update(move |old: &Arc<ConfigMap>, new: &Arc<ConfigMap>| {
                let same = if Arc::ptr_eq(old, new) { "=" } else { "" };
                u.lock().unwrap().push(format!("~{}{same}", new.name()))
            })
            .on_delete(move |o| d.lock().unwrap().push(format!("-{}", o.name())))
    }

    fn assert_send<T: Send + 'static>(_: &T) {}

    #[tokio::test]
    async fn should_run_as_a_spawned_task() {
        let run = recording(&Log::default()).run(std::future::pending());
        assert_send(&run);
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn should_announce_changes_once_and_resync_every_period() {
        let log: Log = Arc::default();
        let informer = recording(&log).with_resync(Duration::from_secs(60));
        let reader = informer.reader();
        let (mut tx, rx) = mpsc::unbounded();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(informer.drive(rx, async move {
            let _ = stopped.await;
        }));

        for e in [Event::Init, Event::InitApply(cm("a", 1)), Event::InitApply(cm("b", 2)), Event::InitDone] {
            tx.send(Ok(e)).await.unwrap();
        }
        reader.wait_until_ready().await.unwrap();
        tx.send(Ok(Event::Apply(cm("a", 3)))).await.unwrap();
        tx.send(Ok(Event::Apply(cm("a", 3)))).await.unwrap();
        tx.send(Ok(Event::Delete(cm("b", 4)))).await.unwrap();
        // A relist after a too-old revision: only the difference is announced.
        let err = berth_client::client::Error::Api(tonic::Status::out_of_range("too old"));
        tx.send(Err(watcher::Error::TooOld { revision: 4, source: err })).await.unwrap();
        for e in [Event::Init, Event::InitApply(cm("a", 3)), Event::InitApply(cm("c", 9)), Event::InitDone] {
            tx.send(Ok(e)).await.unwrap();
        }
        settle().await;
        assert_eq!(*log.lock().unwrap(), vec!["+a", "+b", "~a", "-b", "+c"]);
        log.lock().unwrap().clear();

        tokio::time::sleep(Duration::from_secs(61)).await;
        settle().await;
        let mut resynced = log.lock().unwrap().clone();
        resynced.sort();
        assert_eq!(resynced, vec!["~a=", "~c="]);

        stop.send(()).unwrap();
        task.await.unwrap();
    }
}
