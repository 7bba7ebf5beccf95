//! Manifests: multi-document YAML or JSON to [`Object`]s and back, with
//! errors that name the document, the field and the rule.

use crate::pb::api::Object;

/// The environment variable naming the shared conformance corpus: real
/// Kubernetes manifests kept outside this repository (`manifests/`,
/// `manifests/refused/`, `apps/`). The tests that read it are `#[ignore]`d,
/// so a clone alone passes `cargo test` and reports them as not run;
/// `.ci/run` sets it and runs them with `-- --ignored`.
pub const CONFORMANCE_DIR_ENV: &str = "BERTH_CONFORMANCE_DIR";

/// The conformance corpus' folder, from [`CONFORMANCE_DIR_ENV`]; an error
/// that says what to set when it is unset or not a folder.
pub fn conformance_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::var_os(CONFORMANCE_DIR_ENV).ok_or_else(|| {
        format!("{CONFORMANCE_DIR_ENV} is not set: point it at the shared conformance folder (.ci/run uses ../shared/conformance)")
    })?;
    let dir = std::path::PathBuf::from(dir);
    if !dir.join("manifests").is_dir() {
        return Err(format!("{CONFORMANCE_DIR_ENV}={} holds no manifests/ folder", dir.display()));
    }
    Ok(dir)
}
use crate::resource::{KINDS, KindInfo, find_kind};

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not YAML or JSON.
    #[error("document {doc}: malformed YAML/JSON: {message}")]
    Syntax { doc: usize, message: String },
    /// The document is not a mapping with apiVersion and kind.
    #[error("document {doc}: {message}")]
    Shape { doc: usize, message: String },
    /// The kind is not one Berth serves.
    #[error("document {doc}: kind {kind:?} (apiVersion {api_version:?}) is not served by Berth; served kinds: {served}")]
    UnknownKind { doc: usize, kind: String, api_version: String, served: String },
    /// The apiVersion does not match the kind.
    #[error("document {doc}: {kind} is served as apiVersion {expected:?}, not {got:?}")]
    WrongApiVersion { doc: usize, kind: String, expected: String, got: String },
    /// A field has the wrong type or is unknown.
    #[error("document {doc} ({kind} {name:?}): {path}: {message}")]
    Field { doc: usize, kind: String, name: String, path: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses every document of a YAML or JSON text (`---` separated; a `v1
/// List` is expanded into its items). Empty documents are skipped.
pub fn parse(text: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        let value: serde_yaml::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| Error::Syntax { doc: n, message: e.to_string() })?;
        if value.is_null() {
            continue;
        }
        parse_value(n, value, &mut out)?;
    }
    Ok(out)
}

/// Parses one object of a known shape from a JSON value (used by clients
/// that already hold JSON).
pub fn from_json(value: serde_json::Value) -> Result<Object> {
    let yaml = serde_yaml::to_value(value).map_err(|e| Error::Syntax { doc: 1, message: e.to_string() })?;
    let mut out = Vec::new();
    parse_value(1, yaml, &mut out)?;
    out.pop().ok_or(Error::Shape { doc: 1, message: "empty document".into() })
}

/// Why a JSON value is not an object of its kind: the field path
/// (`spec.containers[0].image`, `(root)`) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldDecodeError {
    pub path: String,
    pub message: String,
}

impl FieldDecodeError {
    /// Whether the field is one the kind does not have (serde's `deny_unknown_fields`).
    pub fn is_unknown_field(&self) -> bool {
        self.message.starts_with("unknown field")
    }
}

/// Decodes one object of kind `info` from Kubernetes-shaped JSON (without
/// going through YAML, and without consuming the value, so that a caller can
/// retry after removing a field), naming the field that is wrong.
pub fn decode_json(info: &KindInfo, value: &serde_json::Value) -> std::result::Result<Object, FieldDecodeError> {
    Object::from_value_of(info, value).map_err(|e| FieldDecodeError {
        path: match e.path().to_string() {
            p if p == "." => "(root)".to_string(),
            p => p,
        },
        message: e.inner().to_string(),
    })
}

fn parse_value(doc: usize, value: serde_yaml::Value, out: &mut Vec<Object>) -> Result<()> {
    let map = value.as_mapping().ok_or_else(|| Error::Shape { doc, message: "expected a mapping with apiVersion and kind".into() })?;
    let field = |k: &str| -> Result<String> {
        match map.get(k) {
            Some(serde_yaml::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(serde_yaml::Value::String(_)) | None => Err(Error::Shape { doc, message: format!("{k}: required value") }),
            Some(_) => Err(Error::Shape { doc, message: format!("{k}: must be a string") }),
        }
    };
    let kind = field("kind")?;
    let api_version = field("apiVersion")?;
    if kind == "List" || (kind.ends_with("List") && map.contains_key("items")) {
        let items = map.get("items").and_then(|v| v.as_sequence()).cloned().unwrap_or_default();
        for item in items {
            parse_value(doc, item, out)?;
        }
        return Ok(());
    }
    let info = lookup(doc, &kind, &api_version)?;
    let name = map.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).unwrap_or("").to_string();
    let object = Object::from_value_of(info, value).map_err(|e| Error::Field {
        doc,
        kind: kind.clone(),
        name,
        path: match e.path().to_string() {
            p if p == "." => "(root)".to_string(),
            p => p,
        },
        message: e.inner().to_string(),
    })?;
    out.push(object);
    Ok(())
}

