//! The record formats of `__consumer_offsets`, byte-compatible with Kafka's.
//!
//! Every record's key starts with an INT16 version that says what it is:
//! versions 0 and 1 are an offset commit key (group, topic, partition), version
//! 2 a group metadata key (group). A record with a key and a null value is a
//! tombstone that deletes what the key names. Values carry their own INT16
//! version:
//!
//! - offset commit value v0: offset, metadata, commit timestamp; v1 adds an
//!   expire timestamp; v2 drops it again; v3 adds the leader epoch after the
//!   offset; v4 is v3 in the flexible encoding (compact strings, tagged
//!   fields). Runnel writes v3.
//! - group metadata value v0: protocol type, generation, protocol, leader,
//!   members; v1 adds each member's rebalance timeout; v2 adds the state
//!   timestamp; v3 adds each member's group instance id; v4 is v3 flexible.
//!   Runnel writes v3.
//!
//! Decoding never trusts a length or count: every read checks the bytes that
//! remain, and nothing is preallocated from a count.

use bytes::Bytes;

/// Key versions of offset commits.
const OFFSET_KEY_VERSIONS: [i16; 2] = [0, 1];
/// The key version of group metadata.
const GROUP_KEY_VERSION: i16 = 2;
/// The value versions Runnel writes.
pub const OFFSET_VALUE_VERSION: i16 = 3;
pub const GROUP_VALUE_VERSION: i16 = 3;

/// The key of a `__consumer_offsets` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

/// A committed offset as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only value v1 carries it; -1 otherwise.
    pub expire_timestamp: i64,
}

/// One member as stored in group metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's metadata as stored after a rebalance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when unknown (values before v2).
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// A record that cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    #[error("record is truncated")]
    Truncated,
    #[error("unknown {what} version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("invalid string or bytes length {0}")]
    InvalidLength(i64),
    #[error("string is not UTF-8")]
    NotUtf8,
    #[error("null where a value is required")]
    UnexpectedNull,
}

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }

    /// Encodes the key at the version Runnel writes (1 for offsets, 2 for groups).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(false);
        match self {
            RecordKey::Offset { group, topic, partition } => {
                w.i16(1);
                w.string(group);
                w.string(topic);
                w.i32(*partition);
            }
            RecordKey::Group { group } => {
                w.i16(GROUP_KEY_VERSION);
                w.string(group);
            }
        }
        w.out
    }

    pub fn decode(bytes: &[u8]) -> Result<RecordKey, RecordError> {
        let mut r = Reader::new(bytes, false);
        match r.i16()? {
            v if OFFSET_KEY_VERSIONS.contains(&v) => {
                Ok(RecordKey::Offset { group: r.string()?, topic: r.string()?, partition: r.i32()? })
            }
            GROUP_KEY_VERSION => Ok(RecordKey::Group { group: r.string()? }),
            version => Err(RecordError::UnknownVersion { what: "key", version }),
        }
    }
}

impl OffsetValue {
    /// Encodes at [`OFFSET_VALUE_VERSION`].
    pub fn encode(&self) -> Vec<u8> {
        self.encode_version(OFFSET_VALUE_VERSION)
    }

    /// Encodes at any version Kafka defines (0-4); fields the version lacks are dropped.
    pub fn encode_version(&self, version: i16) -> Vec<u8> {
        assert!((0..=4).contains(&version), "offset value version {version}");
        let mut w = Writer::new(version >= 4);
        w.i16(version);
        w.i64(self.offset);
        if version >= 3 {
            w.i32(self.leader_epoch);
        }
        w.string(&self.metadata);
        w.i64(self.commit_timestamp);
        if version == 1 {
            w.i64(self.expire_timestamp);
        }
        w.tags();
        w.out
    }

    pub fn decode(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
        let version = Reader::new(bytes, false).i16()?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnknownVersion { what: "offset value", version });
        }
        let mut r = Reader::new(bytes, version >= 4);
        r.i16()?;
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = r.string()?;
        let commit_timestamp = r.i64()?;
        let expire_timestamp = if version == 1 { r.i64()? } else { -1 };
        r.tags()?;
        Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp, expire_timestamp })
    }
}

impl GroupValue {
    /// Encodes at [`GROUP_VALUE_VERSION`].
    pub fn encode(&self) -> Vec<u8> {
        self.encode_version(GROUP_VALUE_VERSION)
    }

