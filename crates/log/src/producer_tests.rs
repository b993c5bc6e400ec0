use proptest::prelude::*;

use super::*;

fn batch(producer_id: i64, epoch: i16, first_seq: i32, records: i32, first_offset: i64) -> ProducerBatch {
    ProducerBatch {
        producer_id,
        epoch,
        first_seq,
        last_offset_delta: records - 1,
        transactional: false,
        first_offset,
        last_offset: first_offset + i64::from(records) - 1,
        max_timestamp: 1_000,
    }
}

fn txn(b: ProducerBatch) -> ProducerBatch {
    ProducerBatch { transactional: true, ..b }
}

/// Checks and applies one batch, as an append does.
fn write(states: &mut ProducerStates, b: ProducerBatch) -> Result<Option<BatchMeta>, Refusal> {
    match states.check(&[b])? {
        Checked::Write(staged) => {
            states.apply(staged);
            Ok(None)
        }
        Checked::Duplicate(meta) => Ok(Some(meta)),
    }
}

// Goal: sequences must follow each other within an epoch; a gap is refused with the expected sequence.
#[test]
fn sequences_follow_each_other() {
    let mut s = ProducerStates::default();
    assert_eq!(write(&mut s, batch(7, 0, 0, 3, 0)), Ok(None));
    assert_eq!(write(&mut s, batch(7, 0, 3, 2, 3)), Ok(None));
    assert_eq!(write(&mut s, batch(7, 0, 6, 1, 5)), Err(Refusal::OutOfOrder { producer_id: 7, expected: 5, found: 6 }));
    assert_eq!(s.infos()[0].last_sequence, 4);
}

// Goal: a retry of any of the last five batches is answered with its original offsets; older ones are not.
#[test]
fn last_five_batches_are_duplicates() {
    let mut s = ProducerStates::default();
    for i in 0..6 {
        assert_eq!(write(&mut s, batch(1, 0, i * 2, 2, i64::from(i) * 10)), Ok(None));
    }
    let dup = write(&mut s, batch(1, 0, 2, 2, 99)).unwrap().expect("second batch is remembered");
    assert_eq!((dup.first_offset, dup.last_offset), (10, 11));
    assert!(write(&mut s, batch(1, 0, 0, 2, 99)).is_err(), "the first batch is forgotten: out of order");
    // A duplicate of a different length is not the same batch.
    assert!(write(&mut s, batch(1, 0, 10, 1, 99)).is_err());
}

// Goal: an older epoch is fenced; a newer one must start at sequence 0 and forgets the old batches.
#[test]
fn epochs() {
    let mut s = ProducerStates::default();
    write(&mut s, batch(1, 3, 0, 1, 0)).unwrap();
    assert_eq!(write(&mut s, batch(1, 2, 1, 1, 1)), Err(Refusal::Epoch { producer_id: 1, epoch: 2, current: 3 }));
    assert_eq!(write(&mut s, batch(1, 4, 5, 1, 1)), Err(Refusal::OutOfOrder { producer_id: 1, expected: 0, found: 5 }));
    assert_eq!(write(&mut s, batch(1, 4, 0, 1, 1)), Ok(None));
    assert_eq!(s.infos()[0].producer_epoch, 4);
}

// Goal: a producer the partition does not know may start anywhere (its state may have been removed by retention).
#[test]
fn unknown_producer_starts_anywhere() {
    let mut s = ProducerStates::default();
    assert_eq!(write(&mut s, batch(9, 2, 4242, 1, 0)), Ok(None));
    assert_eq!(write(&mut s, batch(9, 2, 4243, 1, 1)), Ok(None));
}

// Goal: sequences wrap to 0 after i32::MAX, in a batch and between batches.
#[test]
fn sequence_wraps() {
    assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    let mut s = ProducerStates::default();
    write(&mut s, batch(1, 0, i32::MAX - 1, 2, 0)).unwrap();
    assert_eq!(write(&mut s, batch(1, 0, 0, 1, 2)), Ok(None));
}

// Goal: batches of one append are checked in order, each against the state the earlier ones leave; a refused
// append changes nothing.
#[test]
fn one_append_is_checked_as_a_whole() {
    let mut s = ProducerStates::default();
    let Ok(Checked::Write(staged)) = s.check(&[batch(1, 0, 0, 2, 0), batch(1, 0, 2, 1, 2)]) else { panic!() };
    s.apply(staged);
    assert_eq!(s.infos()[0].last_sequence, 2);
    let before = s.clone();
    assert!(s.check(&[batch(1, 0, 3, 1, 3), batch(1, 0, 9, 1, 4)]).is_err());
    assert_eq!(s, before);
}

