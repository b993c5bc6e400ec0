//! The authorization checks in front of the handlers, API by API, as Kafka's
//! request handlers make them.
//!
//! Each API's checks split a request into the part the principal may perform
//! and the part it may not. The denied part is answered here with Kafka's
//! error (TOPIC_, GROUP_, CLUSTER_ or TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
//! the allowed part goes to the handler through [`serve`]; the two are
//! merged into one response when the handler's future completes. Lists
//! that show resources (all topics in Metadata, ListGroups,
//! ListTransactions) are filtered afterwards to what the principal may
//! DESCRIBE, and `authorized_operations` fields that the client asked for
//! are computed from the ACLs.
//!
//! Only this module runs when an authorizer is configured; without one
//! [`super::dispatch`] goes straight to [`serve`]. Checks read the ACL
//! index in place (no copy, no allocation per check); denials are logged and
//! counted by [`crate::authz`].

mod admin;
mod groups;
mod security;
mod topics;
mod txn;

use std::sync::Arc;

use kafka_protocol::messages::{RequestKind, ResponseKind};

use super::{serve, NotServed, Pending};
use crate::authz::{Operation, ResourceType, CLUSTER_NAME};
use crate::broker::Broker;
use crate::protocol::Request;
use crate::session::Session;

/// The principal behind a request and the broker that judges it.
#[derive(Clone, Copy)]
pub(crate) struct Check<'a> {
    pub broker: &'a Arc<Broker>,
    pub session: &'a Session,
}

/// A [`Check`] that can move into a response's merge, for checks made on
/// what the handler answered.
pub(crate) struct OwnedCheck {
    broker: Arc<Broker>,
    session: Session,
}

impl OwnedCheck {
    pub fn check(&self) -> Check<'_> {
        Check { broker: &self.broker, session: &self.session }
    }
}

impl Check<'_> {
    pub fn owned(&self) -> OwnedCheck {
        OwnedCheck { broker: self.broker.clone(), session: self.session.clone() }
    }

    pub fn allowed(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.broker.authorize(self.session, operation, resource_type, name)
    }

    /// A check whose denial is not an error worth logging: it only narrows
    /// what the principal sees (Kafka's `logIfDenied = false`).
    pub fn quietly(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        let s = self.session;
        self.broker.authorizer.check(&s.principal, s.peer.ip(), operation, resource_type, name)
    }

    pub fn topic(&self, operation: Operation, name: &str) -> bool {
        self.allowed(operation, ResourceType::Topic, name)
    }

    pub fn group(&self, operation: Operation, name: &str) -> bool {
        self.allowed(operation, ResourceType::Group, name)
    }

    pub fn cluster(&self, operation: Operation) -> bool {
        self.allowed(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    pub fn transactional_id(&self, operation: Operation, name: &str) -> bool {
        self.allowed(operation, ResourceType::TransactionalId, name)
    }

    /// The `authorized_operations` bits of a resource.
    pub fn operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        self.broker.authorizer.authorized_operations(self.session, resource_type, name)
    }
}

/// Routes a request through its checks to the handler.
pub async fn dispatch(broker: &Arc<Broker>, session: &Session, request: Request) -> Result<Pending, NotServed> {
    let check = Check { broker, session };
    let version = request.header.request_api_version;
    let Request { header, api_key, body } = request;
    let rebuild = |body| Request { header: header.clone(), api_key, body };
    let outcome = match body {
        RequestKind::Produce(req) => topics::produce(check, req, version),
        RequestKind::Fetch(req) => topics::fetch(check, req, version),
        RequestKind::ListOffsets(req) => topics::list_offsets(check, req),
        RequestKind::Metadata(req) => topics::metadata(check, req, version),
        RequestKind::CreateTopics(req) => admin::create_topics(check, req, version),
        RequestKind::DeleteTopics(req) => admin::delete_topics(check, req, version),
        RequestKind::CreatePartitions(req) => admin::create_partitions(check, req),
        RequestKind::DeleteRecords(req) => admin::delete_records(check, req),
        RequestKind::DescribeConfigs(req) => admin::describe_configs(check, req),
        RequestKind::AlterConfigs(req) => admin::alter_configs(check, req),
        RequestKind::IncrementalAlterConfigs(req) => admin::incremental_alter_configs(check, req),
        RequestKind::DescribeLogDirs(req) => admin::describe_log_dirs(check, req, version),
        RequestKind::ElectLeaders(req) => admin::elect_leaders(check, req, version),
        RequestKind::DescribeCluster(req) => admin::describe_cluster(check, req),
        RequestKind::DescribeTopicPartitions(req) => admin::describe_topic_partitions(check, req),
        RequestKind::FindCoordinator(req) => groups::find_coordinator(check, req, version),
        RequestKind::JoinGroup(req) => groups::join_group(check, req),
        RequestKind::SyncGroup(req) => groups::sync_group(check, req),
        RequestKind::Heartbeat(req) => groups::heartbeat(check, req),
        RequestKind::LeaveGroup(req) => groups::leave_group(check, req),
        RequestKind::OffsetCommit(req) => groups::offset_commit(check, req),
        RequestKind::OffsetFetch(req) => groups::offset_fetch(check, req, version),
        RequestKind::OffsetDelete(req) => groups::offset_delete(check, req),
        RequestKind::DescribeGroups(req) => groups::describe_groups(check, req),
        RequestKind::ListGroups(req) => groups::list_groups(check, req),
        RequestKind::DeleteGroups(req) => groups::delete_groups(check, req),
        RequestKind::ConsumerGroupHeartbeat(req) => groups::consumer_group_heartbeat(check, req),
        RequestKind::ConsumerGroupDescribe(req) => groups::consumer_group_describe(check, req),
        RequestKind::InitProducerId(req) => txn::init_producer_id(check, req),
        RequestKind::AddPartitionsToTxn(req) => txn::add_partitions_to_txn(check, req, version),
        RequestKind::AddOffsetsToTxn(req) => txn::add_offsets_to_txn(check, req),
        RequestKind::EndTxn(req) => txn::end_txn(check, req),
        RequestKind::TxnOffsetCommit(req) => txn::txn_offset_commit(check, req),
        RequestKind::WriteTxnMarkers(req) => txn::write_txn_markers(check, req),
        RequestKind::DescribeProducers(req) => txn::describe_producers(check, req),
        RequestKind::DescribeTransactions(req) => txn::describe_transactions(check, req),
        RequestKind::ListTransactions(req) => txn::list_transactions(check, req),
        RequestKind::DescribeUserScramCredentials(req) => security::describe_user_scram_credentials(check, req),
        RequestKind::AlterUserScramCredentials(req) => security::alter_user_scram_credentials(check, req),
        RequestKind::DescribeClientQuotas(req) => security::describe_client_quotas(check, req),
        RequestKind::AlterClientQuotas(req) => security::alter_client_quotas(check, req),
        // ApiVersions, the SASL APIs and the ACL APIs (which check for
        // themselves) need no check here.
        body => Outcome::Serve(body, None),
    };
    match outcome {
        Outcome::Answer(response) => Ok(Box::pin(async move { response })),
        Outcome::Serve(body, merge) => {
            let pending = serve(broker, session, rebuild(body)).await?;
            Ok(match merge {
                None => pending,
                Some(merge) => Box::pin(async move { pending.await.map(merge) }),
            })
        }
    }
}

