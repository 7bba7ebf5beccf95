//! A pod's volumes: unique DNS-1123 label names, exactly one source each and
//! the fields of each source; and the path and file-mode rules that volume
//! items and mounts share.

use std::collections::BTreeSet;

use crate::names;
use crate::pb::core::{KeyToPath, Volume};
use crate::validation::{Check, at, idx};

/// Volumes: unique DNS-1123 label names and exactly one source each.
/// Returns the names.
pub(super) fn volumes(c: &mut Check, vs: &[Volume], p: &str) -> BTreeSet<String> {
    let mut names_seen = BTreeSet::new();
    for (i, v) in vs.iter().enumerate() {
        let vp = idx(p, i);
        let np = at(&vp, "name");
        if v.name.is_empty() {
            c.required(&np, "");
        } else {
            c.invalid_all(&np, &v.name, names::dns1123_label(&v.name));
            if !names_seen.insert(v.name.clone()) {
                c.duplicate(&np, &v.name);
            }
        }
        let sources: Vec<&str> = [
            ("hostPath", v.host_path.is_some()),
            ("emptyDir", v.empty_dir.is_some()),
            ("secret", v.secret.is_some()),
            ("configMap", v.config_map.is_some()),
            ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect();
        match sources.as_slice() {
            [] => c.required(&vp, "must specify a volume type"),
            [_] => {}
            [_, second, ..] => c.forbidden(&at(&vp, second), "may not specify more than 1 volume type"),
        }
        if let Some(h) = &v.host_path {
            let hp = at(&vp, "hostPath");
            let pp = at(&hp, "path");
            if h.path.is_empty() {
                c.required(&pp, "");
            } else {
                if !h.path.starts_with('/') {
                    c.invalid(&pp, &h.path, "must be an absolute path");
                }
                if h.path.split('/').any(|s| s == "..") {
                    c.invalid(&pp, &h.path, "must not contain '..'");
                }
            }
            c.one_of(
                &at(&hp, "type"),
                &h.r#type,
                &["DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"],
                false,
            );
        }
        if let Some(e) = &v.empty_dir {
            let ep = at(&vp, "emptyDir");
            if !(e.medium.is_empty() || e.medium == "Memory" || e.medium.starts_with("HugePages")) {
                c.not_supported(&at(&ep, "medium"), &e.medium, &["", "Memory", "HugePages"]);
            }
            if !e.size_limit.is_empty() {
                c.non_negative_quantity(&at(&ep, "sizeLimit"), &e.size_limit);
            }
        }
        if let Some(s) = &v.secret {
            let sp = at(&vp, "secret");
            if s.secret_name.is_empty() {
                c.required(&at(&sp, "secretName"), "");
            }
            file_mode(c, &at(&sp, "defaultMode"), s.default_mode);
            key_to_paths(c, &s.items, &at(&sp, "items"));
        }
        if let Some(m) = &v.config_map {
            let mp = at(&vp, "configMap");
            if m.name.is_empty() {
                c.required(&at(&mp, "name"), "");
            }
            file_mode(c, &at(&mp, "defaultMode"), m.default_mode);
            key_to_paths(c, &m.items, &at(&mp, "items"));
        }
        if let Some(pvc) = &v.persistent_volume_claim
            && pvc.claim_name.is_empty()
        {
            c.required(&at(&at(&vp, "persistentVolumeClaim"), "claimName"), "");
        }
    }
    names_seen
}

fn key_to_paths(c: &mut Check, items: &[KeyToPath], p: &str) {
    for (i, it) in items.iter().enumerate() {
        let ip = idx(p, i);
        if it.key.is_empty() {
            c.required(&at(&ip, "key"), "");
        }
        if it.path.is_empty() {
            c.required(&at(&ip, "path"), "");
        } else {
            local_descending_path(c, &at(&ip, "path"), &it.path);
        }
        file_mode(c, &at(&ip, "mode"), it.mode);
    }
}

/// A path that stays below a directory: relative, with no `..` element.
pub(super) fn local_descending_path(c: &mut Check, field: &str, value: &str) {
    if value.starts_with('/') {
        c.invalid(field, value, "must be a relative path");
    }
    if value.split('/').any(|p| p == "..") {
        c.invalid(field, value, "must not contain '..'");
    }
}

/// A file mode: 0 to 0777.
fn file_mode(c: &mut Check, field: &str, mode: Option<i32>) {
    if let Some(m) = mode
        && !(0..=0o777).contains(&m)
    {
        c.invalid(field, m, "must be a number between 0 and 0777 (octal), both inclusive");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::core::{
        ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, PersistentVolumeClaimVolumeSource, SecretVolumeSource,
    };
    use crate::validation::test_support::*;

    #[test]
    fn should_require_unique_volume_names_with_one_source_each() {
        let o = pod_with(|s| s.volumes = vec![empty_dir("data"), empty_dir("data")]);
        assert_eq!(assert_error_at(&o, "spec.volumes[1].name"), "spec.volumes[1].name: Duplicate value: \"data\"");
        assert_error_at(&pod_with(|s| s.volumes = vec![empty_dir("Data")]), "spec.volumes[0].name");
        let none = pod_with(|s| s.volumes = vec![Volume { name: "data".into(), ..Default::default() }]);
        assert_eq!(assert_error_at(&none, "spec.volumes[0]"), "spec.volumes[0]: Required value: must specify a volume type");
        let two = pod_with(|s| {
            s.volumes =
                vec![Volume { host_path: Some(HostPathVolumeSource { path: "/tmp".into(), ..Default::default() }), ..empty_dir("data") }]
        });
        assert_eq!(
            assert_error_at(&two, "spec.volumes[0].emptyDir"),
            "spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"
        );
    }

    #[test]
    fn should_check_volume_sources() {
        let vol = |v: Volume| pod_with(|s| s.volumes = vec![v]);
        let base = Volume { name: "v".into(), ..Default::default() };
        let host =
            |p: &str, t: &str| vol(Volume { host_path: Some(HostPathVolumeSource { path: p.into(), r#type: t.into() }), ..base.clone() });
        assert_error_at(&host("", ""), "spec.volumes[0].hostPath.path");
        assert!(assert_error_at(&host("var/log", ""), "spec.volumes[0].hostPath.path").contains("must be an absolute path"));
        assert_error_at(&host("/var/../etc", ""), "spec.volumes[0].hostPath.path");
        assert_error_at(&host("/var", "Folder"), "spec.volumes[0].hostPath.type");
        assert_error_at(&vol(Volume { secret: Some(SecretVolumeSource::default()), ..base.clone() }), "spec.volumes[0].secret.secretName");
        assert_error_at(
            &vol(Volume {
                secret: Some(SecretVolumeSource { secret_name: "s".into(), default_mode: Some(0o1000), ..Default::default() }),
                ..base.clone()
            }),
            "spec.volumes[0].secret.defaultMode",
        );
        assert_error_at(
            &vol(Volume { config_map: Some(ConfigMapVolumeSource::default()), ..base.clone() }),
            "spec.volumes[0].configMap.name",
        );
        let item = |p: &str| {
            vol(Volume {
                config_map: Some(ConfigMapVolumeSource {
                    name: "c".into(),
                    items: vec![KeyToPath { key: "k".into(), path: p.into(), mode: None }],
                    ..Default::default()
                }),
                ..base.clone()
            })
        };
        assert_error_at(&item("/abs"), "spec.volumes[0].configMap.items[0].path");
        assert_error_at(&item("../up"), "spec.volumes[0].configMap.items[0].path");
        assert_error_at(
            &vol(Volume { persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource::default()), ..base.clone() }),
            "spec.volumes[0].persistentVolumeClaim.claimName",
        );
        assert_error_at(
            &vol(Volume { empty_dir: Some(EmptyDirVolumeSource { medium: String::new(), size_limit: "-1Gi".into() }), ..base.clone() }),
            "spec.volumes[0].emptyDir.sizeLimit",
        );
        assert_error_at(
            &vol(Volume { empty_dir: Some(EmptyDirVolumeSource { medium: "Disk".into(), size_limit: String::new() }), ..base }),
            "spec.volumes[0].emptyDir.medium",
        );
    }
}
