//! The informer's cache: a store fed by watcher events, split into one writer and cheap cloned readers, with secondary indexes.
//!
//! The [`Writer`] applies [`Event`]s and says what changed ([`Change`]);
//! [`Reader`]s look objects up by key (`namespace/name`, or `name` for
//! cluster-scoped kinds) or by a secondary index registered with
//! [`Writer::add_index`]. A relist is buffered from `Init` to `InitDone`
//! and then swapped in at once, so readers never see a half-listed cache:
//! objects missing from the new list are removed (a [`Change::Deleted`]),
//! objects in it replace the cached ones.

use berth_base::sync::RwLockExt;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use berth_api::Resource;
use tokio::sync::watch;
use tracing::debug;

use crate::watcher::{Event, resource_version};

/// Why a reader cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The writer was dropped before the store was first filled.
    #[error("the store's writer was dropped before the store became ready")]
    WriterDropped,
}

/// Computes the values under which an object is indexed (none, one or many).
pub type IndexFn<R> = Arc<dyn Fn(&R) -> Vec<String> + Send + Sync>;

/// The cache key of an object: `namespace/name`, or `name` without a namespace.
pub fn key_of<R: Resource>(object: &R) -> String {
    object_key(object.namespace(), object.name())
}

/// The cache key of `name` in `namespace` (empty for cluster-scoped kinds).
pub fn object_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() { name.to_string() } else { format!("{namespace}/{name}") }
}

/// An indexer by namespace, for `add_index("namespace", by_namespace)`.
pub fn by_namespace<R: Resource>(object: &R) -> Vec<String> {
    vec![object.namespace().to_string()]
}

/// What applying an event changed in the store, for event handlers.
#[derive(Debug)]
pub enum Change<R> {
    /// A new object.
    Added(Arc<R>),
    /// An object replaced (`old` and `new` are the same object on a resync).
    Updated { old: Arc<R>, new: Arc<R> },
    /// An object removed: its last state as the watch delivered it, or the
    /// cached one when it went missing from a relist.
    Deleted(Arc<R>),
}

// A derive would ask R: Clone; cloning a change only clones Arcs.
impl<R> Clone for Change<R> {
    fn clone(&self) -> Self {
        match self {
            Change::Added(o) => Change::Added(o.clone()),
            Change::Updated { old, new } => Change::Updated { old: old.clone(), new: new.clone() },
            Change::Deleted(o) => Change::Deleted(o.clone()),
        }
    }
}

struct Index<R> {
    func: IndexFn<R>,
    /// Index value to the keys of the objects that have it.
    entries: HashMap<String, BTreeSet<String>>,
}

impl<R> Index<R> {
    fn add(&mut self, key: &str, object: &R) {
        for value in (self.func)(object) {
            self.entries.entry(value).or_default().insert(key.to_string());
        }
    }

    fn remove(&mut self, key: &str, object: &R) {
        for value in (self.func)(object) {
            if let Some(keys) = self.entries.get_mut(&value) {
                keys.remove(key);
                if keys.is_empty() {
                    self.entries.remove(&value);
                }
            }
        }
    }
}

struct Cache<R> {
    objects: HashMap<String, Arc<R>>,
    indexes: HashMap<String, Index<R>>,
}

impl<R> Cache<R> {
    fn insert(&mut self, key: String, object: Arc<R>) -> Option<Arc<R>> {
        let old = self.objects.insert(key.clone(), object.clone());
        for index in self.indexes.values_mut() {
            if let Some(old) = &old {
                index.remove(&key, old);
            }
            index.add(&key, &object);
        }
        old
    }

    fn remove(&mut self, key: &str) -> Option<Arc<R>> {
        let old = self.objects.remove(key)?;
        for index in self.indexes.values_mut() {
            index.remove(key, &old);
        }
        Some(old)
    }
}

type Shared<R> = Arc<RwLock<Cache<R>>>;

/// A read handle on a store, cheap to clone and to share between tasks.
pub struct Reader<R> {
    cache: Shared<R>,
    ready: watch::Receiver<bool>,
}

impl<R> Clone for Reader<R> {
    fn clone(&self) -> Self {
        Reader { cache: self.cache.clone(), ready: self.ready.clone() }
    }
}

