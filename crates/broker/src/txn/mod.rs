//! The transaction coordinator: transactional ids, their producer ids and
//! epochs, and the transactions they run, persisted in the compacted
//! internal topic `__transaction_state`.
//!
//! This broker coordinates every transactional id (FindCoordinator with key
//! type 1 names it). The state of each id lives in memory in one map behind
//! a mutex; each request plans its change with the pure state machine in
//! [`state`], then, with the map still locked, appends the new state to the
//! id's `__transaction_state` partition (partition = Java hash of the id
//! modulo `transaction.state.log.num.partitions`) and only then puts it in
//! the map. Ending a transaction stores PrepareCommit or PrepareAbort; once
//! that decision is durable the client gets its answer and [`complete`]
//! writes a marker (control batch) straight into every partition of the
//! transaction with [`runnel_log::Log::append_marker`] (for
//! `__consumer_offsets` partitions the group coordinator then applies or
//! drops the transaction's offsets) and, once the markers are durable,
//! stores CompleteCommit or CompleteAbort. The order matters for a crash at
//! any point: markers never reach a disk before the decision they carry out,
//! and the complete state never before its markers. A request for an id
//! whose transaction is still completing waits for it (up to
//! [`COMPLETION_WAIT`]) instead of answering CONCURRENT_TRANSACTIONS at once,
//! which would make the client back off. A marker write that fails leaves
//! the transaction prepared; the timer task retries it, and clients get
//! CONCURRENT_TRANSACTIONS until then.
//!
//! On start [`TxnCoordinator::load`] replays `__transaction_state` (last
//! value per id wins, tombstones delete) and completes every transaction
//! found prepared: a crash between the decision and the markers ends the way
//! it was decided. Transactions found open stay open; their producer may come
//! back, or the timeout aborts them.
//!
//! The timer task ([`run`]) aborts transactions open longer than their
//! `transaction.timeout.ms`, every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms`, under a
//! bumped epoch so the late producer is fenced; and removes ids idle for
//! `transactional.id.expiration.ms`.
//!
//! Producer ids come from [`Broker::allocate_producer_id`], which reserves
//! blocks through the metadata log.

pub mod records;
pub mod state;

#[cfg(test)]
mod coordinator_tests;
#[cfg(test)]
mod state_tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use runnel_log::{ControlType, LogError};
use tokio::sync::{oneshot, watch};

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::group::store::{self, KeyValue, Loaded, Written};
use crate::group::OFFSETS_TOPIC;
use crate::handler::now_ms;
use crate::partition::Partition;
use records::TxnValue;
use state::{EndPlan, InitPlan, TxnError, TxnMetadata, TxnState};

/// The internal topic holding transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// The coordinator epoch written into markers. One node, one coordinator:
/// the epoch never changes.
pub const COORDINATOR_EPOCH: i32 = 0;

/// How long a request for a transactional id whose transaction is completing
/// (markers being written) waits for it before answering
/// CONCURRENT_TRANSACTIONS. Completion takes one flush round of the markers.
pub const COMPLETION_WAIT: Duration = Duration::from_secs(1);

/// Metric names of the coordinator.
pub const TRANSACTIONS_OPEN: &str = "runnel_transactions_open";
pub const TRANSACTIONS_ENDED: &str = "runnel_transactions_ended_total";
pub const TRANSACTION_TIMEOUTS: &str = "runnel_transaction_timeouts_total";
pub const TRANSACTIONAL_IDS: &str = "runnel_transactional_ids";

/// The coordinator's settings, read once from the broker configuration.
#[derive(Clone, Copy, Debug)]
pub struct TxnConfig {
    pub partitions: i32,
    pub max_timeout_ms: i32,
    pub abort_interval: Duration,
    pub expiration_ms: i64,
    pub remove_interval: Duration,
}

impl TxnConfig {
    pub fn from_broker(config: &BrokerConfig) -> TxnConfig {
        TxnConfig {
            partitions: config.transaction_state_log_num_partitions(),
            max_timeout_ms: config.transaction_max_timeout_ms(),
            abort_interval: Duration::from_millis(config.transaction_abort_timed_out_transaction_cleanup_interval_ms()),
            expiration_ms: config.transactional_id_expiration_ms(),
            remove_interval: Duration::from_millis(config.transaction_remove_expired_transaction_cleanup_interval_ms()),
        }
    }
}

