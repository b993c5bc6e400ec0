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

/// A partition's index and whether it goes to the group (Ok) or was refused up front (the error code).
pub(crate) type PartitionOutcome = (i32, Result<(), i16>);

/// One partition of a commit, as OffsetCommit and TxnOffsetCommit both carry it.
pub(crate) struct CommitPartition<'a> {
    pub index: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<&'a str>,
}

/// The checks every commit makes before the group sees it: partitions of
/// unknown topics get UNKNOWN_TOPIC_OR_PARTITION, metadata longer than
/// `max_metadata` OFFSET_METADATA_TOO_LARGE. Returns the entries for the
/// group and every partition's outcome, by topic.
pub(crate) fn check_partitions<'a>(
    broker: &Broker,
    max_metadata: usize,
    topics: impl Iterator<Item = (&'a TopicName, Vec<CommitPartition<'a>>)>,
) -> (Vec<CommitEntry>, Vec<(TopicName, Vec<PartitionOutcome>)>) {
    let mut entries = Vec::new();
    let mut outcome = Vec::new();
    for (name, requested) in topics {
        let known = broker.topic(name);
        let mut partitions = Vec::with_capacity(requested.len());
        for p in requested {
            let metadata = p.metadata.unwrap_or("");
            let result = if known.as_ref().and_then(|t| t.partition(p.index)).is_none() {
                Err(ResponseError::UnknownTopicOrPartition.code())
            } else if metadata.len() > max_metadata {
                Err(ResponseError::OffsetMetadataTooLarge.code())
            } else {
                entries.push(CommitEntry {
                    topic: name.to_string(),
                    partition: p.index,
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: metadata.to_string(),
                });
                Ok(())
            };
            partitions.push((p.index, result));
        }
        outcome.push((name.clone(), partitions));
    }
    (entries, outcome)
}

/// Checks and appends the commit before the connection reads its next request
/// (commits on one connection are stored in the order they were sent), then
/// returns the future that waits for the flush and answers.
pub async fn handle(
    broker: Arc<Broker>,
    req: OffsetCommitRequest,
) -> impl Future<Output = OffsetCommitResponse> + Send {
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
