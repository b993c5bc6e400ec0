//! AlterUserScramCredentials (v0): set and delete users' SCRAM credentials.
//!
//! An upsertion carries what the client computed from the password, as
//! Kafka's admin client does: the salt, the iteration count and the
//! SaltedPassword `Hi(password, salt, iterations)`. The broker derives
//! StoredKey and ServerKey from it and keeps only those (one metadata record
//! per change); the salted password is dropped. Each user gets one result,
//! as Kafka answers: DUPLICATE_RESOURCE for a user named more than once in
//! the request (none of its alterations apply), UNSUPPORTED_SASL_MECHANISM
//! for a mechanism other than SCRAM-SHA-256 and SCRAM-SHA-512,
//! UNACCEPTABLE_CREDENTIAL for an empty user name, iterations outside
//! 4096..=16384, an empty or oversized salt or a salted password of the
//! wrong length, and RESOURCE_NOT_FOUND for deleting a credential that does
//! not exist. Valid alterations apply even when others in the request fail.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    AlterUserScramCredentialsRequest, ScramCredentialUpsertion,
};
use kafka_protocol::messages::alter_user_scram_credentials_response::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::sasl::scram::{self, ScramCredential, ScramMechanism};

/// Why one user's alteration is refused: the error and its message.
type Refusal = (ResponseError, String);

/// One alteration of the request.
enum Alteration<'a> {
    Delete(i8),
    Upsert(&'a ScramCredentialUpsertion),
}

pub async fn handle(broker: Arc<Broker>, req: AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    tokio::task::spawn_blocking(move || {
        let alterations: Vec<(&str, Alteration<'_>)> = req
            .deletions
            .iter()
            .map(|d| (d.name.as_str(), Alteration::Delete(d.mechanism)))
            .chain(req.upsertions.iter().map(|u| (u.name.as_str(), Alteration::Upsert(u))))
            .collect();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (user, _) in &alterations {
            *seen.entry(user).or_default() += 1;
        }
        let mut results = Vec::new();
        for (user, alteration) in &alterations {
            let outcome = match seen.get_mut(user) {
                Some(0) => continue,
                Some(1) => alter(&broker, user, alteration),
                Some(count) => {
                    *count = 0;
                    let message = "A user credential cannot be altered twice in the same request".to_string();
                    Err((ResponseError::DuplicateResource, message))
                }
                None => unreachable!("every user was counted"),
            };
            results.push(result(user, outcome));
        }
        AlterUserScramCredentialsResponse::default().with_results(results)
    })
    .await
    .expect("alter user scram credentials does not panic")
}

fn alter(broker: &Broker, user: &str, alteration: &Alteration<'_>) -> Result<(), Refusal> {
    let kafka_type = match alteration {
        Alteration::Delete(m) => *m,
        Alteration::Upsert(u) => u.mechanism,
    };
    let mechanism = ScramMechanism::from_kafka_type(kafka_type)
        .ok_or_else(|| (ResponseError::UnsupportedSaslMechanism, "Unknown SCRAM mechanism".to_string()))?;
    if user.is_empty() {
        return Err((ResponseError::UnacceptableCredential, "Username must not be empty".to_string()));
    }
    let stored = |e: crate::meta::MetaError| (e.error(), e.to_string());
    match alteration {
        Alteration::Delete(_) => match broker.delete_scram_credential(user, mechanism).map_err(stored)? {
            true => Ok(()),
            false => {
                Err((ResponseError::ResourceNotFound, "Attempt to delete a user credential that does not exist".into()))
            }
        },
        Alteration::Upsert(u) => {
            let credential = credential(mechanism, u)?;
            broker.upsert_scram_credential(user, mechanism, credential).map_err(stored)
        }
    }
}

/// The credential an upsertion sets, after checking its bounds.
fn credential(mechanism: ScramMechanism, u: &ScramCredentialUpsertion) -> Result<ScramCredential, Refusal> {
    let unacceptable = |message: String| Err((ResponseError::UnacceptableCredential, message));
    if u.iterations < scram::ITERATIONS_MIN {
        return unacceptable(format!("Too few iterations: at least {} are required", scram::ITERATIONS_MIN));
    }
    if u.iterations > scram::ITERATIONS_MAX {
        return unacceptable(format!("Too many iterations: at most {} are allowed", scram::ITERATIONS_MAX));
    }
    if u.salt.is_empty() || u.salt.len() > scram::SALT_BYTES_MAX {
        return unacceptable(format!("The salt must have 1 to {} bytes", scram::SALT_BYTES_MAX));
    }
    if u.salted_password.len() != mechanism.output_bytes() {
        let expected = mechanism.output_bytes();
        return unacceptable(format!("The salted password of {} must have {expected} bytes", mechanism.name()));
    }
    Ok(ScramCredential::from_salted_password(mechanism, &u.salt, u.iterations, &u.salted_password))
}

fn result(user: &str, outcome: Result<(), Refusal>) -> AlterUserScramCredentialsResult {
    let result = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user.to_string()));
    match outcome {
        Ok(()) => result,
        Err((error, message)) => {
            result.with_error_code(error.code()).with_error_message(Some(StrBytes::from_string(message)))
        }
    }
}
