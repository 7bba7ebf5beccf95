//! Request bodies to objects, as kube-apiserver reads them: JSON (or YAML,
//! or the protobuf envelope kubectl's typed calls send), `null` as absent,
//! `apiVersion`, `kind` and `metadata.namespace` defaulted from the URL
//! and refused when they disagree with it, and unknown fields handled by
//! `fieldValidation` (Strict refuses, Warn drops them with a warning,
//! Ignore drops them silently).

use berth_api::manifest::{FieldDecodeError, decode_json};
use berth_api::{KindInfo, Object};
use http::HeaderMap;
use serde_json::Value;

use super::Query;
use super::status::Problem;

/// What to do with fields the kind does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    /// `fieldValidation` (absent: Warn, kube-apiserver's default).
    pub fn from_query(q: &Query) -> Result<FieldValidation, Problem> {
        match q.string("fieldValidation") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Strict" => Ok(FieldValidation::Strict),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(Problem::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// The media type of a request body, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Parses a body to JSON by its content type.
pub fn to_value(headers: &HeaderMap, body: &[u8]) -> Result<Value, Problem> {
    let ct = content_type(headers);
    match ct.as_str() {
        "application/vnd.kubernetes.protobuf" => berth_api::k8s_protobuf::decode(body).map_err(|e| match e {
            berth_api::k8s_protobuf::ProtobufError::Unsupported { .. } => Problem::unsupported_media_type(e.to_string()),
            other => Problem::bad_request(format!("the protobuf body could not be read: {other}")),
        }),
        "application/yaml" => serde_yaml::from_slice(body).map_err(|e| Problem::bad_request(format!("the body is not valid YAML: {e}"))),
        _ => serde_json::from_slice(body).map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}"))),
    }
}

/// Removes every `null` (Kubernetes decodes null as unset).
pub fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(prune_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// An object read from a request, and the warnings to send back.
#[derive(Debug)]
pub struct Decoded {
    pub object: Object,
    pub warnings: Vec<String>,
}

/// Checks a body's type and place against the URL and decodes it.
pub fn decode_object(
    info: &KindInfo,
    mut value: Value,
    url_namespace: Option<&str>,
    url_name: Option<&str>,
    validation: FieldValidation,
) -> Result<Decoded, Problem> {
    prune_nulls(&mut value);
    let map = value.as_object_mut().ok_or_else(|| Problem::bad_request(format!("the body must be a JSON object of kind {}", info.kind)))?;
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), info.api_version.into());
        }
        Some(v) if v == info.api_version => {}
        Some(v) => {
            return Err(Problem::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                info.api_version
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), info.kind.into());
        }
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(Problem::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({}) for {}",
                info.kind, info.plural
            )));
        }
    }
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Default::default()));
    let meta = meta.as_object_mut().ok_or_else(|| Problem::bad_request("metadata: must be an object"))?;
    if info.namespaced {
        match (meta.get("namespace").and_then(Value::as_str).filter(|n| !n.is_empty()), url_namespace) {
            (Some(body), Some(url)) if body != url => {
                return Err(Problem::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
            (None, Some(url)) => {
                meta.insert("namespace".into(), url.into());
            }
            _ => {}
        }
    } else {
        meta.remove("namespace");
    }
    if let Some(url) = url_name {
        match meta.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(body) if body != url => {
                return Err(Problem::bad_request(format!("the name of the object ({body}) does not match the name on the URL ({url})")));
            }
            None => {
                meta.insert("name".into(), url.into());
            }
            _ => {}
        }
    }
    decode_checked(info, value, validation)
}

/// Decodes, applying `fieldValidation` to unknown fields.
pub fn decode_checked(info: &KindInfo, mut value: Value, validation: FieldValidation) -> Result<Decoded, Problem> {
    let mut warnings = Vec::new();
    // Each pass finds one unknown field; a body has few.
    for _ in 0..256 {
        match decode_json(info, &value) {
            Ok(object) => return Ok(Decoded { object, warnings }),
            Err(e) if e.is_unknown_field() && validation != FieldValidation::Strict => {
                if !remove_path(&mut value, &e.path) {
                    return Err(cannot_handle(info, &e));
                }
                if validation == FieldValidation::Warn {
                    warnings.push(format!("unknown field {:?}", e.path));
                }
            }
            Err(e) if e.is_unknown_field() => {
                return Err(Problem::bad_request(format!(
                    "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: unknown field {:?}",
                    e.path,
                    kind = info.kind,
                    version = version_of(info)
                )));
            }
            Err(e) => return Err(cannot_handle(info, &e)),
        }
    }
    Err(Problem::bad_request("too many unknown fields"))
}

