//! The group coordinator: consumer groups with the classic rebalance
//! protocol and committed offsets, persisted in `__consumer_offsets`.
//!
//! This broker coordinates every group (FindCoordinator always names it).
//! Groups live in memory in one map behind a mutex; each request runs its
//! state change on a blocking thread with the map locked, and when the change
//! must be stored (an offset commit, a group's metadata after a rebalance)
//! it appends the records to the group's `__consumer_offsets` partition under
//! the same lock, so the log holds changes in the order memory saw them. The
//! request's future then waits for the flush before it answers, like an
//! `acks=all` produce. One timer task ([`run`]) sleeps until the earliest
//! deadline of any group (a session timeout, the end of a join phase, a
//! pending member id) or until a request wakes it, and checks offset
//! retention every `offsets.retention.check.interval.ms`.
//!
//! On start [`Coordinator::load`] replays every partition of the offsets
//! topic: the last record for a key wins and tombstones delete.
//!
//! Transactional offset commits (TxnOffsetCommit) are written as a
//! transactional batch of the producer and held pending, invisible to
//! OffsetFetch, until the transaction coordinator writes the marker into the
//! same partition and calls [`Coordinator::complete_txn`]: a commit applies
//! them, an abort drops them. Loading does the same from the log: records of
//! a transaction wait for its marker, and those of a transaction still open
//! at the end of the log stay pending. Members of
//! a restored group keep their assignment and must heartbeat within their
//! session timeout (or rejoin); otherwise they are removed as usual.
//!
//! Submodules: [`records`] (Kafka's key and value formats), [`state`] (one
//! group's state machine), [`store`] (reading and writing the log). The
//! consumer group protocol (KIP-848) is in [`consumer`] (one group's state
//! machine), [`assignor`] (server-side assignors), [`consumer_coordinator`]
//! (its requests) and [`consumer_records`] (its records).

pub mod assignor;
pub mod consumer;
pub mod consumer_coordinator;
pub mod consumer_records;
pub mod records;
pub mod state;
pub mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use runnel_log::{Flusher, LogError};
use tokio::sync::{watch, Notify};

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::handler::now_ms;
use crate::partition::Partition;
use records::{GroupValue, OffsetValue, RecordKey};
use state::{Group, GroupError, GroupState, JoinRequest, JoinResult, Limits, Reply, SyncResult};
use store::{KeyValue, Written};

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Metric names of the coordinator.
pub const GROUPS: &str = "runnel_groups";
pub const GROUP_MEMBERS: &str = "runnel_group_members";
pub const GROUP_REBALANCES: &str = "runnel_group_rebalances_total";
pub const OFFSET_COMMITS: &str = "runnel_group_offset_commits_total";
pub const GROUP_LAG: &str = "runnel_group_lag";

/// Committed offsets by partition; `None` where nothing is committed.
pub type PartitionOffsets = Vec<(i32, Option<OffsetValue>)>;
/// Committed offsets by topic.
pub type TopicOffsets = Vec<(String, PartitionOffsets)>;
/// Each leaving member's outcome, and the metadata write to wait for.
pub type LeaveOutcome = (Vec<Result<(), GroupError>>, Option<Written>);
/// Each partition's OffsetDelete outcome by topic, and the write to wait for.
pub type OffsetDeleteOutcome = (Vec<(String, Vec<(i32, Result<(), OffsetDeleteError>)>)>, Option<Written>);

/// Whether `topic` is one of the broker's internal topics.
/// The member check of OffsetCommit and TxnOffsetCommit: a classic group's
/// member and generation, or, in a consumer-protocol group, the member and
/// its member epoch (sent as the generation).
fn validate_member_commit(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), GroupError> {
    match &group.consumer {
        Some(consumer) => consumer.validate_offsets(member_id, generation),
        None => group.validate_commit(member_id, instance_id, generation),
    }
}

pub fn is_internal_topic(topic: &str) -> bool {
    topic == OFFSETS_TOPIC || topic == crate::txn::TXN_TOPIC
}

/// An offset committed in a transaction that has not ended yet.
#[derive(Clone, Debug)]
struct PendingOffset {
    group: String,
    topic: String,
    partition: i32,
    value: OffsetValue,
    /// The `__consumer_offsets` partition the commit was written to.
    offsets_partition: i32,
}

