//! One consumer group's state machine (the classic rebalance protocol).
//!
//! States: Empty (no members), PreparingRebalance (waiting for members to
//! rejoin), CompletingRebalance (joined, waiting for the leader's assignment),
//! Stable, and Dead (deleted; never kept in the coordinator's map). The
//! methods here are synchronous and take the current time as an argument, so
//! they are tested without a runtime or real clocks. A member waiting for a
//! JoinGroup or SyncGroup response holds a one-shot channel that the group
//! completes when the rebalance moves on; the request's future awaits the
//! receiver and never blocks the connection.
//!
//! Whenever the stored form of the group changes (a rebalance completed to
//! Empty, an assignment, a static member replaced) the group marks itself
//! `dirty`, and the coordinator writes its metadata to `__consumer_offsets`
//! before the answer that depends on it goes out.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::oneshot;

use super::records::{GroupValue, MemberValue, OffsetValue};

/// The classic protocol's group states, with Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Why a group request is refused; mapped to Kafka error codes in `error.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("rebalance in progress")]
    RebalanceInProgress,
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    #[error("member id required")]
    MemberIdRequired,
    #[error("fenced instance id")]
    FencedInstanceId,
    #[error("group max size reached")]
    GroupMaxSizeReached,
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("group id not found")]
    GroupIdNotFound,
    #[error("group is not empty")]
    NonEmptyGroup,
    // The consumer group protocol (KIP-848).
    #[error("fenced member epoch")]
    FencedMemberEpoch,
    #[error("stale member epoch")]
    StaleMemberEpoch,
    #[error("unreleased instance id")]
    UnreleasedInstanceId,
    #[error("unsupported assignor")]
    UnsupportedAssignor,
    #[error("invalid request")]
    InvalidRequest,
    #[error("invalid regular expression")]
    InvalidRegularExpression,
}

/// Broker settings the state machine applies.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub initial_rebalance_delay: Duration,
    pub max_size: usize,
}

/// A member as another member's leader sees it in a JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The outcome of a JoinGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResult {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only.
    pub members: Vec<JoinedMember>,
    pub skip_assignment: bool,
}

impl JoinResult {
    pub fn error(error: GroupError, member_id: &str) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// The outcome of a SyncGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResult {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: GroupError) -> SyncResult {
        SyncResult { error: Some(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// An answer now, or a receiver completed when the rebalance moves on.
#[derive(Debug)]
pub enum Reply<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// A JoinGroup as the state machine sees it.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// JoinGroup v4+: an unknown member first gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v9+ understands `skip_assignment` (KIP-814).
    pub supports_skip_assignment: bool,
}

/// A member of the group.
#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub heartbeat_deadline: Instant,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// The member's metadata for `protocol`, empty if it has none.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    fn awaiting(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }
}

/// The initial-rebalance delay (`group.initial.rebalance.delay.ms`) of an
/// empty group's first rebalance: it waits `delay`, and again as long as new
/// members keep arriving, up to the rebalance timeout.
#[derive(Clone, Copy, Debug)]
struct InitialDelay {
    remaining: Duration,
    new_member_added: bool,
}

#[derive(Clone, Copy, Debug)]
struct Rebalance {
    deadline: Instant,
    initial: Option<InitialDelay>,
}

/// One group: membership, generation, assignments and committed offsets.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    /// When the group entered its current state (ms since the epoch).
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: IndexMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline by
    /// which they must join.
    pending: HashMap<String, Instant>,
    /// Group instance id → member id (static membership, KIP-345).
    static_members: HashMap<String, String>,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    rebalance: Option<Rebalance>,
    /// The leader's assignment, held until its metadata record is written.
    pending_assignment: Option<(i32, HashMap<String, Bytes>)>,
    /// The stored form changed and must be written.
    dirty: bool,
    /// Set when the group uses the consumer group protocol (KIP-848); its
    /// membership then lives there (see `consumer_coordinator`).
    pub consumer: Option<Box<super::consumer::ConsumerGroup>>,
}

