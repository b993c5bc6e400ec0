//! DeleteRecords (v0-v2): advance partitions' log start offsets.
//!
//! An offset of -1 means the high watermark. An offset above the high
//! watermark is refused with OFFSET_OUT_OF_RANGE; an unknown partition gets
//! UNKNOWN_TOPIC_OR_PARTITION. The start offsets are checkpointed before the
//! response, so an acknowledged deletion survives a crash. Fetches below the
//! new start then get OFFSET_OUT_OF_RANGE and ListOffsets earliest returns it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};

use crate::broker::Broker;
use crate::error::ToErrorCode;

/// The offset that stands for "the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(broker: Arc<Broker>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    tokio::task::spawn_blocking(move || delete(&broker, req)).await.expect("delete records does not panic")
}

fn delete(broker: &Broker, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut advanced = false;
    let mut topics: Vec<DeleteRecordsTopicResult> = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    let Some(partition) = topic.as_ref().and_then(|topic| topic.partition(p.partition_index)) else {
                        return result
                            .with_low_watermark(-1)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let hw = partition.high_watermark();
                    let offset = if p.offset == HIGH_WATERMARK { hw } else { p.offset };
                    if offset < 0 || offset > hw {
                        return result.with_low_watermark(-1).with_error_code(ResponseError::OffsetOutOfRange.code());
                    }
                    match partition.log.advance_log_start_offset(offset) {
                        Ok(start) => {
                            advanced = true;
                            result.with_low_watermark(start)
                        }
                        Err(e) => result.with_low_watermark(-1).with_error_code(e.error_code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    if advanced {
        if let Err(e) = broker.logs.checkpoint() {
            // Not durable: report a storage error for every partition that moved.
            tracing::error!(error = %e, "log start offset checkpoint failed after DeleteRecords");
            for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()).filter(|p| p.error_code == 0) {
                p.error_code = ResponseError::KafkaStorageError.code();
            }
        }
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