/// The coordinator's settings, read once from the broker configuration.
#[derive(Clone, Copy, Debug)]
pub struct GroupConfig {
    pub offsets_partitions: i32,
    pub min_session: Duration,
    pub max_session: Duration,
    pub limits: Limits,
    pub metadata_max_bytes: usize,
    pub retention_ms: i64,
    pub retention_check_interval: Duration,
    pub consumer: consumer::ConsumerConfig,
}

impl GroupConfig {
    pub fn from_broker(config: &BrokerConfig) -> GroupConfig {
        GroupConfig {
            offsets_partitions: config.offsets_topic_num_partitions(),
            min_session: Duration::from_millis(config.group_min_session_timeout_ms()),
            max_session: Duration::from_millis(config.group_max_session_timeout_ms()),
            limits: Limits {
                initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms()),
                max_size: config.group_max_size(),
            },
            metadata_max_bytes: config.offset_metadata_max_bytes(),
            retention_ms: config.offsets_retention_minutes().saturating_mul(60_000),
            retention_check_interval: Duration::from_millis(config.offsets_retention_check_interval_ms()),
            consumer: consumer::ConsumerConfig::from_broker(config),
        }
    }
}

/// One partition's offset to commit.
#[derive(Clone, Debug)]
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    /// member id, instance id, client id, client host, metadata, assignment.
    pub members: Vec<MemberDescription>,
}

#[derive(Clone, Debug)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as ListGroups shows it.
#[derive(Clone, Debug)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
    /// The state of a consumer-protocol group (KIP-848), `None` for classic groups.
    pub consumer_state: Option<consumer::ConsumerGroupState>,
}

/// The group coordinator.
pub struct Coordinator {
    pub config: GroupConfig,
    groups: Mutex<HashMap<String, Group>>,
    /// Transactional offset commits by producer id, until their marker.
    /// Locked after `groups` when both are held.
    pending_txn: Mutex<HashMap<i64, Vec<PendingOffset>>>,
    partitions: OnceLock<Vec<Arc<Partition>>>,
    wake: Notify,
}

impl Coordinator {
    pub fn new(config: GroupConfig) -> Coordinator {
        Coordinator {
            config,
            groups: Mutex::new(HashMap::new()),
            pending_txn: Mutex::new(HashMap::new()),
            partitions: OnceLock::new(),
            wake: Notify::new(),
        }
    }

    /// The `__consumer_offsets` partition index of `group_id`.
    pub fn partition_index(&self, group_id: &str) -> i32 {
        records::partition_for(group_id, self.config.offsets_partitions)
    }

    fn partition(&self, group_id: &str) -> Result<&Arc<Partition>, GroupError> {
        let partitions = self.partitions.get().ok_or(GroupError::CoordinatorNotAvailable)?;
        let index = records::partition_for(group_id, partitions.len() as i32);
        partitions.get(index as usize).ok_or(GroupError::CoordinatorNotAvailable)
    }

