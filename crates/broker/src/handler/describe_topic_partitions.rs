//! DescribeTopicPartitions (v0, KIP-966): topics and their partitions in name
//! order, at most `response_partition_limit` partitions per response (capped
//! by `max.request.partition.size.limit`), continuing from a cursor. An empty
//! topic list means every topic. When a response stops early, `next_cursor`
//! names the first partition it left out.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::{Broker, Topic};
use crate::handler::metadata::TOPIC_OPERATIONS_ALL;

pub fn handle(broker: &Arc<Broker>, req: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let cap = broker.config.max_request_partition_size_limit();
    let mut budget = if req.response_partition_limit > 0 { req.response_partition_limit.min(cap) } else { cap };
    let mut names: Vec<String> = if req.topics.is_empty() {
        broker.topics().iter().map(|t| t.meta.name.clone()).collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.to_string()), c.partition_index.max(0)),
        None => (None, 0),
    };
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.iter().filter(|n| start_topic.as_ref().is_none_or(|s| n.as_str() >= s.as_str())) {
        let Some(topic) = broker.topic(name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                    .with_topic_id(Uuid::nil()),
            );
            continue;
        };
        let first = if start_topic.as_deref() == Some(name.as_str()) { start_partition } else { 0 };
        if budget == 0 {
            next_cursor = Some(cursor(name, first));
            break;
        }
        let count = topic.partitions.len() as i32;
        let end = count.min(first.saturating_add(budget));
        budget -= (end - first).max(0);
        topics.push(describe(broker, &topic, first, end));
        if end < count {
            next_cursor = Some(cursor(name, end));
            break;
        }
    }
    DescribeTopicPartitionsResponse::default().with_topics(topics).with_next_cursor(next_cursor)
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_index(partition)
}

fn describe(broker: &Broker, topic: &Topic, first: i32, end: i32) -> DescribeTopicPartitionsResponseTopic {
    let node = BrokerId(broker.node_id());
    let partitions = (first..end)
        .map(|index| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
        })
        .collect();
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.meta.name.clone()))))
        .with_topic_id(topic.meta.id)
        .with_partitions(partitions)
        .with_topic_authorized_operations(TOPIC_OPERATIONS_ALL)
}
