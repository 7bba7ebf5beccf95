//! Watches a resource for changes, with error recovery: list, watch from the list's revision, re-watch or relist.
//!
//! A [`watcher`] is an endless stream of [`Event`]s, in kube-runtime's shape:
//! `Init`, one `InitApply` per listed object, `InitDone`, then `Apply` and
//! `Delete` as changes happen. It remembers the newest revision it has seen
//! (objects and bookmarks), so that when a watch stream ends or fails it
//! watches again from exactly there, after a [`Backoff`], and the consumer
//! sees every change once. When that revision has been compacted away (the
//! server answers "too old") it lists again, starting a new `Init` cycle.
//!
//! Errors are yielded for the consumer to log; they are never fatal: the
//! stream goes on by itself, waiting a backoff before its next call.

use std::time::Duration;

use berth_api::Resource;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use rand::Rng;
use tracing::debug;

use berth_client::client::{self, Client, ListParams, WatchEvent};

/// Why one step of a watcher failed. The watcher recovers by itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A list failed; it is retried after a backoff.
    #[error("list failed: {0}")]
    List(#[source] client::Error),
    /// A watch could not be opened; it is retried after a backoff.
    #[error("watch from revision {revision} failed to start: {source}")]
    WatchStart {
        revision: u64,
        #[source]
        source: client::Error,
    },
    /// A watch stream failed mid-way; it is reopened after a backoff.
    #[error("watch stream failed at revision {revision}: {source}")]
    Watch {
        revision: u64,
        #[source]
        source: client::Error,
    },
    /// The revision to watch from is older than the server's history; the
    /// watcher relists.
    #[error("revision {revision} is too old, relisting: {source}")]
    TooOld {
        revision: u64,
        #[source]
        source: client::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a watcher reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<R> {
    /// A (re)list started: the objects that follow as `InitApply`, up to
    /// `InitDone`, are the complete set at one revision.
    Init,
    /// One object of the list.
    InitApply(R),
    /// The list is complete: objects not in it are gone.
    InitDone,
    /// An object was created or changed.
    Apply(R),
    /// An object was deleted (its last state).
    Delete(R),
}

/// Exponential backoff with jitter between failed calls.
///
/// Each delay is the current base minus up to half of it at random ("equal
/// jitter", so that many clients restarting together spread out); the base
/// doubles from `min` up to `max` and returns to `min` on [`Backoff::reset`].
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    base: Duration,
}

impl Backoff {
    /// The first delay after a failure.
    pub const DEFAULT_MIN: Duration = Duration::from_millis(100);
    /// The longest delay.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(10);

    pub fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Backoff { min, max, base: min }
    }

    /// The base of the next delay, before jitter.
    pub fn current(&self) -> Duration {
        self.base
    }

    /// The delay to wait now; the next one will be about twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.base;
        self.base = base.saturating_mul(2).min(self.max);
        base.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Back to the shortest delay, after a success.
    pub fn reset(&mut self) {
        self.base = self.min;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Self::DEFAULT_MIN, Self::DEFAULT_MAX)
    }
}

type WatchStream<R> = BoxStream<'static, client::Result<WatchEvent<R>>>;

/// Where a watcher reads from: the API server, or a script in unit tests.
pub(crate) trait ListWatch<R>: Send + 'static {
    fn list(&self) -> BoxFuture<'_, client::Result<(Vec<R>, u64)>>;
    fn watch(&self, from: u64) -> BoxFuture<'_, client::Result<WatchStream<R>>>;
}

/// The API server, for one kind, namespace and selector.
struct Api {
    client: Client,
    namespace: String,
    params: ListParams,
}

impl<R: Resource> ListWatch<R> for Api {
    fn list(&self) -> BoxFuture<'_, client::Result<(Vec<R>, u64)>> {
        self.client.list::<R>(&self.namespace, &self.params).boxed()
    }

    fn watch(&self, from: u64) -> BoxFuture<'_, client::Result<WatchStream<R>>> {
        async move { Ok(self.client.watch::<R>(&self.namespace, &self.params, from).await?.boxed()) }.boxed()
    }
}

