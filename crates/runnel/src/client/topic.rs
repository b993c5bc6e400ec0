//! `runnel topic`: create, list, describe, delete topics, change their
//! configs and add partitions.
//!
//! Creation and deletion go through the CreateTopics and DeleteTopics APIs
//! (librdkafka's admin client), config changes through DescribeConfigs and
//! AlterConfigs, new partitions through CreatePartitions; listing and describing read Metadata and, for
//! watermarks, ListOffsets. Each command waits until metadata shows its
//! effect, so a script can use the topic on the next line. Output is a table
//! for people or, with `--format json`, one JSON document for scripts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use super::{block_on, parse_property, print_table, topic_partitions, ConnectArgs, OutputFormat, REACH_TIMEOUT};

/// How long creating or deleting a topic and seeing it in metadata may take.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(15);

const TOPIC_AFTER_HELP: &str = "\
Examples:
  # a topic with 3 partitions and 1 MiB segments
  runnel topic create orders --partitions 3 --config segment.bytes=1048576

  # what is there, and how far each partition has been written
  runnel topic list
  runnel topic describe orders
  runnel topic describe orders --format json

  # change configs (others stay as they are), remove an override, add partitions
  runnel topic alter-config orders --set retention.ms=86400000 --delete segment.bytes
  runnel topic add-partitions orders --total 6

  runnel topic delete orders";

/// Create, list, describe and delete topics; change their configs; add partitions.
#[derive(Args, Debug)]
#[command(after_help = TOPIC_AFTER_HELP)]
pub struct TopicArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Output format: a table for people, JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Create a topic.
    ///
    /// Example: runnel topic create orders --partitions 3 --config retention.ms=86400000
    #[command(verbatim_doc_comment)]
    Create(CreateArgs),
    /// List topics with their partition counts.
    ///
    /// Example: runnel topic list --format json
    #[command(verbatim_doc_comment)]
    List,
    /// Show each partition's leader, replicas, ISR, log start offset and high watermark.
    ///
    /// Example: runnel topic describe orders
    #[command(verbatim_doc_comment)]
    Describe(NameArg),
    /// Delete a topic and all its records.
    ///
    /// Example: runnel topic delete orders
    #[command(verbatim_doc_comment)]
    Delete(NameArg),
    /// Set or remove topic config overrides; the topic's other overrides stay.
    ///
    /// Example: runnel topic alter-config orders --set retention.ms=86400000 --delete cleanup.policy
    #[command(verbatim_doc_comment)]
    AlterConfig(AlterConfigArgs),
    /// Raise a topic's partition count (Kafka cannot lower it).
    ///
    /// Example: runnel topic add-partitions orders --total 6
    #[command(verbatim_doc_comment)]
    AddPartitions(AddPartitionsArgs),
}

#[derive(Args, Debug)]
struct AlterConfigArgs {
    /// Topic name.
    name: String,
    /// A topic config to set, under Kafka's name; repeatable. Example: --set retention.ms=86400000
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_property)]
    set: Vec<(String, String)>,
    /// A topic config override to remove (back to the broker's default); repeatable.
    #[arg(long = "delete", value_name = "KEY")]
    delete: Vec<String>,
}

#[derive(Args, Debug)]
struct AddPartitionsArgs {
    /// Topic name.
    name: String,
    /// The partition count the topic should have afterwards.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    total: i32,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Topic name.
    name: String,
    /// Partition count; without it the broker's num.partitions applies.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: Option<i32>,
    /// Replication factor; without it the broker's default applies (Runnel: 1).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    replication_factor: Option<i32>,
    /// A topic config under Kafka's name; repeatable. Example: --config cleanup.policy=delete
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_property)]
    configs: Vec<(String, String)>,
}

#[derive(Args, Debug)]
struct NameArg {
    /// Topic name.
    name: String,
}

/// Runs `runnel topic`.
pub fn run(mut args: TopicArgs) -> anyhow::Result<()> {
    args.connect.resolve()?;
    let consumer = args.connect.consumer(&[("client.id", "runnel-topic".to_string())])?;
    args.connect.check_reachable(&consumer)?;
    match &args.action {
        Action::Create(create) => create_topic(&args, &consumer, create),
        Action::List => list(&args, &consumer),
        Action::Describe(name) => describe(&args, &consumer, &name.name),
        Action::Delete(name) => delete(&args, &consumer, &name.name),
        Action::AlterConfig(alter) => alter_config(&args, &consumer, alter),
        Action::AddPartitions(add) => add_partitions(&args, &consumer, add),
    }
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(TOPIC_READY_TIMEOUT)).operation_timeout(Some(TOPIC_READY_TIMEOUT))
}

