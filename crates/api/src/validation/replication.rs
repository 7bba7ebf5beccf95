//! ReplicationControllers: replicas, a selector that matches the template's
//! labels, a pod template that restarts Always and sets no deadline, and
//! status counts that add up.

use super::meta::{EMPTY_META, NameRule, annotations, labels, object_meta};
use super::pod::pod_spec;
use super::{Check, render_map};
use crate::labels::Selector;
use crate::pb::core::{PodSpec, ReplicationController, ReplicationControllerSpec};

pub(super) fn replication_controller(c: &mut Check, rc: &ReplicationController) {
    object_meta(c, rc.metadata.as_ref(), true, NameRule::Subdomain);
    let empty = ReplicationControllerSpec::default();
    let s = rc.spec.as_ref().unwrap_or(&empty);
    if let Some(r) = s.replicas {
        c.non_negative("spec.replicas", r.into());
    }
    if let Some(m) = s.min_ready_seconds {
        c.non_negative("spec.minReadySeconds", m.into());
    }
    if s.selector.is_empty() {
        c.required("spec.selector", "");
    }
    labels(c, "spec.selector", &s.selector);
    let Some(t) = &s.template else {
        c.required("spec.template", "");
        return;
    };
    let tm = t.metadata.as_ref().unwrap_or(&EMPTY_META);
    if !s.selector.is_empty() && !Selector::from_map(&s.selector).matches(&tm.labels) {
        c.invalid("spec.template.metadata.labels", render_map(&tm.labels), "`selector` does not match template `labels`");
    }
    labels(c, "spec.template.metadata.labels", &tm.labels);
    annotations(c, "spec.template.metadata.annotations", &tm.annotations);
    let empty_spec = PodSpec::default();
    let ps = t.spec.as_ref().unwrap_or(&empty_spec);
    pod_spec(c, ps, "spec.template.spec");
    if ["OnFailure", "Never"].contains(&ps.restart_policy.as_str()) {
        c.not_supported("spec.template.spec.restartPolicy", &ps.restart_policy, &["Always"]);
    }
    if let Some(v) = ps.active_deadline_seconds {
        c.invalid("spec.template.spec.activeDeadlineSeconds", v, "activeDeadlineSeconds in ReplicationController is not Supported");
    }
    if let Some(st) = &rc.status {
        let fields = [
            ("status.replicas", st.replicas),
            ("status.fullyLabeledReplicas", st.fully_labeled_replicas),
            ("status.readyReplicas", st.ready_replicas),
            ("status.availableReplicas", st.available_replicas),
        ];
        for (f, v) in fields {
            c.non_negative(f, v.into());
        }
        c.non_negative("status.observedGeneration", st.observed_generation);
        for (f, v) in &fields[1..] {
            if *v > st.replicas {
                c.invalid(f, *v, "cannot be greater than status.replicas");
            }
        }
        if st.available_replicas > st.ready_replicas {
            c.invalid("status.availableReplicas", st.available_replicas, "cannot be greater than readyReplicas");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::api::Object;
    use crate::pb::api::object::Kind;
    use crate::pb::core::{ObjectMeta, PodTemplateSpec, ReplicationControllerStatus};
    use crate::validation::test_support::*;
    use crate::validation::validate_update;

    // The builder, not the check of the same name that `super::*` brings.
    use crate::validation::test_support::pod_spec;

    fn rc_with(f: impl FnOnce(&mut ReplicationControllerSpec)) -> Object {
        let labels = map(&[("app", "web")]);
        let mut spec = ReplicationControllerSpec {
            replicas: Some(2),
            selector: labels.clone(),
            template: Some(PodTemplateSpec { metadata: Some(ObjectMeta { labels, ..Default::default() }), spec: Some(pod_spec()) }),
            ..Default::default()
        };
        f(&mut spec);
        ReplicationController { metadata: meta("web"), spec: Some(spec), ..Default::default() }.into_object()
    }

    #[test]
    fn should_accept_a_valid_replication_controller() {
        assert_valid(&rc_with(|_| {}));
        assert_valid(&rc_with(|s| s.replicas = Some(0)));
    }

    #[test]
    fn should_refuse_a_selector_that_does_not_match_the_template_labels() {
        let msg = assert_error_at(&rc_with(|s| s.selector = map(&[("app", "db")])), "spec.template.metadata.labels");
        assert!(
            msg.starts_with("spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"),
            "{msg}"
        );
        assert_valid(&rc_with(|s| {
            if let Some(m) = s.template.as_mut().and_then(|t| t.metadata.as_mut()) {
                m.labels.insert("tier".into(), "front".into());
            }
        }));
    }

    #[test]
    fn should_require_a_selector_and_a_template() {
        assert_eq!(assert_error_at(&rc_with(|s| s.selector.clear()), "spec.selector"), "spec.selector: Required value");
        assert_eq!(assert_error_at(&rc_with(|s| s.template = None), "spec.template"), "spec.template: Required value");
        assert_error_at(&rc_with(|s| s.selector = map(&[("app", "bad value!")])), "spec.selector");
    }

    #[test]
    fn should_refuse_negative_replicas_and_min_ready_seconds() {
        assert_eq!(
            assert_error_at(&rc_with(|s| s.replicas = Some(-1)), "spec.replicas"),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_error_at(&rc_with(|s| s.min_ready_seconds = Some(-5)), "spec.minReadySeconds");
    }

    #[test]
    fn should_require_template_restart_policy_always() {
        let o = rc_with(|s| {
            if let Some(ps) = s.template.as_mut().and_then(|t| t.spec.as_mut()) {
                ps.restart_policy = "OnFailure".into();
            }
        });
        assert_eq!(
            assert_error_at(&o, "spec.template.spec.restartPolicy"),
            "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\""
        );
        let o = rc_with(|s| {
            if let Some(ps) = s.template.as_mut().and_then(|t| t.spec.as_mut()) {
                ps.active_deadline_seconds = Some(30);
            }
        });
        assert_error_at(&o, "spec.template.spec.activeDeadlineSeconds");
    }

    #[test]
    fn should_report_template_errors_under_the_template_path() {
        let o = rc_with(|s| {
            if let Some(ps) = s.template.as_mut().and_then(|t| t.spec.as_mut()) {
                ps.containers[0].image.clear();
                ps.containers[0].volume_mounts = vec![mount("missing", "/m")];
            }
        });
        let errs = errors(&o);
        error_at(&errs, "spec.template.spec.containers[0].image");
        assert!(error_at(&errs, "spec.template.spec.containers[0].volumeMounts[0].name").contains("spec.template.spec.volumes"));
    }

    #[test]
    fn should_check_replication_controller_status_counts() {
        let mut o = rc_with(|_| {});
        if let Some(Kind::ReplicationController(rc)) = &mut o.kind {
            rc.status = Some(ReplicationControllerStatus { replicas: 2, ready_replicas: 3, available_replicas: 1, ..Default::default() });
        }
        assert_error_at(&o, "status.readyReplicas");
    }

    #[test]
    fn should_allow_changing_a_replication_controller_selector() {
        let old = rc_with(|_| {});
        let new = rc_with(|s| {
            s.selector = map(&[("app", "web"), ("tier", "front")]);
            if let Some(m) = s.template.as_mut().and_then(|t| t.metadata.as_mut()) {
                m.labels.insert("tier".into(), "front".into());
            }
            s.replicas = Some(5);
        });
        assert_valid(&new);
        assert!(validate_update(&old, &new).is_ok());
    }
}