impl Group {
    pub fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            offsets: BTreeMap::new(),
            rebalance: None,
            pending_assignment: None,
            dirty: false,
            consumer: None,
        }
    }

    /// Rebuilds a group from its stored metadata. Members are kept with a
    /// fresh session: they must heartbeat (or rejoin) within their session
    /// timeout or they are removed, as after a coordinator move in Kafka.
    pub fn from_value(id: &str, value: GroupValue, now: Instant, now_ms: i64) -> Group {
        let mut group = Group::new(id, now_ms);
        group.protocol_type = Some(value.protocol_type).filter(|p| !p.is_empty());
        group.generation = value.generation;
        group.protocol = value.protocol;
        group.leader = value.leader;
        if value.current_state_timestamp >= 0 {
            group.state_timestamp_ms = value.current_state_timestamp;
        }
        for m in value.members {
            let session = Duration::from_millis(u64::try_from(m.session_timeout_ms).unwrap_or(0));
            let rebalance = Duration::from_millis(u64::try_from(m.rebalance_timeout_ms).unwrap_or(0));
            let protocol = group.protocol.clone().unwrap_or_default();
            if let Some(instance) = &m.group_instance_id {
                group.static_members.insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: session,
                    rebalance_timeout: rebalance,
                    protocols: vec![(protocol, m.subscription)],
                    assignment: m.assignment,
                    heartbeat_deadline: now + session,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        group.state = if group.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        if group.leader.as_ref().is_none_or(|l| !group.members.contains_key(l)) {
            group.leader = group.members.keys().next().cloned();
        }
        group
    }

    /// The stored form of the group, with the pending assignment if any.
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        let pending = self.pending_assignment.as_ref().map(|(_, a)| a);
        let members = self
            .members
            .values()
            .map(|m| MemberValue {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                session_timeout_ms: m.session_timeout.as_millis() as i32,
                subscription: m.metadata(&protocol),
                assignment: pending.and_then(|p| p.get(&m.id).cloned()).unwrap_or_else(|| m.assignment.clone()),
            })
            .collect();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members,
        }
    }

    /// Whether the stored form changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn is_empty_of_members(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    fn set_state(&mut self, state: GroupState, now_ms: i64) {
        if self.state != state {
            tracing::debug!(group = %self.id, from = self.state.name(), to = state.name(), "group state change");
            self.state = state;
            self.state_timestamp_ms = now_ms;
        }
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default()
    }

    /// Protocols every member supports (and, for a new member, that it
    /// supports too).
    fn candidate_protocols<'a>(&'a self, extra: Option<&'a [(String, Bytes)]>) -> Vec<&'a str> {
        let mut lists = self.members.values().map(|m| m.protocols.as_slice()).chain(extra);
        let Some(first) = lists.next() else { return Vec::new() };
        let mut candidates: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
        for list in lists {
            candidates.retain(|c| list.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(name, _)| self.candidate_protocols(None).contains(&name.as_str()))
    }

    /// The protocol all members support that most members prefer: each
    /// member votes for the first candidate in its own preference order;
    /// ties go to the protocol the first member prefers.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols(None);
        let mut votes: IndexMap<&str, usize> = IndexMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(n, _)| candidates.contains(&n.as_str())) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let max = votes.values().copied().max()?;
        votes.into_iter().find(|(_, v)| *v == max).map(|(name, _)| name.to_string())
    }

    /// Handles a JoinGroup whose session timeout and group id the coordinator
    /// has already checked.
    pub fn join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: Limits,
        new_member_id: impl FnOnce() -> String,
    ) -> Reply<JoinResult> {
        if self.state == GroupState::Dead {
            return Reply::Now(JoinResult::error(GroupError::CoordinatorNotAvailable, &req.member_id));
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return Reply::Now(JoinResult::error(GroupError::InconsistentGroupProtocol, &req.member_id));
        }
        if req.member_id.is_empty() {
            self.join_new_member(req, now, now_ms, limits, new_member_id)
        } else {
            self.join_known_member(req, now, now_ms, limits)
        }
    }

    fn has_room(&self, limits: Limits) -> bool {
        self.members.len() + self.pending.len() < limits.max_size
    }

    fn join_new_member(
        &mut self,
        req: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: Limits,
        new_member_id: impl FnOnce() -> String,
    ) -> Reply<JoinResult> {
        let member_id = new_member_id();
        if let Some(instance) = req.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(req, &old_id, member_id, now, now_ms, limits);
            }
        }
        if !self.has_room(limits) {
            return Reply::Now(JoinResult::error(GroupError::GroupMaxSizeReached, ""));
        }
        if req.require_known_member_id && req.instance_id.is_none() {
            // KIP-394: the member must come back with this id within its session timeout.
            self.pending.insert(member_id.clone(), now + req.session_timeout);
            return Reply::Now(JoinResult::error(GroupError::MemberIdRequired, &member_id));
        }
        self.add_member_and_rebalance(req, member_id, now, now_ms, limits)
    }

    fn join_known_member(&mut self, req: JoinRequest, now: Instant, now_ms: i64, limits: Limits) -> Reply<JoinResult> {
        let member_id = req.member_id.clone();
        if self.pending.contains_key(&member_id) {
            self.pending.remove(&member_id);
            return self.add_member_and_rebalance(req, member_id, now, now_ms, limits);
        }
        if let Some(instance) = &req.instance_id {
            match self.static_members.get(instance) {
                Some(known) if *known != member_id => {
                    return Reply::Now(JoinResult::error(GroupError::FencedInstanceId, &member_id))
                }
                None => return Reply::Now(JoinResult::error(GroupError::UnknownMemberId, &member_id)),
                Some(_) => {}
            }
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return Reply::Now(JoinResult::error(GroupError::UnknownMemberId, &member_id));
        };
        member.heartbeat_deadline = now + member.session_timeout;
        let unchanged = member.protocols == req.protocols;
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(req, now, now_ms, limits),
            GroupState::CompletingRebalance if unchanged => Reply::Now(self.join_result(&member_id, false)),
            GroupState::Stable if unchanged && self.leader.as_deref() != Some(member_id.as_str()) => {
                Reply::Now(self.join_result(&member_id, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(req, now, now_ms, limits)
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(JoinResult::error(GroupError::UnknownMemberId, &member_id))
            }
        }
    }

    /// A static member came back with a new member id: the old id is fenced
    /// and the new one takes over its assignment. In a Stable group with the
    /// same protocols this needs no rebalance (KIP-345).
    fn replace_static_member(
        &mut self,
        req: JoinRequest,
        old_id: &str,
        new_id: String,
        now: Instant,
        now_ms: i64,
        limits: Limits,
    ) -> Reply<JoinResult> {
        let Some(mut member) = self.members.shift_remove(old_id) else {
            self.static_members.remove(req.instance_id.as_deref().unwrap_or_default());
            return self.add_member_and_rebalance(req, new_id, now, now_ms, limits);
        };
        if let Some(waiter) = member.join_waiter.take() {
            let _ignored = waiter.send(JoinResult::error(GroupError::FencedInstanceId, old_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ignored = waiter.send(SyncResult::error(GroupError::FencedInstanceId));
        }
        let unchanged = member.protocols == req.protocols;
        member.id = new_id.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.heartbeat_deadline = now + req.session_timeout;
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        let was_leader = self.leader.as_deref() == Some(old_id);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        tracing::info!(group = %self.id, instance = ?req.instance_id, old = old_id, new = %new_id, "static member replaced");
        if self.state == GroupState::Stable && unchanged {
            self.dirty = true;
            // The leader keeps the current assignment: it gets the member list with
            // skip_assignment where it understands it, and none otherwise.
            let mut result = self.join_result(&new_id, was_leader && req.supports_skip_assignment);
            if was_leader && !req.supports_skip_assignment {
                result.members.clear();
            }
            return Reply::Now(result);
        }
        let mut req = req;
        req.member_id = new_id;
        self.update_member_and_rebalance(req, now, now_ms, limits)
    }

    fn add_member_and_rebalance(
        &mut self,
        req: JoinRequest,
        member_id: String,
        now: Instant,
        now_ms: i64,
        limits: Limits,
    ) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            Member {
                id: member_id.clone(),
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocols: req.protocols,
                assignment: Bytes::new(),
                heartbeat_deadline: now + req.session_timeout,
                join_waiter: Some(tx),
                sync_waiter: None,
            },
        );
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        if let Some(Rebalance { initial: Some(initial), .. }) = &mut self.rebalance {
            initial.new_member_added = true;
        }
        tracing::info!(group = %self.id, member = %member_id, members = self.members.len(), "member joined");
        self.maybe_prepare_rebalance(now, now_ms, limits);
        self.try_complete_join(now, now_ms);
        Reply::Wait(rx)
    }

    fn update_member_and_rebalance(
        &mut self,
        req: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: Limits,
    ) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let member = self.members.get_mut(&req.member_id).expect("caller checked the member");
        member.protocols = req.protocols;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.heartbeat_deadline = now + req.session_timeout;
        if let Some(old) = member.join_waiter.replace(tx) {
            // A second join from the same member replaces the first; the first learns it was superseded.
            let _ignored = old.send(JoinResult::error(GroupError::RebalanceInProgress, &req.member_id));
        }
        self.maybe_prepare_rebalance(now, now_ms, limits);
        self.try_complete_join(now, now_ms);
        Reply::Wait(rx)
    }

    fn maybe_prepare_rebalance(&mut self, now: Instant, now_ms: i64, limits: Limits) {
        if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty) {
            self.prepare_rebalance(now, now_ms, limits);
        }
    }

    fn prepare_rebalance(&mut self, now: Instant, now_ms: i64, limits: Limits) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_assignments_with_error(GroupError::RebalanceInProgress);
        }
        let timeout = self.rebalance_timeout();
        let initial_delay = limits.initial_rebalance_delay.min(timeout);
        self.rebalance = Some(if self.state == GroupState::Empty && !initial_delay.is_zero() {
            let remaining = timeout.saturating_sub(limits.initial_rebalance_delay);
            let initial = InitialDelay { remaining, new_member_added: false };
            Rebalance { deadline: now + initial_delay, initial: Some(initial) }
        } else {
            Rebalance { deadline: now + timeout, initial: None }
        });
        tracing::info!(group = %self.id, generation = self.generation, "preparing rebalance");
        self.set_state(GroupState::PreparingRebalance, now_ms);
    }

    fn reset_assignments_with_error(&mut self, error: GroupError) {
        self.pending_assignment = None;
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            if let Some(waiter) = member.sync_waiter.take() {
                let _ignored = waiter.send(SyncResult::error(error));
            }
        }
    }

    /// Completes the join phase early once every known member has rejoined
    /// (never during the initial delay, which waits for more members).
    fn try_complete_join(&mut self, now: Instant, now_ms: i64) {
        let Some(rebalance) = self.rebalance else { return };
        if self.state != GroupState::PreparingRebalance || rebalance.initial.is_some() {
            return;
        }
        let all_joined = self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some());
        if all_joined {
            self.complete_join(now, now_ms);
        }
    }

    fn complete_join(&mut self, now: Instant, now_ms: i64) {
        self.rebalance = None;
        let gone: Vec<String> =
            self.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.id.clone()).collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member removed: did not rejoin before the rebalance timeout");
            self.remove_member(&id);
        }
        self.generation += 1;
        metrics::counter!(super::GROUP_REBALANCES).increment(1);
        if self.members.is_empty() {
            self.protocol = None;
            self.set_state(GroupState::Empty, now_ms);
            self.dirty = true;
            tracing::info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        self.protocol = self.select_protocol();
        self.set_state(GroupState::CompletingRebalance, now_ms);
        tracing::info!(
            group = %self.id,
            generation = self.generation,
            protocol = ?self.protocol,
            members = self.members.len(),
            "rebalance joined; waiting for the leader's assignment"
        );
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result(&id, false);
            let member = self.members.get_mut(&id).expect("listed member");
            member.heartbeat_deadline = now + member.session_timeout;
            if let Some(waiter) = member.join_waiter.take() {
                let _ignored = waiter.send(result);
            }
        }
    }

    fn join_result(&self, member_id: &str, skip_assignment: bool) -> JoinResult {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if is_leader {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment,
        }
    }

    fn remove_member(&mut self, member_id: &str) {
        let Some(member) = self.members.shift_remove(member_id) else { return };
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// Removes a member (left or expired) and moves the group on.
    fn remove_member_and_update(&mut self, member_id: &str, now: Instant, now_ms: i64, limits: Limits) {
        self.remove_member(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, now_ms, limits);
                // With no members left, the join phase is already complete.
                self.try_complete_join(now, now_ms);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(known) if known != member_id => return Err(GroupError::FencedInstanceId),
                None => return Err(GroupError::UnknownMemberId),
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    /// Handles a SyncGroup. The leader's call returns `Wait` and leaves the
    /// assignment pending: the coordinator writes the group's metadata, then
    /// calls [`Group::finish_sync`].
    #[allow(clippy::too_many_arguments, reason = "the fields of a SyncGroup request")]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncResult> {
        if self.state == GroupState::Dead {
            return Reply::Now(SyncResult::error(GroupError::CoordinatorNotAvailable));
        }
        if let Err(e) = self.check_member(member_id, instance_id) {
            return Reply::Now(SyncResult::error(e));
        }
        if generation != self.generation {
            return Reply::Now(SyncResult::error(GroupError::IllegalGeneration));
        }
        let type_mismatch = protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref());
        let name_mismatch = protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref());
        if type_mismatch || name_mismatch {
            return Reply::Now(SyncResult::error(GroupError::InconsistentGroupProtocol));
        }
        let is_leader = self.leader.as_deref() == Some(member_id);
        let member = self.members.get_mut(member_id).expect("checked member");
        member.heartbeat_deadline = now + member.session_timeout;
        match self.state {
            GroupState::Empty => Reply::Now(SyncResult::error(GroupError::UnknownMemberId)),
            GroupState::PreparingRebalance => Reply::Now(SyncResult::error(GroupError::RebalanceInProgress)),
            GroupState::Stable => Reply::Now(SyncResult {
                error: None,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol.clone(),
                assignment: member.assignment.clone(),
            }),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(old) = member.sync_waiter.replace(tx) {
                    let _ignored = old.send(SyncResult::error(GroupError::RebalanceInProgress));
                }
                if is_leader && self.pending_assignment.is_none() {
                    // Members the leader left out get an empty assignment; names it
                    // invented are ignored.
                    let mut map: HashMap<String, Bytes> = HashMap::new();
                    for (id, assignment) in assignments {
                        if self.members.contains_key(&id) {
                            map.insert(id, assignment);
                        }
                    }
                    self.pending_assignment = Some((self.generation, map));
                    self.dirty = true;
                }
                Reply::Wait(rx)
            }
            GroupState::Dead => unreachable!("handled above"),
        }
    }

    /// Applies the leader's assignment once its metadata record is written
    /// (`stored`), or gives up on this generation when the write failed.
    pub fn finish_sync(&mut self, generation: i32, stored: bool, now: Instant, now_ms: i64, limits: Limits) {
        let Some((pending_generation, assignments)) = self.pending_assignment.take() else { return };
        if pending_generation != generation
            || self.generation != generation
            || self.state != GroupState::CompletingRebalance
        {
            return;
        }
        if !stored {
            self.reset_assignments_with_error(GroupError::CoordinatorNotAvailable);
            self.prepare_rebalance(now, now_ms, limits);
            return;
        }
        let protocol_type = self.protocol_type.clone();
        let protocol_name = self.protocol.clone();
        for member in self.members.values_mut() {
            member.assignment = assignments.get(&member.id).cloned().unwrap_or_default();
            if let Some(waiter) = member.sync_waiter.take() {
                let _ignored = waiter.send(SyncResult {
                    error: None,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: member.assignment.clone(),
                });
            }
        }
        self.set_state(GroupState::Stable, now_ms);
        tracing::info!(group = %self.id, generation, members = self.members.len(), "group is stable");
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        let member = self.members.get_mut(member_id).expect("checked member");
        member.heartbeat_deadline = now + member.session_timeout;
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
        }
    }

    /// Handles one member of a LeaveGroup. An empty member id with an
    /// instance id names the static member by its instance id.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        now_ms: i64,
        limits: Limits,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let target = if member_id.is_empty() {
            let instance = instance_id.ok_or(GroupError::UnknownMemberId)?;
            self.static_members.get(instance).cloned().ok_or(GroupError::UnknownMemberId)?
        } else if self.pending.remove(member_id).is_some() {
            self.try_complete_join(now, now_ms);
            return Ok(());
        } else {
            self.check_member(member_id, instance_id)?;
            member_id.to_string()
        };
        tracing::info!(group = %self.id, member = %target, "member left");
        self.remove_member_and_update(&target, now, now_ms, limits);
        Ok(())
    }

    /// Checks an OffsetCommit's member and generation. A negative generation
    /// with an empty member id is a standalone commit, accepted while the
    /// group has no members.
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if generation < 0 && member_id.is_empty() && instance_id.is_none() {
            return if self.state == GroupState::Empty { Ok(()) } else { Err(GroupError::UnknownMemberId) };
        }
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            // The member knows the new generation but has no assignment yet.
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// The earliest instant at which [`Group::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let rebalance = self.rebalance.map(|r| r.deadline);
        let pending = self.pending.values().copied().min();
        let members = self.members.values().filter(|m| !m.awaiting()).map(|m| m.heartbeat_deadline).min();
        [rebalance, pending, members].into_iter().flatten().min()
    }

    /// Expires pending members and members whose session ran out, and ends
    /// the join phase at its deadline.
    pub fn tick(&mut self, now: Instant, now_ms: i64, limits: Limits) {
        let before = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now);
        if self.pending.len() != before {
            self.try_complete_join(now, now_ms);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting() && m.heartbeat_deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member removed: session timeout expired");
            self.remove_member_and_update(&id, now, now_ms, limits);
        }
        if let Some(rebalance) = self.rebalance.filter(|r| r.deadline <= now) {
            match rebalance.initial {
                Some(initial) if initial.new_member_added && !initial.remaining.is_zero() => {
                    let delay = limits.initial_rebalance_delay.min(initial.remaining);
                    let remaining = initial.remaining.saturating_sub(delay);
                    let next = InitialDelay { remaining, new_member_added: false };
                    self.rebalance = Some(Rebalance { deadline: now + delay, initial: Some(next) });
                }
                _ => self.complete_join(now, now_ms),
            }
        }
    }

    /// Marks the group deleted: waiters learn the coordinator moved on.
    pub fn mark_dead(&mut self, now_ms: i64) {
        for member in self.members.values_mut() {
            if let Some(waiter) = member.join_waiter.take() {
                let _ignored = waiter.send(JoinResult::error(GroupError::CoordinatorNotAvailable, &member.id));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ignored = waiter.send(SyncResult::error(GroupError::CoordinatorNotAvailable));
            }
        }
        self.set_state(GroupState::Dead, now_ms);
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
