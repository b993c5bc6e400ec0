//! The record formats of `__transaction_state`, byte-compatible with Kafka's.
//!
//! The key is an INT16 version (0) and the transactional id. The value has
//! its own INT16 version:
//!
//! - v0: producer id, producer epoch, transaction timeout, status (INT8),
//!   the partitions of the transaction (a nullable array of topic and
//!   partition ids), last update time, start time.
//! - v1: v0 in the flexible encoding with three tagged fields: the previous
//!   producer id (tag 0), the next producer id (tag 1) and the client's
//!   transaction version (tag 2). Runnel writes v1.
//!
//! A tombstone (null value) removes the transactional id. Decoding never
//! trusts a length or count, as in the offsets topic's codec.

use std::collections::BTreeMap;

use crate::group::records::{Reader, RecordError, Writer};
use crate::txn::state::TxnState;

/// The key version Kafka writes.
const KEY_VERSION: i16 = 0;
/// The value version Runnel writes.
pub const VALUE_VERSION: i16 = 1;

const TAG_PREVIOUS_PRODUCER_ID: u64 = 0;
const TAG_NEXT_PRODUCER_ID: u64 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u64 = 2;

/// A transactional id's state as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    /// -1 when none (v1 only).
    pub previous_producer_id: i64,
    /// -1 when none (v1 only).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Topic to partitions; empty when the transaction holds none.
    pub partitions: BTreeMap<String, Vec<i32>>,
    pub last_update_ms: i64,
    pub start_ms: i64,
    /// 0 when unknown (v1 only).
    pub client_transaction_version: i16,
}

/// Encodes the key of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut w = Writer::new(false);
    w.i16(KEY_VERSION);
    w.string(transactional_id);
    w.out
}

/// Decodes a key into its transactional id.
pub fn decode_key(bytes: &[u8]) -> Result<String, RecordError> {
    let mut r = Reader::new(bytes, false);
    match r.i16()? {
        KEY_VERSION => r.string(),
        version => Err(RecordError::UnknownVersion { what: "transaction log key", version }),
    }
}

impl TxnValue {
    /// Encodes at [`VALUE_VERSION`].
    pub fn encode(&self) -> Vec<u8> {
        self.encode_version(VALUE_VERSION)
    }

    /// Encodes at version 0 or 1; v0 drops the tagged fields.
    pub fn encode_version(&self, version: i16) -> Vec<u8> {
        assert!((0..=1).contains(&version), "transaction log value version {version}");
        let flexible = version >= 1;
        let mut w = Writer::new(flexible);
        w.i16(version);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.i32(self.timeout_ms);
        w.i8(self.state.code());
        w.count(self.partitions.len());
        for (topic, partitions) in &self.partitions {
            w.string(topic);
            w.count(partitions.len());
            for p in partitions {
                w.i32(*p);
            }
            w.tags();
        }
        w.i64(self.last_update_ms);
        w.i64(self.start_ms);
        if flexible {
            let mut tags: Vec<(u64, Vec<u8>)> = Vec::new();
            if self.previous_producer_id != -1 {
                tags.push((TAG_PREVIOUS_PRODUCER_ID, self.previous_producer_id.to_be_bytes().to_vec()));
            }
            if self.next_producer_id != -1 {
                tags.push((TAG_NEXT_PRODUCER_ID, self.next_producer_id.to_be_bytes().to_vec()));
            }
            if self.client_transaction_version != 0 {
                tags.push((TAG_CLIENT_TRANSACTION_VERSION, self.client_transaction_version.to_be_bytes().to_vec()));
            }
            w.uvarint(tags.len() as u64);
            for (tag, data) in tags {
                w.uvarint(tag);
                w.uvarint(data.len() as u64);
                w.out.extend_from_slice(&data);
            }
        }
        w.out
    }

    pub fn decode(bytes: &[u8]) -> Result<TxnValue, RecordError> {
        let version = Reader::new(bytes, false).i16()?;
        if !(0..=1).contains(&version) {
            return Err(RecordError::UnknownVersion { what: "transaction log value", version });
        }
        let flexible = version >= 1;
        let mut r = Reader::new(bytes, flexible);
        r.i16()?;
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let timeout_ms = r.i32()?;
        let status = r.i8()?;
        let state = TxnState::from_code(status)
            .ok_or(RecordError::UnknownVersion { what: "transaction status", version: status.into() })?;
        // A null partition list is an empty one.
        let count = r.length(true)?.unwrap_or(0);
        let mut partitions = BTreeMap::new();
        for _ in 0..count {
            let topic = r.string()?;
            let n = r.count()?;
            let mut ids = Vec::new();
            for _ in 0..n {
                ids.push(r.i32()?);
            }
            r.tags()?;
            partitions.entry(topic).or_insert_with(Vec::new).extend(ids);
        }
        let last_update_ms = r.i64()?;
        let start_ms = r.i64()?;
        let mut value = TxnValue {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
            client_transaction_version: 0,
        };
        if flexible {
            let tags = r.uvarint()?;
            for _ in 0..tags {
                let tag = r.uvarint()?;
                let size = usize::try_from(r.uvarint()?).map_err(|_| RecordError::Truncated)?;
                let data = r.take(size)?;
                match (tag, data.len()) {
                    (TAG_PREVIOUS_PRODUCER_ID, 8) => {
                        value.previous_producer_id = i64::from_be_bytes(data.try_into().expect("8 bytes"))
                    }
                    (TAG_NEXT_PRODUCER_ID, 8) => {
                        value.next_producer_id = i64::from_be_bytes(data.try_into().expect("8 bytes"))
                    }
                    (TAG_CLIENT_TRANSACTION_VERSION, 2) => {
                        value.client_transaction_version = i16::from_be_bytes(data.try_into().expect("2 bytes"))
                    }
                    (TAG_PREVIOUS_PRODUCER_ID..=TAG_CLIENT_TRANSACTION_VERSION, n) => {
                        return Err(RecordError::InvalidLength(n as i64))
                    }
                    // Tags a later version may add are skipped.
                    _ => {}
                }
            }
        }
        Ok(value)
    }
}

