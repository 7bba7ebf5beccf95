//! The config map view: each value verbatim, and the size of each binary value.

use berth_api::pb::core::{ConfigMap, ObjectMeta};

use super::{Doc, header};

pub(super) fn view(d: &mut Doc, c: &ConfigMap) {
    let empty = ObjectMeta::default();
    header(d, c.metadata.as_ref().unwrap_or(&empty));
    d.line(0, "");
    d.line(0, "Data");
    d.line(0, "====");
    for (k, v) in &c.data {
        d.line(0, format!("{k}:"));
        d.line(0, "----");
        // Values are shown verbatim: tabs in them must not become columns.
        d.line(0, v.replace('\t', "    "));
        d.line(0, "");
    }
    d.line(0, "");
    d.line(0, "BinaryData");
    d.line(0, "====");
    for (k, v) in &c.binary_data {
        d.kv(0, k, format!("{} bytes", v.len()));
    }
    d.line(0, "");
}
