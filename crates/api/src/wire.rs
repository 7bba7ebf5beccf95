//! The apiserver's side of the wire for the two responses that carry many
//! objects: `List` and `Watch`. They are encoded from bytes the server already
//! has instead of from decoded objects.
//!
//! The store keeps each object as its protobuf encoding without
//! `metadata.resourceVersion` (that is the key's revision). Protobuf merges a
//! message field that occurs twice on the wire (a oneof member too, when it is
//! the same member), so the stored bytes followed by a tiny patch, an
//! [`Object`] holding only the kind and `metadata.resourceVersion`, decode to
//! exactly the object with its resourceVersion set. A list is then the stored
//! values copied into the response, and a watch event is encoded once and the
//! same bytes are written to every watcher, instead of a decode, clone and
//! encode per object and per watcher.
//!
//! [`EncodedList`] and [`EncodedWatchEvent`] are wire-compatible with
//! [`ListResponse`](crate::pb::api::ListResponse) and
//! [`WatchEvent`](crate::pb::api::WatchEvent): clients decode them with the
//! ordinary generated types. They are encode-only: decoding one skips every
//! field. [`server`] is the `Api` service generated with these two types in
//! place of the decoded ones (see `build.rs`).

use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};

use crate::KindInfo;
use crate::pb::api::{Object, WatchEvent};

/// The `Api` service as the apiserver implements it: the same RPCs as
/// [`crate::pb::api::api_server`], with [`EncodedList`] and
/// [`EncodedWatchEvent`] as the List and Watch responses.
pub mod server {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/wire/berth.api.v1.rs"));
}

/// An object as stored (encoded, without resourceVersion) and the patch that
/// sets its resourceVersion; on the wire, one `Object`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodedObject {
    stored: Bytes,
    patch: Bytes,
}

impl EncodedObject {
    /// `stored` (an [`Object`]'s encoding) with its resourceVersion set to `revision`.
    pub fn at(info: &KindInfo, stored: Bytes, revision: u64) -> EncodedObject {
        EncodedObject { stored, patch: resource_version_patch(info, revision) }
    }

    /// The length of the object on the wire.
    pub fn len(&self) -> usize {
        self.stored.len() + self.patch.len()
    }

    /// Whether the object is empty on the wire (never, for a stored object).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the object as field `tag` of the message being encoded.
    fn encode_field(&self, tag: u32, buf: &mut impl BufMut) {
        encoding::encode_key(tag, WireType::LengthDelimited, buf);
        encoding::encode_varint(self.len() as u64, buf);
        buf.put_slice(&self.stored);
        buf.put_slice(&self.patch);
    }

    fn field_len(&self, tag: u32) -> usize {
        encoding::key_len(tag) + encoding::encoded_len_varint(self.len() as u64) + self.len()
    }

    /// The object decoded (for tests and for callers that need it anyway).
    pub fn decode(&self) -> Result<Object, prost::DecodeError> {
        Object::decode(self.stored.clone().chain(self.patch.clone()))
    }
}

/// The encoding of an Object that holds only the kind and
/// `metadata.resourceVersion`: appended to a stored object, it sets the
/// resourceVersion.
fn resource_version_patch(info: &KindInfo, revision: u64) -> Bytes {
    let Some(mut o) = Object::empty(info) else { return Bytes::new() };
    if let Some(m) = o.metadata_mut() {
        m.resource_version = revision.to_string();
    }
    Bytes::from(o.encode_to_vec())
}

/// A `ListResponse` made of stored objects.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodedList {
    /// The objects, in key order.
    pub items: Vec<EncodedObject>,
    /// The revision the list was read at.
    pub resource_version: u64,
}

impl Message for EncodedList {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for item in &self.items {
            item.encode_field(1, buf);
        }
        if self.resource_version != 0 {
            encoding::uint64::encode(2, &self.resource_version, buf);
        }
    }

    fn merge_field(&mut self, tag: u32, wire_type: WireType, buf: &mut impl Buf, ctx: DecodeContext) -> Result<(), prost::DecodeError> {
        encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        let items: usize = self.items.iter().map(|i| i.field_len(1)).sum();
        let rv = if self.resource_version != 0 { encoding::uint64::encoded_len(2, &self.resource_version) } else { 0 };
        items + rv
    }

    fn clear(&mut self) {
        self.items.clear();
        self.resource_version = 0;
    }
}

/// A `WatchEvent` encoded once; cloning it shares the bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodedWatchEvent(Bytes);

