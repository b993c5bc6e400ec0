//! One transactional id's state machine, without I/O.
//!
//! Every request is planned here against the current [`TxnMetadata`]: the
//! plan is either an error (the Kafka error code the client expects), a new
//! metadata to store before answering, or an answer that needs no write (a
//! retried request). The coordinator in `txn/mod.rs` stores the new metadata
//! in `__transaction_state`, writes the markers a prepared transaction needs
//! and only then swaps the new metadata in, so memory never runs ahead of
//! the log.
//!
//! States and transitions (Kafka's):
//!
//! ```text
//! Empty ──AddPartitions──▶ Ongoing ──EndTxn──▶ PrepareCommit ──markers──▶ CompleteCommit
//!   ▲                        │  │                                           │
//!   │                        │  └──EndTxn(abort) / timeout──▶ PrepareAbort ──markers──▶ CompleteAbort
//!   │                        └──InitProducerId (fence)──▶ PrepareEpochFence ──▶ PrepareAbort
//!   └───────────InitProducerId (epoch bump) from Empty / Complete*──────────────┘
//! ```
//!
//! `Dead` is Kafka's state for an id being removed after
//! `transactional.id.expiration.ms`; Runnel removes an expired id with a
//! tombstone at once and only meets `Dead` in a value it reads.

use std::collections::{BTreeMap, BTreeSet};

use crate::txn::records::TxnValue;

/// `producerEpoch` values run to `i16::MAX - 1`; at that value the next bump
/// takes a new producer id and starts again at 0.
pub const EPOCH_MAX: i16 = i16::MAX - 1;

/// A transaction's state, with Kafka's status codes and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// The status byte of a `__transaction_state` value.
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Markers are being written.
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// Why a request is refused, as the Kafka error the client expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxnError {
    #[error("invalid request")]
    InvalidRequest,
    #[error("the producer id does not match the transactional id")]
    InvalidProducerIdMapping,
    /// A newer producer with the same transactional id exists.
    #[error("producer fenced by a newer epoch")]
    ProducerFenced,
    #[error("invalid producer epoch")]
    InvalidProducerEpoch,
    /// Markers of the previous transaction are being written; retriable.
    #[error("a transaction is being completed")]
    ConcurrentTransactions,
    #[error("invalid transaction state")]
    InvalidTxnState,
    #[error("transaction timeout is larger than transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
    #[error("transaction coordinator not available")]
    CoordinatorNotAvailable,
    #[error("transactional id not found")]
    TransactionalIdNotFound,
}

/// One transactional id's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last change of id, -1 if none.
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, to recognise a retried InitProducerId
    /// (KIP-360); kept in memory only, -1 when unknown.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    /// When the open transaction started, -1 when none is open.
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// 2 for transaction protocol version 2 (KIP-890: epoch bump per
    /// transaction), else 0.
    pub client_version: i16,
}

/// What InitProducerId does for a known transactional id.
#[derive(Debug, PartialEq, Eq)]
pub enum InitPlan {
    /// Store this metadata, then answer with its producer id and epoch.
    Write(TxnMetadata),
    /// A retried request whose earlier attempt already bumped the epoch:
    /// answer with the current id and epoch.
    Current,
    /// A transaction is open: abort it under a bumped epoch (this metadata,
    /// in PrepareEpochFence), then answer CONCURRENT_TRANSACTIONS so the
    /// client retries once the abort is complete.
    FenceAndAbort(TxnMetadata),
}

/// What EndTxn does.
#[derive(Debug, PartialEq, Eq)]
pub enum EndPlan {
    /// Store this metadata (PrepareCommit or PrepareAbort), write the markers,
    /// then store [`TxnMetadata::completed`].
    Prepare(TxnMetadata),
    /// The transaction already ended this way (a retry): answer success.
    AlreadyDone,
}