/// Polls `done` every 100 ms until it holds or `TOPIC_READY_TIMEOUT` passes.
fn wait_until(mut done: impl FnMut() -> anyhow::Result<bool>, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    while !done()? {
        if Instant::now() > deadline {
            bail!("{what} did not show in metadata within {} s", TOPIC_READY_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn create_topic(args: &TopicArgs, consumer: &BaseConsumer, create: &CreateArgs) -> anyhow::Result<()> {
    let admin = args.connect.admin()?;
    // -1 asks the broker for its default (CreateTopics v4, KIP-464).
    let replication = TopicReplication::Fixed(create.replication_factor.unwrap_or(-1));
    let mut new_topic = NewTopic::new(&create.name, create.partitions.unwrap_or(-1), replication);
    for (key, value) in &create.configs {
        new_topic = new_topic.set(key, value);
    }
    let results = block_on(admin.create_topics([&new_topic], &admin_options()))?
        .with_context(|| format!("cannot create topic {}", create.name))?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("cannot create topic {name}: {code}");
        }
    }
    let mut partitions = 0;
    wait_until(
        || {
            partitions = topic_partitions(consumer, &create.name)?.map_or(0, |ids| ids.len());
            Ok(partitions > 0)
        },
        &format!("topic {}", create.name),
    )?;
    match args.format {
        OutputFormat::Table => println!("created topic {} with {partitions} partitions", create.name),
        OutputFormat::Json => {
            println!("{}", serde_json::json!({ "topic": create.name, "created": true, "partitions": partitions }))
        }
    }
    Ok(())
}

fn delete(args: &TopicArgs, consumer: &BaseConsumer, name: &str) -> anyhow::Result<()> {
    if topic_partitions(consumer, name)?.is_none() {
        bail!("topic {name} does not exist");
    }
    let admin = args.connect.admin()?;
    let results = block_on(admin.delete_topics(&[name], &admin_options()))?
        .with_context(|| format!("cannot delete topic {name}"))?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("cannot delete topic {name}: {code}");
        }
    }
    wait_until(|| Ok(topic_partitions(consumer, name)?.is_none()), &format!("deletion of topic {name}"))?;
    match args.format {
        OutputFormat::Table => println!("deleted topic {name}"),
        OutputFormat::Json => println!("{}", serde_json::json!({ "topic": name, "deleted": true })),
    }
    Ok(())
}

/// Reads the topic's overrides, applies `--set` and `--delete`, and writes the
/// whole set back with AlterConfigs, which replaces a topic's overrides.
fn alter_config(args: &TopicArgs, consumer: &BaseConsumer, alter: &AlterConfigArgs) -> anyhow::Result<()> {
    if alter.set.is_empty() && alter.delete.is_empty() {
        bail!("nothing to change: give --set KEY=VALUE or --delete KEY");
    }
    if topic_partitions(consumer, &alter.name)?.is_none() {
        bail!("topic {} does not exist", alter.name);
    }
    let admin = args.connect.admin()?;
    let mut overrides = topic_overrides(&admin, &alter.name)?;
    for key in &alter.delete {
        if overrides.remove(key).is_none() {
            bail!("topic {} has no override of {key} to delete", alter.name);
        }
    }
    for (key, value) in &alter.set {
        overrides.insert(key.clone(), value.clone());
    }
    let mut change = AlterConfig::new(ResourceSpecifier::Topic(&alter.name));
    for (key, value) in &overrides {
        change = change.set(key, value);
    }
    let results = block_on(admin.alter_configs([&change], &admin_options()))?
        .with_context(|| format!("cannot change the configs of topic {}", alter.name))?;
    for result in results {
        if let Err((_, code)) = result {
            bail!("cannot change the configs of topic {}: {code}", alter.name);
        }
    }
    // The rdkafka crate reports every AlterConfigs resource as a success, even one the broker refused
    // (INVALID_CONFIG), so read the overrides back and compare.
    let now = topic_overrides(&admin, &alter.name)?;
    if now != overrides {
        let refused: Vec<String> = alter
            .set
            .iter()
            .filter(|(k, v)| now.get(k) != Some(v))
            .map(|(k, v)| format!("{k}={v}"))
            .chain(alter.delete.iter().filter(|k| now.contains_key(*k)).map(|k| format!("--delete {k}")))
            .collect();
        bail!(
            "the broker refused the change to topic {} ({}): check the names and values",
            alter.name,
            refused.join(", ")
        );
    }
    match args.format {
        OutputFormat::Table => {
            let rows = overrides.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
            print_table(&["CONFIG", "VALUE"], rows);
        }
        OutputFormat::Json => println!("{}", serde_json::json!({ "topic": alter.name, "configs": overrides })),
    }
    Ok(())
}

