//! Unit tests of the consumer group state machine: joining, epochs,
//! incremental reconciliation (revoke before reassign), leaving, static
//! members and timeouts, driven with explicit instants.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::*;

fn topics() -> BTreeMap<String, (uuid::Uuid, i32)> {
    [("t".to_string(), (uuid::Uuid::from_u128(7), 6))].into_iter().collect()
}

fn config() -> ConsumerConfig {
    ConsumerConfig { max_size: 3, ..ConsumerConfig::default() }
}

fn join_req(id: &str) -> Heartbeat {
    Heartbeat {
        member_id: id.to_string(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        ..Heartbeat::default()
    }
}

fn beat(id: &str, epoch: i32, owned: Option<&Assignment>) -> Heartbeat {
    Heartbeat {
        member_id: id.to_string(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: owned.cloned(),
        ..Heartbeat::default()
    }
}

fn parts(a: &Assignment) -> BTreeSet<i32> {
    a.get("t").cloned().unwrap_or_default()
}

fn hb(g: &mut ConsumerGroup, req: Heartbeat, t: Instant) -> Result<HeartbeatAnswer, GroupError> {
    ConsumerGroup::validate(&req, 1, &config())?;
    g.heartbeat(req, &topics(), &config(), t, || "generated".into())
}

/// Drives every member with heartbeats that report what it owns until no
/// answer changes anything; returns each member's owned partitions.
fn settle(g: &mut ConsumerGroup, owned: &mut BTreeMap<String, (i32, Assignment)>, t: Instant) {
    for _ in 0..10 {
        let ids: Vec<String> = owned.keys().cloned().collect();
        for id in ids {
            let (epoch, have) = owned[&id].clone();
            let a = hb(g, beat(&id, epoch, Some(&have)), t).unwrap();
            let mut now_owned = have.clone();
            if let Some(assignment) = a.assignment {
                now_owned = assignment;
            }
            owned.insert(id, (a.member_epoch, now_owned));
            check_no_double_ownership(owned);
        }
    }
}

fn check_no_double_ownership(owned: &BTreeMap<String, (i32, Assignment)>) {
    let mut seen = BTreeSet::new();
    for (id, (_, a)) in owned {
        for p in parts(a) {
            assert!(seen.insert(p), "partition {p} owned twice (second by {id})");
        }
    }
}

/// Goal: a first member gets every partition at epoch 1; a second member
/// joins, the first is told to revoke three partitions (keeping its epoch),
/// the second gets them only after the first confirms, and both end at the
/// new epoch with 3 partitions each and the group Stable. While the second
/// waits for the released partitions it is told to heartbeat again within
/// `WAITING_HEARTBEAT_INTERVAL`; everyone else gets the configured interval.
#[test]
fn a_joining_member_gets_partitions_only_after_revocation() {
    let t = Instant::now();
    let mut g = ConsumerGroup::new();
    let a = hb(&mut g, join_req("a"), t).unwrap();
    assert_eq!((a.member_epoch, parts(a.assignment.as_ref().unwrap()).len()), (1, 6));
    let a_owned = a.assignment.unwrap();
    assert_eq!(g.state(), ConsumerGroupState::Stable);

    let (configured, waiting) = (500, WAITING_HEARTBEAT_INTERVAL.as_millis() as i32);
    assert_eq!(a.heartbeat_interval_ms, configured);
    assert!(waiting < configured);

    let b = hb(&mut g, join_req("b"), t).unwrap();
    assert_eq!(b.member_epoch, 2);
    assert!(parts(b.assignment.as_ref().unwrap()).is_empty(), "a still owns everything");
    assert_eq!(g.state(), ConsumerGroupState::Reconciling);
    assert_eq!(b.heartbeat_interval_ms, waiting, "b waits for partitions a is revoking");

    // a learns it must give up three partitions; its epoch stays 1.
    let a2 = hb(&mut g, beat("a", 1, Some(&a_owned)), t).unwrap();
    assert_eq!((a2.member_epoch, a2.heartbeat_interval_ms), (1, configured));
    let a_keep = a2.assignment.unwrap();
    assert_eq!(parts(&a_keep).len(), 3);
    // b asks again: still nothing, a has not confirmed.
    let b2 = hb(&mut g, beat("b", 2, Some(&Assignment::new())), t).unwrap();
    assert!(b2.assignment.is_none_or(|x| parts(&x).is_empty()));
    assert_eq!(b2.heartbeat_interval_ms, waiting);
    // a confirms: it now owns only what it keeps, and moves to epoch 2.
    let a3 = hb(&mut g, beat("a", 1, Some(&a_keep)), t).unwrap();
    assert_eq!(a3.member_epoch, 2);
    // b gets the released partitions.
    let b3 = hb(&mut g, beat("b", 2, Some(&Assignment::new())), t).unwrap();
    assert_eq!(b3.heartbeat_interval_ms, configured, "b has its whole target");
    let b_owned = b3.assignment.unwrap();
    assert_eq!(parts(&b_owned).len(), 3);
    assert!(parts(&b_owned).is_disjoint(&parts(&a_keep)));
    assert_eq!(g.state(), ConsumerGroupState::Stable);
}

/// Goal: three members settle to 2/2/2 with no partition ever owned twice;
/// when one leaves (epoch -1) the other two settle to 3/3 and keep what
/// they had.
#[test]
fn members_settle_without_double_ownership_across_join_and_leave() {
    let t = Instant::now();
    let mut g = ConsumerGroup::new();
    let mut owned = BTreeMap::new();
    for id in ["a", "b", "c"] {
        let a = hb(&mut g, join_req(id), t).unwrap();
        owned.insert(id.to_string(), (a.member_epoch, a.assignment.unwrap()));
        settle(&mut g, &mut owned, t);
    }
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    assert!(owned.values().all(|(e, a)| *e == g.epoch && parts(a).len() == 2), "{owned:?}");
    let before = owned.clone();

    let left = hb(&mut g, beat("c", owned["c"].0, None), t).map(|_| ());
    assert!(left.is_ok());
    let leave = Heartbeat { member_epoch: LEAVE_EPOCH, ..beat("c", 0, None) };
    assert_eq!(hb(&mut g, leave, t).unwrap().member_epoch, LEAVE_EPOCH);
    owned.remove("c");
    settle(&mut g, &mut owned, t);
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    for id in ["a", "b"] {
        assert_eq!(parts(&owned[id].1).len(), 3);
        assert!(parts(&before[id].1).is_subset(&parts(&owned[id].1)), "{id} kept its partitions");
    }
}

/// Goal: the error answers: an unknown member, a future epoch, a stale epoch
/// without owned partitions, a full group, an unknown assignor, a bad join.
#[test]
fn heartbeat_errors() {
    let t = Instant::now();
    let mut g = ConsumerGroup::new();
    for id in ["a", "b", "c"] {
        hb(&mut g, join_req(id), t).unwrap();
    }
    assert_eq!(hb(&mut g, join_req("d"), t), Err(GroupError::GroupMaxSizeReached));
    assert_eq!(hb(&mut g, beat("zz", 1, None), t), Err(GroupError::UnknownMemberId));
    assert_eq!(hb(&mut g, beat("a", 99, None), t), Err(GroupError::FencedMemberEpoch));
    let epoch = g.members["c"].epoch;
    assert_eq!(hb(&mut g, beat("c", epoch - 1, None), t), Err(GroupError::FencedMemberEpoch));
    let bad_assignor = Heartbeat { server_assignor: Some("sticky".into()), ..join_req("e") };
    assert_eq!(hb(&mut g, bad_assignor, t), Err(GroupError::UnsupportedAssignor));
    let no_subscription = Heartbeat { subscribed: None, ..join_req("e") };
    assert_eq!(hb(&mut g, no_subscription, t), Err(GroupError::InvalidRequest));
    let no_id = Heartbeat { member_id: String::new(), ..join_req("") };
    assert_eq!(hb(&mut g, no_id.clone(), t), Err(GroupError::InvalidRequest), "v1 requires a member id");
    // v0: the coordinator names the member.
    g.remove_member("c");
    let named = g.heartbeat(no_id, &topics(), &config(), t, || "generated".into()).unwrap();
    assert_eq!(named.member_id, "generated");
    assert_eq!(g.validate_offsets("a", g.members["a"].epoch), Ok(()));
    assert_eq!(g.validate_offsets("a", g.members["a"].epoch + 1), Err(GroupError::StaleMemberEpoch));
    assert_eq!(g.validate_offsets("", -1), Err(GroupError::UnknownMemberId), "group has members");
}

/// Goal: a static member leaving with epoch -2 keeps its partitions; its
/// successor with the same instance id takes them over without a new group
/// epoch; a second member with that instance id meanwhile gets
/// UNRELEASED_INSTANCE_ID.
#[test]
fn static_member_restart_keeps_its_partitions() {
    let t = Instant::now();
    let mut g = ConsumerGroup::new();
    let first = hb(&mut g, Heartbeat { instance_id: Some("i1".into()), ..join_req("s1") }, t).unwrap();
    let owned = first.assignment.unwrap();
    let epoch = g.epoch;
    let clash = hb(&mut g, Heartbeat { instance_id: Some("i1".into()), ..join_req("s2") }, t);
    assert_eq!(clash, Err(GroupError::UnreleasedInstanceId));
    let leave = Heartbeat { member_epoch: LEAVE_STATIC_EPOCH, instance_id: Some("i1".into()), ..beat("s1", 0, None) };
    assert_eq!(hb(&mut g, leave, t).unwrap().member_epoch, LEAVE_STATIC_EPOCH);
    let back = hb(&mut g, Heartbeat { instance_id: Some("i1".into()), ..join_req("s2") }, t).unwrap();
    assert_eq!(back.assignment.unwrap(), owned);
    assert_eq!(g.epoch, epoch, "no rebalance for a static member's restart");
    assert!(!g.members.contains_key("s1"));
}

/// Goal: a member that stops heartbeating is removed after the session
/// timeout and its partitions go to the others; a member that does not
/// revoke within its rebalance timeout is removed too.
#[test]
fn timeouts_remove_members() {
    let t = Instant::now();
    let cfg = config();
    let mut g = ConsumerGroup::new();
    let mut owned = BTreeMap::new();
    for id in ["a", "b"] {
        let a = hb(&mut g, join_req(id), t).unwrap();
        owned.insert(id.to_string(), (a.member_epoch, a.assignment.unwrap()));
        settle(&mut g, &mut owned, t);
    }
    let later = t + cfg.session_timeout + Duration::from_millis(1);
    // a keeps heartbeating; b is silent.
    hb(&mut g, beat("a", owned["a"].0, None), later - Duration::from_millis(2)).unwrap();
    assert!(g.tick(later, &cfg));
    assert_eq!(g.members.keys().collect::<Vec<_>>(), vec!["a"]);
    owned.remove("b");
    settle(&mut g, &mut owned, later);
    assert_eq!(parts(&owned["a"].1).len(), 6);

    // c joins; a is asked to revoke but never confirms.
    hb(&mut g, join_req("c"), later).unwrap();
    hb(&mut g, beat("a", owned["a"].0, None), later).unwrap();
    assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
    let deadline = g.members["a"].revoke_deadline.unwrap();
    assert!(g.tick(deadline, &cfg));
    assert!(!g.members.contains_key("a"));
}

/// Goal: a regex subscription matches whole topic names (not internal
/// topics); a new matching topic advances the group epoch and is assigned;
/// clearing the regex with an empty string drops its topics.
#[test]
fn regex_subscriptions_follow_the_topics() {
    let t = Instant::now();
    let mut g = ConsumerGroup::new();
    let mut ts: BTreeMap<String, (uuid::Uuid, i32)> = [
        ("orders".to_string(), (uuid::Uuid::from_u128(1), 2)),
        ("orders-dlq".to_string(), (uuid::Uuid::from_u128(2), 1)),
        ("__consumer_offsets".to_string(), (uuid::Uuid::from_u128(3), 5)),
    ]
    .into_iter()
    .collect();
    let cfg = config();
    let join = Heartbeat { subscribed: None, regex: Some("orders|__.*|pay.*".into()), ..join_req("a") };
    ConsumerGroup::validate(&join, 1, &cfg).unwrap();
    let a = g.heartbeat(join, &ts, &cfg, t, || unreachable!()).unwrap();
    let got = a.assignment.unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["orders"], "whole names only, no internal topics");
    let epoch = g.epoch;
    ts.insert("payments".into(), (uuid::Uuid::from_u128(4), 3));
    let a = g.heartbeat(beat("a", a.member_epoch, Some(&got)), &ts, &cfg, t, || unreachable!()).unwrap();
    assert_eq!(g.epoch, epoch + 1);
    let got = a.assignment.unwrap();
    assert_eq!(got["payments"].len(), 3);
    let clear = Heartbeat { regex: Some(String::new()), ..beat("a", a.member_epoch, Some(&got)) };
    let a = g.heartbeat(clear, &ts, &cfg, t, || unreachable!()).unwrap();
    assert!(a.assignment.unwrap().is_empty(), "nothing left to own after revoking");
    let bad = Heartbeat { regex: Some("(".into()), ..join_req("b") };
    assert_eq!(ConsumerGroup::validate(&bad, 1, &cfg), Err(GroupError::InvalidRegularExpression));
}

mod random {
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Join(usize),
        Leave(usize),
        Beat(usize),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            (0..5usize).prop_map(Op::Join),
            (0..5usize).prop_map(Op::Leave),
            (0..5usize).prop_map(Op::Beat),
            (0..5usize).prop_map(Op::Beat),
        ];
        proptest::collection::vec(op, 1..60)
    }

    proptest! {
        /// Goal: whatever the order of joins, leaves and heartbeats, no
        /// partition is ever owned by two clients (each client owns exactly
        /// the last assignment it received), and once every member keeps
        /// heartbeating the group settles: Stable, every partition owned
        /// once, every member at the group epoch, balanced within one.
        #[test]
        fn random_membership_never_shares_a_partition_and_settles(ops in ops()) {
            let t = Instant::now();
            let mut g = ConsumerGroup::new();
            // Client view: member id -> (epoch, owned).
            let mut clients: BTreeMap<String, (i32, Assignment)> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Join(i) => {
                        let id = format!("m{i}");
                        if clients.contains_key(&id) {
                            continue;
                        }
                        if let Ok(a) = hb(&mut g, join_req(&id), t) {
                            clients.insert(id, (a.member_epoch, a.assignment.unwrap_or_default()));
                        }
                    }
                    Op::Leave(i) => {
                        let id = format!("m{i}");
                        if clients.remove(&id).is_some() {
                            let leave = Heartbeat { member_epoch: LEAVE_EPOCH, ..beat(&id, 0, None) };
                            prop_assert_eq!(hb(&mut g, leave, t).unwrap().member_epoch, LEAVE_EPOCH);
                        }
                    }
                    Op::Beat(i) => {
                        let id = format!("m{i}");
                        let Some((epoch, owned)) = clients.get(&id).cloned() else { continue };
                        let a = hb(&mut g, beat(&id, epoch, Some(&owned)), t).unwrap();
                        let owned = a.assignment.unwrap_or(owned);
                        clients.insert(id, (a.member_epoch, owned));
                    }
                }
                check_no_double_ownership(&clients);
            }
            settle(&mut g, &mut clients, t);
            if clients.is_empty() {
                prop_assert_eq!(g.state(), ConsumerGroupState::Empty);
                return Ok(());
            }
            prop_assert_eq!(g.state(), ConsumerGroupState::Stable);
            let counts: Vec<usize> = clients.values().map(|(_, a)| parts(a).len()).collect();
            prop_assert_eq!(counts.iter().sum::<usize>(), 6);
            prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{:?}", counts);
            prop_assert!(clients.values().all(|(e, _)| *e == g.epoch));
        }
    }
}
