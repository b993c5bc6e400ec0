//! Consumer-protocol groups (KIP-848) in `__consumer_offsets`, in Kafka's
//! record layout, so a restarted broker knows the group, its members, their
//! subscriptions, the target assignment and what each member owns.
//!
//! Keys are an INT16 record type followed by the group id (and member id),
//! not flexible; values are an INT16 version (0) followed by a flexible
//! struct (compact strings and arrays, a tagged-field section):
//!
//! | type | key | value |
//! |---|---|---|
//! | 3 | group | group epoch |
//! | 5 | group, member | instance id, rack id, client id, client host, subscribed topic names, regex, rebalance timeout, server assignor |
//! | 6 | group | assignment epoch |
//! | 7 | group, member | target partitions by topic id |
//! | 8 | group, member | member epoch, previous epoch, state, assigned partitions, partitions pending revocation |
//!
//! Type 4 (subscribed topics' partition metadata) is not written: the
//! partition counts are read from the broker at load and on every
//! heartbeat. A group's stored form is the map of every record it should
//! have ([`ConsumerGroup::stored_form`]); after a change the coordinator
//! appends the records whose value changed and tombstones for those that
//! went away, so the compacted log always holds the current group.
//! Topics are stored by id; a topic that no longer exists at load is dropped
//! from subscriptions' assignments.
//!
//! Decoding never trusts a length or count: every read checks the bytes that
//! remain.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use runnel_log::Flusher;
use uuid::Uuid;

use super::assignor::Assignment;
use super::consumer::{ConsumerGroup, ConsumerMember, MemberState, TopicRegex};
use super::state::{Group, GroupError, GroupState};
use super::store::{KeyValue, Written};
use super::Coordinator;

const GROUP_METADATA: i16 = 3;
const MEMBER_METADATA: i16 = 5;
const TARGET_METADATA: i16 = 6;
const TARGET_MEMBER: i16 = 7;
const CURRENT_ASSIGNMENT: i16 = 8;

/// Every record a consumer group should have: key bytes to value bytes.
pub type StoredForm = BTreeMap<Vec<u8>, Vec<u8>>;

/// A consumer-protocol record key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsumerKey {
    Group { group: String },
    Member { group: String, member: String },
    TargetEpoch { group: String },
    Target { group: String, member: String },
    Current { group: String, member: String },
}

impl ConsumerKey {
    pub fn group(&self) -> &str {
        match self {
            ConsumerKey::Group { group }
            | ConsumerKey::TargetEpoch { group }
            | ConsumerKey::Member { group, .. }
            | ConsumerKey::Target { group, .. }
            | ConsumerKey::Current { group, .. } => group,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        let (kind, group, member) = match self {
            ConsumerKey::Group { group } => (GROUP_METADATA, group, None),
            ConsumerKey::TargetEpoch { group } => (TARGET_METADATA, group, None),
            ConsumerKey::Member { group, member } => (MEMBER_METADATA, group, Some(member)),
            ConsumerKey::Target { group, member } => (TARGET_MEMBER, group, Some(member)),
            ConsumerKey::Current { group, member } => (CURRENT_ASSIGNMENT, group, Some(member)),
        };
        w.i16(kind);
        w.legacy_string(group);
        if let Some(member) = member {
            w.legacy_string(member);
        }
        w.buf
    }

    /// `None` for a key of another kind (offsets, classic group metadata).
    pub fn decode(bytes: &[u8]) -> Option<Result<ConsumerKey, DecodeError>> {
        let mut r = Reader::new(bytes);
        let kind = r.i16().ok()?;
        if !matches!(kind, GROUP_METADATA | MEMBER_METADATA | TARGET_METADATA | TARGET_MEMBER | CURRENT_ASSIGNMENT) {
            return None;
        }
        let decoded = (|| {
            let group = r.legacy_string()?;
            Ok(match kind {
                GROUP_METADATA => ConsumerKey::Group { group },
                TARGET_METADATA => ConsumerKey::TargetEpoch { group },
                MEMBER_METADATA => ConsumerKey::Member { group, member: r.legacy_string()? },
                TARGET_MEMBER => ConsumerKey::Target { group, member: r.legacy_string()? },
                _ => ConsumerKey::Current { group, member: r.legacy_string()? },
            })
        })();
        Some(decoded)
    }
}

/// A stored value that cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("undecodable consumer group record: {0}")]
pub struct DecodeError(&'static str);

/// A member's metadata as stored (type 5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: Vec<String>,
    pub regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// A member's current assignment as stored (type 8); partitions by topic id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentValue {
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: i8,
    pub assigned: BTreeMap<Uuid, BTreeSet<i32>>,
    pub revoking: BTreeMap<Uuid, BTreeSet<i32>>,
}

fn value_header(w: &mut Writer) {
    w.i16(0);
}

pub fn encode_epoch(epoch: i32) -> Vec<u8> {
    let mut w = Writer::default();
    value_header(&mut w);
    w.i32(epoch);
    w.tags();
    w.buf
}

pub fn decode_epoch(bytes: &[u8]) -> Result<i32, DecodeError> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let epoch = r.i32()?;
    r.tags()?;
    Ok(epoch)
}

