//! WriteTxnMarkers: write transaction markers into partitions of this broker.
//!
//! Runnel's own coordinator writes its markers straight into the local logs;
//! this API serves tools and coordinators that send markers explicitly. Each
//! partition gets its own error code: UNKNOWN_TOPIC_OR_PARTITION, or the
//! storage engine's verdict (an older producer epoch, an older coordinator
//! epoch). A marker into `__consumer_offsets` also applies or drops the
//! transaction's pending offsets.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult, WriteTxnMarkersResponse,
};

use crate::broker::Broker;
use crate::error::ToErrorCode;

pub async fn handle(
    broker: Arc<Broker>,
    req: WriteTxnMarkersRequest,
) -> impl Future<Output = WriteTxnMarkersResponse> + Send {
    let b = broker.clone();
    let (markers, written) = tokio::task::spawn_blocking(move || {
        let mut written = Vec::new();
        let markers: Vec<WritableTxnMarkerResult> = req
            .markers
            .into_iter()
            .map(|m| {
                let topics = m
                    .topics
                    .into_iter()
                    .map(|t| {
                        let topic = b.topic(&t.name);
                        let partitions = t
                            .partition_indexes
                            .iter()
                            .map(|&index| {
                                let code = match topic.as_ref().and_then(|topic| topic.partition(index)) {
                                    None => ResponseError::UnknownTopicOrPartition.code(),
                                    Some(p) => match crate::txn::write_marker(
                                        &b,
                                        p,
                                        m.producer_id.0,
                                        m.producer_epoch,
                                        m.transaction_result,
                                        m.coordinator_epoch,
                                    ) {
                                        Ok(w) => {
                                            written.push(w);
                                            0
                                        }
                                        Err(e) => e.error_code(),
                                    },
                                };
                                WritableTxnMarkerPartitionResult::default()
                                    .with_partition_index(index)
                                    .with_error_code(code)
                            })
                            .collect();
                        WritableTxnMarkerTopicResult::default().with_name(t.name).with_partitions(partitions)
                    })
                    .collect();
                WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics)
            })
            .collect();
        (markers, written)
    })
    .await
    .expect("write txn markers does not panic");
    async move {
        if !crate::txn::durable(written).await {
            tracing::warn!("transaction markers written but not flushed");
        }
        WriteTxnMarkersResponse::default().with_markers(markers)
    }
}