// Goal: a transaction opens at its first batch, holds the last stable offset there, refuses non-transactional
// writes, and ends with a marker that reports its range.
#[test]
fn transactions_and_markers() {
    let mut s = ProducerStates::default();
    write(&mut s, txn(batch(1, 0, 0, 2, 10))).unwrap();
    write(&mut s, txn(batch(2, 0, 0, 1, 12))).unwrap();
    write(&mut s, txn(batch(1, 0, 2, 1, 13))).unwrap();
    assert_eq!(s.first_unstable_offset(), Some(10));
    assert_eq!(
        write(&mut s, batch(1, 0, 3, 1, 14)),
        Err(Refusal::TxnState { producer_id: 1, reason: "a non-transactional write while a transaction is open" })
    );
    assert_eq!(s.check_marker(1, 0, 5), Ok(()));
    let done = s.apply_marker(1, 0, ControlType::Abort, 5, 14, 2_000);
    assert_eq!(done, CompletedTxn { producer_id: 1, first_offset: 10, last_offset: 14, aborted: true });
    assert_eq!(s.first_unstable_offset(), Some(12));
    assert_eq!(s.check_marker(1, 0, 4), Err(Refusal::CoordinatorFenced { producer_id: 1, epoch: 4, current: 5 }));
    // The coordinator bumps the epoch when it aborts on a timeout: the marker carries the newer epoch.
    let done = s.apply_marker(2, 1, ControlType::Commit, 0, 15, 2_000);
    assert!(!done.aborted);
    assert_eq!(s.first_unstable_offset(), None);
    assert_eq!(write(&mut s, batch(2, 0, 1, 1, 16)), Err(Refusal::Epoch { producer_id: 2, epoch: 0, current: 1 }));
    assert_eq!(s.check_marker(2, 0, 0), Err(Refusal::Epoch { producer_id: 2, epoch: 0, current: 1 }));
}

// Goal: expiry forgets idle producers, never one with an open transaction.
#[test]
fn expiry_keeps_open_transactions() {
    let mut s = ProducerStates::default();
    write(&mut s, batch(1, 0, 0, 1, 0)).unwrap();
    write(&mut s, txn(batch(2, 0, 0, 1, 1))).unwrap();
    assert_eq!(s.expire(10_000, 5_000), 1);
    assert_eq!(s.infos().iter().map(|p| p.producer_id).collect::<Vec<_>>(), vec![2]);
}

// Goal: a torn or foreign snapshot is rejected, never half-loaded.
#[test]
fn torn_snapshot_is_rejected() {
    let mut s = ProducerStates::default();
    write(&mut s, txn(batch(1, 0, 0, 1, 0))).unwrap();
    let bytes = s.encode();
    assert_eq!(ProducerStates::decode(&bytes, 1), Some(s));
    assert_eq!(ProducerStates::decode(&bytes[..bytes.len() - 1], 1), None);
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(ProducerStates::decode(&flipped, 1), None);
    assert_eq!(ProducerStates::decode(b"", 1), None);
    assert_eq!(ProducerStates::decode(&bytes, 0), None, "a snapshot at 0 cannot name offset 0");
}

#[test]
fn txn_index_entries_round_trip() {
    let entries = [
        AbortedTxn { producer_id: 3, first_offset: 10, last_offset: 20, last_stable_offset: 21 },
        AbortedTxn { producer_id: i64::MAX, first_offset: 0, last_offset: 1, last_stable_offset: 0 },
    ];
    let mut bytes: Vec<u8> = entries.iter().flat_map(encode_aborted).collect();
    bytes.extend_from_slice(&[0, 0, 1]); // a torn tail
    assert_eq!(decode_aborted(&bytes), entries);
}

fn arb_batch() -> impl Strategy<Value = ProducerBatch> {
    (0i64..4, 0i16..3, -1i32..20, 1i32..4, any::<bool>()).prop_map(|(pid, epoch, seq, records, transactional)| {
        ProducerBatch { transactional, ..batch(pid, epoch, seq, records, 0) }
    })
}

proptest! {
    // Goal: whatever producers wrote, the snapshot of their state decodes to the same state.
    #[test]
    fn snapshot_round_trips(batches in proptest::collection::vec(arb_batch(), 0..40), markers in proptest::collection::vec((0i64..4, 0i16..4, any::<bool>()), 0..6)) {
        let mut s = ProducerStates::default();
        let mut offset = 0;
        for b in batches {
            let b = ProducerBatch { first_offset: offset, last_offset: offset + i64::from(b.last_offset_delta), ..b };
            offset = b.last_offset + 1;
            let _ = write(&mut s, b);
        }
        for (pid, epoch, commit) in markers {
            if s.check_marker(pid, epoch, 0).is_ok() {
                let control = if commit { ControlType::Commit } else { ControlType::Abort };
                s.apply_marker(pid, epoch, control, 0, offset, 5);
                offset += 1;
            }
        }
        prop_assert_eq!(ProducerStates::decode(&s.encode(), offset), Some(s));
    }

    // Goal: replaying what was written rebuilds the state the checks built (recovery equals the live path).
    #[test]
    fn replay_rebuilds_state(batches in proptest::collection::vec(arb_batch(), 0..40)) {
        let mut live = ProducerStates::default();
        let mut written = Vec::new();
        let mut offset = 0;
        for b in batches {
            let b = ProducerBatch { first_offset: offset, last_offset: offset + i64::from(b.last_offset_delta), ..b };
            if let Ok(None) = write(&mut live, b) {
                offset = b.last_offset + 1;
                written.push(b);
            }
        }
        let mut replayed = ProducerStates::default();
        for b in &written {
            replayed.replay_batch(b);
        }
        prop_assert_eq!(replayed, live);
    }
}
