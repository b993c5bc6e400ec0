//! One module per Kafka API, dispatched from [`dispatch`].
//!
//! With an authorizer configured, [`authz`] stands in front of the handlers:
//! it checks what Kafka checks for each API, answers the denied parts of a
//! request with Kafka's authorization errors, passes the rest on through
//! [`serve`] and merges the two into one response. Without one, requests go
//! straight to [`serve`] and the handlers know nothing of ACLs.
//!
//! Dispatch runs in the connection's task in request order. Anything whose
//! order matters (appends) happens before `dispatch` returns; waiting (fsync,
//! long polls) happens in the returned future, which the connection polls
//! alongside later requests while keeping responses in request order.

pub mod api_versions;
pub mod authz;
pub mod create_topics;
pub mod delete_topics;
pub mod fetch;
pub mod find_coordinator;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod throttle;
// Admin APIs.
pub mod alter_configs;
pub mod create_partitions;
pub mod delete_records;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
pub mod elect_leaders;
// SCRAM credentials.
pub mod alter_user_scram_credentials;
pub mod describe_user_scram_credentials;
// Client quotas.
pub mod alter_client_quotas;
pub mod describe_client_quotas;
// ACLs.
pub mod create_acls;
pub mod delete_acls;
pub mod describe_acls;
// Group coordinator.
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod delete_groups;
pub mod describe_groups;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod sync_group;
// Transaction coordinator and producer ids.
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod init_producer_id;
pub mod list_transactions;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::broker::Broker;
use crate::protocol::Request;
use crate::session::Session;

/// A response to come: `None` when the request gets no response (`acks=0`).
pub type Pending = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;

/// The address clients should use to reach this broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: i32,
}

/// Why a request is not served at all; the connection is closed.
#[derive(Debug, thiserror::Error)]
#[error("api {0:?} is not served")]
pub struct NotServed(pub ApiKey);

/// Routes a decoded request to its handler, for the client `session` names,
/// through the authorization checks when an authorizer is configured.
pub async fn dispatch(broker: &Arc<Broker>, session: &Session, request: Request) -> Result<Pending, NotServed> {
    if broker.authorizer.enabled() {
        return authz::dispatch(broker, session, request).await;
    }
    serve(broker, session, request).await
}

