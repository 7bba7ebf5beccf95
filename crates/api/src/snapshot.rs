//! The snapshot file: every stored object at one revision, as
//! `berthctl snapshot save` writes it and `berth-apiserver --restore` reads
//! it. Values are the store's bytes as they are (Secrets stay encrypted
//! when encryption at rest is on), so a restore needs the same keys.
//!
//! Layout, integers big-endian:
//! `BERTHSNAP` 1 (format version, one byte) · revision u64 · records u64 ·
//! per record: key length u32, key (UTF-8), mod revision u64, create
//! revision u64, value length u32, value · SHA-256 of everything before.

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 9] = b"BERTHSNAP";
const VERSION: u8 = 1;
const HEADER: usize = MAGIC.len() + 1 + 8 + 8;
const CHECKSUM: usize = 32;

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: u64,
    pub create_revision: u64,
}

/// A whole snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The store's revision when it was taken.
    pub revision: u64,
    pub records: Vec<Record>,
}

/// Why a file is not a usable snapshot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a Berth snapshot (it does not start with BERTHSNAP)")]
    NotASnapshot,
    #[error("snapshot format version {0} is not supported (this build reads version {VERSION})")]
    Version(u8),
    #[error("the snapshot is truncated ({0})")]
    Truncated(&'static str),
    #[error("the snapshot's checksum does not match: the file is damaged")]
    Checksum,
    #[error("record {index}: the key is not UTF-8")]
    Key { index: u64 },
    #[error("record {index}: revision {revision} is newer than the snapshot's {snapshot}")]
    Revision { index: u64, revision: u64, snapshot: u64 },
    #[error("{0} bytes after the last record")]
    Trailing(usize),
}

impl Snapshot {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.records.iter().map(|r| 4 + r.key.len() + 16 + 4 + r.value.len()).sum();
        let mut out = Vec::with_capacity(HEADER + size + CHECKSUM);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.revision.to_be_bytes());
        out.extend_from_slice(&(self.records.len() as u64).to_be_bytes());
        for r in &self.records {
            out.extend_from_slice(&(r.key.len() as u32).to_be_bytes());
            out.extend_from_slice(r.key.as_bytes());
            out.extend_from_slice(&r.mod_revision.to_be_bytes());
            out.extend_from_slice(&r.create_revision.to_be_bytes());
            out.extend_from_slice(&(r.value.len() as u32).to_be_bytes());
            out.extend_from_slice(&r.value);
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Reads and checks a file's bytes: magic, version, checksum, lengths,
    /// revisions no newer than the snapshot's.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        if bytes.len() < HEADER + CHECKSUM {
            return Err(SnapshotError::Truncated("header"));
        }
        if bytes[MAGIC.len()] != VERSION {
            return Err(SnapshotError::Version(bytes[MAGIC.len()]));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        if Sha256::digest(body).as_slice() != sum {
            return Err(SnapshotError::Checksum);
        }
        let mut r = Reader { bytes: &body[MAGIC.len() + 1..] };
        let revision = r.u64("header")?;
        let count = r.u64("header")?;
        let mut records = Vec::with_capacity(count.min(1 << 20) as usize);
        for index in 0..count {
            let len = r.u32("record key length")? as usize;
            let key = String::from_utf8(r.take(len, "record key")?.to_vec()).map_err(|_| SnapshotError::Key { index })?;
            let mod_revision = r.u64("record revision")?;
            let create_revision = r.u64("record revision")?;
            for rev in [mod_revision, create_revision] {
                if rev > revision {
                    return Err(SnapshotError::Revision { index, revision: rev, snapshot: revision });
                }
            }
            let len = r.u32("record value length")? as usize;
            let value = r.take(len, "record value")?.to_vec();
            records.push(Record { key, value, mod_revision, create_revision });
        }
        if !r.bytes.is_empty() {
            return Err(SnapshotError::Trailing(r.bytes.len()));
        }
        Ok(Snapshot { revision, records })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SnapshotError> {
        if self.bytes.len() < n {
            return Err(SnapshotError::Truncated(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, SnapshotError> {
        let b = self.take(8, what)?;
        Ok(u64::from_be_bytes(b.try_into().map_err(|_| SnapshotError::Truncated(what))?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes(b.try_into().map_err(|_| SnapshotError::Truncated(what))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            revision: 42,
            records: vec![
                Record { key: "/registry/pods/default/a".into(), value: b"pod a".to_vec(), mod_revision: 40, create_revision: 7 },
                Record { key: "/registry/namespaces/default".into(), value: vec![], mod_revision: 1, create_revision: 1 },
            ],
        }
    }

    #[test]
    fn should_round_trip() {
        let s = sample();
        assert_eq!(Snapshot::decode(&s.encode()), Ok(s));
        assert_eq!(Snapshot::decode(&Snapshot::default().encode()), Ok(Snapshot::default()));
    }

    #[test]
    fn should_refuse_damaged_files() {
        let bytes = sample().encode();
        assert_eq!(Snapshot::decode(b"hello world, not a snapshot at all"), Err(SnapshotError::NotASnapshot));
        assert_eq!(Snapshot::decode(&bytes[..bytes.len() - 1]), Err(SnapshotError::Checksum));
        assert_eq!(Snapshot::decode(&bytes[..20]), Err(SnapshotError::Truncated("header")));
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert_eq!(Snapshot::decode(&flipped), Err(SnapshotError::Checksum));
        let mut v2 = bytes.clone();
        v2[9] = 2;
        assert_eq!(Snapshot::decode(&v2), Err(SnapshotError::Version(2)));
        // A consistent checksum over inconsistent content is still refused.
        let mut future = sample();
        future.records[0].mod_revision = 43;
        let e = Snapshot::decode(&future.encode()).expect_err("newer than the snapshot");
        assert_eq!(e.to_string(), "record 0: revision 43 is newer than the snapshot's 42");
    }
}
