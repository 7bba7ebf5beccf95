//! One shared informer per kind for all controllers (client-go's
//! SharedInformerFactory): controllers register indexes and handlers while
//! they are set up, then every informer that was asked for starts once.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_api::Resource;
use berth_client::{Client, ListParams};
use berth_runtime::{Informer, Reader};
use tokio::task::JoinHandle;

use berth_base::shutdown::Stop;

/// The informers of one manager, created on first request.
pub struct Informers {
    client: Client,
    resync: Duration,
    slots: HashMap<TypeId, Box<dyn AnySlot>>,
}

/// The informer of one kind, before it starts.
pub struct Slot<R: Resource> {
    informer: Option<Informer<R>>,
    reader: Reader<R>,
    indexes: HashSet<String>,
}

trait AnySlot: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    fn start(self: Box<Self>, stop: Stop) -> Option<JoinHandle<()>>;
    /// The kind's plural and whether its first list is in the cache.
    fn synced(&self) -> Box<dyn Fn() -> (&'static str, bool) + Send + Sync>;
}

impl<R: Resource> AnySlot for Slot<R> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn start(self: Box<Self>, stop: Stop) -> Option<JoinHandle<()>> {
        self.informer.map(|i| tokio::spawn(i.run(stop.wait())))
    }

    fn synced(&self) -> Box<dyn Fn() -> (&'static str, bool) + Send + Sync> {
        let reader = self.reader.clone();
        Box::new(move || (R::INFO.plural, reader.is_ready()))
    }
}

impl Informers {
    /// Informers on `client`, re-announcing every object each `resync`
    /// (zero: never) so that a missed change is eventually reconciled.
    pub fn new(client: Client, resync: Duration) -> Informers {
        Informers { client, resync, slots: HashMap::new() }
    }

    /// The informer of kind `R` across all namespaces.
    pub fn of<R: Resource>(&mut self) -> &mut Slot<R> {
        let (client, resync) = (self.client.clone(), self.resync);
        let slot = self.slots.entry(TypeId::of::<R>()).or_insert_with(|| {
            let informer = Informer::<R>::new(client, "", ListParams::default()).with_resync(resync);
            let reader = informer.reader();
            Box::new(Slot { informer: Some(informer), reader, indexes: HashSet::new() })
        });
        match slot.as_any().downcast_mut::<Slot<R>>() {
            Some(s) => s,
            // The map is keyed by the type id of R: the downcast cannot fail.
            None => unreachable!("informer slot of the wrong kind"),
        }
    }

    /// A check that passes once every informer asked for has its first list,
    /// and otherwise names the kinds still waiting.
    pub fn synced_check(&self) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
        let slots: Vec<_> = self.slots.values().map(|s| s.synced()).collect();
        move || {
            let pending: Vec<&str> = slots.iter().map(|s| s()).filter_map(|(kind, ready)| (!ready).then_some(kind)).collect();
            if pending.is_empty() { Ok(()) } else { Err(format!("waiting for the first list of {}", pending.join(", "))) }
        }
    }

    /// Starts every informer asked for; they run until `stop`.
    pub fn start(self, stop: &Stop) -> Vec<JoinHandle<()>> {
        self.slots.into_values().filter_map(|s| s.start(stop.clone())).collect()
    }
}

impl<R: Resource> Slot<R> {
    /// A reader of the shared cache.
    pub fn reader(&self) -> Reader<R> {
        self.reader.clone()
    }

    /// Adds the index `name` unless a controller already did (same name, same function).
    pub fn index(&mut self, name: &str, f: impl Fn(&R) -> Vec<String> + Send + Sync + 'static) -> &mut Self {
        if self.indexes.insert(name.to_string()) {
            self.informer = self.informer.take().map(|i| i.with_index(name, f));
        }
        self
    }

    pub fn on_add(&mut self, f: impl Fn(&Arc<R>) + Send + Sync + 'static) -> &mut Self {
        self.informer = self.informer.take().map(|i| i.on_add(f));
        self
    }

    pub fn on_update(&mut self, f: impl Fn(&Arc<R>, &Arc<R>) + Send + Sync + 'static) -> &mut Self {
        self.informer = self.informer.take().map(|i| i.on_update(f));
        self
    }

    pub fn on_delete(&mut self, f: impl Fn(&Arc<R>) + Send + Sync + 'static) -> &mut Self {
        self.informer = self.informer.take().map(|i| i.on_delete(f));
        self
    }
}

/// Index names shared by controllers.
pub mod index {
    use berth_api::Resource;
    use berth_api::pb::core::Pod;

    /// Objects by namespace.
    pub const NAMESPACE: &str = "namespace";
    /// Pods by node name.
    pub const NODE: &str = "node";
    /// Objects by the uid of their controller owner.
    pub const CONTROLLER: &str = "controller-uid";

    pub fn by_namespace<R: Resource>(o: &R) -> Vec<String> {
        vec![o.namespace().to_string()]
    }

    pub fn pod_by_node(p: &Pod) -> Vec<String> {
        p.spec.iter().map(|s| s.node_name.clone()).filter(|n| !n.is_empty()).collect()
    }

    pub fn by_controller<R: Resource>(o: &R) -> Vec<String> {
        o.meta().owner_references.iter().filter(|r| r.controller == Some(true)).map(|r| r.uid.clone()).collect()
    }
}