/// A producer id and epoch handed to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub epoch: i16,
}

/// A transaction whose end is decided (PrepareCommit or PrepareAbort stored)
/// and not yet complete.
#[derive(Debug)]
pub struct Prepared {
    pub metadata: TxnMetadata,
    /// The write of the decision, when this request made it; markers go out
    /// once it is durable.
    pub written: Option<Written>,
}

/// The transaction coordinator.
pub struct TxnCoordinator {
    pub config: TxnConfig,
    txns: Mutex<HashMap<String, TxnMetadata>>,
    /// Ids whose markers a [`complete`] call is writing (locked after `txns`).
    completing: Mutex<HashSet<String>>,
    /// Signalled, with `txns` locked, whenever a transaction completes.
    settled: Condvar,
    partitions: OnceLock<Vec<Arc<Partition>>>,
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator {
            config,
            txns: Mutex::new(HashMap::new()),
            completing: Mutex::new(HashSet::new()),
            settled: Condvar::new(),
            partitions: OnceLock::new(),
        }
    }

    /// Waits, with the map locked, while `id`'s transaction is prepared (its
    /// markers being written), up to [`COMPLETION_WAIT`]. Blocking.
    fn wait_settled(&self, txns: &mut MutexGuard<'_, HashMap<String, TxnMetadata>>, id: &str) {
        let deadline = Instant::now() + COMPLETION_WAIT;
        while txns.get(id).is_some_and(|m| m.state.is_prepare()) {
            if self.settled.wait_until(txns, deadline).timed_out() {
                return;
            }
        }
    }

    fn partition(&self, transactional_id: &str) -> Result<&Arc<Partition>, TxnError> {
        let partitions = self.partitions.get().ok_or(TxnError::CoordinatorNotAvailable)?;
        let index = records::partition_for(transactional_id, partitions.len() as i32);
        partitions.get(index as usize).ok_or(TxnError::CoordinatorNotAvailable)
    }

    /// Replays `__transaction_state`, then completes the transactions found
    /// prepared. Blocking; runs once at start, before the broker serves.
    pub fn load(&self, broker: &Broker, partitions: Vec<Arc<Partition>>) -> Result<(), LogError> {
        let started = Instant::now();
        let mut loaded: HashMap<String, Option<TxnValue>> = HashMap::new();
        let mut records = 0usize;
        for partition in &partitions {
            records += store::load(partition, |item| {
                let Loaded::Record { key, value, .. } = item else { return };
                let id = match records::decode_key(key) {
                    Ok(id) => id,
                    Err(e) => return tracing::warn!(error = %e, "skipping an undecodable transaction log key"),
                };
                match value.map(TxnValue::decode) {
                    Some(Ok(v)) => {
                        loaded.insert(id, Some(v));
                    }
                    None => {
                        loaded.insert(id, None);
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "skipping an undecodable transaction log value"),
                }
            })?;
        }
        let _ = self.partitions.set(partitions);
        let mut txns = self.txns.lock();
        for (id, value) in loaded {
            if let Some(value) = value {
                txns.insert(id.clone(), TxnMetadata::from_value(&id, value));
            }
        }
        let now = now_ms();
        let prepared: Vec<TxnMetadata> =
            txns.values().filter(|m| m.state.is_prepare() || m.state == TxnState::PrepareEpochFence).cloned().collect();
        for m in prepared {
            let m = if m.state == TxnState::PrepareEpochFence { m.fenced_abort(now) } else { m };
            tracing::info!(transactional_id = %m.transactional_id, state = m.state.name(), "completing a transaction found prepared");
            txns.insert(m.transactional_id.clone(), m.clone());
            let id = m.transactional_id.clone();
            if let Err(e) = self.complete_now(broker, &mut txns, Prepared { metadata: m, written: None }) {
                tracing::warn!(transactional_id = %id, error = %e, "transaction left prepared; retried later");
            }
        }
        tracing::info!(
            transactional_ids = txns.len(),
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "transaction state loaded"
        );
        Ok(())
    }

    /// Appends `m` (or a tombstone when `None`) for `id`.
    fn store(&self, broker: &Broker, id: &str, m: Option<&TxnMetadata>) -> Result<Written, TxnError> {
        let partition = self.partition(id)?;
        let entry: KeyValue = (records::encode_key(id), m.map(|m| m.to_value().encode()));
        store::append(partition, broker.logs.flusher(), &[entry], now_ms()).map_err(|e| {
            tracing::error!(transactional_id = id, error = %e, "cannot write to the transaction state topic");
            TxnError::CoordinatorNotAvailable
        })
    }

    /// Writes the markers of a prepared transaction into each of its
    /// partitions; returns the writes to wait for.
    fn write_markers(&self, broker: &Broker, m: &TxnMetadata) -> Result<Vec<Written>, TxnError> {
        let commit = m.state == TxnState::PrepareCommit;
        let mut written = Vec::new();
        for (topic, index) in &m.partitions {
            let Some(partition) = broker.topic(topic).and_then(|t| t.partition(*index).cloned()) else {
                // The topic was deleted since: nothing to mark.
                continue;
            };
            let w = write_marker(broker, &partition, m.producer_id, m.producer_epoch, commit, COORDINATOR_EPOCH)
                .map_err(|e| {
                    tracing::error!(
                        transactional_id = %m.transactional_id, topic, partition = index, error = %e,
                        "cannot write a transaction marker"
                    );
                    TxnError::CoordinatorNotAvailable
                })?;
            written.push(w);
        }
        Ok(written)
    }

    /// Stores the decision `prepared` and puts it in the map.
    fn prepare(
        &self,
        broker: &Broker,
        txns: &mut HashMap<String, TxnMetadata>,
        prepared: TxnMetadata,
    ) -> Result<Prepared, TxnError> {
        let written = self.store(broker, &prepared.transactional_id, Some(&prepared))?;
        txns.insert(prepared.transactional_id.clone(), prepared.clone());
        Ok(Prepared { metadata: prepared, written: Some(written) })
    }

    /// Stores the complete state of `prepared`, whose markers are durable,
    /// and wakes the requests waiting for it.
    fn store_completion(
        &self,
        broker: &Broker,
        txns: &mut HashMap<String, TxnMetadata>,
        prepared: &TxnMetadata,
    ) -> Result<(), TxnError> {
        let done = prepared.completed(now_ms());
        self.store(broker, &done.transactional_id, Some(&done))?;
        let result = if done.state == TxnState::CompleteCommit { "commit" } else { "abort" };
        metrics::counter!(TRANSACTIONS_ENDED, "result" => result).increment(1);
        tracing::debug!(transactional_id = %done.transactional_id, producer_id = done.producer_id, result, "transaction ended");
        txns.insert(done.transactional_id.clone(), done);
        self.settled.notify_all();
        Ok(())
    }

    /// Completes `prepared` on this thread, with the map held: the decision
    /// flushed, the markers written and flushed, the complete state stored.
    /// For start-up and fencing, which are rare; a failure leaves the
    /// transaction prepared for the timer to retry. Blocking.
    fn complete_now(
        &self,
        broker: &Broker,
        txns: &mut HashMap<String, TxnMetadata>,
        prepared: Prepared,
    ) -> Result<(), TxnError> {
        let id = &prepared.metadata.transactional_id;
        let flush = |written: &[Written]| -> Result<(), TxnError> {
            for w in written.iter().filter(|w| w.wait_for_flush) {
                w.partition.log.flush().map_err(|e| {
                    tracing::error!(transactional_id = %id, topic = %w.partition.topic, error = %e, "cannot flush a transaction write");
                    TxnError::CoordinatorNotAvailable
                })?;
            }
            Ok(())
        };
        flush(prepared.written.as_slice())?;
        flush(&self.write_markers(broker, &prepared.metadata)?)?;
        self.store_completion(broker, txns, &prepared.metadata)
    }

    /// The first half of [`complete`]: claims the prepared transaction and
    /// writes its markers. `None` when it is no longer in the map as
    /// `prepared` or another call is completing it. Blocking.
    fn write_completion_markers(
        &self,
        broker: &Broker,
        prepared: &TxnMetadata,
    ) -> Result<Option<Vec<Written>>, TxnError> {
        let txns = self.txns.lock();
        let id = &prepared.transactional_id;
        if txns.get(id) != Some(prepared) || !self.completing.lock().insert(id.clone()) {
            return Ok(None);
        }
        self.write_markers(broker, prepared)
            .inspect_err(|_| {
                self.completing.lock().remove(id);
            })
            .map(Some)
    }

    /// The second half of [`complete`]: stores the complete state once the
    /// markers are `durable`. Blocking.
    fn finish_completion(&self, broker: &Broker, prepared: &TxnMetadata, durable: bool) -> Result<(), TxnError> {
        let mut txns = self.txns.lock();
        self.completing.lock().remove(&prepared.transactional_id);
        if !durable {
            return Err(TxnError::CoordinatorNotAvailable);
        }
        if txns.get(&prepared.transactional_id) != Some(prepared) {
            return Ok(());
        }
        self.store_completion(broker, &mut txns, prepared)
    }

    /// InitProducerId. Without a transactional id: a fresh producer id at
    /// epoch 0. With one: a new id, or the epoch bumped (fencing older
    /// producers); an open transaction is aborted first and the client told
    /// to retry. Blocking.
    pub fn init_producer_id(
        &self,
        broker: &Broker,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(ProducerIdAndEpoch, Vec<Written>), TxnError> {
        let new_id = || {
            broker.allocate_producer_id().map_err(|e| {
                tracing::error!(error = %e, "cannot reserve producer ids");
                TxnError::CoordinatorNotAvailable
            })
        };
        let Some(id) = transactional_id else {
            return Ok((ProducerIdAndEpoch { producer_id: new_id()?, epoch: 0 }, Vec::new()));
        };
        if id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let now = now_ms();
        let mut txns = self.txns.lock();
        self.wait_settled(&mut txns, id);
        let next = match txns.get(id) {
            // A new id. A producer recovering an id this coordinator no longer
            // knows (expired) gets a new producer id too, as Kafka answers.
            None => TxnMetadata::new(id, new_id()?, timeout_ms, now),
            Some(current) => match current.plan_init(expected, timeout_ms, now, new_id)? {
                InitPlan::Write(next) => next,
                InitPlan::Current => {
                    let answer = ProducerIdAndEpoch { producer_id: current.producer_id, epoch: current.producer_epoch };
                    return Ok((answer, Vec::new()));
                }
                InitPlan::FenceAndAbort(fenced) => {
                    tracing::info!(
                        transactional_id = id,
                        epoch = fenced.producer_epoch,
                        "fencing the open transaction's producer"
                    );
                    self.store(broker, id, Some(&fenced))?;
                    txns.insert(id.to_string(), fenced.clone());
                    let prepared = self.prepare(broker, &mut txns, fenced.fenced_abort(now_ms()))?;
                    self.complete_now(broker, &mut txns, prepared)?;
                    return Err(TxnError::ConcurrentTransactions);
                }
            },
        };
        let written = self.store(broker, id, Some(&next))?;
        let answer = ProducerIdAndEpoch { producer_id: next.producer_id, epoch: next.producer_epoch };
        txns.insert(id.to_string(), next);
        Ok((answer, vec![written]))
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: adds `partitions` to the
    /// producer's open transaction, opening one if none is. Blocking.
    pub fn add_partitions(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Option<Written>, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let mut txns = self.txns.lock();
        self.wait_settled(&mut txns, transactional_id);
        let current = txns.get(transactional_id).ok_or(TxnError::InvalidProducerIdMapping)?;
        let Some(next) = current.plan_add(producer_id, epoch, partitions, now_ms())? else {
            return Ok(None);
        };
        let written = self.store(broker, transactional_id, Some(&next))?;
        txns.insert(transactional_id.to_string(), next);
        Ok(Some(written))
    }

    /// Verifies that `partition` is in the open transaction of the producer
    /// (KIP-890): the check a transactional produce or offset commit passes.
    pub fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partition: &(String, i32),
    ) -> Result<(), TxnError> {
        let txns = self.txns.lock();
        let current = txns.get(transactional_id).ok_or(TxnError::InvalidProducerIdMapping)?;
        current.verify(producer_id, epoch, partition)
    }

    /// EndTxn: decides to commit or abort the open transaction and returns
    /// the decision to complete with [`spawn_completion`] (none for a retry
    /// of an ended transaction). With transaction version 2 (`tv2`) the epoch
    /// is bumped and the new one returned. Blocking.
    pub fn end_txn(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        tv2: bool,
    ) -> Result<(ProducerIdAndEpoch, Option<Prepared>), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let mut txns = self.txns.lock();
        self.wait_settled(&mut txns, transactional_id);
        let current = txns.get(transactional_id).ok_or(TxnError::InvalidProducerIdMapping)?;
        let new_id = || {
            broker.allocate_producer_id().map_err(|e| {
                tracing::error!(error = %e, "cannot reserve producer ids");
                TxnError::CoordinatorNotAvailable
            })
        };
        let plan = current.plan_end(producer_id, epoch, commit, tv2, now_ms(), new_id)?;
        let answer = |m: &TxnMetadata| ProducerIdAndEpoch { producer_id: m.producer_id, epoch: m.producer_epoch };
        match plan {
            EndPlan::AlreadyDone => Ok((answer(current), None)),
            EndPlan::Prepare(prepared) => {
                let result = answer(&prepared);
                Ok((result, Some(self.prepare(broker, &mut txns, prepared)?)))
            }
        }
    }

    /// DescribeTransactions of one id.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnMetadata, TxnError> {
        self.txns.lock().get(transactional_id).cloned().ok_or(TxnError::TransactionalIdNotFound)
    }

    /// Every transactional id's state, ordered by id.
    pub fn list(&self) -> Vec<TxnMetadata> {
        let mut all: Vec<TxnMetadata> = self.txns.lock().values().cloned().collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        all
    }

    /// Decides to abort the transactions open past their timeout, under a
    /// bumped epoch; returns them with the transactions left prepared by a
    /// failed completion, all to complete with [`spawn_completion`].
    /// Blocking.
    pub fn abort_timed_out(&self, broker: &Broker) -> Vec<Prepared> {
        let now = now_ms();
        let mut txns = self.txns.lock();
        let ids: Vec<String> = txns.keys().cloned().collect();
        let mut to_complete = Vec::new();
        for id in ids {
            let current = txns[&id].clone();
            if current.state.is_prepare() {
                if !self.completing.lock().contains(&id) {
                    to_complete.push(Prepared { metadata: current, written: None });
                }
            } else if let Some(prepared) = current.plan_timeout(now) {
                tracing::info!(
                    transactional_id = %id,
                    producer_id = current.producer_id,
                    timeout_ms = current.timeout_ms,
                    "aborting a transaction open past its timeout"
                );
                metrics::counter!(TRANSACTION_TIMEOUTS).increment(1);
                match self.prepare(broker, &mut txns, prepared) {
                    Ok(prepared) => to_complete.push(prepared),
                    Err(e) => tracing::warn!(transactional_id = %id, error = %e, "abort not stored; retried later"),
                }
            }
        }
        to_complete
    }

    /// Removes ids idle for `transactional.id.expiration.ms`. Blocking.
    pub fn expire_ids(&self, broker: &Broker) {
        let now = now_ms();
        let mut txns = self.txns.lock();
        let expired: Vec<String> = txns
            .values()
            .filter(|m| m.expired(now, self.config.expiration_ms))
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in expired {
            if self.store(broker, &id, None).is_ok() {
                txns.remove(&id);
                tracing::info!(transactional_id = %id, "transactional id expired");
            }
        }
    }

    /// Sets the coordinator's gauges; called when `/metrics` is scraped.
    pub fn record_metrics(&self) {
        let txns = self.txns.lock();
        let open = txns.values().filter(|m| m.state == TxnState::Ongoing || m.state.is_prepare()).count();
        metrics::gauge!(TRANSACTIONS_OPEN).set(open as f64);
        metrics::gauge!(TRANSACTIONAL_IDS).set(txns.len() as f64);
    }
}