impl<R: Resource> Reader<R> {
    /// The object `name` in `namespace` (empty for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<R>> {
        self.get_by_key(&object_key(namespace, name))
    }

    /// The object with this cache key (`namespace/name` or `name`).
    pub fn get_by_key(&self, key: &str) -> Option<Arc<R>> {
        self.cache.read_or_recover().objects.get(key).cloned()
    }

    /// Every cached object, in no particular order.
    pub fn list(&self) -> Vec<Arc<R>> {
        self.cache.read_or_recover().objects.values().cloned().collect()
    }

    /// Every cache key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.cache.read_or_recover().objects.keys().cloned().collect();
        keys.sort();
        keys
    }

    pub fn len(&self) -> usize {
        self.cache.read_or_recover().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects whose indexer `index` gave `value`, sorted by key; none
    /// when no such index was registered.
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<R>> {
        let cache = self.cache.read_or_recover();
        let Some(keys) = cache.indexes.get(index).and_then(|i| i.entries.get(value)) else {
            return Vec::new();
        };
        keys.iter().filter_map(|k| cache.objects.get(k).cloned()).collect()
    }

    /// The keys of [`Reader::by_index`], sorted.
    pub fn keys_by_index(&self, index: &str, value: &str) -> Vec<String> {
        let cache = self.cache.read_or_recover();
        cache.indexes.get(index).and_then(|i| i.entries.get(value)).map(|keys| keys.iter().cloned().collect()).unwrap_or_default()
    }

    /// Whether the first list has been applied.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first list has been applied (returns at once after).
    pub async fn wait_until_ready(&self) -> Result<(), Error> {
        let mut ready = self.ready.clone();
        ready.wait_for(|r| *r).await.map(|_| ()).map_err(|_| Error::WriterDropped)
    }
}

/// The one write handle on a store.
pub struct Writer<R> {
    cache: Shared<R>,
    ready: watch::Sender<bool>,
    /// The objects of a relist in progress, in list order.
    buffer: Option<Vec<(String, Arc<R>)>>,
}

impl<R: Resource> Default for Writer<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Resource> Writer<R> {
    pub fn new() -> Self {
        let cache = Cache { objects: HashMap::new(), indexes: HashMap::new() };
        let (ready, _) = watch::channel(false);
        Writer { cache: Arc::new(RwLock::new(cache)), ready, buffer: None }
    }

    /// Registers (or replaces) a secondary index; objects already cached are indexed at once.
    pub fn add_index(&mut self, name: impl Into<String>, func: impl Fn(&R) -> Vec<String> + Send + Sync + 'static) {
        let mut index = Index { func: Arc::new(func), entries: HashMap::new() };
        let mut cache = self.cache.write_or_recover();
        for (key, object) in &cache.objects {
            index.add(key, object);
        }
        cache.indexes.insert(name.into(), index);
    }

    /// A reader of this store.
    pub fn as_reader(&self) -> Reader<R> {
        Reader { cache: self.cache.clone(), ready: self.ready.subscribe() }
    }

    /// Applies one watcher event and says what changed.
    ///
    /// An `Apply` whose resourceVersion is not newer than the cached
    /// object's is a duplicate and changes nothing; a relist reports an
    /// update only for objects whose resourceVersion changed.
    pub fn apply_watcher_event(&mut self, event: Event<R>) -> Vec<Change<R>> {
        match event {
            Event::Init => {
                self.buffer = Some(Vec::new());
                Vec::new()
            }
            Event::InitApply(object) => {
                self.buffer.get_or_insert_with(Vec::new).push((key_of(&object), Arc::new(object)));
                Vec::new()
            }
            Event::InitDone => {
                let listed = self.buffer.take().unwrap_or_default();
                let changes = self.replace(listed);
                self.ready.send_replace(true);
                changes
            }
            Event::Apply(object) => {
                let key = key_of(&object);
                let new = Arc::new(object);
                let mut cache = self.cache.write_or_recover();
                if cache.objects.get(&key).is_some_and(|old| !is_newer(&*new, &**old)) {
                    debug!(kind = R::INFO.kind, key = %key, revision = %new.meta().resource_version, "ignoring a stale or repeated change");
                    return Vec::new();
                }
                match cache.insert(key, new.clone()) {
                    Some(old) => vec![Change::Updated { old, new }],
                    None => vec![Change::Added(new)],
                }
            }
            Event::Delete(object) => {
                let key = key_of(&object);
                match self.cache.write_or_recover().remove(&key) {
                    Some(_) => vec![Change::Deleted(Arc::new(object))],
                    None => Vec::new(),
                }
            }
        }
    }

