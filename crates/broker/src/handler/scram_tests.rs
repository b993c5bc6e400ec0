//! DescribeUserScramCredentials and AlterUserScramCredentials over a real
//! broker in a temporary directory: per-user errors as Kafka gives them, the
//! stored credential derived from the salted password (never the password or
//! the salted password), the authenticator's live view, and a restart.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    AlterUserScramCredentialsRequest, ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResponse;
use kafka_protocol::messages::describe_user_scram_credentials_request::{
    DescribeUserScramCredentialsRequest, UserName,
};
use kafka_protocol::messages::describe_user_scram_credentials_response::DescribeUserScramCredentialsResponse;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::{alter_user_scram_credentials, describe_user_scram_credentials};
use crate::protocol::encode_response;
use crate::sasl::scram::{salted_password, ScramCredential, ScramMechanism};

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    config.set("offsets.topic.num.partitions", "1", Source::Override).unwrap();
    config.set("transaction.state.log.num.partitions", "1", Source::Override).unwrap();
    Broker::open(config).unwrap()
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn upsert(user: &str, mechanism: i8, iterations: i32, password: &str) -> ScramCredentialUpsertion {
    let m = ScramMechanism::from_kafka_type(mechanism).unwrap_or(ScramMechanism::Sha256);
    let salt = b"0123456789abcdef".to_vec();
    let salted = salted_password(m, password.as_bytes(), &salt, iterations.clamp(1, 20000) as u32);
    ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted))
}

fn delete(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default().with_name(s(user)).with_mechanism(mechanism)
}

async fn alter(
    broker: &Arc<Broker>,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16)> {
    let req = AlterUserScramCredentialsRequest::default().with_deletions(deletions).with_upsertions(upsertions);
    let response: AlterUserScramCredentialsResponse = alter_user_scram_credentials::handle(broker.clone(), req).await;
    encode_response(
        ApiKey::AlterUserScramCredentials,
        0,
        1,
        &ResponseKind::AlterUserScramCredentials(response.clone()),
    );
    response.results.iter().map(|r| (r.user.to_string(), r.error_code)).collect()
}

fn describe(broker: &Arc<Broker>, users: Option<&[&str]>) -> DescribeUserScramCredentialsResponse {
    let users = users.map(|u| u.iter().map(|n| UserName::default().with_name(s(n))).collect());
    let response = describe_user_scram_credentials::handle(
        broker,
        DescribeUserScramCredentialsRequest::default().with_users(users),
    );
    encode_response(
        ApiKey::DescribeUserScramCredentials,
        0,
        1,
        &ResponseKind::DescribeUserScramCredentials(response.clone()),
    );
    response
}

/// A described user: name, error code, (mechanism, iterations) per credential.
type Described = (String, i16, Vec<(i8, i32)>);

fn described(response: &DescribeUserScramCredentialsResponse) -> Vec<Described> {
    response
        .results
        .iter()
        .map(|r| {
            let infos = r.credential_infos.iter().map(|c| (c.mechanism, c.iterations)).collect();
            (r.user.to_string(), r.error_code, infos)
        })
        .collect()
}

// Goal: each per-user error Kafka gives, and that valid alterations in the same request still apply.
#[tokio::test]
async fn alterations_fail_per_user_with_kafka_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let code = |e: ResponseError| e.code();
    let results = alter(
        &broker,
        vec![delete("nobody", 1), delete("twice", 1), delete("", 2), delete("alice", 3)],
        vec![
            upsert("twice", 1, 4096, "pw"),
            upsert("few", 1, 4095, "pw"),
            upsert("many", 2, 16385, "pw"),
            upsert("max", 2, 16384, "pw"),
            upsert("bob", 0, 4096, "pw"),
            upsert("", 1, 4096, "pw"),
            upsert("carol", 1, 4096, "pw"),
        ],
    )
    .await;
    assert_eq!(
        results,
        vec![
            ("nobody".into(), code(ResponseError::ResourceNotFound)),
            ("twice".into(), code(ResponseError::DuplicateResource)),
            // The empty name appears twice too: that wins, as in Kafka.
            ("".into(), code(ResponseError::DuplicateResource)),
            ("alice".into(), code(ResponseError::UnsupportedSaslMechanism)),
            ("few".into(), code(ResponseError::UnacceptableCredential)),
            ("many".into(), code(ResponseError::UnacceptableCredential)),
            ("max".into(), 0),
            ("bob".into(), code(ResponseError::UnsupportedSaslMechanism)),
            ("carol".into(), 0),
        ]
    );
    let results = alter(&broker, vec![], vec![upsert("", 1, 4096, "pw")]).await;
    assert_eq!(results, vec![("".into(), code(ResponseError::UnacceptableCredential))]);
    let mut short = upsert("dave", 1, 4096, "pw");
    short.salted_password = Bytes::from_static(b"too short");
    let mut no_salt = upsert("erin", 2, 4096, "pw");
    no_salt.salt = Bytes::new();
    let results = alter(&broker, vec![], vec![short, no_salt]).await;
    assert_eq!(results, vec![("dave".into(), 93), ("erin".into(), 93)]);
    let users: Vec<String> = broker.scram_users().keys().cloned().collect();
    assert_eq!(users, vec!["carol".to_string(), "max".to_string()]);
}