impl MemberValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        value_header(&mut w);
        w.nullable_string(self.instance_id.as_deref());
        w.nullable_string(self.rack_id.as_deref());
        w.nullable_string(Some(&self.client_id));
        w.nullable_string(Some(&self.client_host));
        w.count(self.subscribed.len());
        for topic in &self.subscribed {
            w.nullable_string(Some(topic));
        }
        w.nullable_string(self.regex.as_deref());
        w.i32(self.rebalance_timeout_ms);
        w.nullable_string(self.server_assignor.as_deref());
        w.tags();
        w.buf
    }

    pub fn decode(bytes: &[u8]) -> Result<MemberValue, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let instance_id = r.nullable_string()?;
        let rack_id = r.nullable_string()?;
        let client_id = r.string()?;
        let client_host = r.string()?;
        let mut subscribed = Vec::new();
        for _ in 0..r.count()? {
            subscribed.push(r.string()?);
        }
        let regex = r.nullable_string()?;
        let rebalance_timeout_ms = r.i32()?;
        let server_assignor = r.nullable_string()?;
        r.tags()?;
        Ok(MemberValue {
            instance_id,
            rack_id,
            client_id,
            client_host,
            subscribed,
            regex,
            rebalance_timeout_ms,
            server_assignor,
        })
    }
}

fn write_partitions(w: &mut Writer, partitions: &BTreeMap<Uuid, BTreeSet<i32>>) {
    w.count(partitions.len());
    for (id, ps) in partitions {
        w.buf.extend_from_slice(id.as_bytes());
        w.count(ps.len());
        for &p in ps {
            w.i32(p);
        }
        w.tags();
    }
}

fn read_partitions(r: &mut Reader) -> Result<BTreeMap<Uuid, BTreeSet<i32>>, DecodeError> {
    let mut out = BTreeMap::new();
    for _ in 0..r.count()? {
        let id = Uuid::from_bytes(r.take(16)?.try_into().expect("16 bytes"));
        let mut ps = BTreeSet::new();
        for _ in 0..r.count()? {
            ps.insert(r.i32()?);
        }
        r.tags()?;
        out.insert(id, ps);
    }
    Ok(out)
}

pub fn encode_target(partitions: &BTreeMap<Uuid, BTreeSet<i32>>) -> Vec<u8> {
    let mut w = Writer::default();
    value_header(&mut w);
    write_partitions(&mut w, partitions);
    w.tags();
    w.buf
}

pub fn decode_target(bytes: &[u8]) -> Result<BTreeMap<Uuid, BTreeSet<i32>>, DecodeError> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let partitions = read_partitions(&mut r)?;
    r.tags()?;
    Ok(partitions)
}

impl CurrentValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        value_header(&mut w);
        w.i32(self.epoch);
        w.i32(self.previous_epoch);
        w.buf.push(self.state as u8);
        write_partitions(&mut w, &self.assigned);
        write_partitions(&mut w, &self.revoking);
        w.tags();
        w.buf
    }

    pub fn decode(bytes: &[u8]) -> Result<CurrentValue, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let epoch = r.i32()?;
        let previous_epoch = r.i32()?;
        let state = r.take(1)?[0] as i8;
        let assigned = read_partitions(&mut r)?;
        let revoking = read_partitions(&mut r)?;
        r.tags()?;
        Ok(CurrentValue { epoch, previous_epoch, state, assigned, revoking })
    }
}