impl TxnMetadata {
    /// A new transactional id with a fresh producer id at epoch 0.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            previous_producer_id: -1,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            client_version: 0,
        }
    }

    pub fn to_value(&self) -> TxnValue {
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &self.partitions {
            partitions.entry(topic.clone()).or_default().push(*p);
        }
        TxnValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: -1,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
            client_transaction_version: self.client_version,
        }
    }

    pub fn from_value(transactional_id: &str, value: TxnValue) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id: value.producer_id,
            previous_producer_id: value.previous_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: -1,
            timeout_ms: value.timeout_ms,
            state: value.state,
            partitions: value
                .partitions
                .into_iter()
                .flat_map(|(topic, ps)| ps.into_iter().map(move |p| (topic.clone(), p)))
                .collect(),
            start_ms: value.start_ms,
            last_update_ms: value.last_update_ms,
            client_version: value.client_transaction_version,
        }
    }

    /// This metadata with the epoch bumped, or a new producer id at epoch 0
    /// when the epoch is exhausted (`new_producer_id` is called only then).
    fn bumped(&self, new_producer_id: impl FnOnce() -> Result<i64, TxnError>) -> Result<TxnMetadata, TxnError> {
        let mut next = self.clone();
        if self.producer_epoch >= EPOCH_MAX {
            next.previous_producer_id = self.producer_id;
            next.producer_id = new_producer_id()?;
            next.producer_epoch = 0;
            next.last_producer_epoch = -1;
        } else {
            next.producer_epoch = self.producer_epoch + 1;
            next.last_producer_epoch = self.producer_epoch;
        }
        Ok(next)
    }

    /// Plans InitProducerId. `expected` is the producer id and epoch a
    /// recovering producer sends (KIP-360), `None` for a new producer.
    pub fn plan_init(
        &self,
        expected: Option<(i64, i16)>,
        timeout_ms: i32,
        now_ms: i64,
        new_producer_id: impl FnOnce() -> Result<i64, TxnError>,
    ) -> Result<InitPlan, TxnError> {
        if let Some((pid, epoch)) = expected {
            let current = pid == self.producer_id && epoch == self.producer_epoch;
            let retried = pid == self.producer_id && epoch == self.last_producer_epoch && self.last_producer_epoch >= 0;
            let renewed = pid == self.previous_producer_id && self.producer_epoch == 0;
            if !(current || retried || renewed) {
                return Err(TxnError::ProducerFenced);
            }
            if (retried || renewed) && matches!(self.state, TxnState::Empty) {
                return Ok(InitPlan::Current);
            }
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Dead => Err(TxnError::ConcurrentTransactions),
            TxnState::Ongoing => {
                // The epoch that aborts is newer than the open producer's, which is fenced by it.
                let mut fenced =
                    if self.producer_epoch >= EPOCH_MAX { self.clone() } else { self.bumped(|| unreachable!())? };
                fenced.state = TxnState::PrepareEpochFence;
                fenced.last_update_ms = now_ms;
                Ok(InitPlan::FenceAndAbort(fenced))
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = self.bumped(new_producer_id)?;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.timeout_ms = timeout_ms;
                next.start_ms = -1;
                next.last_update_ms = now_ms;
                Ok(InitPlan::Write(next))
            }
        }
    }

    /// Checks that `producer_id` at `epoch` is this id's current producer.
    fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// Plans AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is the
    /// group's `__consumer_offsets` partition). `None`: every partition is
    /// already in the open transaction, nothing to store.
    pub fn plan_add(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        self.check_producer(producer_id, epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Dead => return Err(TxnError::InvalidProducerIdMapping),
            TxnState::Ongoing if partitions.iter().all(|p| self.partitions.contains(p)) => return Ok(None),
            TxnState::Ongoing | TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
        }
        let mut next = self.clone();
        if self.state != TxnState::Ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
        }
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// KIP-890 verification: the producer at `epoch` has `partition` in its
    /// open transaction.
    pub fn verify(&self, producer_id: i64, epoch: i16, partition: &(String, i32)) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch < self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if epoch > self.producer_epoch || self.state != TxnState::Ongoing || !self.partitions.contains(partition) {
            return Err(TxnError::InvalidTxnState);
        }
        Ok(())
    }

    /// Plans EndTxn. With transaction version 2 (`tv2`, EndTxn v5+) the epoch
    /// is bumped for every transaction and the markers carry the new epoch; a
    /// retry after that bump comes with the previous epoch.
    pub fn plan_end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        tv2: bool,
        now_ms: i64,
        new_producer_id: impl FnOnce() -> Result<i64, TxnError>,
    ) -> Result<EndPlan, TxnError> {
        let done = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        let retry_after_bump = tv2
            && self.state == done
            && ((producer_id == self.producer_id && epoch == self.last_producer_epoch)
                || (producer_id == self.previous_producer_id && self.producer_epoch == 0));
        if retry_after_bump {
            return Ok(EndPlan::AlreadyDone);
        }
        self.check_producer(producer_id, epoch)?;
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = if tv2 { self.bumped(new_producer_id)? } else { self.clone() };
                next.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                next.client_version = if tv2 { 2 } else { 0 };
                next.last_update_ms = now_ms;
                Ok(EndPlan::Prepare(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if !tv2 => Ok(EndPlan::AlreadyDone),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(TxnError::ConcurrentTransactions),
            (TxnState::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The transaction's end once its markers are written.
    pub fn completed(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort | TxnState::PrepareEpochFence => TxnState::CompleteAbort,
            other => panic!("completing a transaction in state {other:?}"),
        };
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        next
    }

    /// A transaction to abort because it ran past its timeout: PrepareAbort
    /// under a bumped epoch, so its producer is fenced. `None` when the
    /// transaction is not open or not yet timed out.
    pub fn plan_timeout(&self, now_ms: i64) -> Option<TxnMetadata> {
        if self.state != TxnState::Ongoing || self.start_ms.saturating_add(i64::from(self.timeout_ms)) > now_ms {
            return None;
        }
        let mut next =
            if self.producer_epoch >= EPOCH_MAX { self.clone() } else { self.bumped(|| unreachable!()).ok()? };
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        Some(next)
    }

    /// A prepared abort of the open transaction after a fence (the state that
    /// follows PrepareEpochFence).
    pub fn fenced_abort(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        next
    }

    /// The id has been idle (no open transaction) for `expiration_ms`.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(self.state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
            && self.last_update_ms.saturating_add(expiration_ms) <= now_ms
    }
}
