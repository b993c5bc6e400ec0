//! One consumer group of the consumer group protocol (KIP-848): membership
//! by heartbeat, a server-side target assignment and incremental
//! reconciliation.
//!
//! Members join with ConsumerGroupHeartbeat at epoch 0, heartbeat with their
//! current epoch, and leave with epoch -1 (or -2, a static member leaving
//! for a restart). Three epochs drive the group:
//!
//! - the *group epoch* advances whenever what the assignment depends on
//!   changes: a member joins or leaves, a subscription or the chosen
//!   assignor changes, or a subscribed topic gains partitions;
//! - the *assignment epoch* is the group epoch the target assignment was
//!   computed for; the target is recomputed as soon as the group epoch moves;
//! - each member's *member epoch* says which target it has reached.
//!
//! Reconciliation never stops the world. When a member's target no longer
//! holds partitions it owns, the member is first told to keep only the
//! intersection (`UnrevokedPartitions`); its epoch stays until a heartbeat
//! reports that it no longer owns the revoked partitions. Then the member
//! moves to the target epoch and gets the partitions of its target that no
//! other member still owns or is revoking; the rest follow on later
//! heartbeats once their previous owners let go (`UnreleasedPartitions`). A
//! partition therefore never has two owners, and members whose target did
//! not change keep consuming throughout.
//!
//! The pace is the heartbeat interval: the broker can only tell a member
//! something in the answer to its heartbeat. Runnel's default interval is
//! 500 ms (Kafka's is 5 s), so a member leaving or joining is reconciled
//! well within a second; and a member waiting for partitions that others
//! are still revoking is told to come back after at most
//! [`WAITING_HEARTBEAT_INTERVAL`], since those partitions are released by
//! the revoking member's next heartbeat, which clients send at once.
//!
//! Methods are synchronous and take the current instant, like the classic
//! state machine in [`super::state`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::assignor::{self, Assignment, MemberSpec};
use uuid::Uuid;

use super::state::GroupError;
use crate::config::BrokerConfig;

/// Member epoch of a member leaving the group.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member leaving temporarily (it may come back
/// with the same instance id within its session).
pub const LEAVE_STATIC_EPOCH: i32 = -2;

/// The longest heartbeat interval told to a member that waits for
/// partitions other members are revoking (`UnreleasedPartitions`). Revoking
/// members confirm with a heartbeat as soon as they let go, so the waiting
/// member asks again soon instead of a whole interval later.
pub const WAITING_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// The coordinator's settings for consumer groups.
#[derive(Clone, Copy, Debug)]
pub struct ConsumerConfig {
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
    pub max_size: usize,
    /// Assignors members may ask for, in the configured order; the first is
    /// the default.
    pub assignors: [Option<&'static str>; assignor::ASSIGNORS.len()],
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            heartbeat_interval: Duration::from_millis(500),
            session_timeout: Duration::from_millis(45_000),
            max_size: i32::MAX as usize,
            assignors: assignor::ASSIGNORS.map(Some),
        }
    }
}

impl ConsumerConfig {
    pub fn from_broker(config: &BrokerConfig) -> ConsumerConfig {
        let mut assignors = [None; assignor::ASSIGNORS.len()];
        let known = config
            .group_consumer_assignors()
            .into_iter()
            .filter_map(|name| assignor::ASSIGNORS.iter().copied().find(|a| a.eq_ignore_ascii_case(name)));
        for (slot, name) in assignors.iter_mut().zip(known) {
            *slot = Some(name);
        }
        ConsumerConfig {
            heartbeat_interval: Duration::from_millis(config.group_consumer_heartbeat_interval_ms()),
            session_timeout: Duration::from_millis(config.group_consumer_session_timeout_ms()),
            max_size: config.group_consumer_max_size(),
            assignors,
        }
    }

    /// The assignors members may choose, default first.
    pub fn assignor_names(&self) -> impl Iterator<Item = &'static str> {
        self.assignors.into_iter().flatten()
    }
}