/// The topic's config overrides (DescribeConfigs entries whose source is the topic).
fn topic_overrides(admin: &AdminClient<DefaultClientContext>, topic: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let described = block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options()))?
        .with_context(|| format!("cannot read the configs of topic {topic}"))?;
    let resource = match described.into_iter().next() {
        Some(Ok(resource)) => resource,
        Some(Err(code)) => bail!("cannot read the configs of topic {topic}: {code}"),
        None => bail!("cannot read the configs of topic {topic}: empty answer"),
    };
    Ok(resource
        .entries
        .into_iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic)
        .filter_map(|e| Some((e.name, e.value?)))
        .collect())
}

fn add_partitions(args: &TopicArgs, consumer: &BaseConsumer, add: &AddPartitionsArgs) -> anyhow::Result<()> {
    let Some(current) = topic_partitions(consumer, &add.name)?.map(|ids| ids.len()) else {
        bail!("topic {} does not exist", add.name);
    };
    if add.total as usize <= current {
        bail!("topic {} already has {current} partitions; --total must be larger", add.name);
    }
    let admin = args.connect.admin()?;
    let new = NewPartitions::new(&add.name, add.total as usize);
    let results = block_on(admin.create_partitions([&new], &admin_options()))?
        .with_context(|| format!("cannot add partitions to topic {}", add.name))?;
    for result in results {
        if let Err((_, code)) = result {
            bail!("cannot add partitions to topic {}: {code}", add.name);
        }
    }
    let mut partitions = current;
    wait_until(
        || {
            partitions = topic_partitions(consumer, &add.name)?.map_or(0, |ids| ids.len());
            Ok(partitions >= add.total as usize)
        },
        &format!("{} partitions of topic {}", add.total, add.name),
    )?;
    match args.format {
        OutputFormat::Table => println!("topic {} now has {partitions} partitions (was {current})", add.name),
        OutputFormat::Json => {
            println!("{}", serde_json::json!({ "topic": add.name, "partitions": partitions, "before": current }))
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct TopicSummary {
    name: String,
    partitions: usize,
}

fn list(args: &TopicArgs, consumer: &BaseConsumer) -> anyhow::Result<()> {
    let metadata = consumer.fetch_metadata(None, REACH_TIMEOUT).context("metadata request failed")?;
    let mut topics: Vec<TopicSummary> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| TopicSummary { name: t.name().to_string(), partitions: t.partitions().len() })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&topics)?),
        OutputFormat::Table => {
            let rows = topics.iter().map(|t| vec![t.name.clone(), t.partitions.to_string()]).collect();
            print_table(&["TOPIC", "PARTITIONS"], rows);
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct PartitionDescription {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    log_start_offset: i64,
    high_watermark: i64,
}

#[derive(Serialize)]
struct TopicDescription {
    name: String,
    partitions: Vec<PartitionDescription>,
}

fn describe(args: &TopicArgs, consumer: &BaseConsumer, name: &str) -> anyhow::Result<()> {
    let metadata = consumer.fetch_metadata(Some(name), REACH_TIMEOUT).context("metadata request failed")?;
    let topic = metadata.topics().iter().find(|t| t.name() == name);
    let Some(topic) = topic.filter(|t| t.error().is_none() && !t.partitions().is_empty()) else {
        bail!("topic {name} does not exist");
    };
    let mut partitions = Vec::with_capacity(topic.partitions().len());
    for p in topic.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(name, p.id(), REACH_TIMEOUT)
            .with_context(|| format!("cannot read the watermarks of {name}-{}", p.id()))?;
        partitions.push(PartitionDescription {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
            log_start_offset: low,
            high_watermark: high,
        });
    }
    partitions.sort_by_key(|p| p.partition);
    let description = TopicDescription { name: name.to_string(), partitions };
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&description)?),
        OutputFormat::Table => {
            println!("topic {name}: {} partitions", description.partitions.len());
            let ids = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            let rows = description
                .partitions
                .iter()
                .map(|p| {
                    vec![
                        p.partition.to_string(),
                        p.leader.to_string(),
                        ids(&p.replicas),
                        ids(&p.isr),
                        p.log_start_offset.to_string(),
                        p.high_watermark.to_string(),
                    ]
                })
                .collect();
            print_table(&["PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"], rows);
        }
    }
    Ok(())
}