    /// Encodes at any version Kafka defines (0-4); fields the version lacks are dropped.
    pub fn encode_version(&self, version: i16) -> Vec<u8> {
        assert!((0..=4).contains(&version), "group value version {version}");
        let mut w = Writer::new(version >= 4);
        w.i16(version);
        w.string(&self.protocol_type);
        w.i32(self.generation);
        w.nullable_string(self.protocol.as_deref());
        w.nullable_string(self.leader.as_deref());
        if version >= 2 {
            w.i64(self.current_state_timestamp);
        }
        w.count(self.members.len());
        for m in &self.members {
            w.string(&m.member_id);
            if version >= 3 {
                w.nullable_string(m.group_instance_id.as_deref());
            }
            w.string(&m.client_id);
            w.string(&m.client_host);
            if version >= 1 {
                w.i32(m.rebalance_timeout_ms);
            }
            w.i32(m.session_timeout_ms);
            w.bytes(&m.subscription);
            w.bytes(&m.assignment);
            w.tags();
        }
        w.tags();
        w.out
    }

    pub fn decode(bytes: &[u8]) -> Result<GroupValue, RecordError> {
        let version = Reader::new(bytes, false).i16()?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnknownVersion { what: "group value", version });
        }
        let mut r = Reader::new(bytes, version >= 4);
        r.i16()?;
        let protocol_type = r.string()?;
        let generation = r.i32()?;
        let protocol = r.nullable_string()?;
        let leader = r.nullable_string()?;
        let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        let count = r.count()?;
        // Members are pushed one by one: the count only bounds the loop.
        let mut members = Vec::new();
        for _ in 0..count {
            let member_id = r.string()?;
            let group_instance_id = if version >= 3 { r.nullable_string()? } else { None };
            let client_id = r.string()?;
            let client_host = r.string()?;
            let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
            let session_timeout_ms = r.i32()?;
            let subscription = r.bytes()?;
            let assignment = r.bytes()?;
            r.tags()?;
            // Before v1 the rebalance timeout was the session timeout.
            let rebalance_timeout_ms = if version >= 1 { rebalance_timeout_ms } else { session_timeout_ms };
            members.push(MemberValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        r.tags()?;
        Ok(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp, members })
    }
}

/// The `__consumer_offsets` partition of a group: the absolute value of the
/// group id's Java `String.hashCode` (UTF-16 code units, wrapping 32-bit
/// arithmetic) modulo the partition count, where the absolute value of
/// `i32::MIN` is taken as 0, as Kafka does.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "the offsets topic has partitions");
    let hash = group.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// Big-endian writer of Kafka's classic and flexible encodings (also used
/// for `__transaction_state` records).
pub(crate) struct Writer {
    pub(crate) out: Vec<u8>,
    flexible: bool,
}

impl Writer {
    pub(crate) fn new(flexible: bool) -> Writer {
        Writer { out: Vec::new(), flexible }
    }
    pub(crate) fn i8(&mut self, v: i8) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    /// A length (or count) prefix; `None` is null.
    pub(crate) fn length(&mut self, len: Option<usize>, int32: bool) {
        match (self.flexible, len) {
            (true, None) => self.uvarint(0),
            (true, Some(n)) => self.uvarint(n as u64 + 1),
            (false, None) if int32 => self.i32(-1),
            (false, None) => self.i16(-1),
            (false, Some(n)) if int32 => self.i32(i32::try_from(n).expect("length fits INT32")),
            (false, Some(n)) => self.i16(i16::try_from(n).expect("string length fits INT16")),
        }
    }
    pub(crate) fn string(&mut self, s: &str) {
        self.nullable_string(Some(s));
    }
    pub(crate) fn nullable_string(&mut self, s: Option<&str>) {
        self.length(s.map(str::len), false);
        if let Some(s) = s {
            self.out.extend_from_slice(s.as_bytes());
        }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.length(Some(b.len()), true);
        self.out.extend_from_slice(b);
    }
    pub(crate) fn count(&mut self, n: usize) {
        self.length(Some(n), true);
    }
    /// An empty tagged-field section, in flexible versions only.
    pub(crate) fn tags(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }
}

