//! A pod's data directory and its volumes on the host: emptyDir (removed
//! with the pod), hostPath, and secret and configMap volumes written as
//! files, rewritten when the object changes.
//!
//! Layout under `--root-dir`:
//! `pods/<uid>/volumes/{empty-dir,secret,configmap}/<volume>/`.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_api::Resource;
use berth_api::pb::core::{KeyToPath, Pod};

use crate::container::{ConfigError, HostVolume, Refs};

/// The pod's data directory.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// The secrets and configMaps the pod's volumes refer to.
pub fn volume_refs(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let (mut secrets, mut config_maps) = (Vec::new(), Vec::new());
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter()) {
        if let Some(s) = &v.secret {
            secrets.push(s.secret_name.clone());
        }
        if let Some(c) = &v.config_map {
            config_maps.push(c.name.clone());
        }
    }
    (secrets, config_maps)
}

fn io(what: &str, path: &Path, e: std::io::Error) -> ConfigError {
    ConfigError(format!("cannot {what} {}: {e}", path.display()))
}

/// Makes the pod's data directory and every volume; secret and configMap
/// files are (re)written from `refs`. Returns each volume's host path.
pub fn prepare(root: &Path, pod: &Pod, refs: &Refs) -> Result<HashMap<String, HostVolume>, ConfigError> {
    let dir = pod_dir(root, &pod.meta().uid);
    std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
    let mut out = HashMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter()) {
        let (path, read_only) = if v.empty_dir.is_some() {
            let p = dir.join("volumes/empty-dir").join(&v.name);
            std::fs::create_dir_all(&p).map_err(|e| io("create", &p, e))?;
            // Any user in the pod may write an emptyDir, as in Kubernetes.
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777));
            (p, false)
        } else if let Some(h) = &v.host_path {
            let p = PathBuf::from(&h.path);
            match h.r#type.as_str() {
                "DirectoryOrCreate" => std::fs::create_dir_all(&p).map_err(|e| io("create", &p, e))?,
                "FileOrCreate" if !p.exists() => {
                    if let Some(parent) = p.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
                    }
                    std::fs::write(&p, b"").map_err(|e| io("create", &p, e))?;
                }
                "Directory" if !p.is_dir() => return Err(ConfigError(format!("hostPath {} is not a directory", h.path))),
                "File" if !p.is_file() => return Err(ConfigError(format!("hostPath {} is not a file", h.path))),
                _ => {}
            }
            (p, false)
        } else if let Some(s) = &v.secret {
            let p = dir.join("volumes/secret").join(&v.name);
            let data = match refs.secrets.get(&s.secret_name).cloned().flatten() {
                Some(d) => d,
                None if s.optional.unwrap_or(false) => BTreeMap::new(),
                None => return Err(ConfigError(format!("secret \"{}\" not found", s.secret_name))),
            };
            write_files(&p, &data, &s.items, s.default_mode.unwrap_or(0o644))?;
            (p, true)
        } else if let Some(c) = &v.config_map {
            let p = dir.join("volumes/configmap").join(&v.name);
            let data = match refs.config_maps.get(&c.name).cloned().flatten() {
                Some(d) => d,
                None if c.optional.unwrap_or(false) => BTreeMap::new(),
                None => return Err(ConfigError(format!("configmap \"{}\" not found", c.name))),
            };
            write_files(&p, &data, &c.items, c.default_mode.unwrap_or(0o644))?;
            (p, true)
        } else {
            return Err(ConfigError(format!("volume {:?}: only emptyDir, hostPath, secret and configMap are supported", v.name)));
        };
        out.insert(v.name.clone(), HostVolume { path, read_only });
    }
    Ok(out)
}

