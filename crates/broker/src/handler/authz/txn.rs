//! Checks of the transaction APIs, as Kafka makes them: WRITE on the
//! transactional id for InitProducerId (or, without one, IDEMPOTENT_WRITE
//! on the cluster or WRITE on some topic, KIP-679), AddPartitionsToTxn (plus
//! WRITE on each topic), AddOffsetsToTxn and TxnOffsetCommit (plus READ on
//! the group, and on each topic for the commit) and EndTxn;
//! CLUSTER_ACTION for WriteTxnMarkers; READ on each topic for
//! DescribeProducers; DESCRIBE on the transactional id for
//! DescribeTransactions and ListTransactions.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_producers_request::DescribeProducersRequest;
use kafka_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::{DescribeTransactionsResponse, TransactionState};
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::list_transactions_response::ListTransactionsResponse;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult, WriteTxnMarkersResponse,
};
use kafka_protocol::messages::ProducerId;
use kafka_protocol::protocol::StrBytes;

use super::{Check, Outcome};
use crate::authz::{Operation, ResourceType, CLUSTER_NAME};

const TXN_DENIED: ResponseError = ResponseError::TransactionalIdAuthorizationFailed;
const TOPIC_DENIED: ResponseError = ResponseError::TopicAuthorizationFailed;
const GROUP_DENIED: ResponseError = ResponseError::GroupAuthorizationFailed;
const CLUSTER_DENIED: ResponseError = ResponseError::ClusterAuthorizationFailed;

pub(super) fn init_producer_id(check: Check<'_>, req: InitProducerIdRequest) -> Outcome {
    let error = match &req.transactional_id {
        Some(id) => (!check.transactional_id(Operation::Write, id)).then_some(TXN_DENIED),
        None => {
            let s = check.session;
            let allowed = check.quietly(Operation::IdempotentWrite, ResourceType::Cluster, CLUSTER_NAME)
                || check.broker.authorizer.check_any(&s.principal, s.peer.ip(), Operation::Write, ResourceType::Topic);
            if !allowed {
                crate::authz::denied(s, Operation::IdempotentWrite, ResourceType::Cluster, CLUSTER_NAME);
            }
            (!allowed).then_some(CLUSTER_DENIED)
        }
    };
    match error {
        None => Outcome::pass(req),
        Some(error) => Outcome::answer(
            InitProducerIdResponse::default()
                .with_error_code(error.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
    }
}

/// One transaction's topics checked: all OK, or the per-partition answer
/// (TOPIC_AUTHORIZATION_FAILED for the denied topics and
/// OPERATION_NOT_ATTEMPTED for the others, as Kafka answers).
fn txn_topics(
    check: Check<'_>,
    id_allowed: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> Option<Vec<AddPartitionsToTxnTopicResult>> {
    let denied: Vec<bool> = topics.iter().map(|t| !id_allowed || !check.topic(Operation::Write, &t.name)).collect();
    if !denied.iter().any(|d| *d) {
        return None;
    }
    let results = topics
        .iter()
        .zip(denied)
        .map(|(t, denied)| {
            let error = match (id_allowed, denied) {
                (false, _) => TXN_DENIED,
                (true, true) => TOPIC_DENIED,
                (true, false) => ResponseError::OperationNotAttempted,
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(error.code())
                })
                .collect();
            AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(partitions)
        })
        .collect();
    Some(results)
}

pub(super) fn add_partitions_to_txn(check: Check<'_>, mut req: AddPartitionsToTxnRequest, version: i16) -> Outcome {
    if version < 4 {
        let id_allowed = check.transactional_id(Operation::Write, &req.v3_and_below_transactional_id);
        return match txn_topics(check, id_allowed, &req.v3_and_below_topics) {
            None => Outcome::pass(req),
            Some(results) => {
                Outcome::answer(AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results))
            }
        };
    }
    // v4+ batches come from brokers verifying transactions (KIP-890).
    if !check.cluster(Operation::ClusterAction) {
        return Outcome::answer(AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_DENIED.code()));
    }
    let mut denied = Vec::new();
    req.transactions.retain(|t| {
        let id_allowed = check.transactional_id(Operation::Write, &t.transactional_id);
        match txn_topics(check, id_allowed, &t.topics) {
            None => true,
            Some(results) => {
                denied.push(
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(t.transactional_id.clone())
                        .with_topic_results(results),
                );
                false
            }
        }
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: AddPartitionsToTxnResponse| {
        r.results_by_transaction.extend(denied);
        r
    })
}

pub(super) fn add_offsets_to_txn(check: Check<'_>, req: AddOffsetsToTxnRequest) -> Outcome {
    let error = if !check.transactional_id(Operation::Write, &req.transactional_id) {
        TXN_DENIED
    } else if !check.group(Operation::Read, &req.group_id) {
        GROUP_DENIED
    } else {
        return Outcome::pass(req);
    };
    Outcome::answer(AddOffsetsToTxnResponse::default().with_error_code(error.code()))
}

pub(super) fn end_txn(check: Check<'_>, req: EndTxnRequest) -> Outcome {
    if check.transactional_id(Operation::Write, &req.transactional_id) {
        return Outcome::pass(req);
    }
    Outcome::answer(
        EndTxnResponse::default()
            .with_error_code(TXN_DENIED.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
}

pub(super) fn txn_offset_commit(check: Check<'_>, mut req: TxnOffsetCommitRequest) -> Outcome {
    let whole = if !check.transactional_id(Operation::Write, &req.transactional_id) {
        Some(TXN_DENIED)
    } else if !check.group(Operation::Read, &req.group_id) {
        Some(GROUP_DENIED)
    } else {
        None
    };
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let error = match whole {
            Some(error) => error,
            None if !check.topic(Operation::Read, &t.name) => TOPIC_DENIED,
            None => return true,
        };
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error.code())
            })
            .collect();
        denied.push(TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions));
        false
    });
    if whole.is_some() {
        return Outcome::answer(TxnOffsetCommitResponse::default().with_topics(denied));
    }
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: TxnOffsetCommitResponse| {
        r.topics.extend(denied);
        r
    })
}

