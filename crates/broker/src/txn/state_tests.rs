//! Tests of the transaction state machine: every transition and every error
//! each request can get, without I/O.

use super::state::*;

const NOW: i64 = 1_000_000;

fn p(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

fn no_new_id() -> Result<i64, TxnError> {
    panic!("no new producer id expected")
}

fn meta(state: TxnState) -> TxnMetadata {
    let mut m = TxnMetadata::new("t", 7, 60_000, NOW - 10);
    m.producer_epoch = 3;
    m.state = state;
    if state == TxnState::Ongoing || state.is_prepare() || state == TxnState::PrepareEpochFence {
        m.partitions.insert(p("a", 0));
        m.start_ms = NOW - 5;
    }
    m
}

/// Goal: state codes and names are Kafka's and round-trip.
#[test]
fn state_codes_and_names_round_trip() {
    let names: Vec<&str> = TxnState::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "Empty",
            "Ongoing",
            "PrepareCommit",
            "PrepareAbort",
            "CompleteCommit",
            "CompleteAbort",
            "Dead",
            "PrepareEpochFence"
        ]
    );
    for (code, state) in TxnState::ALL.into_iter().enumerate() {
        assert_eq!(state.code(), code as i8);
        assert_eq!(TxnState::from_code(code as i8), Some(state));
        assert_eq!(TxnState::from_name(state.name()), Some(state));
    }
    assert_eq!(TxnState::from_code(8), None);
    assert_eq!(TxnState::from_name("ongoing"), None);
}

/// Goal: InitProducerId from Empty and Complete* bumps the epoch, clears the
/// partitions and takes the new timeout; from Ongoing it fences (epoch + 1,
/// PrepareEpochFence); from Prepare* and PrepareEpochFence it is refused
/// with CONCURRENT_TRANSACTIONS.
#[test]
fn init_bumps_fences_or_waits() {
    for state in [TxnState::Empty, TxnState::CompleteCommit, TxnState::CompleteAbort] {
        let InitPlan::Write(next) = meta(state).plan_init(None, 5_000, NOW, no_new_id).unwrap() else {
            panic!("{state:?}: a write")
        };
        assert_eq!((next.producer_id, next.producer_epoch, next.last_producer_epoch), (7, 4, 3), "{state:?}");
        assert_eq!((next.state, next.timeout_ms, next.start_ms), (TxnState::Empty, 5_000, -1));
        assert!(next.partitions.is_empty());
    }
    let InitPlan::FenceAndAbort(fenced) = meta(TxnState::Ongoing).plan_init(None, 5_000, NOW, no_new_id).unwrap()
    else {
        panic!("an open transaction is fenced")
    };
    assert_eq!((fenced.state, fenced.producer_epoch), (TxnState::PrepareEpochFence, 4));
    assert_eq!(fenced.partitions, meta(TxnState::Ongoing).partitions, "the abort covers the open partitions");
    let abort = fenced.fenced_abort(NOW);
    assert_eq!((abort.state, abort.producer_epoch), (TxnState::PrepareAbort, 4));
    for state in [TxnState::PrepareCommit, TxnState::PrepareAbort, TxnState::PrepareEpochFence, TxnState::Dead] {
        assert_eq!(
            meta(state).plan_init(None, 5_000, NOW, no_new_id),
            Err(TxnError::ConcurrentTransactions),
            "{state:?}"
        );
    }
}

/// Goal: at the last epoch a bump takes a new producer id at epoch 0 and
/// remembers the previous id.
#[test]
fn exhausted_epoch_takes_a_new_producer_id() {
    let mut m = meta(TxnState::CompleteCommit);
    m.producer_epoch = EPOCH_MAX;
    let InitPlan::Write(next) = m.plan_init(None, 5_000, NOW, || Ok(99)).unwrap() else { panic!("a write") };
    assert_eq!((next.producer_id, next.producer_epoch, next.previous_producer_id), (99, 0, 7));
    let failed = m.plan_init(None, 5_000, NOW, || Err(TxnError::CoordinatorNotAvailable));
    assert_eq!(failed, Err(TxnError::CoordinatorNotAvailable));
}

