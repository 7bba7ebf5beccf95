//! The record codec: the keys of the log and meta records (see "On disk" in the parent module)
//! and how a log record lays out the write it describes.

use bytes::Bytes;

use crate::storage::{Error, Event, EventType, Result, Revision};

pub(super) const LOG_PREFIX: u8 = b'l';
pub(super) const META_REVISION: &[u8] = b"m/revision";
pub(super) const META_HORIZON: &[u8] = b"m/horizon";
pub(super) const META_FORMAT: &[u8] = b"m/format";

/// The layout this code writes (see "On disk" in the parent module). Format 1 had no `m/format`.
pub(super) const FORMAT: u64 = 3;

pub(super) fn log_key(revision: Revision) -> [u8; 9] {
    let mut key = [LOG_PREFIX; 9];
    key[1..].copy_from_slice(&revision.to_be_bytes());
    key
}

pub(super) fn log_revision(raw_key: &[u8]) -> Result<Revision> {
    raw_key.get(1..).and_then(read_u64).ok_or_else(|| Error::corrupt(format!("{raw_key:?}"), "malformed history log key"))
}

pub(super) fn read_u64(raw: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(raw.try_into().ok()?))
}

// Log record layout:
//   [type u8][create_revision u64 BE][key len u32 BE][key][value len u32 BE][value][prev]
// `prev` (the rest of the record) is present only for Modified; a Deleted event's previous
// value is its value, and an Added event has none, so neither is stored twice. A "value"
// record holds an object's value without being an event (restore, rebuild).
const TYPE_ADDED: u8 = 1;
const TYPE_MODIFIED: u8 = 2;
const TYPE_DELETED: u8 = 3;
const TYPE_VALUE: u8 = 4;

/// The log record of a write.
pub(super) fn encode_log(event: &Event) -> Vec<u8> {
    let (record_type, prev) = match event.event_type {
        EventType::Added => (TYPE_ADDED, &[][..]),
        EventType::Modified => (TYPE_MODIFIED, event.prev_value.as_deref().unwrap_or_default()),
        EventType::Deleted => (TYPE_DELETED, &[][..]),
    };
    encode_record(record_type, event.create_revision, &event.key, &event.value, prev)
}

/// A "value" record: `key`'s value, written at its mod revision by a restore or rebuild.
pub(super) fn encode_value_record(key: &str, create_revision: Revision, value: &[u8]) -> Vec<u8> {
    encode_record(TYPE_VALUE, create_revision, key, value, &[])
}

fn encode_record(record_type: u8, create_revision: Revision, key: &str, value: &[u8], prev: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + 4 + key.len() + 4 + value.len() + prev.len());
    out.push(record_type);
    out.extend_from_slice(&create_revision.to_be_bytes());
    // `plan` refused keys and values over u32::MAX bytes, so these casts do not truncate.
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(prev);
    out
}

/// One log record, borrowed from its raw bytes.
pub(super) struct LogRecord<'a> {
    pub(super) revision: Revision,
    pub(super) record_type: u8,
    pub(super) create_revision: Revision,
    pub(super) key: &'a str,
    pub(super) value: &'a [u8],
    /// The previous value of a Modified record; empty otherwise.
    pub(super) prev: &'a [u8],
}

impl<'a> LogRecord<'a> {
    pub(super) fn parse(revision: Revision, raw: &'a [u8]) -> Result<LogRecord<'a>> {
        let name = || format!("log/{revision}");
        let corrupt = |reason: &str| Error::corrupt(name(), reason);
        let mut reader = Reader(raw);
        let record_type = reader.take(1).ok_or_else(|| corrupt("empty log record"))?[0];
        if !matches!(record_type, TYPE_ADDED | TYPE_MODIFIED | TYPE_DELETED | TYPE_VALUE) {
            return Err(corrupt(&format!("unknown record type {record_type}")));
        }
        let create_revision = reader.take(8).and_then(read_u64).ok_or_else(|| corrupt("truncated create revision"))?;
        let key = reader.take_sized().ok_or_else(|| corrupt("truncated key"))?;
        let key = std::str::from_utf8(key).map_err(|_| corrupt("key is not UTF-8"))?;
        let value = reader.take_sized().ok_or_else(|| Error::corrupt(format!("{} ({key})", name()), "truncated value"))?;
        Ok(LogRecord { revision, record_type, create_revision, key, value, prev: reader.0 })
    }

    /// Whether the write this record describes left a value (everything but a deletion).
    pub(super) fn holds_value(&self) -> bool {
        self.record_type != TYPE_DELETED
    }

    /// The watch event this record describes; None for a "value" record.
    pub(super) fn event(&self) -> Option<Event> {
        let event_type = match self.record_type {
            TYPE_ADDED => EventType::Added,
            TYPE_MODIFIED => EventType::Modified,
            TYPE_DELETED => EventType::Deleted,
            _ => return None,
        };
        let value = Bytes::copy_from_slice(self.value);
        let prev_value = match event_type {
            EventType::Added => None,
            EventType::Modified => Some(Bytes::copy_from_slice(self.prev)),
            EventType::Deleted => Some(value.clone()),
        };
        Some(Event::new(self.revision, event_type, self.key.to_owned(), value, prev_value, self.create_revision))
    }
}

/// A cursor over a record that returns None instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// A u32 BE length followed by that many bytes.
    fn take_sized(&mut self) -> Option<&'a [u8]> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_round_trip_history_records() {
        let event = Event::new(
            7,
            EventType::Modified,
            "/registry/pods/ns/a".into(),
            Bytes::from_static(b"new"),
            Some(Bytes::from_static(b"old")),
            3,
        );
        let raw = encode_log(&event);
        let decoded = LogRecord::parse(7, &raw).unwrap().event().expect("an event");
        assert_eq!(decoded.key, event.key);
        assert_eq!(decoded.value, event.value);
        assert_eq!(decoded.prev_value, event.prev_value);
        assert_eq!((decoded.event_type, decoded.create_revision), (EventType::Modified, 3));
    }

    #[test]
    fn should_reject_truncated_history_records() {
        let mut raw = encode_log(&Event::new(2, EventType::Added, "/k".into(), Bytes::from_static(b"value"), None, 2));
        raw.truncate(raw.len() - 2);
        assert!(matches!(LogRecord::parse(2, &raw), Err(Error::Backend(_))));
    }

    #[test]
    fn should_read_a_value_record_as_a_value_and_not_as_an_event() {
        let raw = encode_value_record("/registry/pods/ns/a", 3, b"value");
        let record = LogRecord::parse(9, &raw).unwrap();
        assert_eq!((record.key, record.value, record.create_revision), ("/registry/pods/ns/a", &b"value"[..], 3));
        assert!(record.holds_value());
        assert!(record.event().is_none(), "a value record must end the history, not join it");
    }
}
