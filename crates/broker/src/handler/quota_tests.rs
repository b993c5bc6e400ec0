//! DescribeClientQuotas and AlterClientQuotas over a real broker in a
//! temporary directory: Kafka's filter semantics (exact, default, any,
//! strict), its errors, validate_only, and responses that encode at every
//! served version.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_request::{self, AlterClientQuotasRequest};
use kafka_protocol::messages::alter_client_quotas_response::AlterClientQuotasResponse;
use kafka_protocol::messages::describe_client_quotas_request::{ComponentData, DescribeClientQuotasRequest};
use kafka_protocol::messages::describe_client_quotas_response::DescribeClientQuotasResponse;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::{alter_client_quotas, describe_client_quotas};
use crate::protocol::encode_response;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    Broker::open(config).unwrap()
}

fn entry(entity: &[(&str, Option<&str>)], ops: &[(&str, Option<f64>)]) -> alter_client_quotas_request::EntryData {
    alter_client_quotas_request::EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| {
                    alter_client_quotas_request::EntityData::default().with_entity_type(s(t)).with_entity_name(n.map(s))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(k, v)| {
                    alter_client_quotas_request::OpData::default()
                        .with_key(s(k))
                        .with_value(v.unwrap_or(0.0))
                        .with_remove(v.is_none())
                })
                .collect(),
        )
}

async fn alter(
    broker: &Arc<Broker>,
    entries: Vec<alter_client_quotas_request::EntryData>,
    validate_only: bool,
) -> AlterClientQuotasResponse {
    let req = AlterClientQuotasRequest::default().with_entries(entries).with_validate_only(validate_only);
    let response = alter_client_quotas::handle(broker.clone(), req).await;
    for version in 0..=1 {
        encode_response(ApiKey::AlterClientQuotas, version, 1, &ResponseKind::AlterClientQuotas(response.clone()));
    }
    response
}

fn describe(broker: &Broker, components: &[(&str, i8, Option<&str>)], strict: bool) -> DescribeClientQuotasResponse {
    let components = components
        .iter()
        .map(|(t, m, n)| ComponentData::default().with_entity_type(s(t)).with_match_type(*m).with_match(n.map(s)))
        .collect();
    let req = DescribeClientQuotasRequest::default().with_components(components).with_strict(strict);
    let response = describe_client_quotas::handle(broker, req);
    for version in 0..=1 {
        encode_response(
            ApiKey::DescribeClientQuotas,
            version,
            1,
            &ResponseKind::DescribeClientQuotas(response.clone()),
        );
    }
    response
}