/// Bounds-checked reader of Kafka's classic and flexible encodings.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], flexible: bool) -> Reader<'a> {
        Reader { buf, pos: 0, flexible }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len()).ok_or(RecordError::Truncated)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    pub(crate) fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(self.take(1)?[0] as i8)
    }
    pub(crate) fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    pub(crate) fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::InvalidLength(-1))
    }
    /// A length prefix: `None` for null.
    pub(crate) fn length(&mut self, int32: bool) -> Result<Option<usize>, RecordError> {
        let raw: i64 = if self.flexible {
            self.uvarint()? as i64 - 1
        } else if int32 {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match raw {
            -1 => Ok(None),
            n if n < -1 => Err(RecordError::InvalidLength(n)),
            n => Ok(Some(n as usize)),
        }
    }
    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        match self.length(false)? {
            None => Ok(None),
            Some(n) => {
                let raw = self.take(n)?;
                Ok(Some(std::str::from_utf8(raw).map_err(|_| RecordError::NotUtf8)?.to_string()))
            }
        }
    }
    pub(crate) fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?.ok_or(RecordError::UnexpectedNull)
    }
    pub(crate) fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let n = self.length(true)?.ok_or(RecordError::UnexpectedNull)?;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }
    pub(crate) fn count(&mut self) -> Result<usize, RecordError> {
        self.length(true)?.ok_or(RecordError::UnexpectedNull)
    }
    /// Skips a tagged-field section (flexible versions only).
    pub(crate) fn tags(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).map_err(|_| RecordError::Truncated)?;
            self.take(size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,12}"
    }

    fn member() -> impl Strategy<Value = MemberValue> {
        let ids = (text(), proptest::option::of(text()), text(), text());
        let numbers = (any::<i32>(), any::<i32>());
        let blobs = (proptest::collection::vec(any::<u8>(), 0..20), proptest::collection::vec(any::<u8>(), 0..20));
        (ids, numbers, blobs).prop_map(|((member_id, instance, client_id, host), (rebalance, session), (s, a))| {
            MemberValue {
                member_id,
                group_instance_id: instance,
                client_id,
                client_host: host,
                rebalance_timeout_ms: rebalance,
                session_timeout_ms: session,
                subscription: Bytes::from(s),
                assignment: Bytes::from(a),
            }
        })
    }

    fn group_value() -> impl Strategy<Value = GroupValue> {
        let head = (text(), any::<i32>(), proptest::option::of(text()), proptest::option::of(text()), any::<i64>());
        (head, proptest::collection::vec(member(), 0..4)).prop_map(
            |((protocol_type, generation, protocol, leader, ts), members)| GroupValue {
                protocol_type,
                generation,
                protocol,
                leader,
                current_state_timestamp: ts,
                members,
            },
        )
    }

    fn offset_value() -> impl Strategy<Value = OffsetValue> {
        (any::<i64>(), any::<i32>(), text(), any::<i64>(), any::<i64>()).prop_map(|(o, e, m, c, x)| OffsetValue {
            offset: o,
            leader_epoch: e,
            metadata: m,
            commit_timestamp: c,
            expire_timestamp: x,
        })
    }

    proptest! {
        #[test]
        fn keys_round_trip(group in text(), topic in text(), partition in any::<i32>(), is_offset in any::<bool>()) {
            let key = if is_offset {
                RecordKey::Offset { group, topic, partition }
            } else {
                RecordKey::Group { group }
            };
            prop_assert_eq!(RecordKey::decode(&key.encode()).unwrap(), key);
        }

        #[test]
        fn offset_values_round_trip_at_every_version(value in offset_value(), version in 0i16..=4) {
            let decoded = OffsetValue::decode(&value.encode_version(version)).unwrap();
            let expected = OffsetValue {
                leader_epoch: if version >= 3 { value.leader_epoch } else { -1 },
                expire_timestamp: if version == 1 { value.expire_timestamp } else { -1 },
                ..value
            };
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn group_values_round_trip_at_every_version(value in group_value(), version in 0i16..=4) {
            let decoded = GroupValue::decode(&value.encode_version(version)).unwrap();
            let mut expected = value;
            if version < 2 {
                expected.current_state_timestamp = -1;
            }
            for m in &mut expected.members {
                if version < 3 {
                    m.group_instance_id = None;
                }
                if version < 1 {
                    m.rebalance_timeout_ms = m.session_timeout_ms;
                }
            }
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = RecordKey::decode(&bytes);
            let _ = OffsetValue::decode(&bytes);
            let _ = GroupValue::decode(&bytes);
        }
    }

    /// Goal: the key layout is Kafka's byte for byte. Method: a hand-written
    /// offset key for group "g", topic "t", partition 3.
    #[test]
    fn offset_key_bytes_are_kafkas() {
        let key = RecordKey::Offset { group: "g".into(), topic: "t".into(), partition: 3 };
        assert_eq!(key.encode(), vec![0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        assert_eq!(RecordKey::decode(&[0, 2, 0, 1, b'g']).unwrap(), RecordKey::Group { group: "g".into() });
        assert!(matches!(RecordKey::decode(&[0, 9, 0, 0]), Err(RecordError::UnknownVersion { version: 9, .. })));
    }

    /// Goal: group to partition mapping matches Java's String.hashCode.
    /// Method: values computed by hand from the definition, including a
    /// non-ASCII id (UTF-16 units) and an id whose hash is i32::MIN.
    #[test]
    fn partition_follows_java_hash_code() {
        // "a".hashCode() = 97; "ab" = 97*31+98 = 3105.
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("ab", 50), 3105 % 50);
        assert_eq!(partition_for("", 50), 0);
        // "é" is one UTF-16 unit, 0xE9 = 233.
        assert_eq!(partition_for("é", 50), 233 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE, whose abs Kafka takes as 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // A negative hash uses its absolute value: "abcdefghij".hashCode() == -634317659.
        assert_eq!(partition_for("abcdefghij", 50), 634_317_659 % 50);
        assert_eq!(partition_for("groupA", 50), 1_237_460_574 % 50);
    }
}
