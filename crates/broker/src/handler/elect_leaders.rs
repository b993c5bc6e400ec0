//! ElectLeaders (v0-v2): on one node each partition's only replica already
//! leads, so every named partition answers ELECTION_NOT_NEEDED and an unknown
//! one UNKNOWN_TOPIC_OR_PARTITION. A null list (every partition) answers an
//! empty list, as Kafka leaves out partitions that need no election.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use kafka_protocol::messages::elect_leaders_response::{ElectLeadersResponse, PartitionResult, ReplicaElectionResult};

use crate::broker::Broker;

pub fn handle(broker: &Arc<Broker>, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let results = req
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let topic = broker.topic(&t.topic);
            let partition_result = t
                .partitions
                .iter()
                .map(|&index| {
                    let exists = topic.as_ref().is_some_and(|topic| topic.partition(index).is_some());
                    let error =
                        if exists { ResponseError::ElectionNotNeeded } else { ResponseError::UnknownTopicOrPartition };
                    PartitionResult::default().with_partition_id(index).with_error_code(error.code())
                })
                .collect();
            ReplicaElectionResult::default().with_topic(t.topic).with_partition_result(partition_result)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}
