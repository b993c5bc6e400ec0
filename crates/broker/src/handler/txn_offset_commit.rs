//! TxnOffsetCommit: offsets a transactional producer commits for a group in
//! its transaction (consume-transform-produce).
//!
//! The group's `__consumer_offsets` partition must be in the producer's open
//! transaction (AddOffsetsToTxn put it there). The offsets are written as a
//! transactional batch of the producer and stay pending, invisible to
//! OffsetFetch, until the transaction ends: a commit marker applies them, an
//! abort marker drops them. From v3 the group member is checked like an
//! OffsetCommit (KIP-447).

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::group::OFFSETS_TOPIC;
use crate::handler::offset_commit::{check_partitions, CommitPartition};

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 3;

pub async fn handle(
    broker: Arc<Broker>,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> impl Future<Output = TxnOffsetCommitResponse> + Send {
    let max_metadata = broker.groups.config.metadata_max_bytes;
    let (entries, outcome) = check_partitions(
        &broker,
        max_metadata,
        req.topics.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| CommitPartition {
                index: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_deref(),
            });
            (&t.name, partitions.collect())
        }),
    );
    let b = broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        let group = req.group_id.as_str();
        let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
        let partition = (OFFSETS_TOPIC.to_string(), b.groups.partition_index(group));
        b.txns.verify(&req.transactional_id, pid, epoch, &partition).map_err(|e| e.code_for(version, FENCED_SINCE))?;
        b.groups
            .txn_commit(
                b.logs.flusher(),
                group,
                req.member_id.as_str(),
                req.group_instance_id.as_deref(),
                req.generation_id,
                (pid, epoch),
                &entries,
            )
            .map_err(|e| e.error_code())
    })
    .await
    .expect("txn offset commit does not panic");
    async move {
        let group_error = match result {
            Ok(Some(written)) => (!written.durable().await).then_some(ResponseError::CoordinatorNotAvailable.code()),
            Ok(None) => None,
            Err(code) => Some(code),
        };
        let topics = outcome
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, result)| {
                        let code = result.err().unwrap_or(group_error.unwrap_or(0));
                        TxnOffsetCommitResponsePartition::default().with_partition_index(index).with_error_code(code)
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
            })
            .collect();
        TxnOffsetCommitResponse::default().with_topics(topics)
    }
}