/// Watches objects of kind `R` in `namespace` (empty: all namespaces)
/// matching `params`, with the default [`Backoff`].
pub fn watcher<R: Resource>(
    client: Client,
    namespace: impl Into<String>,
    params: ListParams,
) -> impl Stream<Item = Result<Event<R>>> + Send + Unpin + 'static {
    watcher_with_backoff(client, namespace, params, Backoff::default())
}

/// [`watcher`] with a chosen backoff.
pub fn watcher_with_backoff<R: Resource>(
    client: Client,
    namespace: impl Into<String>,
    params: ListParams,
    backoff: Backoff,
) -> impl Stream<Item = Result<Event<R>>> + Send + Unpin + 'static {
    let api = Api { client, namespace: namespace.into(), params };
    from_source(api, backoff)
}

pub(crate) fn from_source<R: Resource, S: ListWatch<R>>(source: S, backoff: Backoff) -> BoxStream<'static, Result<Event<R>>> {
    let machine = Machine { source, state: State::Relist, backoff, delay: None };
    futures::stream::unfold(machine, |mut m| async move {
        let item = m.step().await;
        Some((item, m))
    })
    .boxed()
}

enum State<R> {
    /// Next: list.
    Relist,
    /// Handing out the objects of a list.
    Init { items: std::vec::IntoIter<R>, revision: u64 },
    /// Following changes after `revision`, the newest one seen; no stream
    /// means one must be opened.
    Watch { revision: u64, stream: Option<WatchStream<R>> },
}

struct Machine<R, S> {
    source: S,
    state: State<R>,
    backoff: Backoff,
    /// How long to wait before the next call, after a failure.
    delay: Option<Duration>,
}

impl<R: Resource, S: ListWatch<R>> Machine<R, S> {
    /// Runs until the next event or error.
    async fn step(&mut self) -> Result<Event<R>> {
        let kind = R::INFO.kind;
        loop {
            match &mut self.state {
                State::Relist => {
                    pause(&mut self.delay).await;
                    match self.source.list().await {
                        Ok((items, revision)) => {
                            debug!(kind, revision, objects = items.len(), "listed");
                            self.state = State::Init { items: items.into_iter(), revision };
                            return Ok(Event::Init);
                        }
                        Err(source) => {
                            self.delay = Some(self.backoff.next_delay());
                            return Err(Error::List(source));
                        }
                    }
                }
                State::Init { items, revision } => {
                    if let Some(item) = items.next() {
                        return Ok(Event::InitApply(item));
                    }
                    self.state = State::Watch { revision: *revision, stream: None };
                    return Ok(Event::InitDone);
                }
                State::Watch { revision, stream: stream @ None } => {
                    pause(&mut self.delay).await;
                    let revision = *revision;
                    match self.source.watch(revision).await {
                        Ok(s) => {
                            debug!(kind, revision, "watching");
                            *stream = Some(s);
                        }
                        Err(source) if source.is_too_old() => {
                            // Delay the relist too, so that a server that
                            // keeps answering "too old" is not hammered.
                            self.delay = Some(self.backoff.next_delay());
                            self.state = State::Relist;
                            return Err(Error::TooOld { revision, source });
                        }
                        Err(source) => {
                            self.delay = Some(self.backoff.next_delay());
                            return Err(Error::WatchStart { revision, source });
                        }
                    }
                }
                State::Watch { revision, stream: Some(s) } => match s.next().await {
                    Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => {
                        advance(revision, &o);
                        self.backoff.reset();
                        return Ok(Event::Apply(o));
                    }
                    Some(Ok(WatchEvent::Deleted(o))) => {
                        advance(revision, &o);
                        self.backoff.reset();
                        return Ok(Event::Delete(o));
                    }
                    Some(Ok(WatchEvent::Bookmark(rv))) => {
                        *revision = (*revision).max(rv);
                        self.backoff.reset();
                    }
                    Some(Err(source)) => {
                        let revision = *revision;
                        self.delay = Some(self.backoff.next_delay());
                        if source.is_too_old() {
                            self.state = State::Relist;
                            return Err(Error::TooOld { revision, source });
                        }
                        self.state = State::Watch { revision, stream: None };
                        return Err(Error::Watch { revision, source });
                    }
                    None => {
                        // The server ended the stream (a restart, a timeout):
                        // watch again from where we are.
                        debug!(kind, revision = *revision, "watch ended");
                        self.delay = Some(self.backoff.next_delay());
                        self.state = State::Watch { revision: *revision, stream: None };
                    }
                },
            }
        }
    }
}

