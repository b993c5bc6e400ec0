//! The coordinator's side of the consumer group protocol (KIP-848):
//! ConsumerGroupHeartbeat, ConsumerGroupDescribe, the member checks of
//! OffsetCommit and OffsetFetch, and session timeouts.
//!
//! A consumer group lives in the same map as classic groups: it is a
//! [`Group`] whose `consumer` field holds the [`ConsumerGroup`], so committed
//! offsets, ListGroups, DeleteGroups and offset expiry treat both kinds
//! alike. Its classic `state` mirrors whether it has members (Stable or
//! Empty), which is what deletion and offset expiry look at; its
//! `protocol_type` is "consumer". One group id serves one protocol at a time:
//! a consumer heartbeat for a classic group with members gets
//! GROUP_ID_NOT_FOUND, a JoinGroup for a consumer group with members gets
//! INCONSISTENT_GROUP_PROTOCOL, and an empty group of either kind is taken
//! over by the other.

use std::collections::BTreeMap;
use std::time::Instant;

use runnel_log::Flusher;
use uuid::Uuid;

use super::assignor::Assignment;
use super::consumer::{ConsumerGroup, ConsumerGroupState, Heartbeat, HeartbeatAnswer};
use super::state::{Group, GroupError, GroupState};
use super::store::Written;
use super::Coordinator;
use crate::handler::now_ms;

/// The protocol type consumer groups report in ListGroups.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Clone, Debug)]
pub struct ConsumerGroupDescription {
    pub state: ConsumerGroupState,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}

/// A member as ConsumerGroupDescribe shows it.
#[derive(Clone, Debug)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: Vec<String>,
    pub regex: Option<String>,
    pub assignment: Assignment,
    pub target: Assignment,
}

/// Sets the classic state a consumer group shows to deletion and expiry.
fn mirror_state(group: &mut Group, now_ms: i64) {
    let Some(consumer) = &group.consumer else { return };
    let state = if consumer.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
    if group.state != state {
        group.state = state;
        group.state_timestamp_ms = now_ms;
    }
}

