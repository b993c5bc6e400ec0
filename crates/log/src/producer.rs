//! Producer state: what idempotent and transactional producers have written to one partition.
//!
//! (Skeleton: the public API of idempotence and transactions in the storage engine. Bodies land next.)

/// `producerId` of a batch from a producer without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// `baseSequence` of a batch that carries no sequence (coordinator writes, control batches).
pub const NO_SEQUENCE: i32 = -1;

/// What a transaction marker (control batch) says about the producer's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    /// The control record key's type field (Kafka: 0 abort, 1 commit).
    pub fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }
}

/// One producer's state in a partition, as DescribeProducers reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The last sequence written, -1 if none.
    pub last_sequence: i32,
    /// The max timestamp of the producer's last batch (or marker), -1 if none.
    pub last_timestamp: i64,
    /// The coordinator epoch of the producer's last transaction marker, -1 if none.
    pub coordinator_epoch: i32,
    /// The first offset of the producer's open transaction in this partition, -1 if none.
    pub current_txn_start_offset: i64,
}

/// An aborted transaction in a partition: the `.txnindex` entry (Kafka's 34-byte layout) and what read_committed
/// fetches return so consumers drop its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// The offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the abort marker was written.
    pub last_stable_offset: i64,
}