/// Goal: KIP-360 recovery. The current id and epoch bump; a retry with the
/// epoch before the last bump gets the current one back without a write;
/// anything else is PRODUCER_FENCED.
#[test]
fn init_with_a_producer_id_recovers_or_is_fenced() {
    let m = meta(TxnState::CompleteAbort);
    assert!(matches!(m.plan_init(Some((7, 3)), 5_000, NOW, no_new_id), Ok(InitPlan::Write(_))));
    assert_eq!(m.plan_init(Some((7, 2)), 5_000, NOW, no_new_id), Err(TxnError::ProducerFenced));
    assert_eq!(m.plan_init(Some((8, 3)), 5_000, NOW, no_new_id), Err(TxnError::ProducerFenced));
    let InitPlan::Write(bumped) = m.plan_init(Some((7, 3)), 5_000, NOW, no_new_id).unwrap() else { panic!() };
    assert_eq!(bumped.plan_init(Some((7, 3)), 5_000, NOW, no_new_id), Ok(InitPlan::Current), "a retried request");
}

/// Goal: AddPartitionsToTxn opens a transaction from Empty or Complete*,
/// grows an open one, writes nothing when every partition is in already,
/// and refuses wrong producers and transactions being completed.
#[test]
fn add_partitions_transitions_and_errors() {
    for state in [TxnState::Empty, TxnState::CompleteCommit, TxnState::CompleteAbort] {
        let next = meta(state).plan_add(7, 3, &[p("b", 1)], NOW).unwrap().unwrap();
        assert_eq!((next.state, next.start_ms), (TxnState::Ongoing, NOW), "{state:?}");
        assert_eq!(next.partitions.iter().cloned().collect::<Vec<_>>(), vec![p("b", 1)]);
    }
    let open = meta(TxnState::Ongoing);
    let grown = open.plan_add(7, 3, &[p("b", 1)], NOW).unwrap().unwrap();
    assert_eq!(grown.partitions.len(), 2);
    assert_eq!(grown.start_ms, open.start_ms, "the transaction keeps its start");
    assert_eq!(open.plan_add(7, 3, &[p("a", 0)], NOW), Ok(None));
    assert_eq!(open.plan_add(8, 3, &[p("a", 0)], NOW), Err(TxnError::InvalidProducerIdMapping));
    assert_eq!(open.plan_add(7, 2, &[p("a", 0)], NOW), Err(TxnError::ProducerFenced));
    assert_eq!(open.plan_add(7, 4, &[p("a", 0)], NOW), Err(TxnError::ProducerFenced));
    for state in [TxnState::PrepareCommit, TxnState::PrepareAbort, TxnState::PrepareEpochFence] {
        assert_eq!(meta(state).plan_add(7, 3, &[p("b", 1)], NOW), Err(TxnError::ConcurrentTransactions), "{state:?}");
    }
    assert_eq!(meta(TxnState::Dead).plan_add(7, 3, &[p("b", 1)], NOW), Err(TxnError::InvalidProducerIdMapping));
}

/// Goal: verification passes only the current producer writing to a
/// partition of its open transaction.
#[test]
fn verify_checks_producer_epoch_state_and_partition() {
    let open = meta(TxnState::Ongoing);
    assert_eq!(open.verify(7, 3, &p("a", 0)), Ok(()));
    assert_eq!(open.verify(7, 3, &p("a", 1)), Err(TxnError::InvalidTxnState));
    assert_eq!(open.verify(7, 2, &p("a", 0)), Err(TxnError::ProducerFenced));
    assert_eq!(open.verify(7, 4, &p("a", 0)), Err(TxnError::InvalidTxnState));
    assert_eq!(open.verify(6, 3, &p("a", 0)), Err(TxnError::InvalidProducerIdMapping));
    assert_eq!(meta(TxnState::CompleteCommit).verify(7, 3, &p("a", 0)), Err(TxnError::InvalidTxnState));
}

