//! Berth's API client, shared by every daemon and berthctl: what talks to
//! the apiserver and how to reach it. The controller runtime (informers,
//! work queue, leader election, events) is `berth-runtime`; daemon plumbing
//! (health, logging, signals, TLS files) is `berth-base`.
//!
//! # Layout
//! - [`client`]: typed gRPC client of the API.
//! - [`config`]: connection settings and the shared `--server/--token/--ca-file` flags.
//! - [`kubeconfig`]: berthctl's config file of clusters, users and contexts (kubeconfig's shape).
//! - [`modify`]: read-modify-write retried on conflicting writes.
//! - [`pki`]: a cluster CA issuing the apiserver's and the components' certificates.

pub mod client;
pub mod config;
pub mod kubeconfig;
pub mod modify;
pub mod pki;

pub use client::{Client, DeleteParams, Error, ListParams, Result, WatchEvent};
pub use config::{ClientConfig, ConnectArgs};
