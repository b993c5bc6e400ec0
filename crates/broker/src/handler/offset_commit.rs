//! OffsetCommit: store consumers' positions in `__consumer_offsets`.
//!
//! Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and metadata
//! strings longer than `offset.metadata.max.bytes` get
//! OFFSET_METADATA_TOO_LARGE; the rest are checked against the group
//! (member, generation) and written as one batch. The answer waits until the
//! batch is flushed. A commit with generation -1 and no member id is a
//! standalone commit (a consumer using `assign()`), accepted while the group
//! has no members.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};

use kafka_protocol::messages::TopicName;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::group::CommitEntry;

type PartitionOutcome = (i32, Result<(), i16>);

/// Checks and appends the commit before the connection reads its next request
/// (commits on one connection are stored in the order they were sent), then
/// returns the future that waits for the flush and answers.
pub async fn handle(
    broker: Arc<Broker>,
    req: OffsetCommitRequest,
) -> impl Future<Output = OffsetCommitResponse> + Send {
    let max_metadata = broker.groups.config.metadata_max_bytes;
    // Per partition: Ok if it goes to the group, or the error code of a partition refused up front.
    let mut entries = Vec::new();
    let mut outcome: Vec<(TopicName, Vec<PartitionOutcome>)> = Vec::new();
    for topic in &req.topics {
        let known = broker.topic(&topic.name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_deref().unwrap_or("");
            let result = if known.as_ref().and_then(|t| t.partition(p.partition_index)).is_none() {
                Err(ResponseError::UnknownTopicOrPartition.code())
            } else if metadata.len() > max_metadata {
                Err(ResponseError::OffsetMetadataTooLarge.code())
            } else {
                entries.push(CommitEntry {
                    topic: topic.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: metadata.to_string(),
                });
                Ok(())
            };
            partitions.push((p.partition_index, result));
        }
        outcome.push((topic.name.clone(), partitions));
    }
    let group_result = if entries.is_empty() && outcome.iter().all(|(_, ps)| ps.iter().all(|(_, r)| r.is_err())) {
        Ok(None)
    } else {
        let b = broker.clone();
        tokio::task::spawn_blocking(move || {
            b.groups.commit(
                b.logs.flusher(),
                req.group_id.as_str(),
                req.member_id.as_str(),
                req.group_instance_id.as_deref(),
                req.generation_id_or_member_epoch,
                &entries,
            )
        })
        .await
        .expect("commit does not panic")
    };
    async move {
        let group_error = match group_result {
            Ok(Some(written)) => {
                if written.durable().await {
                    None
                } else {
                    Some(ResponseError::CoordinatorNotAvailable.code())
                }
            }
            Ok(None) => None,
            Err(e) => Some(e.error_code()),
        };
        let topics = outcome
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, result)| {
                        let code = match result {
                            Err(code) => code,
                            Ok(()) => group_error.unwrap_or(0),
                        };
                        OffsetCommitResponsePartition::default().with_partition_index(index).with_error_code(code)
                    })
                    .collect();
                OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }
}