    /// Replays the offsets topic's partitions into memory. Blocking; runs
    /// once at start, before the broker serves.
    /// `topic` resolves a topic id to its name and partition count (consumer
    /// groups store topics by id).
    pub fn load(
        &self,
        partitions: Vec<Arc<Partition>>,
        topic: impl Fn(&uuid::Uuid) -> Option<(String, i32)>,
    ) -> Result<(), LogError> {
        let started = Instant::now();
        let now = Instant::now();
        let now_ms = now_ms();
        let mut offsets: HashMap<String, BTreeMap<(String, i32), OffsetValue>> = HashMap::new();
        let mut metadata: HashMap<String, Option<GroupValue>> = HashMap::new();
        let mut pending: HashMap<i64, Vec<PendingOffset>> = HashMap::new();
        let mut records = 0usize;
        let mut consumer_groups = consumer_records::Loaded::default();
        for partition in &partitions {
            // Records of a transaction wait for its marker in this partition.
            let mut open: HashMap<i64, Vec<PendingOffset>> = HashMap::new();
            records += store::load(partition, |loaded| match loaded {
                store::Loaded::Marker { producer_id, commit } => {
                    let ended = open.remove(&producer_id).unwrap_or_default();
                    if commit {
                        for p in ended {
                            offsets.entry(p.group).or_default().insert((p.topic, p.partition), p.value);
                        }
                    }
                }
                store::Loaded::Record { key, value, txn } => match RecordKey::decode(key) {
                    Ok(RecordKey::Offset { group, topic, partition: p }) => match (value.map(OffsetValue::decode), txn)
                    {
                        (Some(Ok(v)), Some(producer_id)) => open.entry(producer_id).or_default().push(PendingOffset {
                            group,
                            topic,
                            partition: p,
                            value: v,
                            offsets_partition: partition.index,
                        }),
                        (Some(Ok(v)), None) => {
                            offsets.entry(group).or_default().insert((topic, p), v);
                        }
                        (None, _) => {
                            offsets.entry(group).or_default().remove(&(topic, p));
                        }
                        (Some(Err(e)), _) => tracing::warn!(error = %e, "skipping an undecodable offset commit value"),
                    },
                    Ok(RecordKey::Group { group }) => match value.map(GroupValue::decode) {
                        Some(Ok(v)) => {
                            metadata.insert(group, Some(v));
                        }
                        None => {
                            metadata.insert(group, None);
                        }
                        Some(Err(e)) => tracing::warn!(error = %e, "skipping an undecodable group metadata value"),
                    },
                    // Not an offset or classic group record: a consumer-protocol group's, or undecodable.
                    Err(e) => {
                        if !consumer_groups.apply(key, value) {
                            tracing::warn!(error = %e, "skipping an undecodable record key");
                        }
                    }
                },
            })?;
            for (producer_id, offsets) in open {
                pending.entry(producer_id).or_default().extend(offsets);
            }
        }
        *self.pending_txn.lock() = pending;
        let mut groups = self.groups.lock();
        for (id, value) in metadata {
            if let Some(value) = value {
                groups.insert(id.clone(), Group::from_value(&id, value, now, now_ms));
            }
        }
        for (id, offsets) in offsets {
            if offsets.is_empty() {
                continue;
            }
            groups.entry(id.clone()).or_insert_with(|| Group::new(&id, now_ms)).offsets = offsets;
        }
        let consumer_groups = consumer_groups.into_groups(topic, self.config.consumer.session_timeout, now);
        self.restore_consumer_groups(&mut groups, consumer_groups, now_ms);
        tracing::info!(
            groups = groups.len(),
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "consumer groups loaded"
        );
        drop(groups);
        let _ = self.partitions.set(partitions);
        Ok(())
    }

    /// Appends `entries` for `group_id`; on failure logs and returns the error.
    fn append(&self, flusher: &Flusher, group_id: &str, entries: &[KeyValue]) -> Result<Written, GroupError> {
        let partition = self.partition(group_id)?;
        store::append(partition, flusher, entries, now_ms()).map_err(|e| {
            tracing::error!(group = group_id, error = %e, "cannot write to the offsets topic");
            GroupError::CoordinatorNotAvailable
        })
    }

    fn metadata_entry(group: &Group) -> KeyValue {
        (RecordKey::Group { group: group.id.clone() }.encode(), Some(group.to_value().encode()))
    }

    /// Writes the group's metadata if its stored form changed.
    fn store_if_dirty(&self, flusher: &Flusher, group: &mut Group) -> Option<Result<Written, GroupError>> {
        if !group.take_dirty() {
            return None;
        }
        Some(self.append(flusher, &group.id.clone(), &[Self::metadata_entry(group)]))
    }

    fn check_session(&self, session: Duration) -> Result<(), GroupError> {
        if session < self.config.min_session || session > self.config.max_session {
            return Err(GroupError::InvalidSessionTimeout);
        }
        Ok(())
    }

