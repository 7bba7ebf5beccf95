//! A container's environment variables: names, and the one source a value
//! may come from (fieldRef, resourceFieldRef, configMapKeyRef or
//! secretKeyRef) with its own rules.

use crate::names;
use crate::pb::core::EnvVar;
use crate::validation::{Check, at};

/// Paths a fieldRef may name in an environment variable.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Resources a resourceFieldRef may name in an environment variable.
const ENV_RESOURCES: &[&str] =
    &["limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage"];

pub(super) fn env_var(c: &mut Check, e: &EnvVar, p: &str) {
    let np = at(p, "name");
    if e.name.is_empty() {
        c.required(&np, "");
    } else {
        c.invalid_all(&np, &e.name, names::env_var_name(&e.name));
    }
    let Some(vf) = &e.value_from else { return };
    let vp = at(p, "valueFrom");
    let n = [vf.field_ref.is_some(), vf.resource_field_ref.is_some(), vf.config_map_key_ref.is_some(), vf.secret_key_ref.is_some()]
        .into_iter()
        .filter(|b| *b)
        .count();
    if !e.value.is_empty() && n != 0 {
        c.invalid(&vp, "", "may not be specified when `value` is not empty");
    }
    match n {
        0 => c.invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"),
        1 => {}
        _ => c.invalid(&vp, "", "may not have more than one field specified at a time"),
    }
    if let Some(f) = &vf.field_ref {
        let fp = at(&vp, "fieldRef");
        if !f.api_version.is_empty() && f.api_version != "v1" {
            c.not_supported(&at(&fp, "apiVersion"), &f.api_version, &["v1"]);
        }
        let pp = at(&fp, "fieldPath");
        if f.field_path.is_empty() {
            c.required(&pp, "");
        } else if let Some((path, subscript)) = split_subscript(&f.field_path) {
            match path {
                "metadata.labels" => c.invalid_all(&fp, subscript, names::qualified_name(subscript)),
                "metadata.annotations" => c.invalid_all(&fp, subscript, names::qualified_name(&subscript.to_lowercase())),
                _ => c.invalid(&fp, path, "does not support subscript"),
            }
        } else if !ENV_FIELD_PATHS.contains(&f.field_path.as_str()) {
            c.not_supported(&pp, &f.field_path, ENV_FIELD_PATHS);
        }
    }
    if let Some(r) = &vf.resource_field_ref {
        let rp = at(&vp, "resourceFieldRef");
        let res = at(&rp, "resource");
        if r.resource.is_empty() {
            c.required(&res, "");
        } else if !ENV_RESOURCES.contains(&r.resource.as_str())
            && !r.resource.starts_with("limits.hugepages-")
            && !r.resource.starts_with("requests.hugepages-")
        {
            c.not_supported(&res, &r.resource, ENV_RESOURCES);
        }
        if !r.divisor.is_empty() {
            let dp = at(&rp, "divisor");
            if c.quantity(&dp, &r.divisor).is_some() {
                let cpu = r.resource.ends_with(".cpu");
                let memory = r.resource.ends_with(".memory") || r.resource.ends_with(".ephemeral-storage");
                if cpu && !["1m", "1"].contains(&r.divisor.as_str()) {
                    c.invalid(&dp, &r.divisor, "only divisor's values 1m and 1 are supported with the cpu resource");
                }
                let mem_ok = ["1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"];
                if memory && !mem_ok.contains(&r.divisor.as_str()) {
                    c.invalid(&dp, &r.divisor, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource");
                }
            }
        }
    }
    let key_refs = [
        ("configMapKeyRef", vf.config_map_key_ref.as_ref().map(|r| (&r.name, &r.key))),
        ("secretKeyRef", vf.secret_key_ref.as_ref().map(|r| (&r.name, &r.key))),
    ];
    for (field, r) in key_refs {
        let Some((name, k)) = r else { continue };
        let rp = at(&vp, field);
        if name.is_empty() {
            c.required(&at(&rp, "name"), "");
        }
        let kp = at(&rp, "key");
        if k.is_empty() {
            c.required(&kp, "");
        } else {
            c.invalid_all(&kp, k, names::config_map_key(k));
        }
    }
}

/// `metadata.labels['key']` as (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let s = path.strip_suffix("']")?;
    let (head, sub) = s.split_once("['")?;
    if head.is_empty() { None } else { Some((head, sub)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::api::Object;
    use crate::pb::core::{ConfigMapKeySelector, EnvFromSource, EnvVarSource, ObjectFieldSelector, ResourceFieldSelector};
    use crate::validation::test_support::*;

    fn env(name: &str, value: &str, from: Option<EnvVarSource>) -> Object {
        ctr_with(|c| c.env = vec![EnvVar { name: name.into(), value: value.into(), value_from: from }])
    }

    fn field_ref(path: &str) -> Option<EnvVarSource> {
        Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: "v1".into(), field_path: path.into() }),
            ..Default::default()
        })
    }

    #[test]
    fn should_check_env_var_names() {
        assert_valid(&env("my.env-name", "x", None));
        assert_error_at(&env("1BAD", "x", None), "spec.containers[0].env[0].name");
        assert_error_at(&env("", "x", None), "spec.containers[0].env[0].name");
        assert_error_at(
            &ctr_with(|c| c.env_from = vec![EnvFromSource { prefix: "1X".into(), ..Default::default() }]),
            "spec.containers[0].envFrom[0].prefix",
        );
        assert_error_at(&ctr_with(|c| c.env_from = vec![EnvFromSource::default()]), "spec.containers[0].envFrom[0]");
    }

    #[test]
    fn should_require_exactly_one_env_value_source() {
        let p = "spec.containers[0].env[0].valueFrom";
        assert!(assert_error_at(&env("A", "x", field_ref("metadata.name")), p).contains("may not be specified when `value` is not empty"));
        assert!(assert_error_at(&env("A", "", Some(EnvVarSource::default())), p).contains("must specify one of"));
        let two = Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: "v1".into(), field_path: "metadata.name".into() }),
            config_map_key_ref: Some(ConfigMapKeySelector { name: "c".into(), key: "k".into(), optional: None }),
            ..Default::default()
        });
        assert!(assert_error_at(&env("A", "", two), p).contains("may not have more than one field"));
    }

    #[test]
    fn should_check_field_ref_paths() {
        for ok in ["metadata.namespace", "status.podIP", "spec.nodeName", "metadata.annotations['example.com/x']"] {
            assert_valid(&env("A", "", field_ref(ok)));
        }
        let msg = assert_error_at(&env("A", "", field_ref("spec.containers")), "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath");
        assert!(msg.starts_with("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.containers\": supported values: \"metadata.name\""), "{msg}");
        assert_error_at(&env("A", "", field_ref("metadata.labels['bad key']")), "spec.containers[0].env[0].valueFrom.fieldRef");
        assert_error_at(&env("A", "", field_ref("spec.nodeName['x']")), "spec.containers[0].env[0].valueFrom.fieldRef");
        assert_error_at(&env("A", "", field_ref("")), "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath");
        let v2 = Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: "v2".into(), field_path: "metadata.name".into() }),
            ..Default::default()
        });
        assert_error_at(&env("A", "", v2), "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion");
    }

    #[test]
    fn should_check_resource_and_key_refs_in_env() {
        let res = |r: &str, d: &str| {
            Some(EnvVarSource {
                resource_field_ref: Some(ResourceFieldSelector { resource: r.into(), divisor: d.into(), ..Default::default() }),
                ..Default::default()
            })
        };
        assert_valid(&env("M", "", res("requests.memory", "1Mi")));
        assert_error_at(&env("M", "", res("limits.gpu", "")), "spec.containers[0].env[0].valueFrom.resourceFieldRef.resource");
        assert_error_at(&env("M", "", res("limits.cpu", "2")), "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor");
        let cm = |name: &str, key: &str| {
            Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector { name: name.into(), key: key.into(), optional: None }),
                ..Default::default()
            })
        };
        assert_error_at(&env("A", "", cm("app", "")), "spec.containers[0].env[0].valueFrom.configMapKeyRef.key");
        assert_error_at(&env("A", "", cm("app", "bad/key")), "spec.containers[0].env[0].valueFrom.configMapKeyRef.key");
        assert_error_at(&env("A", "", cm("", "k")), "spec.containers[0].env[0].valueFrom.configMapKeyRef.name");
    }
}
