//! Formats 1 and 2, read only to move such a store to format 3: format 1 kept each value in a
//! `k` + key record as well as in the log, format 2 kept there a `[mod_revision][create_revision]`
//! index into the log.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::record::{LogRecord, log_key, read_u64};
use crate::storage::watch_cache::Entry;
use crate::storage::{Error, Result, Revision};

/// The object records of formats 1 and 2, read only to move such a store to format 3.
const OBJECT_PREFIX: u8 = b'k';

/// Size of a format-2 object record, or of the header before a format-1 value: mod revision
/// and create revision.
const OBJECT_HEADER: usize = 16;

fn decode_key(raw: &[u8]) -> Result<String> {
    String::from_utf8(raw.to_vec()).map_err(|_| Error::corrupt(String::from_utf8_lossy(raw), "key is not UTF-8"))
}

/// The objects of a format-1 or format-2 store, from its `k` records.
pub(super) fn load_indexed_objects(db: &sled::Db, format: u64, revision: Revision) -> Result<BTreeMap<String, Entry>> {
    let mut objects = BTreeMap::new();
    for item in db.scan_prefix([OBJECT_PREFIX]) {
        let (raw_key, raw) = item.map_err(Error::backend)?;
        let key = decode_key(&raw_key[1..])?;
        let entry = if format == 1 { decode_inline_object(&key, &raw)? } else { load_object(db, &key, &raw)? };
        if entry.mod_revision > revision {
            return Err(Error::corrupt(key, format!("mod revision {} is newer than the store's {revision}", entry.mod_revision)));
        }
        objects.insert(key, entry);
    }
    Ok(objects)
}

/// The mod and create revisions at the start of an object record.
fn decode_object_header(key: &str, raw: &[u8]) -> Result<(Revision, Revision)> {
    let header = raw.get(..OBJECT_HEADER).ok_or_else(|| Error::corrupt(key, "object record shorter than its header"))?;
    let (Some(mod_revision), Some(create_revision)) = (read_u64(&header[..8]), read_u64(&header[8..])) else {
        return Err(Error::corrupt(key, "object record header unreadable"));
    };
    Ok((mod_revision, create_revision))
}

/// A format-1 object record, with its value after the header.
fn decode_inline_object(key: &str, raw: &[u8]) -> Result<Entry> {
    let (mod_revision, create_revision) = decode_object_header(key, raw)?;
    Ok(Entry { value: Bytes::copy_from_slice(&raw[OBJECT_HEADER..]), mod_revision, create_revision })
}

/// A format-2 object record, with its value read from the log record at its mod revision.
fn load_object(db: &sled::Db, key: &str, raw: &[u8]) -> Result<Entry> {
    let (mod_revision, create_revision) = decode_object_header(key, raw)?;
    if raw.len() != OBJECT_HEADER {
        return Err(Error::corrupt(key, format!("object record of {} bytes, expected {OBJECT_HEADER}", raw.len())));
    }
    let missing = || Error::corrupt(key, format!("the log record at its revision {mod_revision} holding its value is missing"));
    let log = db.get(log_key(mod_revision)).map_err(Error::backend)?.ok_or_else(missing)?;
    let record = LogRecord::parse(mod_revision, &log)?;
    if record.key != key || !record.holds_value() {
        return Err(Error::corrupt(key, format!("the log record at its revision {mod_revision} is not a write of it")));
    }
    Ok(Entry { value: Bytes::copy_from_slice(record.value), mod_revision, create_revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_name_the_key_of_a_corrupt_object() {
        let err = decode_inline_object("/registry/pods/ns/a", b"short").unwrap_err();
        let Error::Backend(source) = err else { panic!("expected a backend error") };
        assert!(source.to_string().contains("/registry/pods/ns/a"));
    }
}
