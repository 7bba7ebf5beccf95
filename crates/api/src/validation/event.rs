//! Events: an involved object, in the namespace its scope calls for, and a
//! non-negative count.

use super::Check;
use super::meta::{NameRule, object_meta};
use crate::pb::core::Event;

pub(super) fn event(c: &mut Check, e: &Event) {
    object_meta(c, e.metadata.as_ref(), true, NameRule::Subdomain);
    let ns = e.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or("");
    match &e.involved_object {
        Some(o) if !(o.kind.is_empty() && o.name.is_empty()) => {
            // As Kubernetes: an event about a cluster-scoped object lives in
            // "default"; one about a namespaced object in that namespace.
            let new_style = !e.event_time.is_empty();
            if o.namespace.is_empty() {
                if !(ns.is_empty() || ns == "default" || (new_style && ns == "kube-system")) {
                    c.invalid("involvedObject.namespace", &o.namespace, "does not match event.namespace");
                }
            } else if !new_style && o.namespace != ns {
                c.invalid("involvedObject.namespace", &o.namespace, "does not match event.namespace");
            }
        }
        _ => c.required("involvedObject", "must name the object (kind and name)"),
    }
    c.non_negative("count", e.count.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::api::Object;
    use crate::pb::core::{ObjectMeta, ObjectReference};
    use crate::validation::test_support::*;

    fn event_with(f: impl FnOnce(&mut Event)) -> Object {
        let mut e = Event {
            metadata: meta("web.17a8b"),
            involved_object: Some(ObjectReference {
                kind: "Pod".into(),
                name: "web".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            reason: "Scheduled".into(),
            message: "Successfully assigned default/web to node-1".into(),
            r#type: "Normal".into(),
            count: 1,
            ..Default::default()
        };
        f(&mut e);
        e.into_object()
    }

    #[test]
    fn should_require_an_involved_object_in_the_events_namespace() {
        assert_valid(&event_with(|_| {}));
        assert_valid(&event_with(|e| {
            e.involved_object = Some(ObjectReference { kind: "Node".into(), name: "node-1".into(), ..Default::default() })
        }));
        assert_error_at(&event_with(|e| e.involved_object = None), "involvedObject");
        assert_error_at(&event_with(|e| e.involved_object = Some(ObjectReference::default())), "involvedObject");
        let other_ns = event_with(|e| e.involved_object.get_or_insert_with(Default::default).namespace = "prod".into());
        assert!(assert_error_at(&other_ns, "involvedObject.namespace").contains("does not match event.namespace"));
        let node_in_ns = event_with(|e| {
            e.metadata = Some(ObjectMeta { name: "n.1".into(), namespace: "prod".into(), ..Default::default() });
            e.involved_object = Some(ObjectReference { kind: "Node".into(), name: "node-1".into(), ..Default::default() });
        });
        assert_error_at(&node_in_ns, "involvedObject.namespace");
    }
}
