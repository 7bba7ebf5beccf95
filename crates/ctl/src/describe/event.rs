//! The view of an event object itself: what it is about, why, from where, and how often.

use berth_api::pb::core::{Event, ObjectMeta};

use super::{Doc, header, or_none, time};

pub(super) fn view(d: &mut Doc, e: &Event) {
    let empty = ObjectMeta::default();
    header(d, e.metadata.as_ref().unwrap_or(&empty));
    let io = e.involved_object.clone().unwrap_or_default();
    d.line(0, "Involved Object:");
    d.kv(2, "Kind", &io.kind);
    d.kv(2, "Name", &io.name);
    if !io.namespace.is_empty() {
        d.kv(2, "Namespace", &io.namespace);
    }
    if !io.field_path.is_empty() {
        d.kv(2, "Field Path", &io.field_path);
    }
    d.kv(0, "Type", &e.r#type);
    d.kv(0, "Reason", &e.reason);
    d.kv(0, "Message", e.message.trim().replace('\t', " "));
    let src = e.source.clone().unwrap_or_default();
    d.line(0, "Source:");
    d.kv(2, "Component", or_none(&src.component));
    d.kv(2, "Host", or_none(&src.host));
    d.kv(0, "First Timestamp", or_none(&time(&e.first_timestamp)));
    d.kv(0, "Last Timestamp", or_none(&time(&e.last_timestamp)));
    d.kv(0, "Count", e.count);
    if !e.reporting_component.is_empty() {
        d.kv(0, "Reporting Component", &e.reporting_component);
    }
    if !e.reporting_instance.is_empty() {
        d.kv(0, "Reporting Instance", &e.reporting_instance);
    }
}
