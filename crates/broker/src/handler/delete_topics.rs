//! DeleteTopics: by name (all versions) or by topic id (v6+).
//!
//! The metadata record is written first, so the topic disappears at once and
//! its name can be created again immediately; the partitions' files are
//! renamed aside and removed in the background.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::Broker;
use crate::error::ToErrorCode;

pub async fn handle(broker: Arc<Broker>, req: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    tokio::task::spawn_blocking(move || {
        let targets: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
            req.topics.into_iter().map(|t| (t.name, t.topic_id)).collect()
        } else {
            req.topic_names.into_iter().map(|n| (Some(n), Uuid::nil())).collect()
        };
        let responses = targets.into_iter().map(|(name, id)| delete(&broker, name, id, version)).collect();
        DeleteTopicsResponse::default().with_responses(responses)
    })
    .await
    .expect("delete topics does not panic")
}

fn delete(broker: &Broker, name: Option<TopicName>, id: Uuid, version: i16) -> DeletableTopicResult {
    let result = DeletableTopicResult::default().with_name(name.clone()).with_topic_id(id);
    let with_id = |r: DeletableTopicResult, id: Uuid| if version >= 6 { r.with_topic_id(id) } else { r };
    let topic = match &name {
        Some(name) => broker.topic(name),
        None => broker.topic_by_id(&id),
    };
    let Some(topic) = topic else {
        let error = if name.is_some() { ResponseError::UnknownTopicOrPartition } else { ResponseError::UnknownTopicId };
        return result.with_error_code(error.code());
    };
    let result =
        with_id(result.with_name(Some(TopicName(StrBytes::from_string(topic.meta.name.clone())))), topic.meta.id);
    if crate::group::is_internal_topic(&topic.meta.name) {
        let error = ResponseError::InvalidTopicException;
        let message = format!("topic {} is an internal topic and cannot be deleted", topic.meta.name);
        return if version >= 5 {
            result.with_error_code(error.code()).with_error_message(Some(StrBytes::from_string(message)))
        } else {
            result.with_error_code(error.code())
        };
    }
    match broker.delete_topic(&topic.meta.name) {
        Ok(()) => result,
        // Error messages are in the response from v5 (KIP-322).
        Err(e) if version >= 5 => {
            result.with_error_code(e.error_code()).with_error_message(Some(StrBytes::from_string(e.to_string())))
        }
        Err(e) => result.with_error_code(e.error_code()),
    }
}