/// Writes one marker of `producer_id` into `partition` and asks for the flush
/// its policy requires; for `__consumer_offsets` the group coordinator then
/// applies or drops the transaction's offsets. Blocking.
pub fn write_marker(
    broker: &Broker,
    partition: &Arc<Partition>,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
) -> Result<Written, LogError> {
    let now = now_ms();
    let control = if commit { ControlType::Commit } else { ControlType::Abort };
    let info = partition.log.append_marker(producer_id, epoch, control, coordinator_epoch, 0, now)?;
    partition.on_appended();
    let wait_for_flush = partition.flush_required(now);
    if wait_for_flush {
        broker.logs.flusher().request(&partition.log);
    }
    if partition.topic == OFFSETS_TOPIC {
        broker.groups.complete_txn(producer_id, partition.index, commit);
    }
    Ok(Written { partition: partition.clone(), end_offset: info.last_offset + 1, wait_for_flush })
}

/// What a produce request's transactional batches are checked against
/// (KIP-890 server-side verification).
pub struct ProduceTxn<'a> {
    pub broker: &'a Broker,
    pub transactional_id: Option<&'a str>,
    pub version: i16,
}

impl ProduceTxn<'_> {
    /// A transactional batch must come in a request naming its transactional
    /// id, for a partition in the producer's open transaction at its current
    /// epoch. From Produce v12 the partition is added to the transaction
    /// here when it is not yet (transaction version 2 producers do not add
    /// partitions themselves). Other batches pass. Blocking.
    pub fn check(
        &self,
        batch: &runnel_log::batch::BatchInfo,
        topic: &str,
        partition: i32,
    ) -> Result<(), (kafka_protocol::error::ResponseError, String)> {
        use kafka_protocol::error::ResponseError;
        if !batch.is_transactional() {
            return Ok(());
        }
        let Some(id) = self.transactional_id else {
            return Err((
                ResponseError::InvalidTxnState,
                "a transactional batch needs the request's transactional id".into(),
            ));
        };
        let key = (topic.to_string(), partition);
        let coordinator = &self.broker.txns;
        let mut outcome = coordinator.verify(id, batch.producer_id, batch.producer_epoch, &key);
        if outcome == Err(TxnError::InvalidTxnState) && self.version >= 12 {
            outcome = coordinator
                .add_partitions(self.broker, id, batch.producer_id, batch.producer_epoch, std::slice::from_ref(&key))
                .map(drop);
        }
        outcome.map_err(|e| {
            let code = match e {
                TxnError::ProducerFenced | TxnError::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
                // Retriable for every producer version, as Kafka answers.
                TxnError::ConcurrentTransactions | TxnError::CoordinatorNotAvailable => {
                    ResponseError::NotEnoughReplicas
                }
                _ => ResponseError::InvalidTxnState,
            };
            (code, format!("transactional batch of {id} for {topic}-{partition} not verified: {e}"))
        })
    }
}

