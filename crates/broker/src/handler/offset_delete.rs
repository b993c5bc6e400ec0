//! OffsetDelete: remove a group's committed offsets for topics its members
//! do not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;

pub async fn handle(
    broker: Arc<Broker>,
    req: OffsetDeleteRequest,
) -> impl Future<Output = OffsetDeleteResponse> + Send {
    let mut unknown = Vec::new();
    let mut asked = Vec::new();
    for topic in &req.topics {
        let known = broker.topic(&topic.name);
        let (ok, bad): (Vec<i32>, Vec<i32>) = topic
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .partition(|i| known.as_ref().is_some_and(|t| t.partition(*i).is_some()));
        asked.push((topic.name.to_string(), ok));
        unknown.push((topic.name.to_string(), bad));
    }
    let b = broker.clone();
    let group_id = req.group_id.to_string();
    let outcome = tokio::task::spawn_blocking(move || b.groups.delete_offsets(b.logs.flusher(), &group_id, &asked))
        .await
        .expect("offset delete does not panic");
    async move {
        let results = match outcome {
            Err(e) => return OffsetDeleteResponse::default().with_error_code(e.error_code()),
            Ok((results, written)) => {
                if let Some(written) = written {
                    if !written.durable().await {
                        return OffsetDeleteResponse::default()
                            .with_error_code(ResponseError::CoordinatorNotAvailable.code());
                    }
                }
                results
            }
        };
        let topics = results
            .into_iter()
            .zip(unknown)
            .map(|((name, partitions), (_, unknown))| {
                let mut out: Vec<OffsetDeleteResponsePartition> = partitions
                    .into_iter()
                    .map(|(index, result)| {
                        let code = if result.is_err() { ResponseError::GroupSubscribedToTopic.code() } else { 0 };
                        OffsetDeleteResponsePartition::default().with_partition_index(index).with_error_code(code)
                    })
                    .collect();
                out.extend(unknown.into_iter().map(|index| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                }));
                OffsetDeleteResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(out)
            })
            .collect();
        OffsetDeleteResponse::default().with_topics(topics)
    }
}