impl EncodedWatchEvent {
    /// An event of `event_type` (ADDED, MODIFIED, DELETED) for a stored object.
    pub fn new(event_type: &str, object: &EncodedObject, revision: u64) -> EncodedWatchEvent {
        let type_len = if event_type.is_empty() {
            0
        } else {
            encoding::key_len(1) + encoding::encoded_len_varint(event_type.len() as u64) + event_type.len()
        };
        let len = type_len + object.field_len(2) + if revision != 0 { encoding::uint64::encoded_len(3, &revision) } else { 0 };
        let mut buf = Vec::with_capacity(len);
        if !event_type.is_empty() {
            encoding::encode_key(1, WireType::LengthDelimited, &mut buf);
            encoding::encode_varint(event_type.len() as u64, &mut buf);
            buf.put_slice(event_type.as_bytes());
        }
        object.encode_field(2, &mut buf);
        if revision != 0 {
            encoding::uint64::encode(3, &revision, &mut buf);
        }
        EncodedWatchEvent(Bytes::from(buf))
    }

    /// An event encoded from its decoded form (bookmarks).
    pub fn from_event(event: &WatchEvent) -> EncodedWatchEvent {
        EncodedWatchEvent(Bytes::from(event.encode_to_vec()))
    }

    /// The encoded bytes, a `WatchEvent` on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Message for EncodedWatchEvent {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(&mut self, tag: u32, wire_type: WireType, buf: &mut impl Buf, ctx: DecodeContext) -> Result<(), prost::DecodeError> {
        encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::api::ListResponse;
    use crate::pb::core::{ConfigMap, ObjectMeta, Pod, PodSpec};
    use crate::resource::find_kind;

    fn stored(o: &Object) -> Bytes {
        let mut o = o.clone();
        if let Some(m) = o.metadata_mut() {
            m.resource_version.clear();
        }
        Bytes::from(o.encode_to_vec())
    }

    fn pod(name: &str) -> Object {
        let mut o = Pod {
            metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), uid: "u-1".into(), ..Default::default() }),
            spec: Some(PodSpec { node_name: "n1".into(), ..Default::default() }),
            ..Default::default()
        }
        .into_object();
        o.set_type_meta();
        o
    }

    fn with_rv(mut o: Object, rv: u64) -> Object {
        if let Some(m) = o.metadata_mut() {
            m.resource_version = rv.to_string();
        }
        o
    }

    #[test]
    fn should_decode_a_stored_object_with_its_patch_as_the_object_at_that_revision() {
        let info = find_kind("pods").expect("pods");
        let o = pod("web-1");
        let e = EncodedObject::at(info, stored(&o), 42);
        assert_eq!(e.decode().expect("decode"), with_rv(o, 42));
    }

    #[test]
    fn should_be_read_by_clients_as_an_ordinary_list_response() {
        let pods = find_kind("pods").expect("pods");
        let cms = find_kind("configmaps").expect("configmaps");
        let a = pod("a");
        let mut cm = ConfigMap {
            metadata: Some(ObjectMeta { name: "c".into(), namespace: "ns".into(), ..Default::default() }),
            data: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        }
        .into_object();
        cm.set_type_meta();
        let list = EncodedList {
            items: vec![EncodedObject::at(pods, stored(&a), 7), EncodedObject::at(cms, stored(&cm), 123_456_789)],
            resource_version: 123_456_790,
        };
        let bytes = list.encode_to_vec();
        assert_eq!(bytes.len(), list.encoded_len());
        let got = ListResponse::decode(bytes.as_slice()).expect("decode");
        assert_eq!(got, ListResponse { items: vec![with_rv(a, 7), with_rv(cm, 123_456_789)], resource_version: 123_456_790 });
    }

    #[test]
    fn should_be_read_by_clients_as_an_ordinary_watch_event() {
        let info = find_kind("pods").expect("pods");
        let o = pod("w");
        let ev = EncodedWatchEvent::new("MODIFIED", &EncodedObject::at(info, stored(&o), 9), 9);
        assert_eq!(ev.encoded_len(), ev.encode_to_vec().len());
        let got = WatchEvent::decode(ev.encode_to_vec().as_slice()).expect("decode");
        assert_eq!(got, WatchEvent { r#type: "MODIFIED".into(), object: Some(with_rv(o, 9)), resource_version: 9 });
        let bookmark = WatchEvent { r#type: "BOOKMARK".into(), object: None, resource_version: 10 };
        assert_eq!(WatchEvent::decode(EncodedWatchEvent::from_event(&bookmark).encode_to_vec().as_slice()).expect("decode"), bookmark);
    }

    #[test]
    fn should_replace_a_stale_resource_version_kept_in_the_stored_bytes() {
        // The store never keeps one, but the patch must win if it did.
        let info = find_kind("pods").expect("pods");
        let o = with_rv(pod("x"), 3);
        let e = EncodedObject::at(info, Bytes::from(o.encode_to_vec()), 5);
        assert_eq!(e.decode().expect("decode"), with_rv(o, 5));
    }
}
