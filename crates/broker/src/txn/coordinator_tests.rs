//! Tests of the transaction coordinator against a real broker on a temporary
//! directory: what it stores, the markers it writes, what a restart finds.

use std::sync::Arc;

use super::*;
use crate::broker::PRODUCER_ID_BLOCK_SIZE;
use crate::config::Source;
use crate::group::CommitEntry;

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    config.set("offsets.topic.num.partitions", "2", Source::Override).unwrap();
    config.set("transaction.state.log.num.partitions", "3", Source::Override).unwrap();
    config.set("transaction.max.timeout.ms", "60000", Source::Override).unwrap();
    let broker = Broker::open(config).unwrap();
    if broker.topic("t").is_none() {
        broker.create_topic("t", 2, Default::default()).unwrap();
    }
    broker
}

fn partition(broker: &Broker, index: i32) -> Arc<Partition> {
    broker.topic("t").unwrap().partition(index).unwrap().clone()
}

/// The control batches in a partition: (producer id, commit).
fn markers(p: &Partition) -> Vec<(i64, bool)> {
    let mut found = Vec::new();
    store::load(p, |item| {
        if let Loaded::Marker { producer_id, commit } = item {
            found.push((producer_id, commit));
        }
    })
    .unwrap();
    found
}

fn tp(topic: &str, index: i32) -> (String, i32) {
    (topic.to_string(), index)
}

/// Completes decided transactions on this thread (what [`complete`] does in
/// the background).
fn complete_all(broker: &Broker, prepared: impl IntoIterator<Item = Prepared>) {
    let mut txns = broker.txns.txns.lock();
    for p in prepared {
        broker.txns.complete_now(broker, &mut txns, p).unwrap();
    }
}

/// EndTxn (transaction version 0), completed before it returns.
fn end(broker: &Broker, id: &str, producer_id: i64, epoch: i16, commit: bool) {
    let (_, prepared) = broker.txns.end_txn(broker, id, producer_id, epoch, commit, false).unwrap();
    complete_all(broker, prepared);
}

/// Goal: producer ids never repeat, across restarts too, and come from
/// blocks reserved in the metadata log. Method: hand out ids, reopen, hand
/// out more.
#[test]
fn producer_ids_never_repeat_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let (first, _) = broker.txns.init_producer_id(&broker, None, 0, None).unwrap();
    let (second, _) = broker.txns.init_producer_id(&broker, None, 0, None).unwrap();
    assert_eq!((first.producer_id, first.epoch), (0, 0));
    assert_eq!(second.producer_id, 1);
    broker.shutdown().unwrap();
    drop(broker);
    let broker = open(dir.path());
    let (third, _) = broker.txns.init_producer_id(&broker, None, 0, None).unwrap();
    assert_eq!(third.producer_id, PRODUCER_ID_BLOCK_SIZE, "a restart starts a new block");
    // A producer recovering (KIP-360) an id the coordinator does not know gets a new producer id.
    let (recovered, _) =
        broker.txns.init_producer_id(&broker, Some("gone"), 1000, Some((first.producer_id, 4))).unwrap();
    assert_eq!((recovered.producer_id, recovered.epoch), (PRODUCER_ID_BLOCK_SIZE + 1, 0));
    broker.shutdown().unwrap();
}

/// Goal: a committed and an aborted transaction write the right markers into
/// each partition, the state is stored and reloaded, and a second
/// InitProducerId fences the first producer.
#[test]
fn transactions_write_markers_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let err = broker.txns.init_producer_id(&broker, Some("tx"), 60_001, None).unwrap_err();
    assert_eq!(err, TxnError::InvalidTransactionTimeout);
    let (pe, _) = broker.txns.init_producer_id(&broker, Some("tx"), 10_000, None).unwrap();
    assert_eq!(pe.epoch, 0);
    let pid = pe.producer_id;
    broker.txns.add_partitions(&broker, "tx", pid, 0, &[tp("t", 0), tp("t", 1)]).unwrap();
    assert_eq!(broker.txns.verify("tx", pid, 0, &tp("t", 1)), Ok(()));
    end(&broker, "tx", pid, 0, true);
    assert_eq!(markers(&partition(&broker, 0)), vec![(pid, true)]);
    assert_eq!(markers(&partition(&broker, 1)), vec![(pid, true)]);
    assert_eq!(broker.txns.describe("tx").unwrap().state, TxnState::CompleteCommit);

    broker.txns.add_partitions(&broker, "tx", pid, 0, &[tp("t", 1)]).unwrap();
    end(&broker, "tx", pid, 0, false);
    assert_eq!(markers(&partition(&broker, 0)), vec![(pid, true)], "only the transaction's partitions");
    assert_eq!(markers(&partition(&broker, 1)), vec![(pid, true), (pid, false)]);

    // A new producer with the same id fences the old one.
    let (newer, _) = broker.txns.init_producer_id(&broker, Some("tx"), 10_000, None).unwrap();
    assert_eq!((newer.producer_id, newer.epoch), (pid, 1));
    assert_eq!(broker.txns.add_partitions(&broker, "tx", pid, 0, &[tp("t", 0)]).err(), Some(TxnError::ProducerFenced));
    broker.shutdown().unwrap();
    drop(broker);

    let broker = open(dir.path());
    let m = broker.txns.describe("tx").unwrap();
    assert_eq!((m.producer_id, m.producer_epoch, m.state, m.timeout_ms), (pid, 1, TxnState::Empty, 10_000));
    assert_eq!(broker.txns.describe("nope"), Err(TxnError::TransactionalIdNotFound));
    broker.shutdown().unwrap();
}

