//! The namespace view: its status, then its resource quotas and limit ranges.

use berth_api::Resource as _;
use berth_api::pb::core::{Namespace, ObjectMeta};

use super::{Doc, Related, header, limit_range, resource_quota};

/// kubectl's namespace view: status, then its quotas and limits.
pub(super) fn view(d: &mut Doc, n: &Namespace, related: &Related) {
    let empty = ObjectMeta::default();
    header(d, n.metadata.as_ref().unwrap_or(&empty));
    let phase = n.status.as_ref().map(|s| s.phase.as_str()).filter(|p| !p.is_empty()).unwrap_or("Active");
    d.kv(0, "Status", phase);
    d.line(0, "");
    if related.quotas.is_empty() {
        d.line(0, "No resource quota.");
    } else {
        d.line(0, "Resource Quotas");
        for q in &related.quotas {
            d.kv(2, "Name", &q.meta().name);
            resource_quota::table(d, 2, q);
        }
    }
    d.line(0, "");
    if related.limit_ranges.is_empty() {
        d.line(0, "No LimitRange resource.");
    } else {
        d.line(0, "Resource Limits");
        for l in &related.limit_ranges {
            limit_range::table(d, 1, l);
        }
    }
}
