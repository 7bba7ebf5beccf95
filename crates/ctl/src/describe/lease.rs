//! The lease view: its holder, duration and renewals.

use berth_api::pb::core::{Lease, ObjectMeta};

use super::{Doc, header, or_none, time};

pub(super) fn view(d: &mut Doc, l: &Lease) {
    let empty = ObjectMeta::default();
    header(d, l.metadata.as_ref().unwrap_or(&empty));
    let spec = l.spec.clone().unwrap_or_default();
    d.line(0, "Spec:");
    d.kv(2, "Holder Identity", or_none(spec.holder_identity.as_deref().unwrap_or("")));
    d.kv(2, "Lease Duration Seconds", spec.lease_duration_seconds.map(|s| s.to_string()).unwrap_or_else(|| "<none>".into()));
    d.kv(2, "Acquire Time", or_none(&time(&spec.acquire_time)));
    d.kv(2, "Renew Time", or_none(&time(&spec.renew_time)));
    d.kv(2, "Lease Transitions", spec.lease_transitions.unwrap_or(0));
}
