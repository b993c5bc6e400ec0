//! DescribeProducers: the idempotent and transactional producers with state
//! in each named partition, from the storage engine's producer state.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_request::DescribeProducersRequest;
use kafka_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::ProducerId;

use crate::broker::Broker;

pub fn handle(broker: &Broker, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(&t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let base = PartitionResponse::default().with_partition_index(index);
                    let Some(p) = topic.as_ref().and_then(|topic| topic.partition(index)) else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let producers = p
                        .log
                        .producers()
                        .into_iter()
                        .map(|s| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(s.producer_id))
                                .with_producer_epoch(i32::from(s.producer_epoch))
                                .with_last_sequence(s.last_sequence)
                                .with_last_timestamp(s.last_timestamp)
                                .with_coordinator_epoch(s.coordinator_epoch)
                                .with_current_txn_start_offset(s.current_txn_start_offset)
                        })
                        .collect();
                    base.with_active_producers(producers)
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