    /// Makes the cache exactly `listed`.
    fn replace(&mut self, listed: Vec<(String, Arc<R>)>) -> Vec<Change<R>> {
        let mut cache = self.cache.write_or_recover();
        let keep: HashSet<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        let mut gone: Vec<String> = cache.objects.keys().filter(|k| !keep.contains(k.as_str())).cloned().collect();
        gone.sort();
        let mut changes = Vec::new();
        for key in gone {
            if let Some(old) = cache.remove(&key) {
                changes.push(Change::Deleted(old));
            }
        }
        for (key, new) in listed {
            match cache.insert(key, new.clone()) {
                None => changes.push(Change::Added(new)),
                Some(old) if old.meta().resource_version != new.meta().resource_version => changes.push(Change::Updated { old, new }),
                Some(_) => {}
            }
        }
        debug!(kind = R::INFO.kind, objects = cache.objects.len(), changes = changes.len(), "relist applied");
        changes
    }
}

/// Whether `new` is a later version than `old` (or cannot be compared).
fn is_newer<R: Resource>(new: &R, old: &R) -> bool {
    match (resource_version(new), resource_version(old)) {
        (Some(new), Some(old)) => new > old,
        _ => true,
    }
}

/// A new store: its writer and a first reader.
pub fn store<R: Resource>() -> (Reader<R>, Writer<R>) {
    let writer = Writer::new();
    (writer.as_reader(), writer)
}

#[cfg(test)]
mod tests {
    use berth_api::{ConfigMap, Namespace, ObjectMeta, Pod, PodSpec};

    use super::*;
    use crate::watcher::tests::cm;

    fn pod(ns: &str, name: &str, node: &str, rv: u64) -> Pod {
        Pod {
            metadata: Some(ObjectMeta { name: name.into(), namespace: ns.into(), resource_version: rv.to_string(), ..Default::default() }),
            spec: Some(PodSpec { node_name: node.into(), ..Default::default() }),
            ..Default::default()
        }
    }

    fn by_node(p: &Pod) -> Vec<String> {
        p.spec.as_ref().map(|s| s.node_name.clone()).filter(|n| !n.is_empty()).into_iter().collect()
    }

    fn names<R: Resource>(objects: &[Arc<R>]) -> Vec<String> {
        objects.iter().map(|o| o.name().to_string()).collect()
    }