    /// JoinGroup. Blocking (may write the group's metadata).
    pub fn join(&self, flusher: &Flusher, group_id: &str, req: JoinRequest) -> (Reply<JoinResult>, Option<Written>) {
        let member_id = req.member_id.clone();
        let refuse = |e| (Reply::Now(JoinResult::error(e, &member_id)), None);
        if group_id.is_empty() {
            return refuse(GroupError::InvalidGroupId);
        }
        if let Err(e) = self.check_session(req.session_timeout) {
            return refuse(e);
        }
        let now = Instant::now();
        let now_ms = now_ms();
        let mut groups = self.groups.lock();
        if !groups.contains_key(group_id) {
            if !req.member_id.is_empty() {
                return refuse(GroupError::UnknownMemberId);
            }
            groups.insert(group_id.to_string(), Group::new(group_id, now_ms));
        }
        let group = groups.get_mut(group_id).expect("inserted above");
        if let Some(consumer) = &group.consumer {
            // A consumer-protocol group takes classic members only once empty.
            if !consumer.members.is_empty() {
                return refuse(GroupError::InconsistentGroupProtocol);
            }
            if let Err(e) = self.append(flusher, group_id, &consumer_records::tombstones(group)) {
                return refuse(e);
            }
            group.consumer = None;
            group.protocol_type = None;
        }
        let client_id = req.client_id.clone();
        let reply =
            group.join(req, now, now_ms, self.config.limits, || format!("{client_id}-{}", uuid::Uuid::new_v4()));
        let written = match self.store_if_dirty(flusher, group) {
            Some(Ok(w)) => Some(w),
            Some(Err(e)) => return refuse(e),
            None => None,
        };
        drop(groups);
        self.wake.notify_one();
        (reply, written)
    }

