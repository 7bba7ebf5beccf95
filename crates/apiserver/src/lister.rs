//! Read-only access to the cluster state: one object by kind, namespace and
//! name, or the objects of a kind that pass label and field selectors
//! ([`Filter`]), decoded from the [`Store`] at its newest revision. What
//! admission plugins and authorizers read with; the registry builds its
//! writes on the same decoding.

use std::sync::Arc;

use berth_api::resource::{KindInfo, find_kind, selectable_fields};
use berth_api::{Object, fields, labels};
use prost::Message;

use crate::error::{Error, Result};
use crate::storage::{KeyValue, Revision, Store};

/// Parsed selectors of a list or watch, checked against the kind.
pub struct Filter {
    pub labels: labels::Selector,
    pub fields: fields::Selector,
}

impl Filter {
    /// Parses both selectors; a field the kind cannot select on is refused.
    pub fn parse(info: &KindInfo, label_selector: &str, field_selector: &str) -> Result<Filter> {
        let labels =
            labels::Selector::parse(label_selector).map_err(|e| Error::BadRequest(format!("unable to parse label selector: {e}")))?;
        let fields =
            fields::Selector::parse(field_selector).map_err(|e| Error::BadRequest(format!("unable to parse field selector: {e}")))?;
        let allowed = selectable_fields(info.kind);
        for f in fields.fields() {
            if !allowed.contains(&f) {
                return Err(Error::BadRequest(format!(
                    "field label not supported for {}: {f:?} (supported: {})",
                    info.plural,
                    allowed.join(", ")
                )));
            }
        }
        Ok(Filter { labels, fields })
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, o: &Object) -> bool {
        let empty = std::collections::BTreeMap::new();
        let obj_labels = o.metadata().map(|m| &m.labels).unwrap_or(&empty);
        (self.labels.is_empty() || self.labels.matches(obj_labels)) && (self.fields.is_empty() || self.fields.matches(|f| o.field(f)))
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

/// Resolves a kind named in a request.
pub fn kind(name: &str) -> Result<&'static KindInfo> {
    find_kind(name).ok_or_else(|| Error::NotFound { plural: "the server doesn't have a resource type".into(), name: name.into() })
}

/// Decodes a stored object and sets its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Object> {
    decode_at(&kv.value, kv.mod_revision, &kv.key)
}

/// Decodes stored bytes, setting resourceVersion to `revision`.
pub fn decode_at(value: &[u8], revision: Revision, key: &str) -> Result<Object> {
    let mut o = Object::decode(value).map_err(|e| Error::Internal(format!("stored object {key} cannot be decoded: {e}")))?;
    if let Some(m) = o.metadata_mut() {
        m.resource_version = revision.to_string();
    }
    Ok(o)
}

/// Reads objects from a store; it cannot write.
#[derive(Clone)]
pub struct Lister {
    store: Arc<dyn Store>,
}

impl Lister {
    pub fn new(store: Arc<dyn Store>) -> Lister {
        Lister { store }
    }

    /// The object of a kind (as a request names it) in a namespace ("" for
    /// cluster-scoped kinds); NotFound if there is none.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Result<Object> {
        let info = self::kind(kind)?;
        let key = info.key(namespace, name);
        match self.store.get(&key).map_err(|e| Error::from_store(e, info.plural, name))? {
            Some(kv) => decode(&kv),
            None => Err(Error::NotFound { plural: info.plural.into(), name: name.into() }),
        }
    }

    /// The objects of a kind in a namespace ("": in all) that pass the
    /// filter. An object that cannot be decoded fails the whole list.
    pub fn list(&self, info: &KindInfo, namespace: &str, filter: &Filter) -> Result<Vec<Object>> {
        let mut items = Vec::new();
        for kv in &self.stored(info, namespace)? {
            let o = decode(kv)?;
            if filter.matches(&o) {
                items.push(o);
            }
        }
        Ok(items)
    }

    /// The objects of a kind in a namespace ("": in all), leaving out any
    /// that cannot be decoded: for the authorizers, which judge by what is
    /// readable rather than fail every request over one bad object.
    pub fn list_readable(&self, info: &KindInfo, namespace: &str) -> Result<Vec<Object>> {
        Ok(self.stored(info, namespace)?.iter().filter_map(|kv| decode(kv).ok()).collect())
    }

    fn stored(&self, info: &KindInfo, namespace: &str) -> Result<Vec<KeyValue>> {
        let (kvs, _) = self.store.list(&info.prefix(namespace)).map_err(|e| Error::from_store(e, info.plural, ""))?;
        Ok(kvs)
    }
}

#[cfg(test)]
mod tests {
    use berth_api::Resource;
    use berth_api::pb::core::ConfigMap;

    use super::*;
    use crate::storage::{SledOptions, SledStore};

    fn config_map(namespace: &str, name: &str, app: &str) -> Object {
        let mut cm = ConfigMap::default();
        let m = cm.metadata_mut();
        m.name = name.into();
        m.namespace = namespace.into();
        m.labels.insert("app".into(), app.into());
        cm.into_object()
    }

    #[tokio::test]
    async fn should_get_and_list_what_the_store_holds_with_its_revision() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), SledOptions::default()).expect("open"));
        let info = kind("ConfigMap").expect("kind");
        for (ns, name, app) in [("a", "one", "web"), ("a", "two", "db"), ("b", "three", "web")] {
            let o = config_map(ns, name, app);
            store.create(&info.key(ns, name), o.encode_to_vec().into()).await.expect("create");
        }
        store.create(&info.key("b", "broken"), bytes::Bytes::from_static(b"\xff\xff not an object")).await.expect("create");
        let lister = Lister::new(store.clone());

        let got = lister.get("ConfigMap", "a", "two").expect("get");
        assert_eq!(got.name(), "two");
        let stored = store.get(&info.key("a", "two")).expect("store get").expect("stored");
        assert_eq!(got.metadata().expect("meta").resource_version, stored.mod_revision.to_string());
        assert!(matches!(lister.get("ConfigMap", "a", "none"), Err(Error::NotFound { .. })));
        assert!(matches!(lister.get("NoSuchKind", "a", "one"), Err(Error::NotFound { .. })));

        let web = Filter::parse(info, "app=web", "").expect("filter");
        let names = |objects: Vec<Object>| objects.iter().map(|o| o.name().to_string()).collect::<Vec<_>>();
        assert_eq!(names(lister.list(info, "a", &web).expect("list a")), ["one"]);
        assert!(lister.list(info, "", &web).is_err(), "a strict list fails on the undecodable object");
        assert_eq!(names(lister.list_readable(info, "b").expect("readable")), ["three"]);
        let mut all = names(lister.list_readable(info, "").expect("readable"));
        all.sort();
        assert_eq!(all, ["one", "three", "two"]);
    }
}
