//! Kubernetes' strategic merge patch, applied on the server: maps merge key
//! by key, `null` deletes, lists named in [`super::meta`] merge item by item
//! (by their merge key) or as sets, every other list is replaced; with the
//! directives `$patch` (`replace`, `delete`, `merge`), `$retainKeys`,
//! `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`, and the
//! item order kubectl expects (apimachinery's strategicpatch at v0.32).

use serde_json::{Map, Value};

use super::PatchError;
use super::schema::{FieldSchema, Schema};

/// `$patch`: what to do with the map or list item it is in.
const DIRECTIVE: &str = "$patch";
/// `$retainKeys`: the only keys a map keeps.
const RETAIN_KEYS: &str = "$retainKeys";
/// `$setElementOrder/<list>`: the order of the list's items after the merge.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// `$deleteFromPrimitiveList/<list>`: values to remove from a merged list of scalars.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

type Object = Map<String, Value>;

/// Applies `patch` to `current` (an object whose JSON is message `message`).
pub(crate) fn apply(schema: &dyn Schema, message: Option<&str>, current: &Value, patch: Object) -> Result<Value, PatchError> {
    let original = match current {
        Value::Object(o) => o.clone(),
        _ => Object::new(),
    };
    Merger { schema }.merge_map(original, patch, message).map(Value::Object)
}

fn bad(message: impl Into<String>) -> PatchError {
    PatchError::BadRequest(message.into())
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    bad(format!("map: {item} does not contain declared merge key: {key}"))
}

/// Equality as Go's decoded JSON has it: all numbers are float64 (so a
/// merge key `80` matches `80.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64().is_some_and(|x| y.as_f64() == Some(x)),
        _ => a == b,
    }
}

/// What identifies a list item: its merge key's value in a keyed list, the
/// item itself in a list of scalars; None for an item without its key.
fn identity<'v>(item: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match merge_key {
        Some(key) => item.get(key),
        None => Some(item),
    }
}

/// Where `item` is in `list`, matched by identity.
fn index_in(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    let wanted = identity(item, merge_key)?;
    list.iter().position(|other| identity(other, merge_key).is_some_and(|v| same(v, wanted)))
}

/// The JSON type of a list's items, as the merge tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemType {
    Null,
    Bool,
    Number,
    String,
    List,
    Object,
}

fn item_type(v: &Value) -> ItemType {
    match v {
        Value::Null => ItemType::Null,
        Value::Bool(_) => ItemType::Bool,
        Value::Number(_) => ItemType::Number,
        Value::String(_) => ItemType::String,
        Value::Array(_) => ItemType::List,
        Value::Object(_) => ItemType::Object,
    }
}

/// The one item type of both lists (None when both are empty).
fn items_type(field: &str, original: &[Value], patch: &[Value]) -> Result<Option<ItemType>, PatchError> {
    let mut found = None;
    for item in original.iter().chain(patch) {
        let t = item_type(item);
        if t == ItemType::List {
            return Err(PatchError::Invalid(format!("{field}: lists of lists are not supported")));
        }
        match found {
            None => found = Some(t),
            Some(seen) if seen != t => return Err(bad(format!("{field}: list element types are not identical"))),
            Some(_) => {}
        }
    }
    Ok(found)
}

/// The field a `$prefix/<field>` directive names.
fn directive_field<'k>(key: &'k str, prefix: &str, format_error: &str) -> Result<&'k str, PatchError> {
    match key.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('/')) {
        Some(field) if !field.is_empty() => Ok(field),
        _ => Err(bad(format!("{format_error}: {key:?}"))),
    }
}

struct Merger<'s> {
    schema: &'s dyn Schema,
}