/// Goal: InitProducerId while a transaction is open aborts it under a bumped
/// epoch and asks the client to retry; the retry bumps again.
#[test]
fn init_aborts_an_open_transaction_first() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let (pe, _) = broker.txns.init_producer_id(&broker, Some("tx"), 10_000, None).unwrap();
    broker.txns.add_partitions(&broker, "tx", pe.producer_id, 0, &[tp("t", 0)]).unwrap();
    let err = broker.txns.init_producer_id(&broker, Some("tx"), 10_000, None).unwrap_err();
    assert_eq!(err, TxnError::ConcurrentTransactions);
    assert_eq!(markers(&partition(&broker, 0)), vec![(pe.producer_id, false)]);
    assert_eq!(broker.txns.describe("tx").unwrap().state, TxnState::CompleteAbort);
    let (retried, _) = broker.txns.init_producer_id(&broker, Some("tx"), 10_000, None).unwrap();
    assert_eq!(retried.epoch, 2);
    broker.shutdown().unwrap();
}

/// Goal: the timer aborts a transaction open past its timeout and fences its
/// producer; a transaction within its timeout is left open.
#[test]
fn timed_out_transactions_are_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let (slow, _) = broker.txns.init_producer_id(&broker, Some("slow"), 1, None).unwrap();
    let (fast, _) = broker.txns.init_producer_id(&broker, Some("fast"), 60_000, None).unwrap();
    broker.txns.add_partitions(&broker, "slow", slow.producer_id, 0, &[tp("t", 0)]).unwrap();
    broker.txns.add_partitions(&broker, "fast", fast.producer_id, 0, &[tp("t", 1)]).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    complete_all(&broker, broker.txns.abort_timed_out(&broker));
    assert_eq!(markers(&partition(&broker, 0)), vec![(slow.producer_id, false)]);
    assert!(markers(&partition(&broker, 1)).is_empty());
    assert_eq!(broker.txns.describe("slow").unwrap().state, TxnState::CompleteAbort);
    assert_eq!(broker.txns.describe("fast").unwrap().state, TxnState::Ongoing);
    let late = broker.txns.end_txn(&broker, "slow", slow.producer_id, 0, true, false);
    assert_eq!(late.unwrap_err(), TxnError::ProducerFenced);
    broker.shutdown().unwrap();
}

/// Goal: a transaction found prepared at start is completed: markers, then
/// the complete state. Method: store PrepareCommit (and, for another id,
/// PrepareEpochFence) by hand, as if the broker died right after deciding,
/// and reopen.
#[test]
fn prepared_transactions_complete_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let (pe, _) = broker.txns.init_producer_id(&broker, Some("tx"), 10_000, None).unwrap();
    broker.txns.add_partitions(&broker, "tx", pe.producer_id, 0, &[tp("t", 1)]).unwrap();
    let mut prepared = broker.txns.describe("tx").unwrap();
    prepared.state = TxnState::PrepareCommit;
    broker.txns.store(&broker, "tx", Some(&prepared)).unwrap();
    // A fence stored, its abort not yet: completed as an abort.
    let (fenced, _) = broker.txns.init_producer_id(&broker, Some("fx"), 10_000, None).unwrap();
    broker.txns.add_partitions(&broker, "fx", fenced.producer_id, 0, &[tp("t", 0)]).unwrap();
    let mut fence = broker.txns.describe("fx").unwrap();
    fence.state = TxnState::PrepareEpochFence;
    fence.producer_epoch = 1;
    broker.txns.store(&broker, "fx", Some(&fence)).unwrap();
    broker.shutdown().unwrap();
    drop(broker);

    let broker = open(dir.path());
    assert_eq!(broker.txns.describe("tx").unwrap().state, TxnState::CompleteCommit);
    assert_eq!(markers(&partition(&broker, 1)), vec![(pe.producer_id, true)]);
    let fx = broker.txns.describe("fx").unwrap();
    assert_eq!((fx.state, fx.producer_epoch), (TxnState::CompleteAbort, 1));
    assert_eq!(markers(&partition(&broker, 0)), vec![(fenced.producer_id, false)]);
    broker.shutdown().unwrap();
}