/// Writes `data` as files in `dir` (all keys, or the `items` mapping), each
/// replaced atomically and only when its content changed; files of keys
/// that went away are removed.
fn write_files(dir: &Path, data: &BTreeMap<String, Vec<u8>>, items: &[KeyToPath], mode: i32) -> Result<(), ConfigError> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let wanted: Vec<(String, &Vec<u8>, i32)> = if items.is_empty() {
        data.iter().map(|(k, v)| (k.clone(), v, mode)).collect()
    } else {
        let mut w = Vec::new();
        for i in items {
            let v = data.get(&i.key).ok_or_else(|| ConfigError(format!("couldn't find key {} in the volume's object", i.key)))?;
            w.push((i.path.clone(), v, i.mode.unwrap_or(mode)));
        }
        w
    };
    for (rel, value, mode) in &wanted {
        if rel.starts_with('/') || rel.split('/').any(|p| p == "..") {
            return Err(ConfigError(format!("path {rel:?} must be relative without ..")));
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
        }
        let unchanged = std::fs::read(&path).is_ok_and(|cur| &cur == *value);
        if !unchanged {
            let tmp = path.with_file_name(format!(".{}.tmp", path.file_name().and_then(|f| f.to_str()).unwrap_or("f")));
            std::fs::write(&tmp, value).map_err(|e| io("write", &tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io("replace", &path, e))?;
        }
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode((*mode as u32) & 0o777));
    }
    // Keys that went away.
    let keep: Vec<PathBuf> = wanted.iter().map(|(rel, _, _)| dir.join(rel)).collect();
    remove_stale(dir, &keep);
    Ok(())
}

fn remove_stale(dir: &Path, keep: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if !keep.iter().any(|k| k.starts_with(&p)) {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                remove_stale(&p, keep);
            }
        } else if !keep.contains(&p) {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Removes the pod's data directory (emptyDirs, secrets and configMaps;
/// hostPaths are the host's and stay).
pub fn remove(root: &Path, uid: &str) -> std::io::Result<()> {
    let dir = pod_dir(root, uid);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::*;

    use super::*;

    fn pod_with(volumes: Vec<Volume>) -> Pod {
        Pod {
            metadata: Some(ObjectMeta { name: "p".into(), uid: "u1".into(), ..Default::default() }),
            spec: Some(PodSpec { volumes, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn should_write_secret_files_and_follow_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let pod = pod_with(vec![
            Volume {
                name: "creds".into(),
                secret: Some(SecretVolumeSource { secret_name: "s".into(), ..Default::default() }),
                ..Default::default()
            },
            Volume { name: "scratch".into(), empty_dir: Some(Default::default()), ..Default::default() },
        ]);
        let mut refs = Refs::default();
        refs.secrets.insert("s".into(), Some([("user".to_string(), b"admin".to_vec()), ("pw".to_string(), b"1".to_vec())].into()));
        let vols = prepare(tmp.path(), &pod, &refs).unwrap();
        let creds = &vols["creds"];
        assert!(creds.read_only);
        assert_eq!(std::fs::read(creds.path.join("user")).unwrap(), b"admin");
        assert!(vols["scratch"].path.is_dir());

        refs.secrets.insert("s".into(), Some([("user".to_string(), b"root".to_vec())].into()));
        prepare(tmp.path(), &pod, &refs).unwrap();
        assert_eq!(std::fs::read(creds.path.join("user")).unwrap(), b"root");
        assert!(!creds.path.join("pw").exists());

        remove(tmp.path(), "u1").unwrap();
        assert!(!pod_dir(tmp.path(), "u1").exists());
    }

    #[test]
    fn should_refuse_a_missing_config_map_unless_optional() {
        let tmp = tempfile::tempdir().unwrap();
        let mut source = ConfigMapVolumeSource { name: "cm".into(), ..Default::default() };
        let pod = pod_with(vec![Volume { name: "cfg".into(), config_map: Some(source.clone()), ..Default::default() }]);
        let err = prepare(tmp.path(), &pod, &Refs::default()).unwrap_err();
        assert_eq!(err.0, "configmap \"cm\" not found");
        source.optional = Some(true);
        let pod = pod_with(vec![Volume { name: "cfg".into(), config_map: Some(source), ..Default::default() }]);
        assert!(prepare(tmp.path(), &pod, &Refs::default()).is_ok());
    }
}