impl<'s> Merger<'s> {
    fn field(&self, message: Option<&str>, json_name: &str) -> FieldSchema<'s> {
        message.map(|m| self.schema.field(m, json_name)).unwrap_or_default()
    }

    /// Merges the map `patch` into `original`, both of message `message`.
    fn merge_map(&self, mut original: Object, mut patch: Object, message: Option<&str>) -> Result<Object, PatchError> {
        if let Some(directive) = patch.remove(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => return self.merge_map(Object::new(), patch, message),
                Some("delete") => return Ok(Object::new()),
                Some("merge") => {}
                _ => return Err(bad(format!("unknown patch type: {directive} in map: {}", Value::Object(patch)))),
            }
        }
        self.retain_keys(&mut original, &mut patch)?;
        self.set_element_order(&mut original, &mut patch, message)?;
        for (key, patch_value) in patch {
            if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                let field = directive_field(&key, DELETE_FROM_PRIMITIVE_LIST, "invalid patch format of primitive list")?;
                let Value::Array(to_delete) = patch_value else {
                    return Err(bad(format!("invalid patch format of primitive list: {key} is not a list")));
                };
                if let Some(Value::Array(list)) = original.get_mut(field) {
                    list.retain(|item| !to_delete.iter().any(|d| same(d, item)));
                }
                continue;
            }
            if patch_value.is_null() {
                original.remove(&key);
                continue;
            }
            let field = self.field(message, &key);
            let merged = match (original.get_mut(&key).map(std::mem::take), patch_value) {
                (Some(Value::Object(o)), Value::Object(p)) => Value::Object(self.merge_map(o, p, field.message)?),
                (Some(Value::Array(o)), Value::Array(p)) => Value::Array(self.merge_list(&key, o, p, field)?),
                (_, p) => self.fresh(&key, p, field)?,
            };
            original.insert(key, merged);
        }
        Ok(original)
    }

    /// A patch value where the original has none (or one of another type):
    /// its directives applied to nothing and its nulls dropped.
    fn fresh(&self, key: &str, value: Value, field: FieldSchema<'_>) -> Result<Value, PatchError> {
        Ok(match value {
            Value::Object(p) => Value::Object(self.merge_map(Object::new(), p, field.message)?),
            Value::Array(p) => Value::Array(self.merge_list(key, Vec::new(), p, field)?),
            scalar => scalar,
        })
    }

    /// `$retainKeys`: drops the original's keys it does not list; the patch
    /// may set only keys it lists.
    fn retain_keys(&self, original: &mut Object, patch: &mut Object) -> Result<(), PatchError> {
        let Some(retain) = patch.remove(RETAIN_KEYS) else {
            return Ok(());
        };
        let Value::Array(retain) = retain else {
            return Err(bad(format!("invalid patch format of retainKeys: {RETAIN_KEYS} must be a list, not {retain}")));
        };
        let listed = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
        for (key, value) in patch.iter() {
            let directive = key.starts_with(DELETE_FROM_PRIMITIVE_LIST) || key.starts_with(SET_ELEMENT_ORDER);
            if !value.is_null() && !directive && !listed(key) {
                return Err(bad(format!(
                    "invalid patch format of retainKeys: the patch sets {key:?}, which {RETAIN_KEYS} {} does not list",
                    Value::Array(retain.clone())
                )));
            }
        }
        original.retain(|key, _| listed(key));
        Ok(())
    }

    /// `$setElementOrder/<field>`: merges the field's list now and orders
    /// the result: the directive's items in its order, the items only the
    /// server has where they were relative to them.
    fn set_element_order(&self, original: &mut Object, patch: &mut Object, message: Option<&str>) -> Result<(), PatchError> {
        let directives: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
        for directive in directives {
            let Some(order) = patch.remove(&directive) else { continue };
            let field_name = directive_field(&directive, SET_ELEMENT_ORDER, "invalid patch format of setElementOrder list")?.to_string();
            let Value::Array(order) = order else {
                return Err(bad(format!("invalid patch format of setElementOrder list: {directive} is not a list")));
            };
            let field = self.field(message, &field_name);
            let merge_key = field.meta.and_then(|m| m.merge_key);
            let patch_list = match patch.remove(&field_name) {
                None => None,
                Some(Value::Array(list)) => Some(list),
                Some(other) => return Err(bad(format!("{directive} is given but {field_name} is not a list: {other}"))),
            };
            let original_list = match original.get(&field_name) {
                None => None,
                Some(Value::Array(list)) => Some(list.clone()),
                Some(_) => return Err(bad(format!("{directive} is given but the object's {field_name} is not a list"))),
            };
            if let Some(patch_list) = &patch_list {
                check_order(patch_list, &order, merge_key)?;
            }
            let merged = match (original_list.clone(), patch_list) {
                (None, None) => continue,
                (Some(o), None) => o,
                (o, Some(p)) => self.merge_list(&field_name, o.unwrap_or_default(), p, field)?,
            };
            let (in_order, server_only) = partition(merged, &order, merge_key);
            let ordered = normalize_order(in_order, server_only, &order, &original_list.unwrap_or_default(), merge_key)?;
            original.insert(field_name, Value::Array(ordered));
        }
        Ok(())
    }

    /// Merges list `patch` into `original` as the field's metadata says.
    fn merge_list(&self, name: &str, original: Vec<Value>, patch: Vec<Value>, field: FieldSchema<'_>) -> Result<Vec<Value>, PatchError> {
        let Some(meta) = field.meta else {
            // Atomic: the patch's list is the new list.
            return Ok(patch);
        };
        let Some(items) = items_type(name, &original, &patch)? else {
            return Ok(original);
        };
        match (meta.merge_key, items) {
            (None, ItemType::Object) => Err(bad(format!("{name}: cannot merge lists of objects without a merge key"))),
            (Some(key), t) if t != ItemType::Object => Err(bad(format!("{name}: the items of a list merged by {key} must be objects"))),
            (None, _) => {
                let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
                for item in original.iter().chain(&patch) {
                    if !merged.iter().any(|m| same(m, item)) {
                        merged.push(item.clone());
                    }
                }
                let (in_patch, server_only) = partition(merged, &patch, None);
                normalize_order(in_patch, server_only, &patch, &original, None)
            }
            (Some(key), _) => self.merge_keyed_list(original, patch, key, field.message),
        }
    }

    /// Merges a list of objects item by item on `key`.
    fn merge_keyed_list(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        item: Option<&str>,
    ) -> Result<Vec<Value>, PatchError> {
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for entry in patch {
            let Some(directive) = entry.get(DIRECTIVE) else {
                if entry.get(key).is_none() {
                    return Err(no_merge_key(&entry, key));
                }
                plain.push(entry);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let value = entry.get(key).ok_or_else(|| no_merge_key(&entry, key))?;
                    original.retain(|o| !o.get(key).is_some_and(|v| same(v, value)));
                }
                Some("replace") => replace = true,
                Some("merge") => return Err(bad("merging lists cannot yet be specified in the patch")),
                _ => return Err(bad(format!("unknown patch type: {directive} in map: {entry}"))),
            }
        }
        if replace {
            // `{"$patch": "replace"}`: the patch's other items are the list.
            return plain.into_iter().map(|p| self.fresh(key, p, FieldSchema { message: item, meta: None })).collect();
        }
        let server_order = original.clone();
        let mut merged = original;
        for entry in &plain {
            let Value::Object(p) = entry.clone() else { continue };
            match index_in(&merged, entry, Some(key)) {
                Some(i) => {
                    let o = match std::mem::take(&mut merged[i]) {
                        Value::Object(o) => o,
                        _ => Object::new(),
                    };
                    merged[i] = Value::Object(self.merge_map(o, p, item)?);
                }
                None => merged.push(Value::Object(self.merge_map(Object::new(), p, item)?)),
            }
        }
        let (in_patch, server_only) = partition(merged, &plain, Some(key));
        normalize_order(in_patch, server_only, &plain, &server_order, Some(key))
    }
}

