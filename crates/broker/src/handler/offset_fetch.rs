//! OffsetFetch: committed offsets of a group, or (from v8, KIP-709) of
//! several groups per request. A null topic list asks for every partition
//! the group has committed. A partition without a committed offset answers
//! offset -1 with no error, as Kafka does.

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

fn lookup(broker: &Broker, group_id: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> Result<TopicOffsets, i16> {
    if group_id.is_empty() {
        return Err(ResponseError::InvalidGroupId.code());
    }
    Ok(broker.groups.fetch_offsets(group_id, topics))
}

/// The fields of one partition's answer: offset, leader epoch, metadata.
fn fields(value: Option<OffsetValue>) -> (i64, i32, StrBytes) {
    match value {
        Some(v) => (v.offset, v.leader_epoch, StrBytes::from_string(v.metadata)),
        None => (-1, -1, StrBytes::default()),
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
                match lookup(broker, g.group_id.as_str(), topics) {
                    Err(code) => base.with_error_code(code),
                    Ok(found) => base.with_topics(
                        found
                            .into_iter()
                            .map(|(name, partitions)| {
                                let partitions = partitions
                                    .into_iter()
                                    .map(|(index, value)| {
                                        let (offset, epoch, metadata) = fields(value);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(metadata))
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
    match lookup(broker, group_id.as_str(), topics) {
        Err(code) => OffsetFetchResponse::default().with_error_code(code),
        Ok(found) => {
            let topics = found
                .into_iter()
                .map(|(name, partitions)| {
                    let partitions = partitions
                        .into_iter()
                        .map(|(index, value)| {
                            let (offset, epoch, metadata) = fields(value);
                            let p = OffsetFetchResponsePartition::default()
                                .with_partition_index(index)
                                .with_committed_offset(offset)
                                .with_metadata(Some(metadata));
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