fn version_of(info: &KindInfo) -> &'static str {
    info.api_version.rsplit('/').next().unwrap_or(info.api_version)
}

fn cannot_handle(info: &KindInfo, e: &FieldDecodeError) -> Problem {
    Problem::bad_request(format!("{kind} in version {:?} cannot be handled as a {kind}: {e}", version_of(info), kind = info.kind))
}

/// Removes the field at a decoder path (`spec.containers[0].bogus`).
fn remove_path(v: &mut Value, path: &str) -> bool {
    let mut segments: Vec<Segment> = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            segments.push(Segment::Key(name.to_string()));
        }
        while let Some(end) = rest.find(']') {
            match rest[1..end].parse() {
                Ok(i) => segments.push(Segment::Index(i)),
                Err(_) => return false,
            }
            rest = &rest[end + 1..];
        }
    }
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut cur = v;
    for s in parents {
        let next = match s {
            Segment::Key(k) => cur.get_mut(k.as_str()),
            Segment::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last, cur) {
        (Segment::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        _ => false,
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_info() -> &'static KindInfo {
        berth_api::resource::find_kind("pods").expect("pods")
    }

    #[test]
    fn should_default_type_and_namespace_from_the_url_and_prune_nulls() {
        let body = json!({"metadata": {"name": "p", "creationTimestamp": null}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let d = decode_object(pod_info(), body, Some("team"), None, FieldValidation::Strict).expect("decodes");
        assert_eq!(d.object.namespace(), "team");
        assert_eq!(d.object.kind_name(), "Pod");
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn should_refuse_a_body_that_disagrees_with_the_url() {
        let wrong_ns = json!({"metadata": {"name": "p", "namespace": "a"}});
        let p = decode_object(pod_info(), wrong_ns, Some("b"), None, FieldValidation::Strict).expect_err("namespace");
        assert!(p.message.contains("does not match the namespace"), "{}", p.message);
        let wrong_kind = json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "p"}});
        let p = decode_object(pod_info(), wrong_kind, Some("b"), None, FieldValidation::Strict).expect_err("kind");
        assert!(p.message.contains("(Service)"), "{}", p.message);
        let wrong_name = json!({"metadata": {"name": "p"}});
        assert!(decode_object(pod_info(), wrong_name, Some("b"), Some("q"), FieldValidation::Strict).is_err());
    }

    #[test]
    fn should_apply_field_validation_to_unknown_fields() {
        let body = json!({"metadata": {"name": "p"}, "spec": {"bogus": 1, "containers": [{"name": "c", "image": "i", "typo": true}]}});
        let strict = decode_object(pod_info(), body.clone(), Some("d"), None, FieldValidation::Strict).expect_err("strict");
        assert_eq!(strict.code, http::StatusCode::BAD_REQUEST);
        assert!(strict.message.contains("strict decoding error: unknown field \"spec.bogus\""), "{}", strict.message);
        let warn = decode_object(pod_info(), body.clone(), Some("d"), None, FieldValidation::Warn).expect("warn");
        assert_eq!(warn.warnings, vec!["unknown field \"spec.bogus\"", "unknown field \"spec.containers[0].typo\""]);
        let ignore = decode_object(pod_info(), body, Some("d"), None, FieldValidation::Ignore).expect("ignore");
        assert!(ignore.warnings.is_empty());
    }

    #[test]
    fn should_name_the_field_of_a_type_error() {
        let body = json!({"metadata": {"name": "p"}, "spec": {"containers": "not a list"}});
        let p = decode_object(pod_info(), body, Some("d"), None, FieldValidation::Warn).expect_err("type");
        assert!(p.message.contains("spec.containers"), "{}", p.message);
    }
}