    /// SyncGroup. Blocking. When the leader's assignment was written, the
    /// caller waits for the write and then calls [`Coordinator::finish_sync`]
    /// with the returned generation.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        flusher: &Flusher,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> (Reply<SyncResult>, Option<(Written, i32)>) {
        if group_id.is_empty() {
            return (Reply::Now(SyncResult::error(GroupError::InvalidGroupId)), None);
        }
        let now = Instant::now();
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return (Reply::Now(SyncResult::error(GroupError::UnknownMemberId)), None);
        };
        let reply = group.sync(member_id, instance_id, generation, protocol_type, protocol_name, assignments, now);
        let generation = group.generation;
        let written = match self.store_if_dirty(flusher, group) {
            Some(Ok(w)) => Some((w, generation)),
            Some(Err(_)) => {
                group.finish_sync(generation, false, now, now_ms(), self.config.limits);
                None
            }
            None => None,
        };
        drop(groups);
        self.wake.notify_one();
        (reply, written)
    }

    /// Hands out (or, if the write failed, withdraws) the leader's assignment.
    pub fn finish_sync(&self, group_id: &str, generation: i32, stored: bool) {
        let mut groups = self.groups.lock();
        if let Some(group) = groups.get_mut(group_id) {
            group.finish_sync(generation, stored, Instant::now(), now_ms(), self.config.limits);
        }
        drop(groups);
        self.wake.notify_one();
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        let group = groups.get_mut(group_id).ok_or(GroupError::UnknownMemberId)?;
        group.heartbeat(member_id, instance_id, generation, Instant::now())
    }

    /// LeaveGroup for a list of members. Blocking.
    pub fn leave(
        &self,
        flusher: &Flusher,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<LeaveOutcome, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let now = Instant::now();
        let now_ms = now_ms();
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Ok((members.iter().map(|_| Err(GroupError::UnknownMemberId)).collect(), None));
        };
        if group.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let results = members
            .iter()
            .map(|(member, instance)| group.leave(member, instance.as_deref(), now, now_ms, self.config.limits))
            .collect();
        let written = self.store_if_dirty(flusher, group).and_then(Result::ok);
        drop(groups);
        self.wake.notify_one();
        Ok((results, written))
    }

    /// OffsetCommit of entries the handler already validated (known
    /// partitions, metadata within `offset.metadata.max.bytes`). Blocking.
    pub fn commit(
        &self,
        flusher: &Flusher,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        entries: &[CommitEntry],
    ) -> Result<Option<Written>, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let now_ms = now_ms();
        let mut groups = self.groups.lock();
        if !groups.contains_key(group_id) {
            if generation >= 0 {
                // A group-managed commit for a group this coordinator does not know.
                return Err(GroupError::IllegalGeneration);
            }
            groups.insert(group_id.to_string(), Group::new(group_id, now_ms));
        }
        let group = groups.get_mut(group_id).expect("inserted above");
        validate_member_commit(group, member_id, instance_id, generation)?;
        if entries.is_empty() {
            return Ok(None);
        }
        let values: Vec<((String, i32), OffsetValue)> = entries
            .iter()
            .map(|e| {
                let value = OffsetValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: e.metadata.clone(),
                    commit_timestamp: now_ms,
                    expire_timestamp: -1,
                };
                ((e.topic.clone(), e.partition), value)
            })
            .collect();
        let kv: Vec<KeyValue> = values
            .iter()
            .map(|((topic, partition), value)| {
                let key =
                    RecordKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition: *partition };
                (key.encode(), Some(value.encode()))
            })
            .collect();
        let written = self.append(flusher, group_id, &kv)?;
        group.offsets.extend(values);
        metrics::counter!(OFFSET_COMMITS).increment(entries.len() as u64);
        Ok(Some(written))
    }

    /// TxnOffsetCommit of entries the handler already validated: checks the
    /// member like OffsetCommit, writes the offsets as a transactional batch
    /// of `producer` (id, epoch) and holds them pending until the
    /// transaction's marker. Blocking.
    #[allow(clippy::too_many_arguments, reason = "the request's parts")]
    pub fn txn_commit(
        &self,
        flusher: &Flusher,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        producer: (i64, i16),
        entries: &[CommitEntry],
    ) -> Result<Option<Written>, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let now_ms = now_ms();
        let groups = self.groups.lock();
        if let Some(group) = groups.get(group_id) {
            validate_member_commit(group, member_id, instance_id, generation)?;
        } else if generation >= 0 {
            return Err(GroupError::IllegalGeneration);
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let offsets_partition = self.partition_index(group_id);
        let pending: Vec<PendingOffset> = entries
            .iter()
            .map(|e| PendingOffset {
                group: group_id.to_string(),
                topic: e.topic.clone(),
                partition: e.partition,
                value: OffsetValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: e.metadata.clone(),
                    commit_timestamp: now_ms,
                    expire_timestamp: -1,
                },
                offsets_partition,
            })
            .collect();
        let kv: Vec<KeyValue> = pending
            .iter()
            .map(|p| {
                let key = RecordKey::Offset { group: p.group.clone(), topic: p.topic.clone(), partition: p.partition };
                (key.encode(), Some(p.value.encode()))
            })
            .collect();
        let partition = self.partition(group_id)?;
        let written = store::append_as(partition, flusher, &kv, now_ms, Some(producer)).map_err(|e| {
            tracing::error!(group = group_id, error = %e, "cannot write a transactional offset commit");
            GroupError::CoordinatorNotAvailable
        })?;
        self.pending_txn.lock().entry(producer.0).or_default().extend(pending);
        Ok(Some(written))
    }

    /// The transaction of `producer_id` ended in `__consumer_offsets`
    /// partition `offsets_partition` (its marker is written there): a commit
    /// applies its pending offsets to their groups, an abort drops them.
    pub fn complete_txn(&self, producer_id: i64, offsets_partition: i32, commit: bool) {
        let mut groups = self.groups.lock();
        let mut pending = self.pending_txn.lock();
        let Some(all) = pending.remove(&producer_id) else { return };
        let (ended, kept): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.offsets_partition == offsets_partition);
        if !kept.is_empty() {
            pending.insert(producer_id, kept);
        }
        if !commit {
            return;
        }
        let count = ended.len();
        let now_ms = now_ms();
        for p in ended {
            let group = groups.entry(p.group.clone()).or_insert_with(|| Group::new(&p.group, now_ms));
            group.offsets.insert((p.topic, p.partition), p.value);
        }
        metrics::counter!(OFFSET_COMMITS).increment(count as u64);
    }

    /// The partitions of `group_id` with transactional offsets waiting for
    /// their transaction's marker.
    pub fn pending_txn_partitions(&self, group_id: &str) -> HashSet<(String, i32)> {
        let pending = self.pending_txn.lock();
        pending.values().flatten().filter(|p| p.group == group_id).map(|p| (p.topic.clone(), p.partition)).collect()
    }

    /// Committed offsets of a group: of the named partitions, or of every
    /// partition when `topics` is `None`.
    pub fn fetch_offsets(&self, group_id: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> TopicOffsets {
        let groups = self.groups.lock();
        let offsets = groups.get(group_id).map(|g| &g.offsets);
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .into_iter()
                        .map(|p| (p, offsets.and_then(|o| o.get(&(topic.clone(), p))).cloned()))
                        .collect();
                    (topic, found)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, PartitionOffsets> = BTreeMap::new();
                for ((topic, partition), value) in offsets.into_iter().flatten() {
                    by_topic.entry(topic.clone()).or_default().push((*partition, Some(value.clone())));
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// OffsetDelete: removes committed offsets of topics no active member
    /// subscribes to. Returns each partition's outcome. Blocking.
    pub fn delete_offsets(
        &self,
        flusher: &Flusher,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<OffsetDeleteOutcome, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        let group = groups.get_mut(group_id).ok_or(GroupError::GroupIdNotFound)?;
        if group.state == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound);
        }
        let consumer = group.protocol_type.as_deref() == Some("consumer");
        if !group.members.is_empty() && !consumer {
            return Err(GroupError::NonEmptyGroup);
        }
        let subscribed = subscribed_topics(group);
        let mut removed = Vec::new();
        let results = topics
            .iter()
            .map(|(topic, partitions)| {
                let outcome = partitions
                    .iter()
                    .map(|&p| {
                        if subscribed.contains(topic.as_str()) {
                            return (p, Err(OffsetDeleteError::Subscribed));
                        }
                        if group.offsets.contains_key(&(topic.clone(), p)) {
                            removed.push((topic.clone(), p));
                        }
                        (p, Ok(()))
                    })
                    .collect();
                (topic.clone(), outcome)
            })
            .collect();
        if removed.is_empty() {
            return Ok((results, None));
        }
        let written = self.append(flusher, group_id, &tombstones(group_id, removed.iter(), false))?;
        for key in removed {
            group.offsets.remove(&key);
        }
        Ok((results, Some(written)))
    }

    pub fn list_groups(&self) -> Vec<GroupListing> {
        let groups = self.groups.lock();
        let mut out: Vec<GroupListing> = groups
            .values()
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
                consumer_state: g.consumer.as_ref().map(|c| c.state()),
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups of one group; an unknown group is described as Dead.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let groups = self.groups.lock();
        // A consumer-protocol group is not described here (Kafka answers
        // Dead up to DescribeGroups v5); ConsumerGroupDescribe describes it.
        let Some(group) = groups.get(group_id).filter(|g| g.consumer.is_none()) else {
            return GroupDescription {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        // Member metadata and assignments are shown once the group is stable.
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol.clone().unwrap_or_default();
        let members = group
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable { m.metadata(&protocol) } else { Bytes::new() },
                assignment: if stable { m.assignment.clone() } else { Bytes::new() },
            })
            .collect();
        GroupDescription {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: if stable { protocol } else { String::new() },
            members,
        }
    }

    /// DeleteGroups of one group: only a group without members; writes
    /// tombstones for its offsets and metadata. Blocking.
    pub fn delete_group(&self, flusher: &Flusher, group_id: &str) -> Result<Option<Written>, GroupError> {
        let mut groups = self.groups.lock();
        let group = groups.get_mut(group_id).ok_or(GroupError::GroupIdNotFound)?;
        match group.state {
            GroupState::Dead => return Err(GroupError::GroupIdNotFound),
            GroupState::Empty if group.is_empty_of_members() => {}
            _ => return Err(GroupError::NonEmptyGroup),
        }
        let mut kv = tombstones(group_id, group.offsets.keys(), true);
        kv.extend(consumer_records::tombstones(group));
        let written = self.append(flusher, group_id, &kv)?;
        group.mark_dead(now_ms());
        groups.remove(group_id);
        tracing::info!(group = group_id, "group deleted");
        Ok(Some(written))
    }

    /// Runs every group's timers; returns the next deadline. Blocking (may
    /// write metadata of groups that became empty).
    pub fn tick(&self, flusher: &Flusher) -> Option<Instant> {
        let now = Instant::now();
        let now_ms = now_ms();
        let mut groups = self.groups.lock();
        let mut next: Option<Instant> = None;
        for group in groups.values_mut() {
            if group.next_deadline().is_some_and(|d| d <= now) {
                group.tick(now, now_ms, self.config.limits);
                if let Some(Err(e)) = self.store_if_dirty(flusher, group) {
                    tracing::warn!(group = %group.id, error = %e, "group metadata not stored");
                }
            }
            self.tick_consumer(flusher, group, now);
            let consumer_deadline = group.consumer.as_ref().and_then(|c| c.next_deadline());
            next = [next, group.next_deadline(), consumer_deadline].into_iter().flatten().min();
        }
        next
    }

    /// Removes committed offsets of empty groups after
    /// `offsets.retention.minutes`, and groups left with nothing. The clock
    /// starts when the group became empty; for groups that never had members
    /// (standalone commits) at each offset's commit time. Blocking.
    pub fn expire_offsets(&self, flusher: &Flusher) {
        let now_ms = now_ms();
        let retention = self.config.retention_ms;
        let mut groups = self.groups.lock();
        let mut removed_groups = Vec::new();
        for group in groups.values_mut() {
            if group.state != GroupState::Empty || !group.is_empty_of_members() {
                continue;
            }
            let managed = group.protocol_type.is_some();
            let state_ts = group.state_timestamp_ms;
            let expired: Vec<(String, i32)> = group
                .offsets
                .iter()
                .filter(|(_, v)| {
                    let base = if managed { state_ts } else { v.commit_timestamp };
                    base.saturating_add(retention) <= now_ms
                })
                .map(|(k, _)| k.clone())
                .collect();
            let empty_after = expired.len() == group.offsets.len();
            let group_expired = empty_after && state_ts.saturating_add(retention) <= now_ms;
            if expired.is_empty() && !group_expired {
                continue;
            }
            let mut kv = tombstones(&group.id, expired.iter(), group_expired);
            if group_expired {
                kv.extend(consumer_records::tombstones(group));
            }
            if self.append(flusher, &group.id.clone(), &kv).is_err() {
                continue;
            }
            for key in &expired {
                group.offsets.remove(key);
            }
            tracing::info!(group = %group.id, offsets = expired.len(), "expired committed offsets");
            if group_expired {
                removed_groups.push(group.id.clone());
            }
        }
        for id in removed_groups {
            groups.remove(&id);
        }
    }

    /// Sets the coordinator's gauges; called when `/metrics` is scraped.
    pub fn record_metrics(&self, broker: &Broker) {
        let groups = self.groups.lock();
        let mut by_state: HashMap<GroupState, usize> = HashMap::new();
        let mut members = 0usize;
        for group in groups.values() {
            *by_state.entry(group.state).or_default() += 1;
            members += group.members.len() + group.consumer.as_ref().map_or(0, |c| c.members.len());
            for ((topic, partition), value) in &group.offsets {
                let Some(p) = broker.topic(topic).and_then(|t| t.partition(*partition).cloned()) else { continue };
                let lag = (p.high_watermark() - value.offset).max(0);
                let labels =
                    [("group", group.id.clone()), ("topic", topic.clone()), ("partition", partition.to_string())];
                metrics::gauge!(GROUP_LAG, &labels).set(lag as f64);
            }
        }
        drop(groups);
        for state in GroupState::ALL {
            let count = by_state.get(&state).copied().unwrap_or(0);
            metrics::gauge!(GROUPS, "state" => state.name()).set(count as f64);
        }
        metrics::gauge!(GROUP_MEMBERS).set(members as f64);
    }
}