fn state_code(state: MemberState) -> i8 {
    match state {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

fn state_of(code: i8) -> MemberState {
    match code {
        1 => MemberState::UnrevokedPartitions,
        2 => MemberState::UnreleasedPartitions,
        _ => MemberState::Stable,
    }
}

impl ConsumerGroup {
    fn by_id(&self, assignment: &Assignment) -> BTreeMap<Uuid, BTreeSet<i32>> {
        assignment
            .iter()
            .filter(|(_, ps)| !ps.is_empty())
            .filter_map(|(name, ps)| self.topic_ids.get(name).map(|id| (*id, ps.clone())))
            .collect()
    }

    /// Every record the group should have in `__consumer_offsets`.
    pub fn stored_form(&self, group_id: &str) -> StoredForm {
        let group = group_id.to_string();
        let mut out = StoredForm::new();
        out.insert(ConsumerKey::Group { group: group.clone() }.encode(), encode_epoch(self.epoch));
        out.insert(ConsumerKey::TargetEpoch { group: group.clone() }.encode(), encode_epoch(self.assignment_epoch));
        for (id, m) in &self.members {
            let member = MemberValue {
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed: m.subscribed.iter().cloned().collect(),
                regex: m.regex.as_ref().map(|r| r.source.clone()),
                rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                server_assignor: m.server_assignor.clone(),
            };
            let key = |make: fn(String, String) -> ConsumerKey| make(group.clone(), id.clone()).encode();
            out.insert(key(|group, member| ConsumerKey::Member { group, member }), member.encode());
            let target = self.target.get(id).map(|t| self.by_id(t)).unwrap_or_default();
            out.insert(key(|group, member| ConsumerKey::Target { group, member }), encode_target(&target));
            let current = CurrentValue {
                epoch: m.epoch,
                previous_epoch: m.previous_epoch,
                state: state_code(m.state),
                assigned: self.by_id(&m.assigned),
                revoking: self.by_id(&m.revoking),
            };
            out.insert(key(|group, member| ConsumerKey::Current { group, member }), current.encode());
        }
        out
    }
}

/// The records that turn `before` into `after`: changed values and
/// tombstones for keys that went away.
pub fn diff(before: &StoredForm, after: &StoredForm) -> Vec<KeyValue> {
    let mut out: Vec<KeyValue> =
        after.iter().filter(|(k, v)| before.get(*k) != Some(v)).map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    out.extend(before.keys().filter(|k| !after.contains_key(*k)).map(|k| (k.clone(), None)));
    out
}

/// Tombstones for every record of a consumer group (deleted, expired, or
/// taken over by the classic protocol).
pub fn tombstones(group: &Group) -> Vec<KeyValue> {
    match &group.consumer {
        Some(consumer) => diff(&consumer.stored_form(&group.id), &StoredForm::new()),
        None => Vec::new(),
    }
}

/// Consumer group records read from the log, last value per key.
#[derive(Debug, Default)]
pub struct Loaded {
    records: BTreeMap<ConsumerKey, Option<Vec<u8>>>,
}

impl Loaded {
    /// Takes a record if its key is a consumer group key; false otherwise.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> bool {
        match ConsumerKey::decode(key) {
            None => false,
            Some(Ok(k)) => {
                self.records.insert(k, value.map(<[u8]>::to_vec));
                true
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "skipping an undecodable consumer group key");
                true
            }
        }
    }

    /// Rebuilds the groups. `topic` resolves a topic id to its name and
    /// partition count. Members get a fresh session.
    pub fn into_groups(
        self,
        topic: impl Fn(&Uuid) -> Option<(String, i32)>,
        session: Duration,
        now: Instant,
    ) -> HashMap<String, ConsumerGroup> {
        let mut groups: HashMap<String, ConsumerGroup> = HashMap::new();
        let live = self.records.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
        let names = |g: &mut ConsumerGroup, ids: BTreeMap<Uuid, BTreeSet<i32>>| -> Assignment {
            let mut out = Assignment::new();
            for (id, ps) in ids {
                if let Some((name, count)) = topic(&id) {
                    g.topic_ids.insert(name.clone(), id);
                    g.partition_counts.insert(name.clone(), count);
                    out.insert(name, ps.into_iter().filter(|&p| p < count).collect());
                }
            }
            out
        };
        let mut members: BTreeMap<(String, String), (Option<MemberValue>, Option<CurrentValue>)> = BTreeMap::new();
        let mut targets: Vec<(String, String, BTreeMap<Uuid, BTreeSet<i32>>)> = Vec::new();
        for (key, value) in live {
            let result = match &key {
                ConsumerKey::Group { group } => decode_epoch(&value).map(|e| {
                    groups.entry(group.clone()).or_default().epoch = e;
                }),
                ConsumerKey::TargetEpoch { group } => decode_epoch(&value).map(|e| {
                    groups.entry(group.clone()).or_default().assignment_epoch = e;
                }),
                ConsumerKey::Member { group, member } => MemberValue::decode(&value).map(|v| {
                    members.entry((group.clone(), member.clone())).or_default().0 = Some(v);
                }),
                ConsumerKey::Current { group, member } => CurrentValue::decode(&value).map(|v| {
                    members.entry((group.clone(), member.clone())).or_default().1 = Some(v);
                }),
                ConsumerKey::Target { group, member } => {
                    decode_target(&value).map(|t| targets.push((group.clone(), member.clone(), t)))
                }
            };
            if let Err(e) = result {
                tracing::warn!(group = key.group(), error = %e, "skipping an undecodable consumer group value");
            }
        }
        for ((group_id, member_id), (meta, current)) in members {
            let (Some(meta), Some(group)) = (meta, groups.get_mut(&group_id)) else { continue };
            let current = current.unwrap_or_default();
            let assigned = names(group, current.assigned);
            let revoking = names(group, current.revoking);
            for t in &meta.subscribed {
                if let Some(id) = group.topic_ids.get(t).copied() {
                    if let Some((_, count)) = topic(&id) {
                        group.partition_counts.insert(t.clone(), count);
                    }
                }
            }
            let member = ConsumerMember {
                id: member_id.clone(),
                instance_id: meta.instance_id,
                rack_id: meta.rack_id,
                client_id: meta.client_id,
                client_host: meta.client_host,
                epoch: current.epoch,
                previous_epoch: current.previous_epoch,
                state: state_of(current.state),
                rebalance_timeout: Duration::from_millis(u64::try_from(meta.rebalance_timeout_ms).unwrap_or(0)),
                subscribed: meta.subscribed.into_iter().collect(),
                // A stored regex was valid when stored; its matches are found
                // again at the group's next heartbeat.
                regex: meta.regex.as_deref().and_then(|r| TopicRegex::new(r).ok()),
                regex_matches: BTreeSet::new(),
                server_assignor: meta.server_assignor,
                assigned,
                revoking,
                session_deadline: now + session,
                revoke_deadline: None,
            };
            group.restore_member(member);
        }
        for (group_id, member_id, target) in targets {
            if let Some(group) = groups.get_mut(&group_id) {
                if group.members.contains_key(&member_id) {
                    let target = names(group, target);
                    group.target.insert(member_id, target);
                }
            }
        }
        groups
    }
}

