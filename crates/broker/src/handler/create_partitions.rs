//! CreatePartitions (v0-v3): raise a topic's partition count.
//!
//! The count only grows (INVALID_PARTITIONS otherwise). An explicit
//! assignment must give one replica, this broker, per new partition
//! (INVALID_REPLICA_ASSIGNMENT otherwise). `validate_only` checks everything
//! and creates nothing. The new partitions are in Metadata as soon as the
//! response is sent. A topic named twice is refused with INVALID_REQUEST.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::{CreatePartitionsRequest, CreatePartitionsTopic};
use kafka_protocol::messages::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;

pub async fn handle(broker: Arc<Broker>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    tokio::task::spawn_blocking(move || {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for t in &req.topics {
            *seen.entry(t.name.as_str()).or_default() += 1;
        }
        let results = req
            .topics
            .iter()
            .map(|t| {
                let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
                let fail = |error: ResponseError, message: String| {
                    result
                        .clone()
                        .with_error_code(error.code())
                        .with_error_message(Some(StrBytes::from_string(message)))
                };
                if seen[t.name.as_str()] > 1 {
                    let message = format!("topic '{}' appears more than once in the request", t.name.as_str());
                    return fail(ResponseError::InvalidRequest, message);
                }
                if let Err(message) = check_assignments(&broker, t) {
                    return fail(ResponseError::InvalidReplicaAssignment, message);
                }
                match broker.create_partitions(&t.name, t.count, req.validate_only) {
                    Ok(()) => result,
                    Err(e) => fail(e.error(), e.to_string()),
                }
            })
            .collect();
        CreatePartitionsResponse::default().with_results(results)
    })
    .await
    .expect("create partitions does not panic")
}

/// An explicit assignment names this broker alone for each new partition.
fn check_assignments(broker: &Broker, t: &CreatePartitionsTopic) -> Result<(), String> {
    let Some(assignments) = &t.assignments else {
        return Ok(());
    };
    let current = broker.topic(&t.name).map_or(0, |topic| topic.partitions.len() as i64);
    let new = i64::from(t.count) - current;
    if assignments.len() as i64 != new {
        return Err(format!("{} assignments given for {new} new partitions", assignments.len()));
    }
    let me = broker.node_id();
    if let Some(bad) = assignments.iter().find(|a| a.broker_ids.len() != 1 || a.broker_ids[0].0 != me) {
        let ids: Vec<i32> = bad.broker_ids.iter().map(|b| b.0).collect();
        return Err(format!("replicas {ids:?}: the only broker is {me} and the replication factor is 1"));
    }
    Ok(())
}