/// Why OffsetDelete refuses a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetDeleteError {
    /// An active member subscribes to the topic.
    Subscribed,
}

/// Tombstones for some of a group's offsets and, when `metadata`, for its metadata.
fn tombstones<'a>(group_id: &str, offsets: impl Iterator<Item = &'a (String, i32)>, metadata: bool) -> Vec<KeyValue> {
    let mut kv: Vec<KeyValue> = offsets
        .map(|(topic, partition)| {
            let key = RecordKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition: *partition };
            (key.encode(), None)
        })
        .collect();
    if metadata {
        kv.push((RecordKey::Group { group: group_id.to_string() }.encode(), None));
    }
    kv
}

/// Topics the group's members subscribe to, from their consumer protocol
/// subscriptions (an undecodable subscription subscribes to nothing).
fn subscribed_topics(group: &Group) -> HashSet<String> {
    use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if let Some(consumer) = &group.consumer {
        return consumer.subscribed_topics().into_iter().collect();
    }
    let protocol = group.protocol.clone().unwrap_or_default();
    let mut topics = HashSet::new();
    for member in group.members.values() {
        let mut metadata = member.metadata(&protocol);
        if metadata.len() < 2 {
            continue;
        }
        let version = i16::from_be_bytes([metadata[0], metadata[1]]);
        let mut body = metadata.split_off(2);
        if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut body, version.clamp(0, 3)) {
            topics.extend(sub.topics.into_iter().map(|t| t.to_string()));
        }
    }
    topics
}