impl Coordinator {
    /// Appends the records that changed since `before`; `None` if nothing did.
    pub(super) fn store_consumer_if_changed(
        &self,
        flusher: &Flusher,
        group_id: &str,
        group: &ConsumerGroup,
        before: &StoredForm,
    ) -> Result<Option<Written>, GroupError> {
        let entries = diff(before, &group.stored_form(group_id));
        if entries.is_empty() {
            return Ok(None);
        }
        self.append(flusher, group_id, &entries).map(Some)
    }

    /// Puts loaded consumer groups into the coordinator's map. Called by
    /// [`Coordinator::load`] with the map locked.
    pub(super) fn restore_consumer_groups(
        &self,
        groups: &mut HashMap<String, Group>,
        loaded: HashMap<String, ConsumerGroup>,
        now_ms: i64,
    ) {
        for (id, consumer) in loaded {
            let group = groups.entry(id.clone()).or_insert_with(|| Group::new(&id, now_ms));
            group.protocol_type = Some(super::consumer_coordinator::CONSUMER_PROTOCOL_TYPE.to_string());
            group.protocol = None;
            group.members.clear();
            group.state = if consumer.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
            tracing::info!(group = %id, members = consumer.members.len(), epoch = consumer.epoch, "consumer group restored");
            group.consumer = Some(Box::new(consumer));
        }
    }
}