/// A consumer group's state, with Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// Where a member is on its way to its target assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Owns its target at the assignment epoch.
    Stable,
    /// Must give up partitions before it may move on.
    UnrevokedPartitions,
    /// At the target epoch, waiting for partitions other members still own.
    UnreleasedPartitions,
}

/// A member of a consumer group.
#[derive(Clone, Debug)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub rebalance_timeout: Duration,
    /// Topic names the member subscribes to explicitly.
    pub subscribed: BTreeSet<String>,
    /// The member's subscription regular expression (matched against whole
    /// topic names, internal topics excluded), and the topics it matched at
    /// the last heartbeat of any member.
    pub regex: Option<TopicRegex>,
    pub regex_matches: BTreeSet<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member was told to own.
    pub assigned: Assignment,
    /// Partitions the member was told to give up and has not yet confirmed.
    pub revoking: Assignment,
    pub session_deadline: Instant,
    /// While revoking: the member is removed if it has not confirmed by then.
    pub revoke_deadline: Option<Instant>,
}

/// A subscription regular expression and its compiled form.
#[derive(Clone, Debug)]
pub struct TopicRegex {
    pub source: String,
    compiled: regex_automata::meta::Regex,
}

impl TopicRegex {
    /// Compiles `source` to match whole topic names.
    pub fn new(source: &str) -> Result<TopicRegex, GroupError> {
        let compiled = regex_automata::meta::Regex::new(&format!("^(?:{source})$"))
            .map_err(|_| GroupError::InvalidRegularExpression)?;
        Ok(TopicRegex { source: source.to_string(), compiled })
    }

    pub fn matches(&self, topic: &str) -> bool {
        self.compiled.is_match(topic)
    }
}

impl ConsumerMember {
    /// Every topic the member subscribes to: its names and its regex's matches.
    pub fn subscription(&self) -> BTreeSet<String> {
        self.subscribed.union(&self.regex_matches).cloned().collect()
    }
}

/// A ConsumerGroupHeartbeat as the state machine sees it. `None` fields
/// are unchanged since the member's previous heartbeat.
#[derive(Clone, Debug, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub rebalance_timeout_ms: i32,
    pub subscribed: Option<Vec<String>>,
    /// ConsumerGroupHeartbeat v1+: an empty string clears the regex.
    pub regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The partitions the member must own now, when it must learn them.
    pub assignment: Option<Assignment>,
}

/// A consumer group.
#[derive(Clone, Debug, Default)]
pub struct ConsumerGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment per member, for `assignment_epoch`.
    pub target: BTreeMap<String, Assignment>,
    /// Partition counts of the subscribed topics the target was computed from.
    pub partition_counts: BTreeMap<String, i32>,
    /// The assignor of the current target.
    pub assignor: String,
    /// Ids of the subscribed topics, for the stored form (topics by id).
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Group instance id → member id.
    static_members: HashMap<String, String>,
}

