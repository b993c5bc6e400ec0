//! `runnel cluster`: what the cluster is made of, and whether it is healthy.
//!
//! Both read Metadata through librdkafka: the cluster id and the controller
//! come from the same response, the brokers and the topics' partition
//! leaders from its lists. `health` asks each listed broker on its own
//! connection, so a broker that is in the metadata but does not answer shows.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use super::{print_table, ConnectArgs, OutputFormat, REACH_TIMEOUT};

const CLUSTER_AFTER_HELP: &str = "\
Examples:
  runnel cluster info
  runnel cluster info --format json

  # exit status 0 and \"healthy\", or non-zero with the reason
  runnel cluster health && echo ok";

/// Show the cluster's brokers and controller, or check its health.
#[derive(Args, Debug)]
#[command(after_help = CLUSTER_AFTER_HELP)]
pub struct ClusterArgs {
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
    /// Show the cluster id, the brokers with id, host and port, the controller and the topic count.
    ///
    /// Example: runnel cluster info --format json
    #[command(verbatim_doc_comment)]
    Info,
    /// Exit 0 and print "healthy" when every broker answers a metadata
    /// request and every partition has a leader; exit non-zero with the reason otherwise.
    ///
    /// Example: runnel cluster health
    #[command(verbatim_doc_comment)]
    Health,
}

/// Runs `runnel cluster`.
pub fn run(mut args: ClusterArgs) -> anyhow::Result<()> {
    args.connect.resolve()?;
    let consumer = args.connect.consumer(&[("client.id", "runnel-cluster".to_string())])?;
    args.connect.check_reachable(&consumer)?;
    match args.action {
        Action::Info => info(&args, &consumer),
        Action::Health => health(&args, &consumer),
    }
}

#[derive(Serialize)]
struct BrokerDescription {
    id: i32,
    host: String,
    port: i32,
}

#[derive(Serialize)]
struct ClusterDescription {
    cluster_id: Option<String>,
    controller_id: Option<i32>,
    brokers: Vec<BrokerDescription>,
    topics: usize,
    partitions: usize,
}

/// The controller's broker id from the cached metadata, or None when unknown.
fn controller_id(consumer: &BaseConsumer) -> Option<i32> {
    let timeout_ms = i32::try_from(REACH_TIMEOUT.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the pointer is the live librdkafka handle owned by `consumer`,
    // which outlives the call; rd_kafka_controllerid only reads metadata.
    let id = unsafe { rdkafka::bindings::rd_kafka_controllerid(consumer.client().native_ptr(), timeout_ms) };
    (id >= 0).then_some(id)
}

fn info(args: &ClusterArgs, consumer: &BaseConsumer) -> anyhow::Result<()> {
    let metadata = consumer.fetch_metadata(None, REACH_TIMEOUT).context("metadata request failed")?;
    let mut brokers: Vec<BrokerDescription> = metadata
        .brokers()
        .iter()
        .map(|b| BrokerDescription { id: b.id(), host: b.host().to_string(), port: b.port() })
        .collect();
    brokers.sort_by_key(|b| b.id);
    let topics: Vec<_> = metadata.topics().iter().filter(|t| t.error().is_none()).collect();
    let description = ClusterDescription {
        cluster_id: consumer.client().fetch_cluster_id(REACH_TIMEOUT),
        controller_id: controller_id(consumer),
        brokers,
        topics: topics.len(),
        partitions: topics.iter().map(|t| t.partitions().len()).sum(),
    };
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&description)?),
        OutputFormat::Table => {
            let unknown = || "unknown".to_string();
            println!("cluster id: {}", description.cluster_id.clone().unwrap_or_else(unknown));
            println!("controller: {}", description.controller_id.map_or_else(unknown, |id| id.to_string()));
            println!("topics: {} ({} partitions)", description.topics, description.partitions);
            println!();
            let rows = description
                .brokers
                .iter()
                .map(|b| {
                    let role = if Some(b.id) == description.controller_id { "controller" } else { "" };
                    vec![b.id.to_string(), b.host.clone(), b.port.to_string(), role.to_string()]
                })
                .collect();
            print_table(&["BROKER", "HOST", "PORT", "ROLE"], rows);
        }
    }
    Ok(())
}

/// How long each broker may take to answer during a health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

fn health(args: &ClusterArgs, consumer: &BaseConsumer) -> anyhow::Result<()> {
    let metadata = consumer.fetch_metadata(None, REACH_TIMEOUT).context("metadata request failed")?;
    if metadata.brokers().is_empty() {
        bail!("unhealthy: the metadata lists no brokers");
    }
    for b in metadata.brokers() {
        let address = format!("{}:{}", b.host(), b.port());
        let mut only_this = args.connect.clone();
        only_this.brokers = address.clone();
        let probe = only_this.consumer(&[("client.id", "runnel-cluster-health".to_string())])?;
        if let Err(e) = probe.fetch_metadata(None, HEALTH_TIMEOUT) {
            bail!("unhealthy: broker {} at {address} does not answer metadata requests: {e}", b.id());
        }
    }
    let mut partitions = 0;
    for t in metadata.topics() {
        if let Some(code) = t.error() {
            bail!("unhealthy: topic {} has error {code:?}", t.name());
        }
        for p in t.partitions() {
            if p.leader() < 0 {
                bail!("unhealthy: partition {}-{} has no leader", t.name(), p.id());
            }
            partitions += 1;
        }
    }
    let brokers = metadata.brokers().len();
    let topics = metadata.topics().len();
    match args.format {
        OutputFormat::Table => println!("healthy: {brokers} brokers, {topics} topics, {partitions} partitions"),
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({ "healthy": true, "brokers": brokers, "topics": topics, "partitions": partitions })
        ),
    }
    Ok(())
}
