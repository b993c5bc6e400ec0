//! Unit tests of the group state machine: joins, protocol selection,
//! generations, syncs, heartbeats, leaves, expiry and static membership,
//! driven with explicit instants instead of real time.

use super::*;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn limits(initial_delay_ms: u64) -> Limits {
    Limits { initial_rebalance_delay: Duration::from_millis(initial_delay_ms), max_size: 10 }
}

fn join_req(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: None,
        require_known_member_id: false,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
        supports_skip_assignment: true,
    }
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("m{n}")
    }
}

fn wait<T: std::fmt::Debug>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Wait(rx) => rx,
        Reply::Now(v) => panic!("expected to wait, got {v:?}"),
    }
}

fn now<T: std::fmt::Debug>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(v) => v,
        Reply::Wait(_) => panic!("expected an immediate answer"),
    }
}

/// Joins one member with a fresh id and returns its receiver.
fn join_new(g: &mut Group, t: Instant, protocols: &[&str], id: &str, l: Limits) -> oneshot::Receiver<JoinResult> {
    let id = id.to_string();
    wait(g.join(join_req("", protocols), t, 0, l, move || id))
}

/// Goal: two members join an empty group without an initial delay, the join
/// completes when both are in, the leader gets the member list, and the
/// leader's SyncGroup hands out the assignment after `finish_sync`.
#[test]
fn two_members_join_sync_and_become_stable() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let mut rx1 = join_new(&mut g, t, &["range"], "m1", l);
    // Alone and with no delay, the first member completes the join at once.
    let r1 = rx1.try_recv().expect("join completed");
    assert_eq!((r1.generation, r1.leader.as_str(), r1.members.len()), (1, "m1", 1));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    // A second member triggers a new rebalance; m1 must rejoin.
    let mut rx2 = join_new(&mut g, t, &["range"], "m2", l);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(rx2.try_recv().is_err());
    let mut rx1 = wait(g.join(join_req("m1", &["range"]), t, 0, l, ids()));
    let r1 = rx1.try_recv().unwrap();
    let r2 = rx2.try_recv().unwrap();
    assert_eq!((r1.generation, r2.generation), (2, 2));
    assert_eq!(r1.leader, "m1");
    assert_eq!(r1.members.len(), 2);
    assert!(r2.members.is_empty(), "only the leader sees the members");
    assert_eq!(r1.protocol_name.as_deref(), Some("range"));
    // The follower syncs first and waits; the leader's sync leaves the assignment pending until stored.
    let mut s2 = wait(g.sync("m2", None, 2, Some("consumer"), Some("range"), vec![], t));
    let assignments = vec![("m1".to_string(), Bytes::from("a1")), ("m2".to_string(), Bytes::from("a2"))];
    let mut s1 = wait(g.sync("m1", None, 2, None, None, assignments, t));
    assert!(g.take_dirty(), "the assignment must be stored before it is handed out");
    assert_eq!(g.to_value().members[1].assignment, Bytes::from("a2"));
    assert!(s2.try_recv().is_err());
    g.finish_sync(2, true, t, 0, l);
    assert_eq!(s1.try_recv().unwrap().assignment, Bytes::from("a1"));
    assert_eq!(s2.try_recv().unwrap().assignment, Bytes::from("a2"));
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.heartbeat("m2", None, 2, t), Ok(()));
}

/// Goal: the selected protocol is one every member supports, chosen by the
/// members' preferences, and a member with no common protocol is refused.
#[test]
fn protocol_selection_and_inconsistent_protocols() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let _rx1 = join_new(&mut g, t, &["roundrobin", "range"], "m1", l);
    let _rx2 = join_new(&mut g, t, &["range", "roundrobin"], "m2", l);
    let _rx3 = join_new(&mut g, t, &["range"], "m3", l);
    let mut rx1 = wait(g.join(join_req("m1", &["roundrobin", "range"]), t, 0, l, ids()));
    let r = rx1.try_recv().unwrap();
    assert_eq!(r.protocol_name.as_deref(), Some("range"), "range is the only protocol all three support");
    let refused = now(g.join(join_req("", &["sticky"]), t, 0, l, ids()));
    assert_eq!(refused.error, Some(GroupError::InconsistentGroupProtocol));
    let mut other_type = join_req("", &["range"]);
    other_type.protocol_type = "connect".into();
    assert_eq!(now(g.join(other_type, t, 0, l, ids())).error, Some(GroupError::InconsistentGroupProtocol));
}

/// Goal: KIP-394. A v4+ join with no member id gets MEMBER_ID_REQUIRED and
/// an id; joining with that id adds the member; an unknown id is refused.
#[test]
fn member_id_required_then_join() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let mut req = join_req("", &["range"]);
    req.require_known_member_id = true;
    let first = now(g.join(req.clone(), t, 0, l, || "given-1".into()));
    assert_eq!(first.error, Some(GroupError::MemberIdRequired));
    assert_eq!(first.member_id, "given-1");
    assert!(g.members.is_empty());
    req.member_id = "given-1".into();
    let mut rx = wait(g.join(req.clone(), t, 0, l, ids()));
    assert_eq!(rx.try_recv().unwrap().member_id, "given-1");
    req.member_id = "made-up".into();
    assert_eq!(now(g.join(req, t, 0, l, ids())).error, Some(GroupError::UnknownMemberId));
}

