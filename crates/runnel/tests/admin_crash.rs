//! Metadata changes proved by crashing: SIGKILL the broker during a stream of
//! topic creations, config alterations, partition additions and deletions,
//! with metadata snapshots happening along the way; after each restart every
//! acknowledged change is there and no change is half applied.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{watermarks, BrokerProcess};
use rand::Rng;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::ClientConfig;

/// What a topic looks like: partition count and its retention.ms override.
#[derive(Clone, Debug, PartialEq)]
struct TopicState {
    partitions: i32,
    retention_ms: String,
}

type Model = BTreeMap<String, TopicState>;

/// One metadata change of the stream.
#[derive(Clone, Debug)]
enum Change {
    Create(String, TopicState),
    Alter(String, String),
    Grow(String, i32),
    Delete(String),
}

impl Change {
    fn apply(&self, model: &mut Model) {
        match self {
            Change::Create(name, state) => {
                model.insert(name.clone(), state.clone());
            }
            Change::Alter(name, retention) => {
                model.get_mut(name).expect("altered topic exists").retention_ms = retention.clone()
            }
            Change::Grow(name, count) => model.get_mut(name).expect("grown topic exists").partitions = *count,
            Change::Delete(name) => {
                model.remove(name);
            }
        }
    }
}

fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", addr).create().expect("admin client")
}

fn options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(5))).operation_timeout(Some(Duration::from_secs(5)))
}

/// The next change, chosen from the model: create a new topic, or alter,
/// grow or delete an existing one.
fn next_change(model: &Model, counter: &mut u32) -> Change {
    let mut rng = rand::thread_rng();
    let existing: Vec<&String> = model.keys().collect();
    if existing.is_empty() || rng.gen_range(0..4) == 0 {
        *counter += 1;
        let state = TopicState { partitions: rng.gen_range(1..3), retention_ms: format!("{}", 1000 + *counter) };
        return Change::Create(format!("crash-topic-{counter}"), state);
    }
    let name = existing[rng.gen_range(0..existing.len())].clone();
    match rng.gen_range(0..3) {
        0 => {
            *counter += 1;
            Change::Alter(name, format!("{}", 50_000 + *counter))
        }
        1 if model[&name].partitions < 6 => Change::Grow(name.clone(), model[&name].partitions + 1),
        _ => Change::Delete(name),
    }
}

/// Performs one change; `Ok` only when the broker acknowledged it.
async fn perform(admin: &AdminClient<DefaultClientContext>, change: &Change) -> Result<(), String> {
    // The first (only) per-resource result, with its error code.
    fn first<T, E: std::fmt::Debug>(results: Vec<Result<T, E>>) -> Result<(), String> {
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(format!("{e:?}")),
            None => Err("empty result".into()),
        }
    }
    let err = |e: rdkafka::error::KafkaError| e.to_string();
    match change {
        Change::Create(name, state) => {
            let topic = NewTopic::new(name, state.partitions, TopicReplication::Fixed(1))
                .set("retention.ms", &state.retention_ms);
            first(admin.create_topics(&[topic], &options()).await.map_err(err)?)
        }
        Change::Alter(name, retention) => {
            let config = AlterConfig::new(ResourceSpecifier::Topic(name)).set("retention.ms", retention);
            first(admin.alter_configs(&[config], &options()).await.map_err(err)?)
        }
        Change::Grow(name, count) => {
            first(admin.create_partitions(&[NewPartitions::new(name, *count as usize)], &options()).await.map_err(err)?)
        }
        Change::Delete(name) => first(admin.delete_topics(&[name.as_str()], &options()).await.map_err(err)?),
    }
}

/// The topics the broker serves, each with its partition count and
/// retention.ms, after checking each partition has a log (watermarks).
async fn observe(broker: &BrokerProcess) -> Model {
    let consumer = broker.consumer(&[]);
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
    let admin = admin(&broker.addr);
    let mut out = Model::new();
    for topic in metadata.topics().iter().filter(|t| t.name().starts_with("crash-topic-")) {
        let partitions = topic.partitions().len() as i32;
        for p in 0..partitions {
            // Fails unless the partition's log exists and serves.
            watermarks(&consumer, topic.name(), p);
        }
        let described = admin
            .describe_configs(&[ResourceSpecifier::Topic(topic.name())], &options())
            .await
            .expect("describe configs");
        let resource = described.into_iter().next().unwrap().expect("topic described");
        let retention = resource.get("retention.ms").and_then(|e| e.value.clone()).expect("retention.ms described");
        out.insert(topic.name().to_string(), TopicState { partitions, retention_ms: retention });
    }
    out
}

/// Goal: every acknowledged metadata change survives SIGKILL and none is half
/// applied, across metadata snapshots.
/// Method: four rounds; in each, one client sends a stream of creations
/// (with a retention.ms override), AlterConfigs, CreatePartitions and
/// deletions, and the broker is killed at a random moment. The snapshot
/// bound is 2 KiB, so snapshots are written throughout. After the restart
/// the broker's topics (names, partition counts with a log behind each, and
/// retention.ms) must equal the model of acknowledged changes, with the one
/// change in flight at the kill either wholly applied or wholly absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_metadata_changes_keeps_every_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ["metadata.log.max.record.bytes.between.snapshots=2048"];
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &settings);
    let mut model = Model::new();
    let mut counter = 0u32;
    let mut acknowledged = 0usize;
    for round in 0..4 {
        let kill_at = tokio::time::Instant::now() + Duration::from_millis(rand::thread_rng().gen_range(400..1500));
        let client = admin(&broker.addr);
        let mut in_flight = None;
        while tokio::time::Instant::now() < kill_at {
            let change = next_change(&model, &mut counter);
            let result = tokio::select! {
                r = perform(&client, &change) => Some(r),
                _ = tokio::time::sleep_until(kill_at) => None,
            };
            match result {
                Some(Ok(())) => {
                    change.apply(&mut model);
                    acknowledged += 1;
                }
                Some(Err(e)) => panic!("round {round}: {change:?} failed on a live broker: {e}"),
                None => {
                    in_flight = Some(change);
                    break;
                }
            }
        }
        broker.kill9();
        drop(client);
        broker.restart();
        let observed = observe(&broker).await;
        let mut with_in_flight = model.clone();
        if let Some(change) = &in_flight {
            change.apply(&mut with_in_flight);
        }
        if observed == with_in_flight {
            model = with_in_flight;
        } else {
            assert_eq!(observed, model, "round {round}: in flight at the kill: {in_flight:?}");
        }
        eprintln!("round {round}: {acknowledged} changes acknowledged so far, {} topics", model.len());
    }
    assert!(acknowledged >= 20, "the test must acknowledge a meaningful number of changes, got {acknowledged}");
    let logs = broker.logs();
    assert!(logs.contains("metadata snapshot written"), "the stream must cross the snapshot bound");
    assert_eq!(broker.terminate(), Some(0));
}
