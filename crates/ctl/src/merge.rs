//! The three-way merge behind `apply`, as kubectl does it: the manifest's
//! fields replace the live object's, fields the previous apply set and the
//! manifest no longer has are removed, and everything else (fields the
//! server or controllers filled in: defaults, clusterIP, nodeName, ...) is
//! kept. The previous apply is remembered in an annotation.

use serde_json::{Map, Value};

/// The annotation holding the manifest of the last apply (kubectl's own
/// key, so tools that read it keep working).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Merges `new` (the manifest) into `current` (the live object), removing
/// what `last` (the previous manifest) had and `new` has not.
pub fn three_way(current: &Value, last: Option<&Value>, new: &Value) -> Value {
    merge(Some(current), last, new)
}

fn merge(current: Option<&Value>, last: Option<&Value>, new: &Value) -> Value {
    match (current, new) {
        (Some(Value::Object(cur)), Value::Object(n)) => {
            let last = last.and_then(Value::as_object);
            let mut out = cur.clone();
            if let Some(last) = last {
                for k in last.keys() {
                    if !n.contains_key(k) {
                        out.remove(k);
                    }
                }
            }
            for (k, v) in n {
                out.insert(k.clone(), merge(cur.get(k), last.and_then(|l| l.get(k)), v));
            }
            Value::Object(out)
        }
        (Some(Value::Array(cur)), Value::Array(n)) => merge_lists(cur, last.and_then(Value::as_array), n),
        _ => new.clone(),
    }
}

/// Lists of objects with a key (containers by name, ports by number, ...)
/// merge item by item; other lists of the same length merge by position;
/// anything else is replaced.
fn merge_lists(cur: &[Value], last: Option<&Vec<Value>>, new: &[Value]) -> Value {
    if let Some(key) = merge_key(new) {
        let find = |list: &[Value], k: &Value| list.iter().find(|i| i.get(key) == Some(k)).cloned();
        let items = new
            .iter()
            .map(|item| {
                let k = &item[key];
                match find(cur, k) {
                    Some(c) => merge(Some(&c), last.and_then(|l| find(l, k)).as_ref(), item),
                    None => item.clone(),
                }
            })
            .collect();
        return Value::Array(items);
    }
    if cur.len() == new.len() {
        let items = new.iter().enumerate().map(|(i, item)| merge(cur.get(i), last.and_then(|l| l.get(i)), item)).collect();
        return Value::Array(items);
    }
    Value::Array(new.to_vec())
}

/// The field that identifies the items of a list of objects, if every item
/// has it and no two share it.
fn merge_key(items: &[Value]) -> Option<&'static str> {
    const KEYS: &[&str] = &["name", "containerPort", "port", "mountPath", "ip"];
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return None;
    }
    KEYS.iter().copied().find(|key| {
        let values: Vec<&Value> = items.iter().filter_map(|i| i.get(*key)).collect();
        values.len() == items.len() && (1..values.len()).all(|i| !values[..i].contains(&values[i]))
    })
}

/// The metadata of a Kubernetes-shaped JSON object, created if absent.
pub fn metadata_mut(v: &mut Value) -> &mut Map<String, Value> {
    let root = ensure_object(v);
    ensure_object(root.entry("metadata").or_insert_with(|| Value::Object(Map::new())))
}

/// The annotations of a Kubernetes-shaped JSON object, created if absent.
pub fn annotations_mut(v: &mut Value) -> &mut Map<String, Value> {
    ensure_object(metadata_mut(v).entry("annotations").or_insert_with(|| Value::Object(Map::new())))
}

fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// Removes an annotation, dropping the annotations map when it empties
/// (as the generated types print no empty map).
pub fn remove_annotation(v: &mut Value, key: &str) -> Option<Value> {
    let meta = v.get_mut("metadata")?.as_object_mut()?;
    let ann = meta.get_mut("annotations")?.as_object_mut()?;
    let old = ann.remove(key);
    if ann.is_empty() {
        meta.remove("annotations");
    }
    old
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn should_keep_fields_set_by_others() {
        let current = json!({"spec": {"nodeName": "n1", "restartPolicy": "Always", "containers": [{"name": "c", "image": "a", "imagePullPolicy": "IfNotPresent"}]}});
        let new = json!({"spec": {"containers": [{"name": "c", "image": "b"}]}});
        let got = three_way(&current, Some(&json!({"spec": {"containers": [{"name": "c", "image": "a"}]}})), &new);
        assert_eq!(
            got,
            json!({"spec": {"nodeName": "n1", "restartPolicy": "Always", "containers": [{"name": "c", "image": "b", "imagePullPolicy": "IfNotPresent"}]}})
        );
    }

    #[test]
    fn should_remove_what_the_last_apply_set_and_the_manifest_dropped() {
        let current = json!({"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}});
        let last = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let new = json!({"metadata": {"labels": {"a": "1"}}});
        // b was applied and is gone from the manifest; c was added by someone else
        assert_eq!(three_way(&current, Some(&last), &new), json!({"metadata": {"labels": {"a": "1", "c": "3"}}}));
    }

    #[test]
    fn should_merge_service_ports_by_port_and_keep_node_ports() {
        let current = json!({"ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 81, "nodePort": 30081}]});
        let new = json!({"ports": [{"port": 81}, {"port": 82}]});
        assert_eq!(three_way(&current, None, &new), json!({"ports": [{"port": 81, "nodePort": 30081}, {"port": 82}]}));
    }

    #[test]
    fn should_replace_lists_without_keys_when_their_length_changes() {
        let current = json!({"args": ["a", "b"]});
        assert_eq!(three_way(&current, None, &json!({"args": ["c"]})), json!({"args": ["c"]}));
        assert_eq!(three_way(&current, None, &json!({"args": ["c", "d"]})), json!({"args": ["c", "d"]}));
    }

    #[test]
    fn should_edit_annotations() {
        let mut v = json!({"kind": "Pod"});
        annotations_mut(&mut v).insert("k".into(), json!("v"));
        assert_eq!(v, json!({"kind": "Pod", "metadata": {"annotations": {"k": "v"}}}));
        assert_eq!(remove_annotation(&mut v, "k"), Some(json!("v")));
        assert_eq!(v, json!({"kind": "Pod", "metadata": {}}));
    }
}
