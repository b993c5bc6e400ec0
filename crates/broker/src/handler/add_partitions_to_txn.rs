//! AddPartitionsToTxn: partitions a transactional producer is about to write.
//!
//! Up to v3 a client names its one transaction; the partitions are added
//! (opening the transaction) or, if any partition is unknown, none is:
//! unknown ones get UNKNOWN_TOPIC_OR_PARTITION and the rest
//! OPERATION_NOT_ATTEMPTED. From v4 one request carries several
//! transactions (the form brokers send, KIP-890); with `verify_only` the
//! partitions are only checked to be in the open transaction.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::TopicName;

use crate::broker::Broker;
use crate::group::store::Written;

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

/// Per topic, each partition's error code (0 when added or verified).
type TopicCodes = Vec<(TopicName, Vec<(i32, i16)>)>;

pub async fn handle(
    broker: Arc<Broker>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> impl Future<Output = AddPartitionsToTxnResponse> + Send {
    let b = broker.clone();
    let (results, written) = tokio::task::spawn_blocking(move || {
        let mut written = Vec::new();
        let results: Vec<(String, TopicCodes)> = if version >= 4 {
            req.transactions
                .into_iter()
                .map(|t| {
                    let id = t.transactional_id.to_string();
                    let codes = if t.verify_only {
                        verify(&b, &id, t.producer_id.0, t.producer_epoch, &t.topics, version)
                    } else {
                        add(&b, &id, t.producer_id.0, t.producer_epoch, &t.topics, version, &mut written)
                    };
                    (id, codes)
                })
                .collect()
        } else {
            let id = req.v3_and_below_transactional_id.to_string();
            let (pid, epoch) = (req.v3_and_below_producer_id.0, req.v3_and_below_producer_epoch);
            let codes = add(&b, &id, pid, epoch, &req.v3_and_below_topics, version, &mut written);
            vec![(id, codes)]
        };
        (results, written)
    })
    .await
    .expect("add partitions does not panic");
    async move {
        let stored = crate::txn::durable(written).await;
        let topic_results = |codes: TopicCodes| -> Vec<AddPartitionsToTxnTopicResult> {
            codes
                .into_iter()
                .map(|(name, partitions)| {
                    let partitions = partitions
                        .into_iter()
                        .map(|(index, code)| {
                            let code =
                                if code == 0 && !stored { ResponseError::CoordinatorNotAvailable.code() } else { code };
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(index)
                                .with_partition_error_code(code)
                        })
                        .collect();
                    AddPartitionsToTxnTopicResult::default().with_name(name).with_results_by_partition(partitions)
                })
                .collect()
        };
        if version >= 4 {
            let by_txn = results
                .into_iter()
                .map(|(id, codes)| {
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(kafka_protocol::messages::TransactionalId(id.into()))
                        .with_topic_results(topic_results(codes))
                })
                .collect();
            AddPartitionsToTxnResponse::default().with_results_by_transaction(by_txn)
        } else {
            let codes = results.into_iter().next().map(|(_, codes)| codes).unwrap_or_default();
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topic_results(codes))
        }
    }
}

/// The named partitions, and whether all of them exist.
fn partitions(broker: &Broker, topics: &[AddPartitionsToTxnTopic]) -> (Vec<(String, i32)>, bool) {
    let mut all = Vec::new();
    let mut known = true;
    for t in topics {
        let topic = broker.topic(&t.name);
        for &p in &t.partitions {
            known &= topic.as_ref().and_then(|topic| topic.partition(p)).is_some();
            all.push((t.name.to_string(), p));
        }
    }
    (all, known)
}

/// Each partition's code: `known` decides between the outcome for every
/// partition and the per-partition UNKNOWN / OPERATION_NOT_ATTEMPTED split.
fn codes(broker: &Broker, topics: &[AddPartitionsToTxnTopic], outcome: Option<i16>) -> TopicCodes {
    topics
        .iter()
        .map(|t| {
            let topic = broker.topic(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let code = match outcome {
                        Some(code) => code,
                        None if topic.as_ref().and_then(|topic| topic.partition(p)).is_none() => {
                            ResponseError::UnknownTopicOrPartition.code()
                        }
                        None => ResponseError::OperationNotAttempted.code(),
                    };
                    (p, code)
                })
                .collect();
            (t.name.clone(), partitions)
        })
        .collect()
}

fn add(
    broker: &Broker,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    version: i16,
    written: &mut Vec<Written>,
) -> TopicCodes {
    let (all, known) = partitions(broker, topics);
    if !known {
        return codes(broker, topics, None);
    }
    let code = match broker.txns.add_partitions(broker, id, producer_id, epoch, &all) {
        Ok(w) => {
            written.extend(w);
            0
        }
        Err(e) => e.code_for(version, FENCED_SINCE),
    };
    codes(broker, topics, Some(code))
}

fn verify(
    broker: &Broker,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    version: i16,
) -> TopicCodes {
    topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let key = (t.name.to_string(), p);
                    let code = match broker.txns.verify(id, producer_id, epoch, &key) {
                        Ok(()) => 0,
                        Err(e) => e.code_for(version, FENCED_SINCE),
                    };
                    (p, code)
                })
                .collect();
            (t.name.clone(), partitions)
        })
        .collect()
}