async fn pause(delay: &mut Option<Duration>) {
    if let Some(d) = delay.take() {
        tokio::time::sleep(d).await;
    }
}

/// Moves `revision` to the object's resourceVersion when that is newer.
fn advance<R: Resource>(revision: &mut u64, object: &R) {
    if let Some(rv) = resource_version(object) {
        *revision = (*revision).max(rv);
    }
}

/// The object's `metadata.resourceVersion` as a number, if it is one.
pub fn resource_version<R: Resource>(object: &R) -> Option<u64> {
    object.meta().resource_version.parse().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use berth_api::{ConfigMap, ObjectMeta};
    use tonic::{Code, Status};

    use super::*;

    pub(crate) fn cm(name: &str, rv: u64) -> ConfigMap {
        ConfigMap {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: "default".into(),
                resource_version: rv.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn status(code: Code) -> client::Error {
        client::Error::Api(Status::new(code, "scripted"))
    }

    type ListAnswer = client::Result<(Vec<ConfigMap>, u64)>;
    type WatchAnswer = client::Result<Vec<client::Result<WatchEvent<ConfigMap>>>>;

    /// A scripted server: each list and each watch takes the next answer.
    #[derive(Clone, Default)]
    struct Script {
        lists: Arc<Mutex<VecDeque<ListAnswer>>>,
        watches: Arc<Mutex<VecDeque<WatchAnswer>>>,
        /// The revisions watches were opened from.
        watched_from: Arc<Mutex<Vec<u64>>>,
    }

    impl Script {
        fn list(self, r: ListAnswer) -> Self {
            self.lists.lock().unwrap().push_back(r);
            self
        }
        fn watch(self, r: WatchAnswer) -> Self {
            self.watches.lock().unwrap().push_back(r);
            self
        }
    }

    impl ListWatch<ConfigMap> for Script {
        fn list(&self) -> BoxFuture<'_, client::Result<(Vec<ConfigMap>, u64)>> {
            let next = self.lists.lock().unwrap().pop_front();
            async move {
                match next {
                    Some(r) => r,
                    None => futures::future::pending().await,
                }
            }
            .boxed()
        }
        fn watch(&self, from: u64) -> BoxFuture<'_, client::Result<WatchStream<ConfigMap>>> {
            self.watched_from.lock().unwrap().push(from);
            let next = self.watches.lock().unwrap().pop_front();
            async move {
                match next {
                    Some(Ok(events)) => Ok(futures::stream::iter(events).boxed()),
                    Some(Err(e)) => Err(e),
                    None => futures::future::pending().await,
                }
            }
            .boxed()
        }
    }

    async fn take(s: &mut BoxStream<'static, Result<Event<ConfigMap>>>, n: usize) -> Vec<Result<Event<ConfigMap>>> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(s.next().await.expect("a watcher never ends"));
        }
        out
    }

    fn ok(events: Vec<Result<Event<ConfigMap>>>) -> Vec<Event<ConfigMap>> {
        events.into_iter().map(|e| e.expect("no error expected")).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn should_list_then_watch_from_list_revision() {
        let script = Script::default()
            .list(Ok((vec![cm("a", 3), cm("b", 5)], 7)))
            .watch(Ok(vec![Ok(WatchEvent::Modified(cm("a", 8))), Ok(WatchEvent::Deleted(cm("b", 9)))]));
        let mut s = from_source(script.clone(), Backoff::default());
        let events = ok(take(&mut s, 6).await);
        assert_eq!(
            events,
            vec![
                Event::Init,
                Event::InitApply(cm("a", 3)),
                Event::InitApply(cm("b", 5)),
                Event::InitDone,
                Event::Apply(cm("a", 8)),
                Event::Delete(cm("b", 9)),
            ]
        );
        assert_eq!(*script.watched_from.lock().unwrap(), vec![7]);
    }

    #[tokio::test(start_paused = true)]
    async fn should_rewatch_from_newest_revision_when_stream_ends() {
        let script = Script::default()
            .list(Ok((vec![], 10)))
            .watch(Ok(vec![Ok(WatchEvent::Added(cm("a", 11))), Ok(WatchEvent::Bookmark(15))]))
            .watch(Err(status(Code::Unavailable)))
            .watch(Ok(vec![Ok(WatchEvent::Added(cm("b", 16))), Err(status(Code::Internal))]))
            .watch(Ok(vec![Ok(WatchEvent::Modified(cm("b", 17)))]));
        let mut s = from_source(script.clone(), Backoff::default());
        let events = take(&mut s, 7).await;
        assert!(matches!(events[0], Ok(Event::Init)));
        assert!(matches!(events[1], Ok(Event::InitDone)));
        assert_eq!(events[2].as_ref().ok(), Some(&Event::Apply(cm("a", 11))));
        assert!(matches!(events[3], Err(Error::WatchStart { revision: 15, .. })), "{:?}", events[3]);
        assert_eq!(events[4].as_ref().ok(), Some(&Event::Apply(cm("b", 16))));
        assert!(matches!(events[5], Err(Error::Watch { revision: 16, .. })), "{:?}", events[5]);
        assert_eq!(events[6].as_ref().ok(), Some(&Event::Apply(cm("b", 17))));
        assert_eq!(*script.watched_from.lock().unwrap(), vec![10, 15, 15, 16]);
    }

    #[tokio::test(start_paused = true)]
    async fn should_relist_when_version_is_too_old() {
        let script = Script::default()
            .list(Ok((vec![cm("a", 1)], 4)))
            .watch(Err(status(Code::OutOfRange)))
            .list(Ok((vec![cm("b", 20)], 30)))
            .watch(Ok(vec![Ok(WatchEvent::Bookmark(31)), Err(status(Code::OutOfRange))]))
            .list(Ok((vec![], 40)));
        let mut s = from_source(script.clone(), Backoff::default());
        let events = take(&mut s, 10).await;
        assert!(matches!(events[3], Err(Error::TooOld { revision: 4, .. })), "{:?}", events[3]);
        assert!(matches!(events[4], Ok(Event::Init)));
        assert_eq!(events[5].as_ref().ok(), Some(&Event::InitApply(cm("b", 20))));
        assert!(matches!(events[6], Ok(Event::InitDone)));
        assert!(matches!(events[7], Err(Error::TooOld { revision: 31, .. })), "{:?}", events[7]);
        assert!(matches!(events[8], Ok(Event::Init)));
        assert!(matches!(events[9], Ok(Event::InitDone)));
        assert_eq!(*script.watched_from.lock().unwrap(), vec![4, 30]);
    }

    #[tokio::test(start_paused = true)]
    async fn should_retry_list_after_backoff() {
        let script = Script::default().list(Err(status(Code::Unavailable))).list(Err(status(Code::Unavailable))).list(Ok((vec![], 2)));
        let mut s = from_source(script, Backoff::new(Duration::from_secs(1), Duration::from_secs(8)));
        let start = tokio::time::Instant::now();
        let events = take(&mut s, 4).await;
        assert!(matches!(events[0], Err(Error::List(_))));
        assert!(matches!(events[1], Err(Error::List(_))));
        assert!(matches!(events[2], Ok(Event::Init)));
        assert!(matches!(events[3], Ok(Event::InitDone)));
        // Waited the first delay (0.5–1 s) and the doubled one (1–2 s).
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(1500) && waited <= Duration::from_secs(3), "{waited:?}");
    }

    #[test]
    fn should_double_backoff_up_to_max_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut bases = Vec::new();
        for _ in 0..6 {
            let base = b.current();
            let d = b.next_delay();
            assert!(d >= base / 2 && d <= base, "{d:?} outside jitter of {base:?}");
            bases.push(base.as_millis());
        }
        assert_eq!(bases, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.current(), Duration::from_millis(100));
    }
}