/// Completes a prepared transaction whose decision is durable: its markers,
/// then, once they are durable, its complete state. A failure leaves it
/// prepared for the timer task to retry.
pub async fn complete(broker: Arc<Broker>, prepared: TxnMetadata) {
    let (b, p) = (broker.clone(), prepared.clone());
    let markers = tokio::task::spawn_blocking(move || b.txns.write_completion_markers(&b, &p))
        .await
        .expect("marker writes do not panic");
    let outcome = match markers {
        Ok(Some(markers)) => {
            let markers_durable = durable(markers).await;
            let p = prepared.clone();
            tokio::task::spawn_blocking(move || broker.txns.finish_completion(&broker, &p, markers_durable))
                .await
                .expect("completions do not panic")
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        tracing::warn!(transactional_id = %prepared.transactional_id, error = %e, "transaction left prepared; retried later");
    }
}

/// Completes `prepared` in the background once its decision is durable; the
/// receiver learns whether the decision was stored durably (the EndTxn
/// answer). Runs to the end even if nobody waits for the answer.
pub fn spawn_completion(broker: Arc<Broker>, prepared: Prepared) -> oneshot::Receiver<bool> {
    let (decided, answer) = oneshot::channel();
    tokio::spawn(async move {
        let stored = match prepared.written {
            Some(w) => w.durable().await,
            None => true,
        };
        let _ = decided.send(stored);
        if stored {
            complete(broker, prepared.metadata).await;
        }
    });
    answer
}

/// Waits until every write is on stable storage; false if a log failed.
pub async fn durable(written: Vec<Written>) -> bool {
    let mut ok = true;
    for w in written {
        ok &= w.durable().await;
    }
    ok
}

/// The coordinator's timer task: aborts timed-out transactions and expires
/// idle ids until `stop` changes.
pub async fn run(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let config = broker.txns.config;
    let mut next_removal = tokio::time::Instant::now() + config.remove_interval;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(config.abort_interval) => {}
        }
        let b = broker.clone();
        let to_complete = tokio::task::spawn_blocking(move || b.txns.abort_timed_out(&b))
            .await
            .expect("transaction timeouts do not panic");
        for prepared in to_complete {
            drop(spawn_completion(broker.clone(), prepared));
        }
        if tokio::time::Instant::now() >= next_removal {
            let b = broker.clone();
            tokio::task::spawn_blocking(move || b.txns.expire_ids(&b)).await.expect("id expiry does not panic");
            next_removal = tokio::time::Instant::now() + config.remove_interval;
        }
    }
}
