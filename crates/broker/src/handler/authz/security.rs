//! Checks of the security admin APIs, as Kafka makes them:
//! DescribeUserScramCredentials (DESCRIBE on the cluster),
//! AlterUserScramCredentials (ALTER on the cluster), DescribeClientQuotas
//! (DESCRIBE_CONFIGS on the cluster) and AlterClientQuotas (ALTER_CONFIGS on
//! the cluster). A denied describe gets CLUSTER_AUTHORIZATION_FAILED as its
//! top-level error; a denied alter gets it for every user or entity it names.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_request::AlterClientQuotasRequest;
use kafka_protocol::messages::alter_client_quotas_response::{self, AlterClientQuotasResponse};
use kafka_protocol::messages::alter_user_scram_credentials_request::AlterUserScramCredentialsRequest;
use kafka_protocol::messages::alter_user_scram_credentials_response::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
};
use kafka_protocol::messages::describe_client_quotas_request::DescribeClientQuotasRequest;
use kafka_protocol::messages::describe_client_quotas_response::DescribeClientQuotasResponse;
use kafka_protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use kafka_protocol::messages::describe_user_scram_credentials_response::DescribeUserScramCredentialsResponse;
use kafka_protocol::protocol::StrBytes;

use super::{Check, Outcome};
use crate::authz::Operation;

const DENIED: ResponseError = ResponseError::ClusterAuthorizationFailed;

fn message() -> Option<StrBytes> {
    Some(StrBytes::from_static_str("Cluster authorization failed."))
}

pub(super) fn describe_user_scram_credentials(check: Check<'_>, req: DescribeUserScramCredentialsRequest) -> Outcome {
    if check.cluster(Operation::Describe) {
        return Outcome::pass(req);
    }
    Outcome::answer(
        DescribeUserScramCredentialsResponse::default().with_error_code(DENIED.code()).with_error_message(message()),
    )
}

pub(super) fn alter_user_scram_credentials(check: Check<'_>, req: AlterUserScramCredentialsRequest) -> Outcome {
    if check.cluster(Operation::Alter) {
        return Outcome::pass(req);
    }
    let mut users: Vec<StrBytes> =
        req.deletions.iter().map(|d| d.name.clone()).chain(req.upsertions.iter().map(|u| u.name.clone())).collect();
    users.sort();
    users.dedup();
    let results = users
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(user)
                .with_error_code(DENIED.code())
                .with_error_message(message())
        })
        .collect();
    Outcome::answer(AlterUserScramCredentialsResponse::default().with_results(results))
}

pub(super) fn describe_client_quotas(check: Check<'_>, req: DescribeClientQuotasRequest) -> Outcome {
    if check.cluster(Operation::DescribeConfigs) {
        return Outcome::pass(req);
    }
    Outcome::answer(
        DescribeClientQuotasResponse::default()
            .with_error_code(DENIED.code())
            .with_error_message(message())
            .with_entries(None),
    )
}

pub(super) fn alter_client_quotas(check: Check<'_>, req: AlterClientQuotasRequest) -> Outcome {
    if check.cluster(Operation::AlterConfigs) {
        return Outcome::pass(req);
    }
    let entries = req
        .entries
        .into_iter()
        .map(|entry| {
            let entity = entry
                .entity
                .into_iter()
                .map(|e| {
                    alter_client_quotas_response::EntityData::default()
                        .with_entity_type(e.entity_type)
                        .with_entity_name(e.entity_name)
                })
                .collect();
            alter_client_quotas_response::EntryData::default()
                .with_error_code(DENIED.code())
                .with_error_message(message())
                .with_entity(entity)
        })
        .collect();
    Outcome::answer(AlterClientQuotasResponse::default().with_entries(entries))
}
