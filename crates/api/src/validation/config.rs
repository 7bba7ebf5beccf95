//! Secrets and ConfigMaps: key syntax, the size limit on their data, the keys
//! each Secret type requires, and what an update may change (not a Secret's
//! type, nor the data of an immutable one).

use super::meta::{NameRule, object_meta};
use super::{Check, Rendered, key};
use crate::names;
use crate::pb::core::{ConfigMap, Secret};

/// The most bytes of values a Secret or ConfigMap may hold.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

pub(super) fn secret(c: &mut Check, s: &Secret) {
    object_meta(c, s.metadata.as_ref(), true, NameRule::Subdomain);
    let mut size = 0;
    for (k, v) in &s.data {
        c.invalid_all(&key("data", k), k, names::config_map_key(k));
        size += v.len();
    }
    for (k, v) in &s.string_data {
        c.invalid_all(&key("stringData", k), k, names::config_map_key(k));
        if !s.data.contains_key(k) {
            size += v.len();
        }
    }
    if size > MAX_DATA_SIZE {
        c.too_long("data", MAX_DATA_SIZE);
    }
    let has = |k: &str| s.data.contains_key(k) || s.string_data.contains_key(k);
    match s.r#type.as_str() {
        "" => c.required("type", ""),
        "kubernetes.io/service-account-token" => {
            let annotated =
                s.metadata.as_ref().and_then(|m| m.annotations.get("kubernetes.io/service-account.name")).is_some_and(|n| !n.is_empty());
            if !annotated {
                c.required("metadata.annotations[kubernetes.io/service-account.name]", "");
            }
        }
        "kubernetes.io/dockercfg" => json_key(c, s, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" => json_key(c, s, ".dockerconfigjson"),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            c.required("data[username]", "");
            c.required("data[password]", "");
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => c.required("data[ssh-privatekey]", ""),
        "kubernetes.io/tls" => {
            for k in ["tls.key", "tls.crt"] {
                if !has(k) {
                    c.required(&key("data", k), "");
                }
            }
        }
        _ => {}
    }
}

/// A Secret type that requires a key holding JSON.
fn json_key(c: &mut Check, s: &Secret, k: &str) {
    let p = key("data", k);
    let value = s.data.get(k).cloned().or_else(|| s.string_data.get(k).map(|v| v.clone().into_bytes()));
    match value {
        None => c.required(&p, ""),
        Some(v) => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&v) {
                c.invalid(&p, Rendered("<secret contents redacted>".into()), e.to_string());
            }
        }
    }
}

pub(super) fn config_map(c: &mut Check, m: &ConfigMap) {
    object_meta(c, m.metadata.as_ref(), true, NameRule::Subdomain);
    let mut size = 0;
    for (k, v) in &m.data {
        c.invalid_all(&key("data", k), k, names::config_map_key(k));
        size += v.len();
    }
    for (k, v) in &m.binary_data {
        let p = key("binaryData", k);
        c.invalid_all(&p, k, names::config_map_key(k));
        if m.data.contains_key(k) {
            c.invalid(&p, k, "duplicate of key present in data");
        }
        size += v.len();
    }
    if size > MAX_DATA_SIZE {
        c.too_long("data", MAX_DATA_SIZE);
    }
}

/// What a Secret's update may change: not its type, nor the data of an
/// immutable one.
pub(super) fn secret_update(c: &mut Check, old: &Secret, new: &Secret) {
    if old.r#type != new.r#type {
        c.invalid("type", &new.r#type, "field is immutable");
    }
    immutable_data(c, old.immutable, new.immutable, &[("data", old.data != new.data)]);
}

/// What a ConfigMap's update may change: not the data of an immutable one.
pub(super) fn config_map_update(c: &mut Check, old: &ConfigMap, new: &ConfigMap) {
    let changed = [("data", old.data != new.data), ("binaryData", old.binary_data != new.binary_data)];
    immutable_data(c, old.immutable, new.immutable, &changed);
}