fn subtract(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (topic, ps) in a {
        let rest: BTreeSet<i32> = match b.get(topic) {
            Some(other) => ps.difference(other).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(topic.clone(), rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    subtract(a, &subtract(a, b))
}

fn union_into(into: &mut Assignment, more: &Assignment) {
    for (topic, ps) in more {
        into.entry(topic.clone()).or_default().extend(ps.iter().copied());
    }
}

fn is_empty(a: &Assignment) -> bool {
    a.values().all(BTreeSet::is_empty)
}

fn invalid(message: &str) -> GroupError {
    tracing::debug!(message, "invalid consumer group heartbeat");
    GroupError::InvalidRequest
}

impl ConsumerGroup {
    pub fn new() -> ConsumerGroup {
        ConsumerGroup::default()
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.assignment_epoch < self.epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable) {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// Topics any member subscribes to.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members.values().flat_map(|m| m.subscription()).collect()
    }

    /// Checks the fields of a heartbeat that do not depend on the group.
    pub fn validate(req: &Heartbeat, version: i16, config: &ConsumerConfig) -> Result<(), GroupError> {
        if req.instance_id.as_deref() == Some("") {
            return Err(invalid("instance id can't be empty"));
        }
        if req.member_id.is_empty() && (version >= 1 || req.member_epoch != 0) {
            return Err(invalid("member id can't be empty"));
        }
        match req.member_epoch {
            0 => {
                if req.rebalance_timeout_ms == -1 {
                    return Err(invalid("rebalance timeout must be set when joining"));
                }
                if req.subscribed.is_none() && req.regex.is_none() {
                    return Err(invalid("subscribed topic names or regex must be set when joining"));
                }
                if req.owned.as_ref().is_none_or(|o| !is_empty(o)) {
                    return Err(invalid("topic partitions must be empty when joining"));
                }
            }
            LEAVE_STATIC_EPOCH if req.instance_id.is_none() => {
                return Err(invalid("instance id is required to leave as a static member"));
            }
            e if e < LEAVE_STATIC_EPOCH => return Err(invalid("member epoch is invalid")),
            _ => {}
        }
        if let Some(regex) = req.regex.as_deref().filter(|r| !r.is_empty()) {
            TopicRegex::new(regex)?;
        }
        if let Some(name) = req.server_assignor.as_deref() {
            if !config.assignor_names().any(|a| a == name) {
                return Err(GroupError::UnsupportedAssignor);
            }
        }
        Ok(())
    }

    /// Handles a heartbeat that passed [`ConsumerGroup::validate`]. `topics`
    /// holds the id and partition count of every topic; `new_member_id`
    /// names a member whose client did not (ConsumerGroupHeartbeat v0).
    pub fn heartbeat(
        &mut self,
        mut req: Heartbeat,
        topics: &BTreeMap<String, (Uuid, i32)>,
        config: &ConsumerConfig,
        now: Instant,
        new_member_id: impl FnOnce() -> String,
    ) -> Result<HeartbeatAnswer, GroupError> {
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == LEAVE_STATIC_EPOCH {
            return self.leave(&req, config, now).map(|()| HeartbeatAnswer {
                member_id: req.member_id.clone(),
                member_epoch: req.member_epoch,
                heartbeat_interval_ms: 0,
                assignment: None,
            });
        }
        let joining = req.member_epoch == 0;
        let mut changed = false;
        if joining {
            if req.member_id.is_empty() {
                req.member_id = new_member_id();
            }
            changed = self.join(&req, config, now)?;
        }
        let id = req.member_id.clone();
        let member = self.members.get(&id).ok_or(GroupError::UnknownMemberId)?;
        if let Some(instance) = &req.instance_id {
            if self.static_members.get(instance).is_some_and(|owner| *owner != id) {
                return Err(GroupError::FencedInstanceId);
            }
        }
        if !joining {
            self.check_epoch(member, &req)?;
        }
        let before = (member.epoch, member.assigned.clone());
        changed |= self.update_member(&req, config, now);
        changed |= self.refresh_partition_counts(topics);
        if changed {
            self.bump_epoch();
        }
        if self.assignment_epoch < self.epoch {
            self.compute_target(config);
        }
        self.reconcile(&id, req.owned.as_ref(), now);
        let member = &self.members[&id];
        let reported_differs = req
            .owned
            .as_ref()
            .is_some_and(|o| !is_empty(&subtract(o, &member.assigned)) || !is_empty(&subtract(&member.assigned, o)));
        let send = joining || before.0 != member.epoch || before.1 != member.assigned || reported_differs;
        let interval = if member.state == MemberState::UnreleasedPartitions {
            config.heartbeat_interval.min(WAITING_HEARTBEAT_INTERVAL)
        } else {
            config.heartbeat_interval
        };
        Ok(HeartbeatAnswer {
            member_id: id.clone(),
            member_epoch: member.epoch,
            heartbeat_interval_ms: interval.as_millis() as i32,
            assignment: send.then(|| member.assigned.clone()),
        })
    }

    fn check_epoch(&self, member: &ConsumerMember, req: &Heartbeat) -> Result<(), GroupError> {
        if req.member_epoch == member.epoch {
            return Ok(());
        }
        // A member that missed the answer moving it on may retry with its
        // previous epoch, provided it owns nothing it should not.
        let retry = req.member_epoch == member.previous_epoch
            && req.owned.as_ref().is_some_and(|o| is_empty(&subtract(o, &member.assigned)));
        if req.member_epoch < member.epoch && retry {
            return Ok(());
        }
        Err(GroupError::FencedMemberEpoch)
    }

    /// Adds a joining member (epoch 0), or replaces a static member that
    /// left temporarily with the same instance id; true when the membership
    /// changed (the group epoch must advance).
    fn join(&mut self, req: &Heartbeat, config: &ConsumerConfig, now: Instant) -> Result<bool, GroupError> {
        if let Some(instance) = &req.instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                let old = &self.members[&old_id];
                if old.epoch != LEAVE_STATIC_EPOCH && old_id != req.member_id {
                    return Err(GroupError::UnreleasedInstanceId);
                }
                // The restarted static member takes over its predecessor's
                // partitions and epoch; the group epoch does not move.
                let mut member = self.members.remove(&old_id).expect("static member exists");
                member.id = req.member_id.clone();
                member.epoch = member.previous_epoch.max(0);
                if member.epoch == 0 {
                    member.epoch = self.assignment_epoch;
                }
                member.session_deadline = now + config.session_timeout;
                if let Some(target) = self.target.remove(&old_id) {
                    self.target.insert(req.member_id.clone(), target);
                }
                self.static_members.insert(instance.clone(), req.member_id.clone());
                self.members.insert(req.member_id.clone(), member);
                tracing::info!(member = %req.member_id, instance = %instance, "static member rejoined");
                return Ok(false);
            }
        }
        if self.members.contains_key(&req.member_id) {
            // A known member rejoining from scratch gives up what it owned.
            self.remove_member(&req.member_id.clone());
        } else if self.members.len() >= config.max_size {
            return Err(GroupError::GroupMaxSizeReached);
        }
        let member = ConsumerMember {
            id: req.member_id.clone(),
            instance_id: req.instance_id.clone(),
            rack_id: None,
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            epoch: 0,
            previous_epoch: -1,
            state: MemberState::Stable,
            rebalance_timeout: Duration::ZERO,
            subscribed: BTreeSet::new(),
            regex: None,
            regex_matches: BTreeSet::new(),
            server_assignor: None,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            session_deadline: now + config.session_timeout,
            revoke_deadline: None,
        };
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), req.member_id.clone());
        }
        self.members.insert(req.member_id.clone(), member);
        tracing::info!(
            member = %req.member_id,
            topics = ?req.subscribed,
            regex = ?req.regex,
            "consumer group member joined"
        );
        Ok(true)
    }

    fn leave(&mut self, req: &Heartbeat, config: &ConsumerConfig, now: Instant) -> Result<(), GroupError> {
        let id = match (&req.instance_id, self.members.contains_key(&req.member_id)) {
            (_, true) => req.member_id.clone(),
            (Some(instance), false) => self.static_members.get(instance).cloned().ok_or(GroupError::UnknownMemberId)?,
            (None, false) => return Err(GroupError::UnknownMemberId),
        };
        if req.member_epoch == LEAVE_STATIC_EPOCH {
            // Keeps its partitions for a successor with the same instance id.
            let member = self.members.get_mut(&id).expect("member exists");
            if member.epoch != LEAVE_STATIC_EPOCH {
                member.previous_epoch = member.epoch;
            }
            member.epoch = LEAVE_STATIC_EPOCH;
            member.session_deadline = now + config.session_timeout;
            tracing::info!(member = %id, "static member left temporarily");
            return Ok(());
        }
        self.remove_member(&id);
        self.bump_epoch();
        self.compute_target(config);
        tracing::info!(member = %id, "consumer group member left");
        Ok(())
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(member) = self.members.remove(id) {
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).is_some_and(|m| m == id) {
                    self.static_members.remove(instance);
                }
            }
        }
        self.target.remove(id);
    }

    fn bump_epoch(&mut self) {
        self.epoch += 1;
    }

    /// Applies the heartbeat's fields; true when the assignment depends on
    /// what changed.
    fn update_member(&mut self, req: &Heartbeat, config: &ConsumerConfig, now: Instant) -> bool {
        let member = self.members.get_mut(&req.member_id).expect("member exists");
        member.session_deadline = now + config.session_timeout;
        if req.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms as u64);
        }
        if req.rack_id.is_some() {
            member.rack_id = req.rack_id.clone();
        }
        if !req.client_id.is_empty() {
            member.client_id = req.client_id.clone();
            member.client_host = req.client_host.clone();
        }
        let mut changed = false;
        if let Some(names) = &req.subscribed {
            let subscribed: BTreeSet<String> = names.iter().cloned().collect();
            if subscribed != member.subscribed {
                member.subscribed = subscribed;
                changed = true;
            }
        }
        if let Some(source) = &req.regex {
            let current = member.regex.as_ref().map(|r| r.source.as_str()).unwrap_or("");
            if source != current {
                // Validated already; an empty string clears the regex.
                member.regex = (!source.is_empty()).then(|| TopicRegex::new(source).expect("validated regex"));
                member.regex_matches.clear();
                changed = true;
            }
        }
        if req.server_assignor.is_some() && req.server_assignor != member.server_assignor {
            member.server_assignor = req.server_assignor.clone();
            changed = true;
        }
        changed
    }

    /// Records the partition counts of the subscribed topics; true when they
    /// changed (a topic appeared, went away or gained partitions).
    fn refresh_partition_counts(&mut self, topics: &BTreeMap<String, (Uuid, i32)>) -> bool {
        let mut matches_changed = false;
        for member in self.members.values_mut() {
            let Some(regex) = &member.regex else { continue };
            let matches: BTreeSet<String> =
                topics.keys().filter(|t| !super::is_internal_topic(t) && regex.matches(t)).cloned().collect();
            if matches != member.regex_matches {
                member.regex_matches = matches;
                matches_changed = true;
            }
        }
        let subscribed: Vec<(String, (Uuid, i32))> =
            self.subscribed_topics().into_iter().filter_map(|t| topics.get(&t).map(|&info| (t, info))).collect();
        self.topic_ids = subscribed.iter().map(|(t, (id, _))| (t.clone(), *id)).collect();
        let counts: BTreeMap<String, i32> = subscribed.into_iter().map(|(t, (_, n))| (t, n)).collect();
        if counts == self.partition_counts {
            return matches_changed;
        }
        self.partition_counts = counts;
        true
    }

    /// Puts back a member read from the log.
    pub fn restore_member(&mut self, member: ConsumerMember) {
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), member.id.clone());
        }
        self.members.insert(member.id.clone(), member);
    }

    /// The assignor the members ask for most (ties: the first in the
    /// configured order), or the default.
    fn choose_assignor(&self, config: &ConsumerConfig) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = member.server_assignor.as_deref() {
                *votes.entry(name).or_default() += 1;
            }
        }
        let max = votes.values().copied().max().unwrap_or(0);
        config
            .assignor_names()
            .find(|a| max > 0 && votes.get(a) == Some(&max))
            .or_else(|| config.assignor_names().next())
            .unwrap_or(assignor::ASSIGNORS[0])
            .to_string()
    }

    /// Recomputes the target assignment for the group epoch.
    fn compute_target(&mut self, config: &ConsumerConfig) {
        let name = self.choose_assignor(config);
        let specs: BTreeMap<String, MemberSpec> = self
            .members
            .iter()
            .map(|(id, m)| {
                let spec = MemberSpec {
                    subscribed: m.subscription(),
                    current: self.target.get(id).cloned().unwrap_or_default(),
                };
                (id.clone(), spec)
            })
            .collect();
        let target = assignor::assign(&name, &specs, &self.partition_counts)
            .unwrap_or_else(|| assignor::uniform(&specs, &self.partition_counts));
        self.target = target;
        self.assignor = name;
        self.assignment_epoch = self.epoch;
        metrics::counter!(super::GROUP_REBALANCES).increment(1);
        tracing::debug!(epoch = self.epoch, assignor = %self.assignor, "target assignment computed");
    }

    /// Partitions other members own or are still revoking.
    fn owned_by_others(&self, id: &str) -> Assignment {
        let mut owned = Assignment::new();
        for (other, m) in &self.members {
            if other != id {
                union_into(&mut owned, &m.assigned);
                union_into(&mut owned, &m.revoking);
            }
        }
        owned
    }

    /// Moves one member towards its target; `owned` is what its heartbeat
    /// says it owns, when it says so.
    pub fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let Some(member) = self.members.get(id) else { return };
        if member.state == MemberState::UnrevokedPartitions {
            let done = owned.is_some_and(|o| is_empty(&intersect(o, &member.revoking)));
            if !done {
                return;
            }
            let member = self.members.get_mut(id).expect("member exists");
            member.revoking.clear();
            member.revoke_deadline = None;
            member.state = MemberState::Stable;
        }
        let member = &self.members[id];
        if member.epoch == self.assignment_epoch && member.state == MemberState::Stable {
            return;
        }
        let target = self.target.get(id).cloned().unwrap_or_default();
        let revoke = subtract(&member.assigned, &target);
        if !is_empty(&revoke) {
            let member = self.members.get_mut(id).expect("member exists");
            member.assigned = intersect(&member.assigned, &target);
            member.revoking = revoke;
            member.state = MemberState::UnrevokedPartitions;
            member.revoke_deadline = Some(now + member.rebalance_timeout);
            return;
        }
        let available = subtract(&target, &self.owned_by_others(id));
        let member = self.members.get_mut(id).expect("member exists");
        union_into(&mut member.assigned, &available);
        if member.epoch != self.assignment_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = self.assignment_epoch;
        }
        member.state = if member.assigned == target { MemberState::Stable } else { MemberState::UnreleasedPartitions };
    }

    /// Validates an OffsetCommit (or OffsetFetch) by a member of this group.
    /// A commit without member id and with a negative epoch comes from an
    /// admin client or a consumer using `assign()`; it is accepted only while
    /// the group has no members.
    pub fn validate_offsets(&self, member_id: &str, member_epoch: i32) -> Result<(), GroupError> {
        if member_id.is_empty() && member_epoch < 0 {
            return if self.members.is_empty() { Ok(()) } else { Err(GroupError::UnknownMemberId) };
        }
        let member = self.members.get(member_id).ok_or(GroupError::UnknownMemberId)?;
        if member_epoch != member.epoch {
            return Err(GroupError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// The earliest instant at which [`ConsumerGroup::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members.values().flat_map(|m| [Some(m.session_deadline), m.revoke_deadline]).flatten().min()
    }

    /// Removes members whose session expired or that did not revoke within
    /// their rebalance timeout; true if any was removed.
    pub fn tick(&mut self, now: Instant, config: &ConsumerConfig) -> bool {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(member = %id, "consumer group member removed: session or rebalance timeout expired");
            self.remove_member(id);
        }
        if expired.is_empty() {
            return false;
        }
        self.bump_epoch();
        self.compute_target(config);
        true
    }
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