/// Turns the handler's response into the response the client gets.
pub(crate) type Merge = Box<dyn FnOnce(ResponseKind) -> ResponseKind + Send>;

/// What the checks decided for one request.
pub(crate) enum Outcome {
    /// Denied as a whole: this is the response (`None`: no response).
    Answer(Option<ResponseKind>),
    /// Serve this (possibly narrowed) request, then merge.
    Serve(RequestKind, Option<Merge>),
}

impl Outcome {
    pub fn answer(response: impl Into<ResponseKind>) -> Outcome {
        Outcome::Answer(Some(response.into()))
    }

    /// Serves `body` unchanged.
    pub fn pass(body: impl Into<RequestKind>) -> Outcome {
        Outcome::Serve(body.into(), None)
    }

    /// Serves `body`, then applies `merge` to the response, of type `R`
    /// (a handler answers its own API; anything else is a bug).
    pub fn merge<R: FromKind>(body: impl Into<RequestKind>, merge: impl FnOnce(R) -> R + Send + 'static) -> Outcome {
        let merge: Merge = Box::new(move |kind| {
            let response = R::from_kind(kind).expect("a handler answers with its own API's response");
            merge(response).into()
        });
        Outcome::Serve(body.into(), Some(merge))
    }
}

/// A response type taken back out of [`ResponseKind`].
pub(crate) trait FromKind: Sized + Into<ResponseKind> {
    fn from_kind(kind: ResponseKind) -> Option<Self>;
}

macro_rules! from_kind {
    ($($variant:ident: $ty:ident),* $(,)?) => {
        $(
            impl FromKind for kafka_protocol::messages::$ty {
                fn from_kind(kind: ResponseKind) -> Option<Self> {
                    match kind {
                        ResponseKind::$variant(r) => Some(r),
                        _ => None,
                    }
                }
            }
        )*
    };
}

from_kind!(
    Produce: ProduceResponse,
    Fetch: FetchResponse,
    ListOffsets: ListOffsetsResponse,
    Metadata: MetadataResponse,
    CreateTopics: CreateTopicsResponse,
    DeleteTopics: DeleteTopicsResponse,
    CreatePartitions: CreatePartitionsResponse,
    DeleteRecords: DeleteRecordsResponse,
    DescribeConfigs: DescribeConfigsResponse,
    AlterConfigs: AlterConfigsResponse,
    IncrementalAlterConfigs: IncrementalAlterConfigsResponse,
    DescribeCluster: DescribeClusterResponse,
    DescribeTopicPartitions: DescribeTopicPartitionsResponse,
    FindCoordinator: FindCoordinatorResponse,
    OffsetCommit: OffsetCommitResponse,
    OffsetFetch: OffsetFetchResponse,
    OffsetDelete: OffsetDeleteResponse,
    DescribeGroups: DescribeGroupsResponse,
    ListGroups: ListGroupsResponse,
    DeleteGroups: DeleteGroupsResponse,
    ConsumerGroupDescribe: ConsumerGroupDescribeResponse,
    AddPartitionsToTxn: AddPartitionsToTxnResponse,
    TxnOffsetCommit: TxnOffsetCommitResponse,
    DescribeProducers: DescribeProducersResponse,
    DescribeTransactions: DescribeTransactionsResponse,
    ListTransactions: ListTransactionsResponse,
);
