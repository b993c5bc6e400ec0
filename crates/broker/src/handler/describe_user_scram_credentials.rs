//! DescribeUserScramCredentials (v0): each user's SCRAM mechanisms and
//! iteration counts, never a salt or a key.
//!
//! No users (null or an empty list) describes every user with a credential.
//! As Kafka answers: a user without any credential gets RESOURCE_NOT_FOUND,
//! and a user named twice gets DUPLICATE_RESOURCE (once) instead of a
//! description.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::meta::ScramUsers;

pub fn handle(broker: &Arc<Broker>, req: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
    let users = broker.scram_users();
    let results = match req.users.filter(|u| !u.is_empty()) {
        None => users.keys().map(|user| describe(&users, user)).collect(),
        Some(names) => {
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for n in &names {
                *seen.entry(n.name.as_str()).or_default() += 1;
            }
            let mut results = Vec::new();
            for n in &names {
                let user = n.name.as_str();
                match seen.get_mut(user) {
                    Some(0) => {}
                    Some(1) => results.push(describe(&users, user)),
                    Some(count) => {
                        *count = 0;
                        let message = format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                        );
                        results.push(failed(user, ResponseError::DuplicateResource, message));
                    }
                    None => unreachable!("every name was counted"),
                }
            }
            results
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

fn describe(users: &ScramUsers, user: &str) -> DescribeUserScramCredentialsResult {
    let Some(credentials) = users.get(user) else {
        let message = format!("Attempt to describe a user credential that does not exist: {user}");
        return failed(user, ResponseError::ResourceNotFound, message);
    };
    let infos = credentials
        .iter()
        .map(|(mechanism, c)| {
            CredentialInfo::default().with_mechanism(mechanism.kafka_type()).with_iterations(c.iterations)
        })
        .collect();
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()))
        .with_credential_infos(infos)
}

fn failed(user: &str, error: ResponseError, message: String) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()))
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}