/// Goal: the generation and member checks of Heartbeat and OffsetCommit.
#[test]
fn generation_and_member_checks() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let _rx = join_new(&mut g, t, &["range"], "m1", l);
    let _sync = wait(g.sync("m1", None, 1, None, None, vec![], t));
    g.finish_sync(1, true, t, 0, l);
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.heartbeat("m1", None, 0, t), Err(GroupError::IllegalGeneration));
    assert_eq!(g.heartbeat("nobody", None, 1, t), Err(GroupError::UnknownMemberId));
    assert_eq!(g.validate_commit("m1", None, 1), Ok(()));
    assert_eq!(g.validate_commit("m1", None, 7), Err(GroupError::IllegalGeneration));
    assert_eq!(g.validate_commit("nobody", None, 1), Err(GroupError::UnknownMemberId));
    // A standalone commit is refused while the group has members.
    assert_eq!(g.validate_commit("", None, -1), Err(GroupError::UnknownMemberId));
    // During a rebalance heartbeats say so.
    let _rx = join_new(&mut g, t, &["range"], "m2", l);
    assert_eq!(g.heartbeat("m1", None, 1, t), Err(GroupError::RebalanceInProgress));
    // Commits with the current generation are still accepted while preparing the rebalance.
    assert_eq!(g.validate_commit("m1", None, 1), Ok(()));
    let empty = Group::new("s", 0);
    assert_eq!(empty.validate_commit("", None, -1), Ok(()));
}

/// Goal: a member that stops heartbeating is removed after its session
/// timeout and the group rebalances; members that do not rejoin within the
/// rebalance timeout are removed when the join phase ends.
#[test]
fn session_expiry_and_rebalance_timeout() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let _rx = join_new(&mut g, t, &["range"], "m1", l);
    let _rx2 = join_new(&mut g, t, &["range"], "m2", l);
    let mut rx1 = wait(g.join(join_req("m1", &["range"]), t, 0, l, ids()));
    let generation = rx1.try_recv().unwrap().generation;
    let _sync = wait(g.sync("m1", None, generation, None, None, vec![], t));
    g.finish_sync(generation, true, t, 0, l);
    // m1 keeps heartbeating, m2 goes silent.
    let later = t + SESSION - Duration::from_secs(1);
    g.heartbeat("m1", None, generation, later).unwrap();
    assert_eq!(g.next_deadline(), Some(t + SESSION));
    g.tick(t + SESSION, 0, l);
    assert!(!g.members.contains_key("m2"));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    // m1 never rejoins: at the rebalance deadline it is removed and the group is empty.
    let deadline = g.next_deadline().unwrap();
    g.tick(deadline, 0, l);
    assert_eq!(g.state, GroupState::Empty);
    assert!(g.members.is_empty());
    assert!(g.take_dirty());
}

/// Goal: the initial rebalance delay holds the first join open and extends
/// while new members arrive, bounded by the rebalance timeout.
#[test]
fn initial_rebalance_delay_waits_for_more_members() {
    let t = Instant::now();
    let l = limits(3000);
    let mut g = Group::new("g", 0);
    let mut rx1 = join_new(&mut g, t, &["range"], "m1", l);
    assert!(rx1.try_recv().is_err(), "the first member waits for the delay");
    assert_eq!(g.next_deadline(), Some(t + Duration::from_secs(3)));
    let mut rx2 = join_new(&mut g, t + Duration::from_secs(2), &["range"], "m2", l);
    g.tick(t + Duration::from_secs(3), 0, l);
    assert!(rx1.try_recv().is_err(), "a member arrived during the delay: wait again");
    g.tick(t + Duration::from_secs(6), 0, l);
    let r1 = rx1.try_recv().unwrap();
    assert_eq!(r1.members.len(), 2);
    assert_eq!(rx2.try_recv().unwrap().generation, 1);
}

/// Goal: LeaveGroup removes the member and rebalances; the remaining member
/// becomes leader; unknown members get UNKNOWN_MEMBER_ID.
#[test]
fn leave_rebalances_and_moves_leadership() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let _rx = join_new(&mut g, t, &["range"], "m1", l);
    let mut rx2 = join_new(&mut g, t, &["range"], "m2", l);
    let mut rx1 = wait(g.join(join_req("m1", &["range"]), t, 0, l, ids()));
    let generation = rx1.try_recv().unwrap().generation;
    rx2.try_recv().unwrap();
    let _sync = wait(g.sync("m1", None, generation, None, None, vec![], t));
    g.finish_sync(generation, true, t, 0, l);
    assert_eq!(g.leave("m1", None, t, 0, l), Ok(()));
    assert_eq!(g.leader.as_deref(), Some("m2"));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(g.leave("m1", None, t, 0, l), Err(GroupError::UnknownMemberId));
    let mut rx2 = wait(g.join(join_req("m2", &["range"]), t, 0, l, ids()));
    assert_eq!(rx2.try_recv().unwrap().generation, generation + 1);
}

