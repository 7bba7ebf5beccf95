//! The secret view: its type and the size of each value, never the values.

use berth_api::pb::core::{ObjectMeta, Secret};

use super::{Doc, header};

pub(super) fn view(d: &mut Doc, s: &Secret) {
    let empty = ObjectMeta::default();
    header(d, s.metadata.as_ref().unwrap_or(&empty));
    d.line(0, "");
    d.kv(0, "Type", if s.r#type.is_empty() { "Opaque" } else { &s.r#type });
    d.line(0, "");
    d.line(0, "Data");
    d.line(0, "====");
    for (k, v) in &s.data {
        d.kv(0, k, format!("{} bytes", v.len()));
    }
}