    /// A compact view of changes: `+a`, `~a`, `-a`.
    fn summary<R: Resource>(changes: &[Change<R>]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Added(o) => format!("+{}", o.name()),
                Change::Updated { new, .. } => format!("~{}", new.name()),
                Change::Deleted(o) => format!("-{}", o.name()),
            })
            .collect()
    }

    fn relist<R: Resource>(w: &mut Writer<R>, objects: Vec<R>) -> Vec<Change<R>> {
        let mut changes = w.apply_watcher_event(Event::Init);
        for o in objects {
            changes.extend(w.apply_watcher_event(Event::InitApply(o)));
        }
        changes.extend(w.apply_watcher_event(Event::InitDone));
        changes
    }

    #[test]
    fn should_key_by_namespace_and_name() {
        assert_eq!(key_of(&cm("a", 1)), "default/a");
        let ns = Namespace { metadata: Some(ObjectMeta { name: "kube".into(), ..Default::default() }), ..Default::default() };
        assert_eq!(key_of(&ns), "kube");
    }

    #[test]
    fn should_apply_and_delete() {
        let (reader, mut w) = store::<ConfigMap>();
        assert_eq!(summary(&w.apply_watcher_event(Event::Apply(cm("a", 1)))), vec!["+a"]);
        assert_eq!(summary(&w.apply_watcher_event(Event::Apply(cm("a", 2)))), vec!["~a"]);
        assert_eq!(reader.get("default", "a").map(|o| o.meta().resource_version.clone()), Some("2".into()));
        assert_eq!(summary(&w.apply_watcher_event(Event::Delete(cm("a", 3)))), vec!["-a"]);
        assert!(reader.get("default", "a").is_none());
        // Deleting what is not cached announces nothing.
        assert!(w.apply_watcher_event(Event::Delete(cm("a", 4))).is_empty());
    }

    #[test]
    fn should_ignore_repeated_and_stale_changes() {
        let (reader, mut w) = store::<ConfigMap>();
        w.apply_watcher_event(Event::Apply(cm("a", 5)));
        assert!(w.apply_watcher_event(Event::Apply(cm("a", 5))).is_empty());
        assert!(w.apply_watcher_event(Event::Apply(cm("a", 4))).is_empty());
        assert_eq!(reader.get("default", "a").map(|o| o.meta().resource_version.clone()), Some("5".into()));
    }

    #[tokio::test]
    async fn should_become_ready_after_first_init_done() {
        let (reader, mut w) = store::<ConfigMap>();
        assert!(!reader.is_ready());
        w.apply_watcher_event(Event::Init);
        w.apply_watcher_event(Event::InitApply(cm("a", 1)));
        assert!(!reader.is_ready());
        // The list is not visible before it is complete.
        assert!(reader.is_empty());
        let waiting = tokio::spawn({
            let reader = reader.clone();
            async move { reader.wait_until_ready().await }
        });
        w.apply_watcher_event(Event::InitDone);
        assert!(waiting.await.expect("task").is_ok());
        assert!(reader.is_ready());
        assert_eq!(reader.len(), 1);
    }

    #[tokio::test]
    async fn should_fail_waiting_when_writer_dropped() {
        let (reader, w) = store::<ConfigMap>();
        drop(w);
        assert!(matches!(reader.wait_until_ready().await, Err(Error::WriterDropped)));
    }

    #[test]
    fn should_remove_missing_and_replace_present_objects_on_relist() {
        let (reader, mut w) = store::<ConfigMap>();
        assert_eq!(summary(&relist(&mut w, vec![cm("a", 1), cm("b", 2), cm("c", 3)])), vec!["+a", "+b", "+c"]);
        let changes = relist(&mut w, vec![cm("a", 1), cm("c", 7), cm("d", 8)]);
        assert_eq!(summary(&changes), vec!["-b", "~c", "+d"]);
        let mut listed = names(&reader.list());
        listed.sort();
        assert_eq!(listed, vec!["a", "c", "d"]);
        assert_eq!(reader.keys(), vec!["default/a", "default/c", "default/d"]);
        assert_eq!(reader.get("default", "c").map(|o| o.meta().resource_version.clone()), Some("7".into()));
        // An empty relist empties the cache.
        assert_eq!(summary(&relist(&mut w, vec![])), vec!["-a", "-c", "-d"]);
        assert!(reader.is_empty());
    }

    #[test]
    fn should_index_pods_by_node() {
        let (reader, mut w) = store::<Pod>();
        w.add_index("node", by_node);
        w.add_index("namespace", by_namespace);
        relist(&mut w, vec![pod("a", "p1", "n1", 1), pod("a", "p2", "n2", 2), pod("b", "p3", "n1", 3), pod("b", "p4", "", 4)]);
        assert_eq!(names(&reader.by_index("node", "n1")), vec!["p1", "p3"]);
        assert_eq!(reader.keys_by_index("node", "n2"), vec!["a/p2"]);
        assert_eq!(names(&reader.by_index("namespace", "b")), vec!["p3", "p4"]);
        assert!(reader.by_index("node", "").is_empty());
        assert!(reader.by_index("no-such-index", "n1").is_empty());

        // Moving a pod moves it in the index; deleting it drops it.
        w.apply_watcher_event(Event::Apply(pod("b", "p4", "n2", 5)));
        w.apply_watcher_event(Event::Apply(pod("a", "p2", "n1", 6)));
        assert_eq!(names(&reader.by_index("node", "n1")), vec!["p1", "p2", "p3"]);
        assert_eq!(names(&reader.by_index("node", "n2")), vec!["p4"]);
        w.apply_watcher_event(Event::Delete(pod("a", "p1", "n1", 7)));
        assert_eq!(names(&reader.by_index("node", "n1")), vec!["p2", "p3"]);

        // A relist rebuilds the index entries of what it removes and replaces.
        relist(&mut w, vec![pod("b", "p3", "n3", 9)]);
        assert!(reader.by_index("node", "n1").is_empty());
        assert!(reader.by_index("node", "n2").is_empty());
        assert_eq!(names(&reader.by_index("node", "n3")), vec!["p3"]);
        assert!(reader.by_index("namespace", "a").is_empty());
    }

    #[test]
    fn should_index_objects_cached_before_the_index() {
        let (reader, mut w) = store::<Pod>();
        w.apply_watcher_event(Event::Apply(pod("a", "p1", "n1", 1)));
        w.add_index("node", by_node);
        assert_eq!(names(&reader.by_index("node", "n1")), vec!["p1"]);
    }
}
