//! Berth's client library, shared by every daemon and berthctl.
//!
//! # Layout
//! - [`client`]: typed gRPC client of the API.
//! - [`config`]: connection settings and the shared `--server/--token/--ca-file` flags.
//! - [`workqueue`]: rate-limited work queue of keys.

pub mod client;
pub mod config;
pub mod workqueue;

pub use client::{Client, DeleteParams, Error, ListParams, Result, WatchEvent};
pub use config::{ClientConfig, ConnectArgs};