/// Routes a request to its handler with no authorization check: the
/// caller has checked, or no authorizer is configured.
pub async fn serve(broker: &Arc<Broker>, session: &Session, request: Request) -> Result<Pending, NotServed> {
    let (endpoint, peer) = (&session.endpoint, session.peer);
    let version = request.header.request_api_version;
    let client_id = request.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    let broker = broker.clone();
    let pending: Pending = match request.body {
        RequestKind::ApiVersions(_) => Box::pin(async { Some(ResponseKind::ApiVersions(api_versions::handle())) }),
        RequestKind::Metadata(req) => {
            let endpoint = endpoint.clone();
            Box::pin(
                async move { Some(ResponseKind::Metadata(metadata::handle(broker, endpoint, req, version).await)) },
            )
        }
        RequestKind::Produce(req) => {
            let respond = produce::append(broker, req, version).await;
            Box::pin(async move { respond.await.map(ResponseKind::Produce) })
        }
        RequestKind::Fetch(req) => {
            Box::pin(async move { Some(ResponseKind::Fetch(fetch::handle(broker, req, version).await)) })
        }
        RequestKind::FindCoordinator(req) => {
            let response = find_coordinator::handle(broker.node_id(), endpoint, req, version);
            Box::pin(async move { Some(ResponseKind::FindCoordinator(response)) })
        }
        RequestKind::ListOffsets(req) => {
            Box::pin(async move { Some(ResponseKind::ListOffsets(list_offsets::handle(broker, req, version).await)) })
        }
        RequestKind::CreateTopics(req) => {
            Box::pin(async move { Some(ResponseKind::CreateTopics(create_topics::handle(broker, req, version).await)) })
        }
        RequestKind::DeleteTopics(req) => {
            Box::pin(async move { Some(ResponseKind::DeleteTopics(delete_topics::handle(broker, req, version).await)) })
        }
        // Admin APIs.
        RequestKind::DescribeConfigs(req) => Box::pin(async move {
            Some(ResponseKind::DescribeConfigs(describe_configs::handle(broker, req, version).await))
        }),
        RequestKind::IncrementalAlterConfigs(req) => Box::pin(async move {
            Some(ResponseKind::IncrementalAlterConfigs(alter_configs::handle_incremental(broker, req).await))
        }),
        RequestKind::AlterConfigs(req) => {
            Box::pin(async move { Some(ResponseKind::AlterConfigs(alter_configs::handle(broker, req).await)) })
        }
        RequestKind::CreatePartitions(req) => {
            Box::pin(async move { Some(ResponseKind::CreatePartitions(create_partitions::handle(broker, req).await)) })
        }
        RequestKind::DeleteRecords(req) => {
            Box::pin(async move { Some(ResponseKind::DeleteRecords(delete_records::handle(broker, req).await)) })
        }
        RequestKind::DescribeCluster(req) => {
            let response = describe_cluster::handle(&broker, endpoint, req, version);
            Box::pin(async move { Some(ResponseKind::DescribeCluster(response)) })
        }
        RequestKind::DescribeLogDirs(req) => Box::pin(async move {
            Some(ResponseKind::DescribeLogDirs(describe_log_dirs::handle(broker, req, version).await))
        }),
        RequestKind::DescribeTopicPartitions(req) => {
            let response = describe_topic_partitions::handle(&broker, req);
            Box::pin(async move { Some(ResponseKind::DescribeTopicPartitions(response)) })
        }
        // Client quotas.
        RequestKind::DescribeClientQuotas(req) => {
            let response = describe_client_quotas::handle(&broker, req);
            Box::pin(async move { Some(ResponseKind::DescribeClientQuotas(response)) })
        }
        RequestKind::AlterClientQuotas(req) => {
            Box::pin(
                async move { Some(ResponseKind::AlterClientQuotas(alter_client_quotas::handle(broker, req).await)) },
            )
        }
        // ACLs.
        RequestKind::CreateAcls(req) => {
            let response = create_acls::handle(broker, session, req).await;
            Box::pin(async move { Some(ResponseKind::CreateAcls(response)) })
        }
        RequestKind::DescribeAcls(req) => {
            let response = describe_acls::handle(&broker, session, req);
            Box::pin(async move { Some(ResponseKind::DescribeAcls(response)) })
        }
        RequestKind::DeleteAcls(req) => {
            let response = delete_acls::handle(broker, session, req).await;
            Box::pin(async move { Some(ResponseKind::DeleteAcls(response)) })
        }
        // A connection that reaches the handlers has finished authenticating
        // (or is on a listener without SASL). A SaslHandshake that begins a
        // re-authentication (KIP-368) never gets here (`connection` runs it);
        // this one does not: no session lifetime, or less than a second since
        // the last authentication, and Kafka answers ILLEGAL_SASL_STATE.
        RequestKind::SaslHandshake(_) => {
            let response = crate::sasl::illegal_state_handshake();
            Box::pin(async move { Some(ResponseKind::SaslHandshake(response)) })
        }
        RequestKind::SaslAuthenticate(_) => {
            let response = crate::sasl::illegal_state_authenticate();
            Box::pin(async move { Some(ResponseKind::SaslAuthenticate(response)) })
        }
        RequestKind::ElectLeaders(req) => {
            let response = elect_leaders::handle(&broker, req);
            Box::pin(async move { Some(ResponseKind::ElectLeaders(response)) })
        }
        // SCRAM credentials.
        RequestKind::DescribeUserScramCredentials(req) => {
            let response = describe_user_scram_credentials::handle(&broker, req);
            Box::pin(async move { Some(ResponseKind::DescribeUserScramCredentials(response)) })
        }
        RequestKind::AlterUserScramCredentials(req) => Box::pin(async move {
            Some(ResponseKind::AlterUserScramCredentials(alter_user_scram_credentials::handle(broker, req).await))
        }),
        // Group coordinator.
        // The state changes happen before `dispatch` returns, in request
        // order; the futures only wait (for the join phase, the assignment,
        // a flush).
        RequestKind::JoinGroup(req) => {
            let respond = join_group::handle(broker, req, client_id, peer, version).await;
            Box::pin(async move { Some(ResponseKind::JoinGroup(respond.await)) })
        }
        RequestKind::SyncGroup(req) => {
            let respond = sync_group::handle(broker, req, version).await;
            Box::pin(async move { Some(ResponseKind::SyncGroup(respond.await)) })
        }
        RequestKind::Heartbeat(req) => {
            let response = heartbeat::handle(&broker, req);
            Box::pin(async move { Some(ResponseKind::Heartbeat(response)) })
        }
        RequestKind::LeaveGroup(req) => {
            let respond = leave_group::handle(broker, req, version).await;
            Box::pin(async move { Some(ResponseKind::LeaveGroup(respond.await)) })
        }
        RequestKind::OffsetCommit(req) => {
            let respond = offset_commit::handle(broker, req).await;
            Box::pin(async move { Some(ResponseKind::OffsetCommit(respond.await)) })
        }
        RequestKind::OffsetFetch(req) => {
            let response = offset_fetch::handle(&broker, req, version);
            Box::pin(async move { Some(ResponseKind::OffsetFetch(response)) })
        }
        RequestKind::OffsetDelete(req) => {
            let respond = offset_delete::handle(broker, req).await;
            Box::pin(async move { Some(ResponseKind::OffsetDelete(respond.await)) })
        }
        RequestKind::ListGroups(req) => {
            let response = list_groups::handle(&broker, req, version);
            Box::pin(async move { Some(ResponseKind::ListGroups(response)) })
        }
        RequestKind::DescribeGroups(req) => {
            let response = describe_groups::handle(&broker, req, version);
            Box::pin(async move { Some(ResponseKind::DescribeGroups(response)) })
        }
        RequestKind::DeleteGroups(req) => {
            let respond = delete_groups::handle(broker, req).await;
            Box::pin(async move { Some(ResponseKind::DeleteGroups(respond.await)) })
        }
        // Transaction coordinator and producer ids: state changes happen
        // before `dispatch` returns; the futures wait for the flush.
        RequestKind::InitProducerId(req) => {
            let respond = init_producer_id::handle(broker, req, version).await;
            Box::pin(async move { Some(ResponseKind::InitProducerId(respond.await)) })
        }
        RequestKind::AddPartitionsToTxn(req) => {
            let respond = add_partitions_to_txn::handle(broker, req, version).await;
            Box::pin(async move { Some(ResponseKind::AddPartitionsToTxn(respond.await)) })
        }
        RequestKind::AddOffsetsToTxn(req) => {
            let respond = add_offsets_to_txn::handle(broker, req, version).await;
            Box::pin(async move { Some(ResponseKind::AddOffsetsToTxn(respond.await)) })
        }
        RequestKind::EndTxn(req) => {
            let respond = end_txn::handle(broker, req, version).await;
            Box::pin(async move { Some(ResponseKind::EndTxn(respond.await)) })
        }
        RequestKind::TxnOffsetCommit(req) => {
            let respond = txn_offset_commit::handle(broker, req, version).await;
            Box::pin(async move { Some(ResponseKind::TxnOffsetCommit(respond.await)) })
        }
        RequestKind::WriteTxnMarkers(req) => {
            let respond = write_txn_markers::handle(broker, req).await;
            Box::pin(async move { Some(ResponseKind::WriteTxnMarkers(respond.await)) })
        }
        RequestKind::DescribeProducers(req) => {
            let b = broker.clone();
            let response = tokio::task::spawn_blocking(move || describe_producers::handle(&b, req))
                .await
                .expect("describe producers does not panic");
            Box::pin(async move { Some(ResponseKind::DescribeProducers(response)) })
        }
        RequestKind::DescribeTransactions(req) => {
            let response = describe_transactions::handle(&broker, req);
            Box::pin(async move { Some(ResponseKind::DescribeTransactions(response)) })
        }
        RequestKind::ListTransactions(req) => {
            let response = list_transactions::handle(&broker, req);
            Box::pin(async move { Some(ResponseKind::ListTransactions(response)) })
        }
        // The consumer group protocol (KIP-848).
        RequestKind::ConsumerGroupHeartbeat(req) => {
            let respond = consumer_group_heartbeat::handle(broker, req, client_id, peer, version).await;
            Box::pin(async move { Some(ResponseKind::ConsumerGroupHeartbeat(respond.await)) })
        }
        RequestKind::ConsumerGroupDescribe(req) => {
            let response = consumer_group_describe::handle(&broker, req, version);
            Box::pin(async move { Some(ResponseKind::ConsumerGroupDescribe(response)) })
        }
        _ => return Err(NotServed(request.api_key)),
    };
    Ok(pending)
}

/// Milliseconds since the Unix epoch, the unit of Kafka timestamps.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod authz_tests;
#[cfg(test)]
mod quota_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod consumer_group_tests;
#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod scram_tests;
#[cfg(test)]
mod txn_fetch_tests;
#[cfg(test)]
mod txn_tests;