/// Finds the kind a manifest names, checking its apiVersion. Only the exact
/// Kind name is accepted in a manifest (as Kubernetes does).
fn lookup(doc: usize, kind: &str, api_version: &str) -> Result<&'static KindInfo> {
    let info = KINDS.iter().find(|k| k.kind == kind.trim()).ok_or_else(|| Error::UnknownKind {
        doc,
        kind: kind.to_string(),
        api_version: api_version.to_string(),
        served: KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", "),
    })?;
    if info.api_version != api_version {
        return Err(Error::WrongApiVersion {
            doc,
            kind: kind.to_string(),
            expected: info.api_version.to_string(),
            got: api_version.to_string(),
        });
    }
    Ok(info)
}

/// A list of objects as Kubernetes prints it:
/// `{"apiVersion": "v1", "kind": "<Kind>List", "metadata": {...}, "items": [...]}`.
pub fn list_to_json(kind: &str, items: &[Object], resource_version: u64) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": format!("{kind}List"),
        "metadata": { "resourceVersion": resource_version.to_string() },
        "items": items.iter().map(Object::to_json_value).collect::<Vec<_>>(),
    })
}

/// The fields a manifest set that an object does not give back with the
/// same value, as `path: reason` lines (empty: everything round-tripped).
/// Numbers written where Kubernetes keeps strings (quantities) compare as
/// text; fields set to null or left empty count as unset.
pub fn missing_fields(want: &serde_json::Value, got: &serde_json::Value) -> Vec<String> {
    let mut errs = Vec::new();
    missing_into(want, got, "", &mut errs);
    errs
}

fn missing_into(want: &serde_json::Value, got: &serde_json::Value, path: &str, errs: &mut Vec<String>) {
    use serde_json::Value::*;
    match (want, got) {
        (Object(w), Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => missing_into(wv, gv, &format!("{path}.{k}"), errs),
                    None if wv.is_null() || wv == &serde_json::json!({}) || wv == &serde_json::json!([]) => {}
                    None => errs.push(format!("{path}.{k}: missing")),
                }
            }
        }
        (Array(w), Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                missing_into(wv, gv, &format!("{path}[{i}]"), errs);
            }
        }
        (Number(w), String(g)) if &w.to_string() == g => {}
        (w, g) if w == g => {}
        (w, g) => errs.push(format!("{path}: want {w}, got {g}")),
    }
}

/// Resolves a kind given on a command line (`po`, `pods`, `Pod`).
pub fn kind_from_cli(name: &str) -> Option<&'static KindInfo> {
    find_kind(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::core::Pod;

    #[test]
    fn should_parse_multi_document_yaml() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources:\n      limits:\n        cpu: 1\n        memory: 0.5\n";
        let objs = parse(text).expect("parses");
        assert_eq!(objs.len(), 2);
        let pod: Pod = objs[1].clone().into_resource().expect("a pod");
        let c = &pod.spec.as_ref().expect("spec").containers[0];
        assert_eq!(c.resources.as_ref().expect("resources").limits.get("cpu").map(String::as_str), Some("1"));
        assert_eq!(pod.name(), "p");
    }

    #[test]
    fn should_name_the_unknown_field() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    imagee: busybox\n";
        let err = parse(text).expect_err("refused").to_string();
        assert!(err.contains("spec.containers[0]"), "{err}");
        assert!(err.contains("imagee"), "{err}");
    }

    #[test]
    fn should_refuse_unserved_kinds() {
        let err = parse("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n").expect_err("refused").to_string();
        assert!(err.contains("Deployment") && err.contains("not served"), "{err}");
    }

    #[test]
    fn should_refuse_wrong_api_version() {
        let err = parse("apiVersion: v2\nkind: Pod\nmetadata:\n  name: x\n").expect_err("refused").to_string();
        assert!(err.contains("v2"), "{err}");
    }

    #[test]
    fn should_round_trip_int_or_string_and_acronyms() {
        let text = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"clusterIP":"None","ports":[{"port":80,"targetPort":8080},{"port":81,"targetPort":"http"}]}}"#;
        let objs = parse(text).expect("parses");
        let v = objs[0].to_json_value();
        assert_eq!(v["spec"]["clusterIP"], "None");
        assert_eq!(v["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(v["spec"]["ports"][1]["targetPort"], "http");
        assert_eq!(v["kind"], "Service");
        assert_eq!(v["apiVersion"], "v1");
    }

    #[test]
    fn should_decode_secret_data_as_base64() {
        let objs = parse("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: aGVsbG8=\n").expect("parses");
        assert_eq!(objs[0].to_json_value()["data"]["k"], "aGVsbG8=");
        assert!(parse("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: '{{x}}'\n").is_err());
    }

    #[test]
    fn should_report_malformed_yaml() {
        let err = parse("apiVersion: v1\nkind: Pod\n  bad: [").expect_err("refused").to_string();
        assert!(err.contains("malformed"), "{err}");
    }
}