// Goal: describe lists mechanisms and iterations, all users for null or empty, RESOURCE_NOT_FOUND and
// DUPLICATE_RESOURCE per user; deletions remove one mechanism at a time; the authenticator sees every change.
#[tokio::test]
async fn describe_and_delete_follow_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    assert_eq!(describe(&broker, None).results.len(), 0);
    let ok = alter(&broker, vec![], vec![upsert("alice", 1, 4096, "pw"), upsert("bob", 2, 8192, "pw")]).await;
    assert!(ok.iter().all(|(_, c)| *c == 0), "{ok:?}");
    alter(&broker, vec![], vec![upsert("alice", 2, 5000, "pw")]).await;
    let all = vec![("alice".to_string(), 0, vec![(1, 4096), (2, 5000)]), ("bob".to_string(), 0, vec![(2, 8192)])];
    assert_eq!(described(&describe(&broker, None)), all);
    assert_eq!(described(&describe(&broker, Some(&[]))), all);
    assert_eq!(
        described(&describe(&broker, Some(&["bob", "zed", "alice", "bob"]))),
        vec![
            ("bob".into(), ResponseError::DuplicateResource.code(), vec![]),
            ("zed".into(), ResponseError::ResourceNotFound.code(), vec![]),
            ("alice".into(), 0, vec![(1, 4096), (2, 5000)]),
        ]
    );
    let live = broker.scram_credentials();
    assert!(live.get("alice", ScramMechanism::Sha256).is_some());
    assert_eq!(alter(&broker, vec![delete("alice", 1)], vec![]).await, vec![("alice".into(), 0)]);
    assert!(live.get("alice", ScramMechanism::Sha256).is_none(), "the authenticator sees the deletion");
    assert!(live.get("alice", ScramMechanism::Sha512).is_some());
    let again = alter(&broker, vec![delete("alice", 1)], vec![]).await;
    assert_eq!(again, vec![("alice".into(), ResponseError::ResourceNotFound.code())]);
    alter(&broker, vec![delete("alice", 2)], vec![]).await;
    let results = described(&describe(&broker, Some(&["alice"])));
    assert_eq!(results, vec![("alice".into(), ResponseError::ResourceNotFound.code(), vec![])]);
}

// Goal: the stored credential is the one the salted password gives, nothing in the metadata directory holds
// the salted password, and credentials survive a restart (log replay and snapshot).
#[tokio::test]
async fn credentials_are_derived_stored_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let u = upsert("alice", 2, 4096, "pencil");
    alter(&broker, vec![], vec![u.clone()]).await;
    let expected = ScramCredential::from_salted_password(ScramMechanism::Sha512, &u.salt, 4096, &u.salted_password);
    assert_eq!(broker.scram_credentials().get("alice", ScramMechanism::Sha512), Some(expected.clone()));
    let meta_dir = dir.path().join("__cluster_metadata");
    let log = std::fs::read_to_string(meta_dir.join("metadata.log")).unwrap();
    use base64::Engine;
    let salted_b64 = base64::engine::general_purpose::STANDARD.encode(&u.salted_password);
    assert!(log.contains("UserScramCredential") && !log.contains(&salted_b64), "{log}");
    broker.shutdown().unwrap();
    drop(broker);
    let broker = open(dir.path());
    assert_eq!(broker.scram_credentials().get("alice", ScramMechanism::Sha512), Some(expected));
}
