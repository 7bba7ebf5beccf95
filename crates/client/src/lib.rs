//! Berth's client library, shared by every daemon and berthctl.
//!
//! # Layout
//! - [`client`]: typed gRPC client of the API.
//! - [`config`]: connection settings and the shared `--server/--token/--ca-file` flags.
//! - [`kubeconfig`]: berthctl's config file of clusters, users and contexts (kubeconfig's shape).
//! - [`watcher`]: list+watch as a stream, resuming after errors and relisting on "too old".
//! - [`reflector`]: the informer's cache, a writer and cheap readers with indexes.
//! - [`informer`]: watcher + reflector + change handlers + resync.
//! - [`workqueue`]: rate-limited work queue of keys.
//! - [`leader`]: leader election through a Lease.
//! - [`modify`]: read-modify-write retried on conflicting writes.
//! - [`events`]: recording Events about objects.
//! - [`pki`]: a cluster CA issuing the apiserver's and the components' certificates.
//! - [`tls`]: PEM certificates and keys, the TLS server configuration, client certificate identities.
//! - [`health`]: `/healthz`, `/livez`, `/readyz` and `/metrics` for the daemons.
//! - [`telemetry`]: logging setup and the `--log-format`/`-v` flags.
//! - [`systemd`]: `Type=notify` readiness and watchdog.
//! - [`signal`]: the SIGINT/SIGTERM shutdown future.
//! - [`duration`]: `40s`/`5m`/`500ms` durations in flags.

pub mod client;
pub mod coalesce;
pub mod config;
pub mod duration;
pub mod events;
pub mod health;
pub mod informer;
pub mod kubeconfig;
pub mod leader;
pub mod modify;
pub mod pki;
pub mod reflector;
pub mod signal;
pub mod systemd;
pub mod telemetry;
pub mod tls;
pub mod watcher;
pub mod workqueue;

pub use client::{Client, DeleteParams, Error, ListParams, Result, WatchEvent};
pub use config::{ClientConfig, ConnectArgs};
pub use informer::Informer;
pub use reflector::{Change, Reader, key_of};
pub use workqueue::WorkQueue;