/// The coordinator's timer task: runs group deadlines and offset expiry
/// until `stop` changes.
pub async fn run(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let interval = broker.groups.config.retention_check_interval;
    let mut next_expiry = tokio::time::Instant::now() + interval;
    loop {
        let b = broker.clone();
        let next = tokio::task::spawn_blocking(move || b.groups.tick(b.logs.flusher()))
            .await
            .expect("group timers do not panic");
        if tokio::time::Instant::now() >= next_expiry {
            let b = broker.clone();
            tokio::task::spawn_blocking(move || b.groups.expire_offsets(b.logs.flusher()))
                .await
                .expect("offset expiry does not panic");
            next_expiry = tokio::time::Instant::now() + interval;
        }
        let until = next.map(tokio::time::Instant::from_std).map_or(next_expiry, |n| n.min(next_expiry));
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(until) => {}
            _ = broker.groups.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn open(dir: &std::path::Path) -> Arc<Broker> {
        let mut config = BrokerConfig::default();
        config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
        config.set("offsets.topic.num.partitions", "4", Source::Override).unwrap();
        config.set("offsets.retention.minutes", "1", Source::Override).unwrap();
        let broker = Broker::open(config).unwrap();
        if broker.topic("t").is_none() {
            broker.create_topic("t", 2, Default::default()).unwrap();
        }
        broker
    }

    fn entry(partition: i32, offset: i64) -> CommitEntry {
        CommitEntry { topic: "t".into(), partition, offset, leader_epoch: 3, metadata: format!("m{offset}") }
    }

    fn offset_of(broker: &Broker, group: &str, partition: i32) -> Option<OffsetValue> {
        let found = broker.groups.fetch_offsets(group, Some(vec![("t".into(), vec![partition])]));
        found[0].1[0].1.clone()
    }

    /// Goal: committed offsets, their tombstones and expiry are stored in
    /// `__consumer_offsets` and replayed on start. Method: commit for two
    /// groups, delete one group, reopen the broker and compare; then age a
    /// group's offsets past the retention, expire them and reopen again.
    #[test]
    fn offsets_and_deletions_survive_a_restart_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        let flusher = broker.logs.flusher();
        broker.groups.commit(flusher, "a", "", None, -1, &[entry(0, 5), entry(1, 9)]).unwrap();
        broker.groups.commit(flusher, "a", "", None, -1, &[entry(0, 6)]).unwrap();
        broker.groups.commit(flusher, "b", "", None, -1, &[entry(0, 1)]).unwrap();
        let refused = broker.groups.commit(flusher, "c", "m", None, 3, &[entry(0, 1)]);
        assert!(matches!(refused, Err(GroupError::IllegalGeneration)), "unknown group, managed commit");
        broker.groups.delete_group(flusher, "b").unwrap();
        broker.shutdown().unwrap();
        drop(broker);

        let broker = open(dir.path());
        let a0 = offset_of(&broker, "a", 0).unwrap();
        assert_eq!((a0.offset, a0.leader_epoch, a0.metadata.as_str()), (6, 3, "m6"));
        assert_eq!(offset_of(&broker, "a", 1).unwrap().offset, 9);
        assert!(offset_of(&broker, "b", 0).is_none(), "deleted group stays deleted");
        let listed: Vec<String> = broker.groups.list_groups().into_iter().map(|g| g.group_id).collect();
        assert_eq!(listed, vec!["a".to_string()]);

        // Not yet expired: nothing happens.
        broker.groups.expire_offsets(broker.logs.flusher());
        assert!(offset_of(&broker, "a", 0).is_some());
        {
            let mut groups = broker.groups.groups.lock();
            let group = groups.get_mut("a").unwrap();
            for value in group.offsets.values_mut() {
                value.commit_timestamp -= 61_000;
            }
            group.state_timestamp_ms -= 61_000;
        }
        broker.groups.expire_offsets(broker.logs.flusher());
        assert!(offset_of(&broker, "a", 0).is_none());
        assert!(broker.groups.list_groups().is_empty(), "a group left with nothing is removed");
        broker.shutdown().unwrap();
        drop(broker);

        let broker = open(dir.path());
        assert!(offset_of(&broker, "a", 0).is_none(), "expiry tombstones are replayed");
        assert!(broker.groups.list_groups().is_empty());
        broker.shutdown().unwrap();
    }
}