/// Goal: EndTxn prepares from Ongoing, answers retries of a completed end
/// with success, and refuses the rest with Kafka's codes.
#[test]
fn end_txn_transitions_and_errors() {
    let open = meta(TxnState::Ongoing);
    let EndPlan::Prepare(commit) = open.plan_end(7, 3, true, false, NOW, no_new_id).unwrap() else { panic!() };
    assert_eq!((commit.state, commit.producer_epoch), (TxnState::PrepareCommit, 3));
    let done = commit.completed(NOW + 1);
    assert_eq!((done.state, done.start_ms, done.last_update_ms), (TxnState::CompleteCommit, -1, NOW + 1));
    assert!(done.partitions.is_empty());
    let EndPlan::Prepare(abort) = open.plan_end(7, 3, false, false, NOW, no_new_id).unwrap() else { panic!() };
    assert_eq!(abort.state, TxnState::PrepareAbort);
    assert_eq!(abort.completed(NOW).state, TxnState::CompleteAbort);

    assert_eq!(meta(TxnState::CompleteCommit).plan_end(7, 3, true, false, NOW, no_new_id), Ok(EndPlan::AlreadyDone));
    assert_eq!(meta(TxnState::CompleteAbort).plan_end(7, 3, false, false, NOW, no_new_id), Ok(EndPlan::AlreadyDone));
    let invalid = [
        (TxnState::CompleteCommit, false),
        (TxnState::CompleteAbort, true),
        (TxnState::PrepareCommit, false),
        (TxnState::PrepareAbort, true),
        (TxnState::Empty, true),
        (TxnState::Empty, false),
        (TxnState::Dead, true),
    ];
    for (state, commit) in invalid {
        let result = meta(state).plan_end(7, 3, commit, false, NOW, no_new_id);
        assert_eq!(result, Err(TxnError::InvalidTxnState), "{state:?} commit={commit}");
    }
    let concurrent =
        [(TxnState::PrepareCommit, true), (TxnState::PrepareAbort, false), (TxnState::PrepareEpochFence, true)];
    for (state, commit) in concurrent {
        let result = meta(state).plan_end(7, 3, commit, false, NOW, no_new_id);
        assert_eq!(result, Err(TxnError::ConcurrentTransactions), "{state:?}");
    }
    assert_eq!(open.plan_end(8, 3, true, false, NOW, no_new_id), Err(TxnError::InvalidProducerIdMapping));
    assert_eq!(open.plan_end(7, 2, true, false, NOW, no_new_id), Err(TxnError::ProducerFenced));
}

/// Goal: transaction version 2 bumps the epoch when the transaction ends,
/// marks the transaction as v2, and answers a retry that comes with the
/// epoch before the bump.
#[test]
fn end_txn_version_2_bumps_the_epoch() {
    let open = meta(TxnState::Ongoing);
    let EndPlan::Prepare(commit) = open.plan_end(7, 3, true, true, NOW, no_new_id).unwrap() else { panic!() };
    assert_eq!((commit.state, commit.producer_epoch, commit.client_version), (TxnState::PrepareCommit, 4, 2));
    let done = commit.completed(NOW);
    assert_eq!(done.plan_end(7, 3, true, true, NOW, no_new_id), Ok(EndPlan::AlreadyDone), "retry after the bump");
    assert_eq!(done.plan_end(7, 3, false, true, NOW, no_new_id), Err(TxnError::ProducerFenced));
    assert_eq!(done.plan_end(7, 4, true, true, NOW, no_new_id), Err(TxnError::InvalidTxnState));
}

/// Goal: a transaction past its timeout is aborted under a bumped epoch;
/// one within it, or not open, is left alone.
#[test]
fn timeout_aborts_with_a_bumped_epoch() {
    let mut open = meta(TxnState::Ongoing);
    open.timeout_ms = 100;
    open.start_ms = NOW - 100;
    let aborted = open.plan_timeout(NOW).unwrap();
    assert_eq!((aborted.state, aborted.producer_epoch), (TxnState::PrepareAbort, 4));
    assert_eq!(aborted.partitions, open.partitions);
    open.start_ms = NOW - 99;
    assert_eq!(open.plan_timeout(NOW), None);
    assert_eq!(meta(TxnState::CompleteCommit).plan_timeout(i64::MAX), None);
    // The old producer is fenced afterwards.
    assert_eq!(aborted.completed(NOW).plan_end(7, 3, true, false, NOW, no_new_id), Err(TxnError::ProducerFenced));
}

/// Goal: only idle ids expire, after `transactional.id.expiration.ms`.
#[test]
fn idle_ids_expire() {
    let idle = meta(TxnState::CompleteCommit);
    assert!(idle.expired(idle.last_update_ms + 1000, 1000));
    assert!(!idle.expired(idle.last_update_ms + 999, 1000));
    assert!(!meta(TxnState::Ongoing).expired(i64::MAX, 1000));
    assert!(!meta(TxnState::PrepareAbort).expired(i64::MAX, 1000));
}

/// Goal: metadata survives the trip through its stored value.
#[test]
fn metadata_round_trips_through_the_value() {
    let mut m = meta(TxnState::Ongoing);
    m.partitions.insert(p("b", 4));
    m.client_version = 2;
    m.previous_producer_id = 3;
    let back = TxnMetadata::from_value("t", m.to_value());
    assert_eq!(back, TxnMetadata { last_producer_epoch: -1, ..m });
}
