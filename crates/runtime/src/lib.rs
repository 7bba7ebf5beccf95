//! What Berth's controllers stand on (as kube-runtime is to kube-client):
//! caches kept in step with the API, a queue of work, one leader, events.
//!
//! # Layout
//! - [`watcher`]: list+watch as a stream, resuming after errors and relisting on "too old".
//! - [`reflector`]: the informer's cache, a writer and cheap readers with indexes.
//! - [`informer`]: watcher + reflector + change handlers + resync.
//! - [`workqueue`]: rate-limited work queue of keys.
//! - [`leader`]: leader election through a Lease.
//! - [`events`]: recording Events about objects.

pub mod events;
pub mod informer;
pub mod leader;
pub mod reflector;
pub mod watcher;
pub mod workqueue;

pub use informer::Informer;
pub use reflector::{Change, Reader, key_of};
pub use workqueue::WorkQueue;
