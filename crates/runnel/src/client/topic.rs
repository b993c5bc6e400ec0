//! `runnel topic`: create, list, describe and delete topics.
//!
//! Creation and deletion go through the CreateTopics and DeleteTopics APIs
//! (librdkafka's admin client); listing and describing read Metadata and, for
//! watermarks, ListOffsets. Each command waits until metadata shows its
//! effect, so a script can use the topic on the next line. Output is a table
//! for people or, with `--format json`, one JSON document for scripts.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
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

  runnel topic delete orders

Changing configs and adding partitions are not available yet: the broker
does not serve AlterConfigs or CreatePartitions.";

/// Create, list, describe and delete topics.
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