/// Checks that the patch's list (its deletions and directive items left
/// out) is in the order `$setElementOrder` gives.
fn check_order(patch_list: &[Value], order: &[Value], merge_key: Option<&str>) -> Result<(), PatchError> {
    let listed: Vec<&Value> = patch_list.iter().filter(|item| item.get(DIRECTIVE).is_none()).collect();
    let (mut at_patch, mut at_order) = (0, 0);
    while at_patch < listed.len() && at_order < order.len() {
        let (p, o) = (listed[at_patch], &order[at_order]);
        let equal = match merge_key {
            Some(key) => {
                let pv = p.get(key).ok_or_else(|| no_merge_key(p, key))?;
                let ov = o.get(key).ok_or_else(|| no_merge_key(o, key))?;
                same(pv, ov)
            }
            None => same(p, o),
        };
        if equal {
            at_patch += 1;
        }
        at_order += 1;
    }
    if at_patch < listed.len() {
        return Err(bad(format!(
            "the order in patch list {} doesn't match {SET_ELEMENT_ORDER} list {}",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

/// Splits `merged` into the items `by` names and the others (in order).
fn partition(merged: Vec<Value>, by: &[Value], merge_key: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    merged.into_iter().partition(|item| index_in(by, item, merge_key).is_some())
}

/// Orders a merged list: the patch's items in `patch_order`, the
/// server-only items in `server_order`, then interleaves them so that a
/// server-only item stays before a patch item it preceded on the server;
/// patch items the server did not have go first.
fn normalize_order(
    mut in_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    if let Some(key) = merge_key
        && let Some(missing) = patch_order.iter().find(|item| item.get(key).is_none())
    {
        return Err(no_merge_key(missing, key));
    }
    in_patch.sort_by_key(|item| index_in(patch_order, item, merge_key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|item| index_in(server_order, item, merge_key).unwrap_or(usize::MAX));
    let mut ordered = Vec::with_capacity(in_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (index_in(server_order, l, merge_key), index_in(server_order, r, merge_key)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        ordered.extend(next);
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    //! Cases of apimachinery's strategicpatch patch_test.go (the server-side
    //! application of two- and three-way patches), restated on a schema
    //! like its test type: `mergingList` merges by `name`,
    //! `mergingIntList` is a set, `nonMerging*` lists are atomic.

    use serde_json::json;

    use super::*;
    use crate::patch::meta::FieldMeta;

    struct MergeItemSchema;

    const BY_NAME: FieldMeta = FieldMeta { merge_key: Some("name"), retain_keys: false, list_type: "map" };
    const BY_NAME_RETAIN: FieldMeta = FieldMeta { merge_key: Some("name"), retain_keys: true, list_type: "map" };
    const SET: FieldMeta = FieldMeta { merge_key: None, retain_keys: false, list_type: "set" };

    impl Schema for MergeItemSchema {
        fn field<'a>(&'a self, _message: &str, json_name: &str) -> FieldSchema<'a> {
            let (message, meta) = match json_name {
                "mergingList" => (Some("MergeItem"), Some(BY_NAME)),
                "nonMergingList" => (Some("MergeItem"), None),
                "retainKeysMergingList" => (Some("MergeItem"), Some(BY_NAME_RETAIN)),
                "retainKeysMap" => (Some("MergeItem"), None),
                "mergingIntList" => (None, Some(SET)),
                _ => (None, None),
            };
            FieldSchema { message, meta }
        }
    }

    fn patched(current: Value, patch: Value) -> Result<Value, PatchError> {
        let Value::Object(patch) = patch else { panic!("a patch is an object") };
        apply(&MergeItemSchema, Some("MergeItem"), &current, patch)
    }

    fn check(description: &str, current: Value, patch: Value, want: Value) {
        match patched(current, patch) {
            Ok(got) => assert_eq!(got, want, "{description}"),
            Err(e) => panic!("{description}: {e}"),
        }
    }

    #[test]
    fn should_merge_maps_and_scalars() {
        check("add field to map", json!({"name": 1, "other": "a"}), json!({"value": 1}), json!({"name": 1, "value": 1, "other": "a"}));
        check(
            "add and delete a field",
            json!({"name": 1, "other": "a"}),
            json!({"name": null, "value": 1}),
            json!({"value": 1, "other": "a"}),
        );
        check(
            "delete field from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1, "other": "a"}}),
            json!({"simpleMap": {"key2": null}}),
            json!({"simpleMap": {"key1": 1, "other": "a"}}),
        );
        check(
            "delete map from nested map",
            json!({"simpleMap": {"key1": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        );
        check("delete all keys from map", json!({"name": 1, "value": 1}), json!({"$patch": "replace"}), json!({}));
        check(
            "add key and delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        );
        check(
            "replace list of scalars",
            json!({"nonMergingIntList": [1, 4]}),
            json!({"nonMergingIntList": [2, 3]}),
            json!({"nonMergingIntList": [2, 3]}),
        );
    }

    #[test]
    fn should_merge_lists_of_scalars_as_sets_in_patch_order() {
        check("unique scalars", json!({"mergingIntList": [1, 2]}), json!({"mergingIntList": [2, 3]}), json!({"mergingIntList": [1, 2, 3]}));
        check(
            "patch order",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1, 2]}),
            json!({"mergingIntList": [3, 1, 2]}),
        );
        check(
            "patch order, one left out",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]}),
            json!({"mergingIntList": [2, 3, 1]}),
        );
        check(
            "delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        );
        check(
            "add and delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 4], "$deleteFromPrimitiveList/mergingIntList": [3], "mergingIntList": [4]}),
            json!({"mergingIntList": [1, 2, 4]}),
        );
        check(
            "$deleteFromPrimitiveList of an absent item or list adds nothing",
            json!({"mergingIntList": [1, 2], "foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3], "$deleteFromPrimitiveList/other": [3]}),
            json!({"mergingIntList": [1, 2], "foo": ["bar"]}),
        );
        check(
            "$deleteFromPrimitiveList on an atomic list",
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        );
        check(
            "$setElementOrder names an item the list lacks",
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
            json!({"mergingIntList": [3, 1]}),
        );
    }

    #[test]
    fn should_merge_lists_of_maps_by_their_merge_key() {
        check(
            "preserve the order from the patch",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}]}),
        );
        check(
            "server-only items keep their place before patch items",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        );
        check(
            "merge lists of maps in $setElementOrder",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
            json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
        );
        check(
            "nested patch merge with an item deleted that is not there",
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                   "mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]}),
        );
        check(
            "delete all duplicate entries",
            json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        );
        check(
            "delete all items with replace",
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        );
        check("merge empty merging lists", json!({"mergingList": []}), json!({"mergingList": []}), json!({"mergingList": []}));
        check(
            "a merge key 1.0 matches 1 (and, like any patched field, takes the patch's value)",
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"name": 1.0, "other": "b"}]}),
            json!({"mergingList": [{"name": 1.0, "value": "a", "other": "b"}]}),
        );
        check(
            "an atomic list of maps is replaced",
            json!({"nonMergingList": [{"name": 1, "value": "a"}, {"name": 2}]}),
            json!({"nonMergingList": [{"name": 1, "other": "b"}]}),
            json!({"nonMergingList": [{"name": 1, "other": "b"}]}),
        );
    }

    #[test]
    fn should_apply_retain_keys() {
        check(
            "retainKeys list item can delete a field without the directive",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "foo", "value": null}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        );
        check(
            "retainKeys drops what it does not list",
            json!({"retainKeysMap": {"name": "foo", "value": "a", "other": "b"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "other"], "other": "c"}}),
            json!({"retainKeysMap": {"name": "foo", "other": "c"}}),
        );
        check(
            "a null for an unlisted key is allowed",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": null}}),
            json!({"retainKeysMap": {"name": "foo"}}),
        );
        let err = patched(json!({"retainKeysMap": {"name": "foo"}}), json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "x"}}))
            .expect_err("value is not retained");
        assert_eq!(err.http_status(), 400, "{err}");
    }

    #[test]
    fn should_reject_what_kubernetes_rejects() {
        let cases = [
            (
                "missing merge key",
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": [{"value": "b"}]}),
                400,
                "does not contain declared merge key: name",
            ),
            (
                "order of $setElementOrder and patch list differ",
                json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
                json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}], "mergingList": [{"name": 3}, {"name": 1}]}),
                400,
                "doesn't match",
            ),
            (
                "order of $setElementOrder and patch int list differ",
                json!({"mergingIntList": [1, 3, 2]}),
                json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
                400,
                "doesn't match",
            ),
            ("$setElementOrder without a list name", json!({}), json!({"$setElementOrder": [1]}), 400, "setElementOrder"),
            ("list of lists", json!({"mergingIntList": [[1]]}), json!({"mergingIntList": [[2]]}), 422, "lists of lists"),
            ("mixed item types", json!({"mergingIntList": [1]}), json!({"mergingIntList": ["a"]}), 400, "not identical"),
            ("scalars in a keyed list", json!({"mergingList": [1]}), json!({"mergingList": [2]}), 400, "must be objects"),
        ];
        for (description, current, patch, status, message) in cases {
            let err = patched(current, patch).expect_err(description);
            assert_eq!(err.http_status(), status, "{description}: {err}");
            assert!(err.to_string().contains(message), "{description}: {err}");
        }
    }
}
