//! ListOffsets: earliest, latest, max-timestamp and by-timestamp lookups.
//!
//! Special timestamps as in Kafka: -1 latest (the high watermark), -2 earliest
//! (the log start offset), -3 the record with the largest timestamp (v7+),
//! -4 earliest local (v8+; the same as earliest without tiered storage),
//! -5 latest tiered (v9+; nothing is tiered, so no offset). A timestamp >= 0
//! finds the first record whose timestamp is at or after it; none gives
//! offset -1. Nothing at or above the high watermark is ever returned; with
//! `isolation_level` 1 (read_committed) nothing at or above the last stable
//! offset, so LATEST is the last stable offset.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::handler::fetch::{watermarks, Isolation};
use crate::partition::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(broker: Arc<Broker>, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let isolation = Isolation::from_level(req.isolation_level);
    tokio::task::spawn_blocking(move || {
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let topic = broker.topic(&t.name);
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| match topic.as_ref().and_then(|topic| topic.partition(p.partition_index)) {
                        Some(partition) => lookup(partition, p, isolation, version),
                        None => ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_timestamp(-1)
                            .with_offset(-1),
                    })
                    .collect();
                ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
            })
            .collect();
        ListOffsetsResponse::default().with_topics(topics)
    })
    .await
    .expect("list offsets does not panic")
}

fn lookup(
    partition: &Partition,
    p: &ListOffsetsPartition,
    isolation: Isolation,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let mut base = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
    if version >= 4 {
        base = base.with_leader_epoch(0);
    }
    // The highest offset this lookup may return, plus one.
    let bound = match (isolation, watermarks(partition)) {
        (Isolation::ReadCommitted, (_, lso)) => lso,
        (Isolation::ReadUncommitted, (hw, _)) => hw,
    };
    let found = match p.timestamp {
        LATEST => Ok(Some((-1, bound))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((-1, partition.log.log_start_offset()))),
        LATEST_TIERED => Ok(None),
        MAX_TIMESTAMP => Ok(partition.log.max_timestamp().filter(|(_, offset)| *offset < bound)),
        ts if ts >= 0 => partition
            .log
            .offset_for_timestamp(ts)
            .map(|found| found.filter(|(offset, _)| *offset < bound).map(|(o, t)| (t, o))),
        _ => return base.with_error_code(ResponseError::InvalidRequest.code()).with_timestamp(-1).with_offset(-1),
    };
    match found {
        Ok(Some((timestamp, offset))) => base.with_timestamp(timestamp).with_offset(offset),
        Ok(None) => base.with_timestamp(-1).with_offset(-1),
        Err(e) => base.with_error_code(e.error_code()).with_timestamp(-1).with_offset(-1),
    }
}
