//! OffsetFetch: committed offsets of a group, or (from v8, KIP-709) of
//! several groups per request. A null topic list asks for every partition
//! the group has committed. A partition without a committed offset answers
//! offset -1 with no error, as Kafka does. With `require_stable` (v7+,
//! KIP-447) a partition with transactional offsets waiting for their
//! transaction's end answers UNSTABLE_OFFSET_COMMIT, and the client retries.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::group::records::OffsetValue;
use crate::group::TopicOffsets;

/// Per topic, each partition's committed offset, or `Err(code)` for a
/// partition that is refused.
type Found = Vec<(String, Vec<(i32, Result<Option<OffsetValue>, i16>)>)>;

fn lookup(
    broker: &Broker,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Found, i16> {
    if group_id.is_empty() {
        return Err(ResponseError::InvalidGroupId.code());
    }
    let found: TopicOffsets = broker.groups.fetch_offsets(group_id, topics);
    let unstable = if require_stable { broker.groups.pending_txn_partitions(group_id) } else { Default::default() };
    Ok(found
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, value)| {
                    if unstable.contains(&(topic.clone(), index)) {
                        (index, Err(ResponseError::UnstableOffsetCommit.code()))
                    } else {
                        (index, Ok(value))
                    }
                })
                .collect();
            (topic, partitions)
        })
        .collect())
}

/// The fields of one partition's answer: offset, leader epoch, metadata,
/// error code.
fn fields(value: Result<Option<OffsetValue>, i16>) -> (i64, i32, StrBytes, i16) {
    match value {
        Ok(Some(v)) => (v.offset, v.leader_epoch, StrBytes::from_string(v.metadata), 0),
        Ok(None) => (-1, -1, StrBytes::default(), 0),
        Err(code) => (-1, -1, StrBytes::default(), code),
    }
}

pub fn handle(broker: &Arc<Broker>, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g
                    .topics
                    .map(|ts| ts.into_iter().map(|t| (t.name.to_string(), t.partition_indexes)).collect::<Vec<_>>());
                let base = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                // v9+: a consumer-protocol member fetches with its current epoch.
                let member = g.member_id.as_deref().filter(|m| !m.is_empty());
                if let Err(e) = broker.groups.check_fetch_member(g.group_id.as_str(), member, g.member_epoch) {
                    return base.with_error_code(e.error_code());
                }
                match lookup(broker, g.group_id.as_str(), topics, req.require_stable) {
                    Err(code) => base.with_error_code(code),
                    Ok(found) => base.with_topics(
                        found
                            .into_iter()
                            .map(|(name, partitions)| {
                                let partitions = partitions
                                    .into_iter()
                                    .map(|(index, value)| {
                                        let (offset, epoch, metadata, code) = fields(value);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(metadata))
                                            .with_error_code(code)
                                    })
                                    .collect();
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(StrBytes::from_string(name)))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let group_id: GroupId = req.group_id;
    let topics = req.topics.map(|ts| ts.into_iter().map(|t| (t.name.to_string(), t.partition_indexes)).collect());
    // require_stable is on the wire from v7; earlier versions decode it as false.
    match lookup(broker, group_id.as_str(), topics, req.require_stable) {
        Err(code) => OffsetFetchResponse::default().with_error_code(code),
        Ok(found) => {
            let topics = found
                .into_iter()
                .map(|(name, partitions)| {
                    let partitions = partitions
                        .into_iter()
                        .map(|(index, value)| {
                            let (offset, epoch, metadata, code) = fields(value);
                            let p = OffsetFetchResponsePartition::default()
                                .with_partition_index(index)
                                .with_committed_offset(offset)
                                .with_metadata(Some(metadata))
                                .with_error_code(code);
                            // The leader epoch is in the response from v5 (KIP-320).
                            if version >= 5 {
                                p.with_committed_leader_epoch(epoch)
                            } else {
                                p
                            }
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        }
    }
}