impl Coordinator {
    /// ConsumerGroupHeartbeat. `topics` holds the id and partition count of
    /// every topic. Blocking (may write the group's records); returns the answer
    /// and the write to wait for before sending it.
    pub fn consumer_heartbeat(
        &self,
        flusher: &Flusher,
        group_id: &str,
        req: Heartbeat,
        version: i16,
        topics: &BTreeMap<String, (Uuid, i32)>,
    ) -> Result<(HeartbeatAnswer, Option<Written>), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidRequest);
        }
        let _span = tracing::info_span!("consumer_group", group = group_id).entered();
        let config = self.config.consumer;
        ConsumerGroup::validate(&req, version, &config)?;
        let now = Instant::now();
        let now_ms = now_ms();
        let mut groups = self.groups.lock();
        if !groups.contains_key(group_id) {
            if req.member_epoch != 0 {
                // Kafka answers GROUP_ID_NOT_FOUND; an unknown member makes
                // the client rejoin, which is what it must do anyway.
                return Err(GroupError::UnknownMemberId);
            }
            groups.insert(group_id.to_string(), Group::new(group_id, now_ms));
        }
        let group = groups.get_mut(group_id).expect("inserted above");
        if group.consumer.is_none() {
            if group.state != GroupState::Empty || !group.is_empty_of_members() {
                // A classic group with members: "not a consumer group".
                return Err(GroupError::GroupIdNotFound);
            }
            group.consumer = Some(Box::new(ConsumerGroup::new()));
            group.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
            group.protocol = None;
            group.leader = None;
        }
        let consumer = group.consumer.as_mut().expect("set above");
        let before = consumer.stored_form(group_id);
        let answer = consumer.heartbeat(req, topics, &config, now, || uuid::Uuid::new_v4().to_string())?;
        let written = self.store_consumer_if_changed(flusher, group_id, consumer, &before)?;
        mirror_state(group, now_ms);
        drop(groups);
        self.wake.notify_one();
        Ok((answer, written))
    }

    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND for an unknown
    /// group and for a classic group, as Kafka answers.
    pub fn consumer_describe(&self, group_id: &str) -> Result<ConsumerGroupDescription, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let groups = self.groups.lock();
        let consumer = groups.get(group_id).and_then(|g| g.consumer.as_ref()).ok_or(GroupError::GroupIdNotFound)?;
        let members = consumer
            .members
            .values()
            .map(|m| ConsumerMemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                epoch: m.epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed: m.subscribed.iter().cloned().collect(),
                regex: m.regex.as_ref().map(|r| r.source.clone()),
                assignment: m.assigned.clone(),
                target: consumer.target.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect();
        Ok(ConsumerGroupDescription {
            state: consumer.state(),
            epoch: consumer.epoch,
            assignment_epoch: consumer.assignment_epoch,
            assignor: consumer.assignor.clone(),
            members,
        })
    }

    /// OffsetFetch v9+ names the member and its epoch: for a consumer group
    /// they must be current (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH).
    pub fn check_fetch_member(&self, group_id: &str, member_id: Option<&str>, epoch: i32) -> Result<(), GroupError> {
        let Some(member_id) = member_id else { return Ok(()) };
        let groups = self.groups.lock();
        match groups.get(group_id).and_then(|g| g.consumer.as_ref()) {
            Some(consumer) => consumer.validate_offsets(member_id, epoch),
            None => Ok(()),
        }
    }

    /// Runs a consumer group's session and revocation timeouts. Called by
    /// [`Coordinator::tick`] with the map locked.
    pub(super) fn tick_consumer(&self, flusher: &Flusher, group: &mut Group, now: Instant) {
        let config = self.config.consumer;
        let id = group.id.clone();
        let Some(consumer) = group.consumer.as_mut() else { return };
        if consumer.next_deadline().is_none_or(|d| d > now) {
            return;
        }
        let _span = tracing::info_span!("consumer_group", group = %id).entered();
        let before = consumer.stored_form(&id);
        if consumer.tick(now, &config) {
            if let Err(e) = self.store_consumer_if_changed(flusher, &id, consumer, &before) {
                tracing::warn!(group = %id, error = %e, "consumer group records not stored");
            }
        }
        mirror_state(group, now_ms());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::broker::Broker;
    use crate::config::{BrokerConfig, Source};

    fn open(dir: &std::path::Path) -> Arc<Broker> {
        let mut config = BrokerConfig::default();
        config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
        config.set("offsets.topic.num.partitions", "3", Source::Override).unwrap();
        let broker = Broker::open(config).unwrap();
        if broker.topic("t").is_none() {
            broker.create_topic("t", 4, Default::default()).unwrap();
        }
        broker
    }

    fn topics(broker: &Broker) -> BTreeMap<String, (Uuid, i32)> {
        broker.topics().iter().map(|t| (t.meta.name.clone(), (t.meta.id, t.partitions.len() as i32))).collect()
    }

    fn beat(broker: &Broker, member: &str, epoch: i32, owned: Option<Assignment>) -> HeartbeatAnswer {
        let req = Heartbeat {
            member_id: member.to_string(),
            member_epoch: epoch,
            rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
            subscribed: (epoch == 0).then(|| vec!["t".to_string()]),
            owned: owned.or_else(|| (epoch == 0).then(Assignment::new)),
            client_id: "c".into(),
            ..Heartbeat::default()
        };
        broker.groups.consumer_heartbeat(broker.logs.flusher(), "g", req, 1, &topics(broker)).unwrap().0
    }

    /// Goal: a consumer group's epoch, members, subscriptions, target and
    /// current assignments are stored in `__consumer_offsets` and restored
    /// on start, so members continue with their epochs; a deleted group
    /// stays deleted. Method: settle two members, reopen the broker, heartbeat
    /// with the old epochs, then empty and delete the group and reopen again.
    #[test]
    fn consumer_groups_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        let a = beat(&broker, "a", 0, None);
        let b = beat(&broker, "b", 0, None);
        let a = beat(&broker, "a", a.member_epoch, a.assignment);
        let a = beat(&broker, "a", a.member_epoch, a.assignment);
        beat(&broker, "b", b.member_epoch, b.assignment);
        let before = broker.groups.consumer_describe("g").unwrap();
        assert_eq!(before.state, ConsumerGroupState::Stable, "{before:?}");
        broker.shutdown().unwrap();
        drop(broker);

        let broker = open(dir.path());
        let after = broker.groups.consumer_describe("g").unwrap();
        assert_eq!(
            (after.epoch, after.assignment_epoch, after.state),
            (before.epoch, before.assignment_epoch, before.state)
        );
        let owned = |d: &ConsumerGroupDescription| {
            d.members
                .iter()
                .map(|m| (m.member_id.clone(), m.epoch, m.assignment.clone(), m.target.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(owned(&after), owned(&before));
        let listed = broker.groups.list_groups();
        assert_eq!(listed[0].consumer_state, Some(ConsumerGroupState::Stable));
        // The members carry on with their epochs.
        let a2 = beat(&broker, "a", a.member_epoch, None);
        assert_eq!(a2.member_epoch, a.member_epoch);
        let leave = |broker: &Broker, member: &str| {
            let req = Heartbeat { member_id: member.into(), member_epoch: -1, ..Heartbeat::default() };
            broker.groups.consumer_heartbeat(broker.logs.flusher(), "g", req, 1, &topics(broker)).unwrap();
        };
        leave(&broker, "a");
        leave(&broker, "b");
        broker.groups.delete_group(broker.logs.flusher(), "g").unwrap();
        broker.shutdown().unwrap();
        drop(broker);

        let broker = open(dir.path());
        assert_eq!(broker.groups.consumer_describe("g").unwrap_err(), GroupError::GroupIdNotFound);
        assert!(broker.groups.list_groups().is_empty());
        broker.shutdown().unwrap();
    }
}
