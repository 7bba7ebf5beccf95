//! What every Berth daemon's `main` stands on, whatever else it does.
//!
//! # Layout
//! - [`health`]: `/healthz`, `/livez`, `/readyz` and `/metrics`, and the gRPC health service.
//! - [`telemetry`]: logging setup and the `--log-format`/`-v` flags.
//! - [`systemd`]: `Type=notify` readiness and watchdog.
//! - [`signal`]: the SIGINT/SIGTERM future.
//! - [`shutdown`]: the one stop signal a daemon fans out to its tasks.
//! - [`host`]: the host's name.
//! - [`sync`]: locks that survive a panicking holder.
//! - [`duration`]: `40s`/`5m`/`500ms` durations in flags.
//! - [`tls`]: PEM certificates and keys, the TLS server configuration, client certificate identities.

pub mod duration;
pub mod health;
pub mod host;
pub mod shutdown;
pub mod signal;
pub mod sync;
pub mod systemd;
pub mod telemetry;
pub mod tls;