/// Secrets and ConfigMaps marked immutable keep their data and the mark.
fn immutable_data(c: &mut Check, old: Option<bool>, new: Option<bool>, changed: &[(&str, bool)]) {
    if old != Some(true) {
        return;
    }
    if new != Some(true) {
        c.forbidden("immutable", "field is immutable when `immutable` is set");
    }
    for (field, differs) in changed {
        if *differs {
            c.forbidden(field, "field is immutable when `immutable` is set");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::api::Object;
    use crate::validation::test_support::*;
    use crate::validation::validate_update;

    fn secret_with(f: impl FnOnce(&mut Secret)) -> Object {
        let mut s = Secret { metadata: meta("creds"), r#type: "Opaque".into(), ..Default::default() };
        s.data.insert("password".into(), b"hunter2".to_vec());
        f(&mut s);
        s.into_object()
    }

    #[test]
    fn should_check_secret_keys_size_and_type() {
        assert_valid(&secret_with(|_| {}));
        let bad = secret_with(|s| {
            s.data.insert("bad/key".into(), vec![]);
        });
        assert!(assert_error_at(&bad, "data[bad/key]").starts_with("data[bad/key]: Invalid value: \"bad/key\": a valid config key"));
        let big = secret_with(|s| {
            s.data.insert("big".into(), vec![0; MAX_DATA_SIZE]);
        });
        assert_eq!(assert_error_at(&big, "data"), "data: Too long: must have at most 1048576 bytes");
        assert_eq!(assert_error_at(&secret_with(|s| s.r#type.clear()), "type"), "type: Required value");
        let tls = secret_with(|s| s.r#type = "kubernetes.io/tls".into());
        let errs = errors(&tls);
        error_at(&errs, "data[tls.key]");
        error_at(&errs, "data[tls.crt]");
        let docker = secret_with(|s| {
            s.r#type = "kubernetes.io/dockerconfigjson".into();
            s.data.insert(".dockerconfigjson".into(), b"{not json".to_vec());
        });
        assert_error_at(&docker, "data[.dockerconfigjson]");
    }

    #[test]
    fn should_check_config_map_keys_and_size() {
        assert_valid(&cm_with(|m| {
            m.binary_data.insert("logo.png".into(), vec![1, 2, 3]);
        }));
        assert_error_at(&cm_with(|m| m.data = map(&[("..hidden", "x")])), "data[..hidden]");
        assert_error_at(
            &cm_with(|m| {
                m.binary_data.insert("bad key".into(), vec![]);
            }),
            "binaryData[bad key]",
        );
        let dup = cm_with(|m| {
            m.binary_data.insert("app.properties".into(), vec![]);
        });
        assert!(assert_error_at(&dup, "binaryData[app.properties]").contains("duplicate of key present in data"));
        let big = cm_with(|m| {
            m.data.insert("a".into(), "x".repeat(MAX_DATA_SIZE / 2));
            m.binary_data.insert("b".into(), vec![0; MAX_DATA_SIZE / 2 + 1]);
        });
        assert_error_at(&big, "data");
    }

    #[test]
    fn should_keep_immutable_secrets_and_config_maps_unchanged() {
        let old = secret_with(|s| s.immutable = Some(true));
        let changed = secret_with(|s| {
            s.immutable = Some(true);
            s.data.insert("password".into(), b"new".to_vec());
        });
        assert_eq!(error_at(&update_errors(&old, &changed), "data"), "data: Forbidden: field is immutable when `immutable` is set");
        let unset = secret_with(|s| s.immutable = Some(false));
        error_at(&update_errors(&old, &unset), "immutable");
        let retyped = secret_with(|s| s.r#type = "kubernetes.io/basic-auth".into());
        error_at(&update_errors(&secret_with(|_| {}), &retyped), "type");
        let mutable = secret_with(|s| {
            s.data.insert("password".into(), b"new".to_vec());
        });
        assert!(validate_update(&secret_with(|_| {}), &mutable).is_ok());

        let old = cm_with(|m| m.immutable = Some(true));
        let changed = cm_with(|m| {
            m.immutable = Some(true);
            m.binary_data.insert("b".into(), vec![1]);
        });
        error_at(&update_errors(&old, &changed), "binaryData");
        assert!(validate_update(&old, &old.clone()).is_ok());
    }
}