/// The `__transaction_state` partition of a transactional id: the same Java
/// `String.hashCode` rule as groups in `__consumer_offsets`.
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    crate::group::records::partition_for(transactional_id, partitions)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,12}"
    }

    fn state() -> impl Strategy<Value = TxnState> {
        proptest::sample::select(TxnState::ALL.to_vec())
    }

    fn value() -> impl Strategy<Value = TxnValue> {
        let ids = (any::<i64>(), any::<i64>(), any::<i64>(), any::<i16>(), any::<i32>());
        let partitions = proptest::collection::btree_map(text(), proptest::collection::vec(any::<i32>(), 0..4), 0..4);
        let rest = (state(), partitions, any::<i64>(), any::<i64>(), any::<i16>());
        (ids, rest).prop_map(|((pid, prev, next, epoch, timeout), (state, partitions, last, start, tv))| TxnValue {
            producer_id: pid,
            previous_producer_id: prev,
            next_producer_id: next,
            producer_epoch: epoch,
            timeout_ms: timeout,
            state,
            partitions,
            last_update_ms: last,
            start_ms: start,
            client_transaction_version: tv,
        })
    }

    proptest! {
        #[test]
        fn keys_round_trip(id in text()) {
            prop_assert_eq!(decode_key(&encode_key(&id)).unwrap(), id);
        }

        #[test]
        fn values_round_trip_at_every_version(value in value(), version in 0i16..=1) {
            let decoded = TxnValue::decode(&value.encode_version(version)).unwrap();
            let expected = if version == 0 {
                TxnValue { previous_producer_id: -1, next_producer_id: -1, client_transaction_version: 0, ..value }
            } else {
                value
            };
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_key(&bytes);
            let _ = TxnValue::decode(&bytes);
        }
    }

    /// Goal: the layout is Kafka's byte for byte. Method: a hand-written key
    /// and v0 value for one transaction over one partition.
    #[test]
    fn key_and_value_bytes_are_kafkas() {
        assert_eq!(encode_key("t"), vec![0, 0, 0, 1, b't']);
        let value = TxnValue {
            producer_id: 5,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 2,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: BTreeMap::from([("a".to_string(), vec![3])]),
            last_update_ms: 9,
            start_ms: 8,
            client_transaction_version: 0,
        };
        let mut expected = vec![0, 0];
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&2i16.to_be_bytes());
        expected.extend_from_slice(&60_000i32.to_be_bytes());
        expected.push(1); // Ongoing
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'a']);
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(&3i32.to_be_bytes());
        expected.extend_from_slice(&9i64.to_be_bytes());
        expected.extend_from_slice(&8i64.to_be_bytes());
        assert_eq!(value.encode_version(0), expected);
        // v1: compact array and string, then the tagged-field sections.
        let v1 = value.encode();
        assert_eq!(&v1[..2], &[0, 1]);
        assert_eq!(*v1.last().unwrap(), 0, "no tagged fields at their defaults");
        assert!(matches!(decode_key(&[0, 1, 0, 0]), Err(RecordError::UnknownVersion { version: 1, .. })));
    }

    /// Goal: a v0 value with a null partition list (what Kafka writes for an
    /// empty transaction) decodes to no partitions.
    #[test]
    fn null_partition_list_is_empty() {
        let mut bytes = vec![0, 0];
        bytes.extend_from_slice(&1i64.to_be_bytes());
        bytes.extend_from_slice(&0i16.to_be_bytes());
        bytes.extend_from_slice(&1000i32.to_be_bytes());
        bytes.push(4); // CompleteCommit
        bytes.extend_from_slice(&(-1i32).to_be_bytes());
        bytes.extend_from_slice(&7i64.to_be_bytes());
        bytes.extend_from_slice(&(-1i64).to_be_bytes());
        let value = TxnValue::decode(&bytes).unwrap();
        assert!(value.partitions.is_empty());
        assert_eq!(value.state, TxnState::CompleteCommit);
    }
}
