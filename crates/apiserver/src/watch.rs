//! Watches: a stream of a kind's changes from a revision (or from a list
//! of everything first), with server-side selectors (an object moving into
//! or out of a selector is ADDED or DELETED for that watcher, as Kubernetes
//! does), periodic bookmarks and "too old" for compacted revisions. Each
//! store event is decoded once and encoded once per event type for every
//! watcher; both transports send these encoded events.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use berth_api::KindInfo;
use berth_api::pb::api::{Object, WatchEvent};
use berth_api::pb::core::ObjectMeta;
use berth_api::wire::{EncodedObject, EncodedWatchEvent};
use tokio::sync::mpsc;
use tracing::warn;

use crate::encryption::Transformer;
use crate::error::Error;
use crate::handlers::Handlers;
use crate::lister::{self, Filter};
use crate::storage::{self, Event, EventType};

/// An event decoded once for every watcher (stored in the event's memo
/// slot), and encoded once per event type that watchers see it as.
#[derive(Default)]
struct Decoded {
    new: Option<Object>,
    prev: Option<Object>,
    /// The new value as stored (opened), with its resourceVersion patch.
    wire: EncodedObject,
    /// The event as ADDED, MODIFIED and DELETED, encoded by the first
    /// watcher that sends it so.
    encoded: [OnceLock<EncodedWatchEvent>; 3],
}

impl Decoded {
    fn encoded(&self, event_type: &'static str, revision: u64) -> EncodedWatchEvent {
        let slot = match event_type {
            "ADDED" => 0,
            "MODIFIED" => 1,
            _ => 2,
        };
        self.encoded[slot].get_or_init(|| EncodedWatchEvent::new(event_type, &self.wire, revision)).clone()
    }
}

fn decoded<'e>(ev: &'e Event, info: &KindInfo, transformer: &Transformer) -> &'e Decoded {
    let any = ev.decoded.get_or_init(|| {
        let open = |v: &bytes::Bytes| transformer.open(&ev.key, v).map_err(|e| Error::Internal(e.to_string()));
        let opened = open(&ev.value)
            .and_then(|v| lister::decode_at(&v, ev.revision, &ev.key).map(|o| (v, o)))
            .inspect_err(|e| warn!(key = %ev.key, error = %e, "undecodable event"))
            .ok();
        let prev = ev.prev_value.as_ref().and_then(|p| open(p).and_then(|v| lister::decode_at(&v, ev.revision, &ev.key)).ok());
        let (wire, new) = match opened {
            Some((v, o)) => (EncodedObject::at(info, v, ev.revision), Some(o)),
            None => (EncodedObject::default(), None),
        };
        Arc::new(Decoded { new, prev, wire, encoded: Default::default() }) as Arc<dyn Any + Send + Sync>
    });
    // The slot is only ever filled above, with a Decoded.
    static EMPTY: OnceLock<Decoded> = OnceLock::new();
    any.downcast_ref::<Decoded>().unwrap_or_else(|| EMPTY.get_or_init(Decoded::default))
}

/// What a watcher with `filter` sees of a store event: selector transitions
/// turn into ADDED / DELETED as Kubernetes does.
fn translate(ev: &Event, info: &KindInfo, filter: &Filter, transformer: &Transformer) -> Option<EncodedWatchEvent> {
    let d = decoded(ev, info, transformer);
    let new = d.new.as_ref()?;
    let everything = filter.is_everything();
    let now_matches = everything || filter.matches(new);
    let was_matching = match (&ev.event_type, &d.prev) {
        (EventType::Added, _) => false,
        (_, Some(p)) => everything || filter.matches(p),
        (_, None) => now_matches,
    };
    let t = match ev.event_type {
        EventType::Added if now_matches => "ADDED",
        EventType::Modified if now_matches && was_matching => "MODIFIED",
        EventType::Modified if now_matches => "ADDED",
        EventType::Modified if was_matching => "DELETED",
        EventType::Deleted if now_matches => "DELETED",
        _ => return None,
    };
    Some(d.encoded(t, ev.revision))
}

fn bookmark(kind: &'static berth_api::KindInfo, revision: u64) -> EncodedWatchEvent {
    let mut o = Object::empty(kind).unwrap_or_default();
    if let Some(m) = o.metadata_mut() {
        *m = ObjectMeta { resource_version: revision.to_string(), ..Default::default() };
    }
    EncodedWatchEvent::from_event(&WatchEvent { r#type: "BOOKMARK".into(), object: Some(o), resource_version: revision })
}

/// Starts a watch of `info` in `namespace` (all: empty) from
/// `resource_version` (0: every current object as ADDED first); the events
/// arrive on the returned channel until the client goes, the store fails
/// (an error is the last item) or the server stops.
pub(crate) fn start(
    h: &Handlers,
    info: &'static KindInfo,
    namespace: &str,
    filter: Filter,
    resource_version: u64,
    bookmarks: bool,
) -> Result<mpsc::Receiver<Result<EncodedWatchEvent, Error>>, Error> {
    {
        let prefix = info.prefix(namespace);
        let transformer = h.transformer.clone();
        let store = h.registry.store().clone();
        let (initial, from) = if resource_version == 0 {
            let (kvs, rev) = store.list(&prefix).map_err(|e| Error::from_store(e, info.plural, ""))?;
            (kvs, rev)
        } else {
            (Vec::new(), resource_version)
        };
        let mut stream = store.watch(&prefix, from).map_err(|e| Error::from_store(e, info.plural, ""))?;
        let (tx, rx) = mpsc::channel::<Result<EncodedWatchEvent, Error>>(1024);
        let mut stopping = h.stopping.clone();
        let interval = h.bookmark_interval;
        let watchers = h.metrics.watcher(info.kind);
        tokio::spawn(async move {
            let _watchers = watchers;
            for kv in &initial {
                let Ok(o) = lister::decode(kv) else { continue };
                if filter.matches(&o) {
                    let object = EncodedObject::at(info, kv.value.clone(), kv.mod_revision);
                    let ev = EncodedWatchEvent::new("ADDED", &object, kv.mod_revision);
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
            }
            drop(initial);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                tokio::select! {
                    next = stream.next() => match next {
                        Some(Ok(ev)) => {
                            if let Some(out) = translate(&ev, info, &filter, &transformer)
                                && tx.send(Ok(out)).await.is_err()
                            {
                                return;
                            }
                        }
                        Some(Err(e)) => {
                            let e = match e {
                                storage::Error::TooOld { requested, oldest } => Error::Gone { requested, oldest },
                                other => Error::Internal(other.to_string()),
                            };
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        None => return,
                    },
                    _ = tick.tick(), if bookmarks => {
                        if tx.send(Ok(bookmark(info, stream.progress()))).await.is_err() {
                            return;
                        }
                    }
                    () = stopping.stopped() => {
                        let _ = tx.send(Err(Error::Unavailable("the apiserver is shutting down".into()))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }
}