/// Goal: KIP-345. A static member rejoining with a new member id in a
/// Stable group takes over its assignment without a rebalance, and the old
/// member id is fenced.
#[test]
fn static_member_rejoins_without_rebalance() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let mut a = join_req("", &["range"]);
    a.instance_id = Some("instance-a".into());
    let mut rxa = wait(g.join(a.clone(), t, 0, l, || "a1".into()));
    let mut rxb = join_new(&mut g, t, &["range"], "b1", l);
    // a1 must rejoin for the second rebalance.
    let mut rejoin = a.clone();
    rejoin.member_id = "a1".into();
    let _ = rxa.try_recv();
    let mut rxa = wait(g.join(rejoin, t, 0, l, ids()));
    let generation = rxa.try_recv().unwrap().generation;
    rxb.try_recv().unwrap();
    let assignments = vec![("a1".to_string(), Bytes::from("pa")), ("b1".to_string(), Bytes::from("pb"))];
    let _sync = wait(g.sync("a1", Some("instance-a"), generation, None, None, assignments, t));
    g.finish_sync(generation, true, t, 0, l);
    assert_eq!(g.state, GroupState::Stable);
    // The process restarts: same instance id, no member id.
    let result = now(g.join(a, t, 0, l, || "a2".into()));
    assert_eq!(result.error, None);
    assert_eq!(result.generation, generation, "no rebalance");
    assert_eq!(g.state, GroupState::Stable);
    assert!(g.take_dirty());
    let sync = now(g.sync("a2", Some("instance-a"), generation, None, None, vec![], t));
    assert_eq!(sync.assignment, Bytes::from("pa"));
    assert_eq!(g.heartbeat("a1", Some("instance-a"), generation, t), Err(GroupError::FencedInstanceId));
    assert_eq!(g.heartbeat("b1", None, generation, t), Ok(()));
}

/// Goal: `group.max.size` refuses members beyond the bound.
#[test]
fn max_size_is_enforced() {
    let t = Instant::now();
    let l = Limits { initial_rebalance_delay: Duration::ZERO, max_size: 1 };
    let mut g = Group::new("g", 0);
    let _rx = join_new(&mut g, t, &["range"], "m1", l);
    let refused = now(g.join(join_req("", &["range"]), t, 0, l, ids()));
    assert_eq!(refused.error, Some(GroupError::GroupMaxSizeReached));
}

/// Goal: a rebalance during CompletingRebalance answers waiting syncs with
/// REBALANCE_IN_PROGRESS and a failed metadata write does not hand out the
/// assignment.
#[test]
fn rebalance_interrupts_sync_and_failed_store_rebalances() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let _rx = join_new(&mut g, t, &["range"], "m1", l);
    let mut s1 = wait(g.sync("m1", None, 1, None, None, vec![("m1".into(), Bytes::from("x"))], t));
    g.finish_sync(1, false, t, 0, l);
    assert_eq!(s1.try_recv().unwrap().error, Some(GroupError::CoordinatorNotAvailable));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let mut rx = wait(g.join(join_req("m1", &["range"]), t, 0, l, ids()));
    assert_eq!(rx.try_recv().unwrap().generation, 2);
    let mut s1 = wait(g.sync("m1", None, 2, None, None, vec![], t));
    let _rx2 = join_new(&mut g, t, &["range"], "m2", l);
    assert_eq!(s1.try_recv().unwrap().error, Some(GroupError::RebalanceInProgress));
}

/// Goal: the stored form of a group restores its generation, protocol,
/// leader, members and assignments.
#[test]
fn stored_value_restores_the_group() {
    let t = Instant::now();
    let l = limits(0);
    let mut g = Group::new("g", 0);
    let _rx = join_new(&mut g, t, &["range"], "m1", l);
    let _sync = wait(g.sync("m1", None, 1, None, None, vec![("m1".into(), Bytes::from("x"))], t));
    g.finish_sync(1, true, t, 0, l);
    let restored = Group::from_value("g", g.to_value(), t, 0);
    assert_eq!(restored.state, GroupState::Stable);
    assert_eq!(restored.generation, 1);
    assert_eq!(restored.leader.as_deref(), Some("m1"));
    assert_eq!(restored.protocol.as_deref(), Some("range"));
    assert_eq!(restored.members["m1"].assignment, Bytes::from("x"));
    assert_eq!(restored.members["m1"].metadata("range"), Bytes::from("meta-range"));
}