/// The entities of a describe answer as `type=name` strings, sorted.
fn entities(response: &DescribeClientQuotasResponse) -> Vec<String> {
    let mut out: Vec<String> = response
        .entries
        .as_ref()
        .expect("entries")
        .iter()
        .map(|e| {
            e.entity
                .iter()
                .map(|c| {
                    format!("{}={}", c.entity_type.as_str(), c.entity_name.as_ref().map_or("<default>", |n| n.as_str()))
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    out.sort();
    out
}

// Goal: alter sets and removes values; describe filters with exact, default and any matches and strict, as
// Kafka's ClientQuotasImage does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_then_describe_with_kafkas_filters() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let response = alter(
        &broker,
        vec![
            entry(&[("user", Some("alice"))], &[("producer_byte_rate", Some(1024.0))]),
            entry(&[("user", Some("alice")), ("client-id", Some("app"))], &[("consumer_byte_rate", Some(2048.0))]),
            entry(&[("user", None)], &[("request_percentage", Some(25.5))]),
            entry(&[("client-id", None)], &[("producer_byte_rate", Some(10.0))]),
            entry(&[("ip", Some("127.0.0.1"))], &[("connection_creation_rate", Some(5.0))]),
        ],
        false,
    )
    .await;
    assert!(response.entries.iter().all(|e| e.error_code == 0), "{response:?}");

    let all = describe(&broker, &[], false);
    assert_eq!(all.error_code, 0);
    assert_eq!(entities(&all).len(), 5);
    let alice = describe(&broker, &[("user", 0, Some("alice"))], false);
    assert_eq!(entities(&alice), ["user=alice", "user=alice,client-id=app"]);
    let alice_strict = describe(&broker, &[("user", 0, Some("alice"))], true);
    assert_eq!(entities(&alice_strict), ["user=alice"]);
    let value = &alice_strict.entries.as_ref().unwrap()[0].values[0];
    assert_eq!((value.key.as_str(), value.value), ("producer_byte_rate", 1024.0));
    assert_eq!(entities(&describe(&broker, &[("user", 1, None)], false)), ["user=<default>"]);
    let any_user = describe(&broker, &[("user", 2, None)], false);
    assert_eq!(entities(&any_user), ["user=<default>", "user=alice", "user=alice,client-id=app"]);
    assert_eq!(entities(&describe(&broker, &[("client-id", 2, None)], true)), ["client-id=<default>"]);
    assert_eq!(entities(&describe(&broker, &[("ip", 2, None)], false)), ["ip=127.0.0.1"]);

    // Removing the last key removes the entity.
    let response =
        alter(&broker, vec![entry(&[("user", Some("alice"))], &[("producer_byte_rate", None)])], false).await;
    assert_eq!(response.entries[0].error_code, 0);
    assert_eq!(entities(&describe(&broker, &[("user", 0, Some("alice"))], true)), Vec::<String>::new());
    // The quotas in force follow at once.
    let configs = broker.quotas.configs();
    assert!(configs.lookup(crate::quota::QuotaKey::ProducerByteRate, "alice", "x").is_some_and(|m| m.bound == 10.0));
}

// Goal: bad entities, keys and values are INVALID_REQUEST per entry, leave the other entries alone, and
// validate_only changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_refuses_what_kafka_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let invalid = ResponseError::InvalidRequest.code();
    let cases = vec![
        entry(&[("group", Some("g"))], &[("producer_byte_rate", Some(1.0))]),
        entry(&[], &[("producer_byte_rate", Some(1.0))]),
        entry(&[("user", Some("a"))], &[("bogus_rate", Some(1.0))]),
        entry(&[("user", Some("a"))], &[("producer_byte_rate", Some(1.5))]),
        entry(&[("user", Some("a"))], &[("producer_byte_rate", Some(1.0)), ("producer_byte_rate", Some(2.0))]),
        entry(&[("user", Some("a"))], &[("connection_creation_rate", Some(1.0))]),
        entry(&[("ip", Some("1.2.3.4")), ("user", None)], &[("connection_creation_rate", Some(1.0))]),
        entry(&[("ip", Some("not-an-ip"))], &[("connection_creation_rate", Some(1.0))]),
        entry(&[("user", Some(""))], &[("producer_byte_rate", Some(1.0))]),
        entry(&[("user", Some("b"))], &[("consumer_byte_rate", Some(-5.0))]),
        entry(&[("user", Some("ok"))], &[("producer_byte_rate", Some(100.0)), ("controller_mutation_rate", Some(0.5))]),
    ];
    let n = cases.len();
    let response = alter(&broker, cases, false).await;
    for (i, e) in response.entries.iter().enumerate() {
        let expected = if i == n - 1 { 0 } else { invalid };
        assert_eq!(e.error_code, expected, "entry {i}: {:?}", e.error_message);
    }
    assert_eq!(entities(&describe(&broker, &[], false)), ["user=ok"]);

    // The same entity twice: both refused.
    let twice = vec![
        entry(&[("user", Some("c"))], &[("producer_byte_rate", Some(1.0))]),
        entry(&[("user", Some("c"))], &[("consumer_byte_rate", Some(1.0))]),
    ];
    let response = alter(&broker, twice, false).await;
    assert!(response.entries.iter().all(|e| e.error_code == invalid));

    let response =
        alter(&broker, vec![entry(&[("user", Some("v"))], &[("producer_byte_rate", Some(9.0))])], true).await;
    assert_eq!(response.entries[0].error_code, 0);
    assert_eq!(entities(&describe(&broker, &[], false)), ["user=ok"], "validate_only writes nothing");
}

/// A filter component: entity type, match type, match string.
type Component<'a> = (&'a str, i8, Option<&'a str>);

// Goal: malformed filters get Kafka's errors and no entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_refuses_bad_filters() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let invalid = ResponseError::InvalidRequest.code();
    let cases: &[(&[Component], i16)] = &[
        (&[("user", 0, None)], invalid),
        (&[("user", 1, Some("x"))], invalid),
        (&[("user", 2, Some("x"))], invalid),
        (&[("user", 7, None)], invalid),
        (&[("user", 2, None), ("user", 1, None)], invalid),
        (&[("", 2, None)], invalid),
        (&[("ip", 2, None), ("user", 2, None)], invalid),
        (&[("group", 2, None)], ResponseError::UnsupportedVersion.code()),
    ];
    for (components, code) in cases {
        let response = describe(&broker, components, false);
        assert_eq!(response.error_code, *code, "{components:?}");
        assert!(response.entries.is_none());
    }
}