pub(super) fn write_txn_markers(check: Check<'_>, req: WriteTxnMarkersRequest) -> Outcome {
    if check.cluster(Operation::ClusterAction) {
        return Outcome::pass(req);
    }
    let markers = req
        .markers
        .iter()
        .map(|m| {
            let topics = m
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(CLUSTER_DENIED.code())
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default().with_name(t.name.clone()).with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics)
        })
        .collect();
    Outcome::answer(WriteTxnMarkersResponse::default().with_markers(markers))
}

pub(super) fn describe_producers(check: Check<'_>, mut req: DescribeProducersRequest) -> Outcome {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let allowed = check.topic(Operation::Read, &t.name);
        if !allowed {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    PartitionResponse::default()
                        .with_partition_index(*p)
                        .with_error_code(TOPIC_DENIED.code())
                        .with_error_message(Some(StrBytes::from_string(TOPIC_DENIED.to_string())))
                })
                .collect();
            denied.push(TopicResponse::default().with_name(t.name.clone()).with_partitions(partitions));
        }
        allowed
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: DescribeProducersResponse| {
        r.topics.extend(denied);
        r
    })
}

pub(super) fn describe_transactions(check: Check<'_>, mut req: DescribeTransactionsRequest) -> Outcome {
    let mut denied = Vec::new();
    req.transactional_ids.retain(|id| {
        let allowed = check.transactional_id(Operation::Describe, id);
        if !allowed {
            denied.push(
                TransactionState::default()
                    .with_transactional_id(id.clone())
                    .with_error_code(TXN_DENIED.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            );
        }
        allowed
    });
    let owned = check.owned();
    Outcome::merge(req, move |mut r: DescribeTransactionsResponse| {
        // The partitions of topics the principal may not DESCRIBE are left out.
        let check = owned.check();
        for state in &mut r.transaction_states {
            state.topics.retain(|t| check.quietly(Operation::Describe, ResourceType::Topic, &t.topic));
        }
        r.transaction_states.extend(denied);
        r
    })
}

pub(super) fn list_transactions(check: Check<'_>, req: ListTransactionsRequest) -> Outcome {
    let owned = check.owned();
    Outcome::merge(req, move |mut r: ListTransactionsResponse| {
        let check = owned.check();
        r.transaction_states
            .retain(|t| check.quietly(Operation::Describe, ResourceType::TransactionalId, &t.transactional_id));
        r
    })
}