/// Goal: transactional offset commits are invisible until the commit marker,
/// dropped by an abort, and replayed the same way on start, including one
/// still open at the restart.
#[test]
fn transactional_offsets_wait_for_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let flusher = broker.logs.flusher();
    let offsets_partition = tp(OFFSETS_TOPIC, broker.groups.partition_index("g"));
    let entry =
        |offset| CommitEntry { topic: "t".into(), partition: 0, offset, leader_epoch: -1, metadata: String::new() };
    let committed = |broker: &Broker| {
        let found = broker.groups.fetch_offsets("g", Some(vec![("t".into(), vec![0])]));
        found[0].1[0].1.as_ref().map(|v| v.offset)
    };
    let (pe, _) = broker.txns.init_producer_id(&broker, Some("tx"), 10_000, None).unwrap();
    let pid = pe.producer_id;
    // Committed transaction.
    broker.txns.add_partitions(&broker, "tx", pid, 0, std::slice::from_ref(&offsets_partition)).unwrap();
    broker.groups.txn_commit(flusher, "g", "", None, -1, (pid, 0), &[entry(5)]).unwrap();
    assert_eq!(committed(&broker), None, "pending until the marker");
    let unstable = broker.groups.pending_txn_partitions("g");
    assert!(unstable.contains(&tp("t", 0)), "OffsetFetch with require_stable sees it as unstable");
    end(&broker, "tx", pid, 0, true);
    assert_eq!(committed(&broker), Some(5));
    assert!(broker.groups.pending_txn_partitions("g").is_empty());
    // Aborted transaction.
    broker.txns.add_partitions(&broker, "tx", pid, 0, std::slice::from_ref(&offsets_partition)).unwrap();
    broker.groups.txn_commit(flusher, "g", "", None, -1, (pid, 0), &[entry(9)]).unwrap();
    end(&broker, "tx", pid, 0, false);
    assert_eq!(committed(&broker), Some(5), "an abort drops the offsets");
    // Open at the restart.
    broker.txns.add_partitions(&broker, "tx", pid, 0, std::slice::from_ref(&offsets_partition)).unwrap();
    broker.groups.txn_commit(flusher, "g", "", None, -1, (pid, 0), &[entry(12)]).unwrap();
    broker.shutdown().unwrap();
    drop(broker);

    let broker = open(dir.path());
    assert_eq!(committed(&broker), Some(5), "the open commit stays pending after the restart");
    end(&broker, "tx", pid, 0, true);
    assert_eq!(committed(&broker), Some(12));
    broker.shutdown().unwrap();
    drop(broker);
    let broker = open(dir.path());
    assert_eq!(committed(&broker), Some(12), "replayed: applied at its marker");
    broker.shutdown().unwrap();
}

/// Goal: EndTxn is answered once its decision is durable and the markers
/// follow in the background; a next transaction's AddPartitionsToTxn sent
/// right after the answer waits for that completion instead of getting
/// CONCURRENT_TRANSACTIONS. Method: the handler's path (`spawn_completion`),
/// then AddPartitionsToTxn at once, many times over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_transaction_waits_for_the_background_completion() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let (pe, _) = broker.txns.init_producer_id(&broker, Some("tx"), 10_000, None).unwrap();
    let pid = pe.producer_id;
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let b = broker.clone();
        tokio::task::spawn_blocking(move || b.txns.add_partitions(&b, "tx", pid, 0, &[tp("t", 0), tp("t", 1)]))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("round {round}: the next transaction was refused: {e}"));
        let b = broker.clone();
        let (_, prepared) =
            tokio::task::spawn_blocking(move || b.txns.end_txn(&b, "tx", pid, 0, round % 2 == 0, false))
                .await
                .unwrap()
                .unwrap();
        let decided = spawn_completion(broker.clone(), prepared.expect("a decision to complete"));
        assert!(decided.await.unwrap(), "the decision is stored");
    }
    // The last completion may still run; a request for the id waits for it.
    let b = broker.clone();
    let state = tokio::task::spawn_blocking(move || {
        let mut txns = b.txns.txns.lock();
        b.txns.wait_settled(&mut txns, "tx");
        txns["tx"].state
    })
    .await
    .unwrap();
    assert_eq!(state, TxnState::CompleteAbort);
    let expected: Vec<(i64, bool)> = (0..ROUNDS).map(|round| (pid, round % 2 == 0)).collect();
    assert_eq!(markers(&partition(&broker, 0)), expected);
    assert_eq!(markers(&partition(&broker, 1)), expected);
    broker.shutdown().unwrap();
}