/// Writes the binary forms: INT16 strings in keys, compact types in values.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    fn legacy_string(&mut self, s: &str) {
        let len = i16::try_from(s.len()).expect("group and member ids are shorter than 32 KiB");
        self.i16(len);
        self.buf.extend_from_slice(s.as_bytes());
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            None => self.uvarint(0),
            Some(s) => {
                self.uvarint(s.len() as u64 + 1);
                self.buf.extend_from_slice(s.as_bytes());
            }
        }
    }
    fn count(&mut self, n: usize) {
        self.uvarint(n as u64 + 1);
    }
    fn tags(&mut self) {
        self.uvarint(0);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn version(&mut self) -> Result<(), DecodeError> {
        match self.i16()? {
            0 => Ok(()),
            _ => Err(DecodeError("unknown value version")),
        }
    }
    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }
    fn legacy_string(&mut self) -> Result<String, DecodeError> {
        let len = usize::try_from(self.i16()?).map_err(|_| DecodeError("negative length"))?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| DecodeError("not utf-8"))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, DecodeError> {
        let len = self.uvarint()?;
        if len == 0 {
            return Ok(None);
        }
        let len = usize::try_from(len - 1).map_err(|_| DecodeError("length"))?;
        String::from_utf8(self.take(len)?.to_vec()).map(Some).map_err(|_| DecodeError("not utf-8"))
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        self.nullable_string()?.ok_or(DecodeError("null string"))
    }
    /// An array count; each element takes at least one byte, so a count
    /// larger than the bytes left is refused before any loop runs.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.uvarint()?.checked_sub(1).ok_or(DecodeError("null array"))?;
        let n = usize::try_from(n).map_err(|_| DecodeError("count"))?;
        if n > self.buf.len() {
            return Err(DecodeError("count larger than the record"));
        }
        Ok(n)
    }
    fn tags(&mut self) -> Result<(), DecodeError> {
        for _ in 0..self.uvarint()? {
            let _tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).map_err(|_| DecodeError("size"))?;
            self.take(size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Goal: keys have Kafka's layout (INT16 type, INT16-length strings).
    #[test]
    fn key_bytes_are_kafkas() {
        let key = ConsumerKey::Member { group: "g".into(), member: "m1".into() };
        assert_eq!(key.encode(), vec![0, 5, 0, 1, b'g', 0, 2, b'm', b'1']);
        assert_eq!(ConsumerKey::decode(&key.encode()), Some(Ok(key)));
        // Offset commit keys (version 1) are not consumer group keys.
        assert_eq!(ConsumerKey::decode(&[0, 1, 0, 0]), None);
    }

    proptest! {
        /// Goal: values round-trip and arbitrary bytes never panic.
        #[test]
        fn values_round_trip(
            epoch in any::<i32>(),
            subscribed in proptest::collection::vec("[a-z]{1,5}", 0..4),
            ps in proptest::collection::btree_set(0..100i32, 0..5),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            prop_assert_eq!(decode_epoch(&encode_epoch(epoch)), Ok(epoch));
            let member = MemberValue { client_id: "c".into(), subscribed, rebalance_timeout_ms: epoch, ..MemberValue::default() };
            prop_assert_eq!(MemberValue::decode(&member.encode()), Ok(member));
            let id = Uuid::from_u128(epoch as u128);
            let current = CurrentValue { epoch, previous_epoch: epoch / 2, state: 1, assigned: [(id, ps.clone())].into(), revoking: BTreeMap::new() };
            prop_assert_eq!(CurrentValue::decode(&current.encode()), Ok(current));
            let target: BTreeMap<Uuid, BTreeSet<i32>> = [(id, ps)].into();
            prop_assert_eq!(decode_target(&encode_target(&target)), Ok(target));
            let _outcomes = (MemberValue::decode(&junk), CurrentValue::decode(&junk), decode_target(&junk), ConsumerKey::decode(&junk));
        }
    }
}
