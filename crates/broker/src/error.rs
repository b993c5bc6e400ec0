//! The one place where internal errors become Kafka error codes.
//!
//! Handlers never pick codes for storage or validation failures themselves;
//! they call [`ToErrorCode::error_code`] on the internal error. The request
//! version is passed along so a code newer than the client can be replaced by
//! one it knows.

use kafka_protocol::error::ResponseError;
use runnel_log::{BatchError, LogError};

use crate::broker::TopicError;
use crate::config::ConfigError;
use crate::group::state::GroupError;
use crate::txn::state::TxnError;

/// Maps an internal error to the Kafka error code for a response.
pub trait ToErrorCode {
    fn error(&self) -> ResponseError;

    fn error_code(&self) -> i16 {
        self.error().code()
    }
}

impl ToErrorCode for BatchError {
    fn error(&self) -> ResponseError {
        match self {
            BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
            // Produce v3+ carries only magic-2 batches; Kafka refuses others as invalid records.
            BatchError::UnsupportedMagic { .. } => ResponseError::InvalidRecord,
            _ => ResponseError::CorruptMessage,
        }
    }
}

impl ToErrorCode for LogError {
    fn error(&self) -> ResponseError {
        match self {
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            LogError::Batch(e) => e.error(),
            // The partition went away under the request (topic deleted, broker
            // shutting down): a retriable error makes the client refresh its
            // metadata and find out where, or whether, the partition lives now.
            LogError::Closed { .. } | LogError::ShutDown { .. } => ResponseError::NotLeaderOrFollower,
            LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            LogError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
            LogError::CoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
            _ => ResponseError::KafkaStorageError,
        }
    }
}

impl ToErrorCode for TopicError {
    fn error(&self) -> ResponseError {
        match self {
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            TopicError::InvalidName { .. } => ResponseError::InvalidTopicException,
            TopicError::InvalidPartitions(_) | TopicError::PartitionsNotIncreased { .. } => {
                ResponseError::InvalidPartitions
            }
            TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            // Kafka refuses a change to a static broker setting as an invalid request.
            TopicError::InvalidConfig(ConfigError::ReadOnly(_)) => ResponseError::InvalidRequest,
            TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
            TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
            TopicError::Meta(_) | TopicError::Log(_) => ResponseError::KafkaStorageError,
        }
    }
}

/// A metadata record that could not be written, as TopicError::Meta maps it.
impl ToErrorCode for crate::meta::MetaError {
    fn error(&self) -> ResponseError {
        ResponseError::KafkaStorageError
    }
}

impl ToErrorCode for crate::broker::QuotaAlterError {
    fn error(&self) -> ResponseError {
        match self {
            crate::broker::QuotaAlterError::Invalid(_) => ResponseError::InvalidRequest,
            crate::broker::QuotaAlterError::Meta(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToErrorCode for GroupError {
    fn error(&self) -> ResponseError {
        match self {
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
            GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
            GroupError::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
            GroupError::UnreleasedInstanceId => ResponseError::UnreleasedInstanceId,
            GroupError::UnsupportedAssignor => ResponseError::UnsupportedAssignor,
            GroupError::InvalidRequest => ResponseError::InvalidRequest,
            GroupError::InvalidRegularExpression => ResponseError::InvalidRegularExpression,
        }
    }
}

impl ToErrorCode for TxnError {
    fn error(&self) -> ResponseError {
        match self {
            TxnError::InvalidRequest => ResponseError::InvalidRequest,
            TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            TxnError::ProducerFenced => ResponseError::ProducerFenced,
            TxnError::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
            TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
            TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
            TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
            TxnError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            TxnError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
        }
    }
}

impl TxnError {
    /// The code for a response of an API whose versions before
    /// `fenced_since` predate PRODUCER_FENCED (KIP-588): older clients get
    /// INVALID_PRODUCER_EPOCH, which they know.
    pub fn code_for(&self, version: i16, fenced_since: i16) -> i16 {
        match self {
            TxnError::ProducerFenced if version < fenced_since => ResponseError::InvalidProducerEpoch.code(),
            e => e.error_code(),
        }
    }
}
