//! Recording Events about objects, as client-go's EventRecorder does:
//! fire-and-forget from the caller's view, written by a background task,
//! with repeats of the same event folded into one object with a count.

use std::collections::HashMap;

use berth_api::Resource;
use berth_api::pb::core::{Event, EventSource, ObjectMeta, ObjectReference};
use tokio::sync::mpsc;
use tracing::debug;

use berth_client::client::Client;

/// A reference to an object, for `involvedObject`.
pub fn reference<R: Resource>(r: &R) -> ObjectReference {
    let m = r.meta();
    ObjectReference {
        kind: R::INFO.kind.into(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        api_version: R::INFO.api_version.into(),
        resource_version: m.resource_version.clone(),
        field_path: String::new(),
    }
}

struct Record {
    object: ObjectReference,
    event_type: &'static str,
    reason: String,
    message: String,
}

/// Sends Events for one component; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
}

impl Recorder {
    /// Starts the writer task for `component` on `host`.
    pub fn new(client: Client, component: &str, host: &str) -> Recorder {
        let (tx, rx) = mpsc::channel(1024);
        let source = EventSource { component: component.into(), host: host.into() };
        tokio::spawn(write_events(client, source, rx));
        Recorder { tx }
    }

    /// A Normal event.
    pub fn normal(&self, object: &ObjectReference, reason: &str, message: impl Into<String>) {
        self.send(object, "Normal", reason, message.into());
    }

    /// A Warning event.
    pub fn warning(&self, object: &ObjectReference, reason: &str, message: impl Into<String>) {
        self.send(object, "Warning", reason, message.into());
    }

    fn send(&self, object: &ObjectReference, event_type: &'static str, reason: &str, message: String) {
        // Dropping an event under overload is better than blocking the controller.
        let _ = self.tx.try_send(Record { object: object.clone(), event_type, reason: reason.into(), message });
    }
}

async fn write_events(client: Client, source: EventSource, mut rx: mpsc::Receiver<Record>) {
    // (involved uid, type, reason, message) -> (event namespace, name)
    let mut seen: HashMap<(String, String, String, String), (String, String)> = HashMap::new();
    while let Some(r) = rx.recv().await {
        let now = berth_api::time::now_rfc3339();
        let namespace = if r.object.namespace.is_empty() { "default".to_string() } else { r.object.namespace.clone() };
        let key = (r.object.uid.clone() + &r.object.name, r.event_type.to_string(), r.reason.clone(), r.message.clone());
        if let Some((ns, name)) = seen.get(&key)
            && let Ok(mut existing) = client.get::<Event>(ns, name).await
        {
            existing.count += 1;
            existing.last_timestamp = now.clone();
            if client.update(existing).await.is_ok() {
                continue;
            }
        }
        let name = format!("{}.{:x}", r.object.name, rand_suffix());
        let event = Event {
            metadata: Some(ObjectMeta { name: name.clone(), namespace: namespace.clone(), ..Default::default() }),
            involved_object: Some(r.object),
            reason: r.reason,
            message: r.message,
            source: Some(source.clone()),
            first_timestamp: now.clone(),
            last_timestamp: now,
            count: 1,
            r#type: r.event_type.into(),
            reporting_component: source.component.clone(),
            reporting_instance: source.host.clone(),
            ..Default::default()
        };
        match client.create(event).await {
            Ok(_) => {
                if seen.len() > 4096 {
                    seen.clear();
                }
                seen.insert(key, (namespace, name));
            }
            Err(e) => debug!(error = %e, "cannot record event"),
        }
    }
}

fn rand_suffix() -> u64 {
    use rand::Rng;
    rand::rng().random::<u64>()
}
