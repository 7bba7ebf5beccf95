//! The audit log (`--audit-log-path`): one JSON line per request — time,
//! user, groups, source IP, verb, kind, namespace, name, response code — at
//! the Metadata level for reads and the Request level for writes (the
//! object as sent, except a Secret's data, which is never written). The file
//! rotates by size, keeping `--audit-log-maxbackup` old files.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_api::Object;
use berth_api::pb::api::object::Kind;
use tracing::warn;

use crate::user::UserInfo;

/// Where and how much to audit.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// Rotate once the file reaches this size.
    pub max_size_bytes: u64,
    /// Rotated files kept (`audit.log.1` is the newest).
    pub max_backups: usize,
}

/// One audited request.
pub struct Record<'a> {
    pub user: Option<&'a UserInfo>,
    pub source: Option<IpAddr>,
    pub verb: &'a str,
    pub kind: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub code: tonic::Code,
    /// The object a write sent (Request level).
    pub object: Option<&'a Object>,
}

/// The audit log writer.
pub struct AuditLog {
    config: AuditConfig,
    file: Mutex<Option<(File, u64)>>,
}

impl AuditLog {
    /// Opens (appending) or creates the log.
    pub fn open(config: AuditConfig) -> std::io::Result<AuditLog> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(&config.path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(AuditLog { config, file: Mutex::new(Some((file, size))) })
    }

    /// Writes one request's line; failures are logged, never fatal to the request.
    pub fn record(&self, r: &Record<'_>) {
        let mut line = entry(r).to_string();
        line.push('\n');
        let Ok(mut guard) = self.file.lock() else { return };
        if let Err(e) = self.write(&mut guard, line.as_bytes()) {
            warn!(path = %self.config.path.display(), cause = %e, "cannot write the audit log");
        }
    }

    fn write(&self, slot: &mut Option<(File, u64)>, line: &[u8]) -> std::io::Result<()> {
        let needs_rotation = slot.as_ref().is_some_and(|(_, size)| *size > 0 && size + line.len() as u64 > self.config.max_size_bytes);
        if needs_rotation || slot.is_none() {
            *slot = None;
            if needs_rotation {
                rotate(&self.config.path, self.config.max_backups)?;
            }
            let f = open_append(&self.config.path)?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            *slot = Some((f, size));
        }
        if let Some((f, size)) = slot.as_mut() {
            f.write_all(line)?;
            *size += line.len() as u64;
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `audit.log` → `audit.log.1` → `audit.log.2` …, dropping the oldest.
fn rotate(path: &Path, max_backups: usize) -> std::io::Result<()> {
    let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
    if max_backups == 0 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(numbered(max_backups));
    for n in (1..max_backups).rev() {
        if numbered(n).exists() {
            std::fs::rename(numbered(n), numbered(n + 1))?;
        }
    }
    std::fs::rename(path, numbered(1))
}

fn is_write(verb: &str) -> bool {
    !matches!(verb, "get" | "list" | "watch")
}

/// The HTTP status Kubernetes would answer with, for readers of the log.
fn http_code(code: tonic::Code) -> u16 {
    use tonic::Code::*;
    match code {
        Ok => 200,
        NotFound => 404,
        AlreadyExists | Aborted => 409,
        InvalidArgument => 422,
        OutOfRange => 410,
        Unauthenticated => 401,
        PermissionDenied => 403,
        Unavailable => 503,
        _ => 500,
    }
}

/// The object as audited: a Secret's data never leaves the server.
fn redacted(o: &Object) -> serde_json::Value {
    let mut o = o.clone();
    if let Some(Kind::Secret(s)) = &mut o.kind {
        s.data.clear();
        s.string_data.clear();
    }
    if let Some(m) = o.metadata_mut() {
        // The last-applied annotation repeats the object, secrets included.
        m.annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    o.to_json_value()
}

fn entry(r: &Record<'_>) -> serde_json::Value {
    let write = is_write(r.verb);
    let mut v = serde_json::json!({
        "time": berth_api::time::now_rfc3339_micros(),
        "level": if write { "Request" } else { "Metadata" },
        "user": r.user.map(|u| u.name.as_str()).unwrap_or(""),
        "groups": r.user.map(|u| u.groups.clone()).unwrap_or_default(),
        "sourceIP": r.source.map(|ip| ip.to_string()).unwrap_or_default(),
        "verb": r.verb,
        "kind": r.kind,
        "namespace": r.namespace,
        "name": r.name,
        "code": http_code(r.code),
        "grpcCode": format!("{:?}", r.code),
    });
    if !r.subresource.is_empty() {
        v["subresource"] = r.subresource.into();
    }
    if write && let Some(o) = r.object {
        v["requestObject"] = redacted(o);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::Resource;

    #[test]
    fn should_rotate_by_size_and_never_write_secret_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(AuditConfig { path: path.clone(), max_size_bytes: 600, max_backups: 2 }).expect("open");
        let mut s = berth_api::pb::core::Secret::default();
        s.metadata_mut().name = "db".into();
        s.data.insert("password".into(), b"hunter2-very-secret".to_vec());
        let o = s.into_object();
        for _ in 0..10 {
            log.record(&Record {
                user: Some(&UserInfo::new("alice", &["dev"])),
                source: Some("127.0.0.1".parse().expect("ip")),
                verb: "create",
                kind: "Secret",
                subresource: "",
                namespace: "default",
                name: "db",
                code: tonic::Code::Ok,
                object: Some(&o),
            });
        }
        let mut all = String::new();
        for p in [path.clone(), dir.path().join("audit.log.1"), dir.path().join("audit.log.2")] {
            all.push_str(&std::fs::read_to_string(&p).expect("rotated file exists"));
        }
        assert!(!dir.path().join("audit.log.3").exists());
        assert!(!all.contains("hunter2"));
        let first: serde_json::Value = serde_json::from_str(all.lines().next().expect("a line")).expect("json");
        assert_eq!(first["user"], "alice");
        assert_eq!(first["level"], "Request");
        assert_eq!(first["code"], 200);
    }
}
