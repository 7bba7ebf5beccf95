//! berthctl, Berth's command line, with kubectl's habits.
//!
//! # Layout
//! - [`commands`]: one module per verb (`apply`, `get`, ...), each a `run`
//!   function taking its parsed arguments, and the context they share.
//! - [`printers`]: the tables of `get` laid out as kubectl prints them (columns and cells from `berth_api::printers`).
//! - [`describe`]: the readable multi-line view of `describe`.
//! - [`manifests`]: `-f FILE|DIR|-` to objects.
//! - [`merge`]: the three-way merge behind `apply`.
//! - [`tabwriter`]: elastic tab stops, as Go's text/tabwriter.
//! - [`jsonpath`]: kubectl's JSONPath subset (`-o jsonpath=`, `wait --for=jsonpath=`).
//! - [`custom_columns`]: `-o custom-columns=HEADER:PATH,...`.
//! - [`progress`]: progress lines of rolling-update, drain and wait, on stderr.
//! - [`live_table`]: the table `get -w` redraws in place on a terminal.
//! - [`error`]: how failures are reported (one line, kubectl's wording).

pub mod commands;
pub mod custom_columns;
pub mod describe;
pub mod error;
pub mod jsonpath;
pub mod live_table;
pub mod manifests;
pub mod merge;
pub mod printers;
pub mod progress;
pub mod tabwriter;
