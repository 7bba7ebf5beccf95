//! Berth's client library, shared by every daemon and berthctl.
//!
//! # Layout
//! - [`client`]: typed gRPC client of the API.
//! - [`config`]: connection settings and the shared `--server/--token/--ca-file` flags.
//! - [`workqueue`]: rate-limited work queue of keys.
//! - [`telemetry`]: logging setup and the `--log-format`/`-v` flags.
//! - [`signal`]: the SIGINT/SIGTERM shutdown future.
//! - [`duration`]: `40s`/`5m`/`500ms` durations in flags.

pub mod client;
pub mod config;
pub mod informer;
pub mod reflector;
pub mod watcher;
pub mod duration;
pub mod signal;
pub mod telemetry;
pub mod workqueue;

pub use client::{Client, DeleteParams, Error, ListParams, Result, WatchEvent};
pub use config::{ClientConfig, ConnectArgs};
