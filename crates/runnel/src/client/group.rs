//! `runnel group`: list, describe, reset the offsets of, and delete consumer groups.
//!
//! Groups come in two kinds: classic groups (JoinGroup/SyncGroup, with the
//! assignment computed by a member) and consumer groups of the consumer
//! group protocol (KIP-848, `group.protocol=consumer`, assigned by the
//! broker). Listing uses ListGroups v5, which names each group's type, on
//! every broker; describing asks the group's coordinator with
//! ConsumerGroupDescribe first (epochs, assignor, every member's
//! subscription and current and target assignment) and, for a classic group,
//! which it answers GROUP_ID_NOT_FOUND, DescribeGroups through librdkafka,
//! whose member assignments are decoded from the consumer protocol bytes
//! the group leader handed out. The first two go through [`super::wire`]
//! (secured with the same `-X` properties librdkafka gets), since
//! librdkafka's Rust binding does not expose them. Committed offsets come
//! from OffsetFetch and are set with OffsetCommit by a consumer that carries
//! the group's id but never joins it; log end offsets and timestamps come
//! from ListOffsets. Deletion goes through DeleteGroups.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{ArgGroup, Args, Subcommand};
use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest,
    GroupId, ListGroupsRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::wire::{self, Connection};
use super::{block_on, existing_topic_partitions, print_table, ConnectArgs, OutputFormat, REACH_TIMEOUT};

/// How long a group admin request may take.
const GROUP_TIMEOUT: Duration = Duration::from_secs(15);

const GROUP_AFTER_HELP: &str = "\
Examples:
  runnel group list
  runnel group describe billing
  runnel group describe billing --format json

  # see what a reset would do, then do it (the group must have no active members)
  runnel group reset-offsets billing --topic orders --to-earliest --dry-run
  runnel group reset-offsets billing --topic orders --partition 0 --to-offset 42
  runnel group reset-offsets billing --topic orders --to-datetime 2026-11-29T08:00:00Z
  runnel group reset-offsets billing --topic orders --by-duration 1h30m

  runnel group delete billing";

/// List, describe, reset the offsets of, and delete consumer groups.
#[derive(Args, Debug)]
#[command(after_help = GROUP_AFTER_HELP)]
pub struct GroupArgs {
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
    /// List groups with their type (classic, or consumer for the consumer
    /// group protocol of KIP-848), state and protocol type.
    ///
    /// Example: runnel group list --format json
    #[command(verbatim_doc_comment)]
    List,
    /// Show a group's state, members with their assigned partitions, and per
    /// partition the committed offset, the log end offset and the lag.
    /// Consumer-protocol groups also show the assignor, the group and
    /// assignment epochs, and each member's epoch and target assignment.
    ///
    /// Example: runnel group describe billing
    #[command(verbatim_doc_comment)]
    Describe(GroupName),
    /// Set a group's committed offsets for a topic; refused while the group has active members.
    ///
    /// Prints the old and the new offset of each partition. An offset
    /// outside a partition's log moves to its nearer end; a time after the
    /// last record moves to the log end offset.
    ///
    /// Example: runnel group reset-offsets billing --topic orders --to-earliest --dry-run
    #[command(verbatim_doc_comment)]
    ResetOffsets(ResetArgs),
    /// Delete a group and its committed offsets; refused while it has active members.
    ///
    /// Example: runnel group delete billing
    #[command(verbatim_doc_comment)]
    Delete(GroupName),
}

#[derive(Args, Debug)]
struct GroupName {
    /// Group id.
    group: String,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "by_duration"])))]
struct ResetArgs {
    /// Group id.
    group: String,
    /// Topic whose offsets are reset.
    #[arg(long)]
    topic: String,
    /// Reset only this partition (default: all of the topic's partitions).
    #[arg(long)]
    partition: Option<i32>,
    /// To the log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (moved into the log when outside it).
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    to_offset: Option<i64>,
    /// To the first record at or after this time, e.g. 2026-11-29T08:00:00Z or 2026-11-29T09:00:00+01:00.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339_ms)]
    to_datetime: Option<i64>,
    /// To the first record at or after this long ago, e.g. 1h30m, 90s, 2d, 500ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    by_duration: Option<Duration>,
    /// Print what would change without committing anything.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `runnel group`.
pub fn run(mut args: GroupArgs) -> anyhow::Result<()> {
    args.connect.resolve()?;
    let consumer = args.connect.consumer(&[("client.id", "runnel-group".to_string())])?;
    args.connect.check_reachable(&consumer)?;
    match &args.action {
        Action::List => list(&args, &consumer),
        Action::Describe(name) => describe(&args, &consumer, &name.group),
        Action::ResetOffsets(reset) => reset_offsets(&args, &consumer, reset),
        Action::Delete(name) => delete(&args, &name.group),
    }
}

/// The group types ListGroups v5 and ConsumerGroupDescribe name.
const TYPE_CLASSIC: &str = "classic";
const TYPE_CONSUMER: &str = "consumer";

/// The highest ListGroups version used: v5 adds the group type.
const LIST_GROUPS_VERSION_MAX: i16 = 5;
/// The highest FindCoordinator version used: v4 takes a batch of keys.
const FIND_COORDINATOR_VERSION_MAX: i16 = 4;
/// The highest ConsumerGroupDescribe version used.
const CONSUMER_GROUP_DESCRIBE_VERSION_MAX: i16 = 1;

#[derive(Serialize)]
struct GroupSummary {
    group: String,
    /// "classic" or "consumer" (the consumer group protocol, KIP-848).
    #[serde(rename = "type")]
    group_type: String,
    state: String,
    protocol_type: String,
}

fn list(args: &GroupArgs, consumer: &BaseConsumer) -> anyhow::Result<()> {
    let mut groups = list_by_type(&args.connect, consumer)?;
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&groups)?),
        OutputFormat::Table => {
            let rows = groups
                .iter()
                .map(|g| vec![g.group.clone(), g.group_type.clone(), g.state.clone(), g.protocol_type.clone()])
                .collect();
            print_table(&["GROUP", "TYPE", "STATE", "PROTOCOL-TYPE"], rows);
        }
    }
    Ok(())
}

/// ListGroups on every broker of the cluster, each at the highest version
/// it serves up to v5; a broker without v5 cannot have consumer groups, so
/// its groups are classic.
fn list_by_type(connect: &ConnectArgs, consumer: &BaseConsumer) -> anyhow::Result<Vec<GroupSummary>> {
    let metadata = consumer.fetch_metadata(None, REACH_TIMEOUT).context("metadata request failed")?;
    let mut groups = BTreeMap::new();
    for broker in metadata.brokers() {
        let addr = format!("{}:{}", broker.host(), broker.port());
        let mut conn = connect.wire_to(&addr, GROUP_TIMEOUT)?;
        let Some(version) = conn.version::<ListGroupsRequest>(LIST_GROUPS_VERSION_MAX) else {
            bail!("broker {addr} does not serve ListGroups");
        };
        let response = conn.send(version, &ListGroupsRequest::default())?;
        if response.error_code != 0 {
            bail!("cannot list the groups of broker {addr}: {}", wire::error_name(response.error_code));
        }
        for g in response.groups {
            let group_type = if version >= 5 { g.group_type.to_string() } else { TYPE_CLASSIC.to_string() };
            let summary = GroupSummary {
                group: g.group_id.to_string(),
                group_type,
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
            };
            groups.insert(summary.group.clone(), summary);
        }
    }
    Ok(groups.into_values().collect())
}

#[derive(Serialize)]
struct MemberDescription {
    member_id: String,
    /// The static member's `group.instance.id` (consumer groups only; the
    /// classic view through librdkafka does not carry it).
    instance_id: Option<String>,
    client_id: String,
    host: String,
    /// The member's epoch (consumer groups only).
    member_epoch: Option<i32>,
    /// Topics the member subscribes to by name, sorted.
    subscribed_topics: Vec<String>,
    /// The regular expression the member subscribes with (consumer groups only).
    subscribed_regex: Option<String>,
    /// The partitions the member owns now.
    assignment: Vec<TopicAssignment>,
    /// The partitions the broker wants it to own once reconciled (consumer groups only).
    target_assignment: Option<Vec<TopicAssignment>>,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
struct TopicAssignment {
    topic: String,
    partitions: Vec<i32>,
}

/// A group as its coordinator describes it.
struct GroupState {
    /// "classic" or "consumer".
    group_type: String,
    state: String,
    protocol_type: String,
    /// The classic group's protocol (its assignor), or the consumer group's server-side assignor.
    protocol: String,
    /// The consumer group's epoch and the epoch of its target assignment.
    group_epoch: Option<i32>,
    assignment_epoch: Option<i32>,
    members: Vec<MemberDescription>,
}

/// One group as its coordinator describes it: a consumer group through
/// ConsumerGroupDescribe, else a classic group through DescribeGroups. A
/// group the broker does not know is in state "Dead" with no members.
fn describe_group(connect: &ConnectArgs, consumer: &BaseConsumer, group: &str) -> anyhow::Result<GroupState> {
    if let Some(state) = describe_consumer_group(connect, group)? {
        return Ok(state);
    }
    describe_classic_group(consumer, group)
}

/// The group's coordinator, found with FindCoordinator through a bootstrap broker.
fn coordinator(connect: &ConnectArgs, group: &str) -> anyhow::Result<Connection> {
    let mut conn = connect.wire(GROUP_TIMEOUT)?;
    let Some(version) = conn.version::<FindCoordinatorRequest>(FIND_COORDINATOR_VERSION_MAX) else {
        bail!("broker {} does not serve FindCoordinator", conn.addr());
    };
    let key = StrBytes::from_string(group.to_string());
    let request = if version >= 4 {
        FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
    } else {
        FindCoordinatorRequest::default().with_key(key)
    };
    let response = conn.send(version, &request)?;
    let (code, host, port) = match response.coordinators.first() {
        Some(c) if version >= 4 => (c.error_code, c.host.to_string(), c.port),
        _ => (response.error_code, response.host.to_string(), response.port),
    };
    if code != 0 {
        bail!("cannot find the coordinator of group {group}: {}", wire::error_name(code));
    }
    let addr = format!("{host}:{port}");
    if addr == conn.addr() {
        return Ok(conn);
    }
    connect.wire_to(&addr, GROUP_TIMEOUT)
}

/// ConsumerGroupDescribe at the group's coordinator; `None` for a group
/// that is not a consumer group (classic or unknown: GROUP_ID_NOT_FOUND) or
/// a coordinator that does not serve the API.
fn describe_consumer_group(connect: &ConnectArgs, group: &str) -> anyhow::Result<Option<GroupState>> {
    let mut conn = coordinator(connect, group)?;
    let Some(version) = conn.version::<ConsumerGroupDescribeRequest>(CONSUMER_GROUP_DESCRIBE_VERSION_MAX) else {
        return Ok(None);
    };
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let response = conn.send(version, &request)?;
    let Some(described) = response.groups.into_iter().find(|g| g.group_id.as_str() == group) else {
        bail!("the coordinator of group {group} did not describe it");
    };
    match ResponseError::try_from_code(described.error_code) {
        None => Ok(Some(consumer_group_state(described))),
        Some(ResponseError::GroupIdNotFound) => Ok(None),
        Some(e) => bail!("cannot describe group {group}: {e} ({})", described.error_code),
    }
}

fn consumer_group_state(described: DescribedGroup) -> GroupState {
    let mut members: Vec<MemberDescription> = described.members.into_iter().map(consumer_member).collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    GroupState {
        group_type: TYPE_CONSUMER.to_string(),
        state: described.group_state.to_string(),
        protocol_type: TYPE_CONSUMER.to_string(),
        protocol: described.assignor_name.to_string(),
        group_epoch: Some(described.group_epoch),
        assignment_epoch: Some(described.assignment_epoch),
        members,
    }
}

fn consumer_member(m: Member) -> MemberDescription {
    let mut subscribed_topics: Vec<String> = m.subscribed_topic_names.iter().map(|t| t.to_string()).collect();
    subscribed_topics.sort();
    MemberDescription {
        member_id: m.member_id.to_string(),
        instance_id: m.instance_id.map(|s| s.to_string()),
        client_id: m.client_id.to_string(),
        host: m.client_host.to_string(),
        member_epoch: Some(m.member_epoch),
        subscribed_topics,
        subscribed_regex: m.subscribed_topic_regex.map(|s| s.to_string()).filter(|s| !s.is_empty()),
        assignment: topic_assignments(&m.assignment),
        target_assignment: Some(topic_assignments(&m.target_assignment)),
    }
}

/// A ConsumerGroupDescribe assignment by topic name (the topic id where
/// the broker gave no name), sorted.
fn topic_assignments(assignment: &Assignment) -> Vec<TopicAssignment> {
    let mut topics: Vec<TopicAssignment> = assignment
        .topic_partitions
        .iter()
        .map(|tp| {
            let mut partitions = tp.partitions.clone();
            partitions.sort_unstable();
            let topic = if tp.topic_name.is_empty() { tp.topic_id.to_string() } else { tp.topic_name.to_string() };
            TopicAssignment { topic, partitions }
        })
        .collect();
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    topics
}

/// A classic group through DescribeGroups (librdkafka's group list).
fn describe_classic_group(consumer: &BaseConsumer, group: &str) -> anyhow::Result<GroupState> {
    let list = consumer
        .fetch_group_list(Some(group), GROUP_TIMEOUT)
        .with_context(|| format!("cannot describe group {group}"))?;
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        // librdkafka leaves out a group the coordinator does not know.
        let dead = GroupState {
            group_type: TYPE_CLASSIC.to_string(),
            state: "Dead".to_string(),
            protocol_type: String::new(),
            protocol: String::new(),
            group_epoch: None,
            assignment_epoch: None,
            members: Vec::new(),
        };
        return Ok(dead);
    };
    let is_consumer = info.protocol_type() == "consumer";
    let mut members = Vec::with_capacity(info.members().len());
    for m in info.members() {
        let assignment = match m.assignment() {
            Some(bytes) if is_consumer && !bytes.is_empty() => {
                decode_assignment(bytes).with_context(|| format!("member {} has an unreadable assignment", m.id()))?
            }
            _ => Vec::new(),
        };
        let subscribed_topics = match m.metadata() {
            Some(bytes) if is_consumer && !bytes.is_empty() => decode_subscription(bytes)
                .with_context(|| format!("member {} has an unreadable subscription", m.id()))?,
            _ => Vec::new(),
        };
        members.push(MemberDescription {
            member_id: m.id().to_string(),
            instance_id: None,
            client_id: m.client_id().to_string(),
            host: m.client_host().to_string(),
            member_epoch: None,
            subscribed_topics,
            subscribed_regex: None,
            assignment,
            target_assignment: None,
        });
    }
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    Ok(GroupState {
        group_type: TYPE_CLASSIC.to_string(),
        state: info.state().to_string(),
        protocol_type: info.protocol_type().to_string(),
        protocol: info.protocol().to_string(),
        group_epoch: None,
        assignment_epoch: None,
        members,
    })
}

/// Splits a consumer protocol message into its version, clamped to the
/// newest layout this build knows (later versions only add fields at the
/// end, so that layout reads them), and the rest.
fn split_version(bytes: &[u8]) -> anyhow::Result<(i16, Bytes)> {
    if bytes.len() < 2 {
        bail!("{} bytes is too short for a version", bytes.len());
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    Ok((version.clamp(0, 3), Bytes::copy_from_slice(&bytes[2..])))
}

/// Decodes a consumer protocol subscription: the topics a classic member
/// subscribes to, sorted.
fn decode_subscription(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    let (version, mut buf) = split_version(bytes)?;
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut topics: Vec<String> = subscription.topics.iter().map(|t| t.to_string()).collect();
    topics.sort();
    Ok(topics)
}

/// `topic:0,1 other:3`, or `-` for nothing.
fn assignment_text(topics: &[TopicAssignment]) -> String {
    let text: Vec<String> = topics
        .iter()
        .map(|t| {
            let ids: Vec<String> = t.partitions.iter().map(i32::to_string).collect();
            format!("{}:{}", t.topic, ids.join(","))
        })
        .collect();
    if text.is_empty() {
        "-".to_string()
    } else {
        text.join(" ")
    }
}

/// The members table: for consumer groups with instance ids, epochs,
/// subscriptions and target assignments.
fn print_members(d: &GroupDescription) {
    let or_dash = |s: Option<&str>| s.filter(|s| !s.is_empty()).unwrap_or("-").to_string();
    let subscription = |m: &MemberDescription| {
        let mut parts = m.subscribed_topics.clone();
        parts.extend(m.subscribed_regex.iter().map(|r| format!("/{r}/")));
        or_dash(Some(&parts.join(",")))
    };
    if d.group_type == TYPE_CONSUMER {
        let rows = d
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.clone(),
                    or_dash(m.instance_id.as_deref()),
                    m.client_id.clone(),
                    m.host.clone(),
                    m.member_epoch.map_or_else(|| "-".to_string(), |e| e.to_string()),
                    subscription(m),
                    assignment_text(&m.assignment),
                    assignment_text(m.target_assignment.as_deref().unwrap_or_default()),
                ]
            })
            .collect();
        let header =
            ["MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "EPOCH", "SUBSCRIBED", "ASSIGNMENT", "TARGET-ASSIGNMENT"];
        print_table(&header, rows);
    } else {
        let rows = d
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.clone(),
                    m.client_id.clone(),
                    m.host.clone(),
                    subscription(m),
                    assignment_text(&m.assignment),
                ]
            })
            .collect();
        print_table(&["MEMBER-ID", "CLIENT-ID", "HOST", "SUBSCRIBED", "ASSIGNMENT"], rows);
    }
}

/// Decodes a consumer protocol assignment: a version, then topics with their partitions.
fn decode_assignment(bytes: &[u8]) -> anyhow::Result<Vec<TopicAssignment>> {
    let (version, mut buf) = split_version(bytes)?;
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut topics: Vec<TopicAssignment> = assignment
        .assigned_partitions
        .into_iter()
        .map(|tp| {
            let mut partitions = tp.partitions;
            partitions.sort_unstable();
            TopicAssignment { topic: tp.topic.to_string(), partitions }
        })
        .collect();
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    Ok(topics)
}

#[derive(Serialize)]
struct PartitionOffsets {
    topic: String,
    partition: i32,
    /// None when the group has committed nothing for the partition.
    committed_offset: Option<i64>,
    log_end_offset: i64,
    lag: Option<i64>,
    /// The member the partition is assigned to, if any.
    member_id: Option<String>,
}

#[derive(Serialize)]
struct GroupDescription {
    group: String,
    /// "classic" or "consumer" (the consumer group protocol, KIP-848).
    #[serde(rename = "type")]
    group_type: String,
    state: String,
    protocol_type: String,
    /// The classic group's protocol, or the consumer group's server-side assignor.
    protocol: String,
    group_epoch: Option<i32>,
    assignment_epoch: Option<i32>,
    members: Vec<MemberDescription>,
    offsets: Vec<PartitionOffsets>,
}

/// The group's committed offsets for every partition of every topic the
/// broker knows (OffsetFetch takes an explicit list through librdkafka).
fn all_committed_offsets(
    connect: &ConnectArgs,
    consumer: &BaseConsumer,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let metadata = consumer.fetch_metadata(None, REACH_TIMEOUT).context("metadata request failed")?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
        for p in t.partitions() {
            tpl.add_partition(t.name(), p.id());
        }
    }
    committed_offsets(connect, group, tpl)
}

/// The group's committed offsets for the partitions in `tpl`; a partition
/// without one is left out.
fn committed_offsets(
    connect: &ConnectArgs,
    group: &str,
    tpl: TopicPartitionList,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    if tpl.count() == 0 {
        return Ok(BTreeMap::new());
    }
    let group_consumer = connect.group_consumer(group, &[("client.id", "runnel-group".to_string())])?;
    let committed = group_consumer
        .committed_offsets(tpl, GROUP_TIMEOUT)
        .with_context(|| format!("cannot read the committed offsets of group {group}"))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

fn describe(args: &GroupArgs, consumer: &BaseConsumer, group: &str) -> anyhow::Result<()> {
    let state = describe_group(&args.connect, consumer, group)?;
    let committed = all_committed_offsets(&args.connect, consumer, group)?;
    if state.state == "Dead" && committed.is_empty() {
        bail!("consumer group {group} does not exist");
    }
    // Every partition with a committed offset or an owner.
    let mut owners: BTreeMap<(String, i32), Option<String>> = committed.keys().map(|k| (k.clone(), None)).collect();
    for m in &state.members {
        for t in &m.assignment {
            for &p in &t.partitions {
                owners.insert((t.topic.clone(), p), Some(m.member_id.clone()));
            }
        }
    }
    let mut offsets = Vec::with_capacity(owners.len());
    for ((topic, partition), member_id) in owners {
        let (_, high) = consumer
            .fetch_watermarks(&topic, partition, REACH_TIMEOUT)
            .with_context(|| format!("cannot read the watermarks of {topic}-{partition}"))?;
        let committed_offset = committed.get(&(topic.clone(), partition)).copied();
        let lag = committed_offset.map(|c| (high - c).max(0));
        offsets.push(PartitionOffsets { topic, partition, committed_offset, log_end_offset: high, lag, member_id });
    }
    let description = GroupDescription {
        group: group.to_string(),
        group_type: state.group_type,
        state: state.state,
        protocol_type: state.protocol_type,
        protocol: state.protocol,
        group_epoch: state.group_epoch,
        assignment_epoch: state.assignment_epoch,
        members: state.members,
        offsets,
    };
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&description)?),
        OutputFormat::Table => print_description(&description),
    }
    Ok(())
}

fn print_description(d: &GroupDescription) {
    let or_dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    if d.group_type == TYPE_CONSUMER {
        let epoch = |e: Option<i32>| e.map_or_else(|| "-".to_string(), |e| e.to_string());
        println!(
            "group {}: type consumer, state {}, assignor {}, group epoch {}, assignment epoch {}, {} members",
            d.group,
            d.state,
            or_dash(&d.protocol),
            epoch(d.group_epoch),
            epoch(d.assignment_epoch),
            d.members.len()
        );
    } else {
        println!(
            "group {}: type {}, state {}, protocol type {}, protocol {}, {} members",
            d.group,
            d.group_type,
            d.state,
            or_dash(&d.protocol_type),
            or_dash(&d.protocol),
            d.members.len()
        );
    }
    if !d.members.is_empty() {
        println!();
        print_members(d);
    }
    println!();
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let rows = d
        .offsets
        .iter()
        .map(|o| {
            vec![
                o.topic.clone(),
                o.partition.to_string(),
                opt(o.committed_offset),
                o.log_end_offset.to_string(),
                opt(o.lag),
                o.member_id.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    print_table(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"], rows);
}

#[derive(Serialize)]
struct OffsetChange {
    topic: String,
    partition: i32,
    old_offset: Option<i64>,
    new_offset: i64,
}

fn reset_offsets(args: &GroupArgs, consumer: &BaseConsumer, reset: &ResetArgs) -> anyhow::Result<()> {
    let group = reset.group.as_str();
    let topic = reset.topic.as_str();
    let state = describe_group(&args.connect, consumer, group)?;
    if !state.members.is_empty() {
        bail!(
            "cannot reset the offsets of group {group}: it has {} active members (state {}); stop them first",
            state.members.len(),
            state.state
        );
    }
    let mut partitions = existing_topic_partitions(consumer, topic)?;
    if let Some(p) = reset.partition {
        if !partitions.contains(&p) {
            bail!("topic {topic} has no partition {p} (it has {})", partitions.len());
        }
        partitions = vec![p];
    }
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition(topic, p);
    }
    let old: BTreeMap<i32, i64> =
        committed_offsets(&args.connect, group, tpl)?.into_iter().map(|((_, p), o)| (p, o)).collect();

    let timestamp = match (reset.to_datetime, reset.by_duration) {
        (Some(ms), _) => Some(ms),
        (None, Some(ago)) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).context("the clock is before 1970")?;
            Some(now.saturating_sub(ago).as_millis() as i64)
        }
        _ => None,
    };
    let by_time = match timestamp {
        Some(ms) => {
            let mut tpl = TopicPartitionList::new();
            for &p in &partitions {
                tpl.add_partition_offset(topic, p, Offset::Offset(ms))?;
            }
            let found = consumer
                .offsets_for_times(tpl, REACH_TIMEOUT)
                .with_context(|| format!("cannot look up offsets for timestamp {ms}"))?;
            let mut by_time = BTreeMap::new();
            for e in found.elements() {
                if let Err(err) = e.error() {
                    bail!("cannot look up the offset for timestamp {ms} in partition {}: {err}", e.partition());
                }
                if let Offset::Offset(o) = e.offset() {
                    by_time.insert(e.partition(), o);
                }
            }
            by_time
        }
        None => BTreeMap::new(),
    };

    let mut changes = Vec::with_capacity(partitions.len());
    let mut commit = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, REACH_TIMEOUT)
            .with_context(|| format!("cannot read the watermarks of {topic}-{p}"))?;
        let new_offset = if reset.to_earliest {
            low
        } else if reset.to_latest {
            high
        } else if let Some(n) = reset.to_offset {
            n.clamp(low, high)
        } else {
            // No record at or after the time: the log end offset.
            by_time.get(&p).copied().filter(|o| *o >= 0).unwrap_or(high).clamp(low, high)
        };
        commit.add_partition_offset(topic, p, Offset::Offset(new_offset))?;
        changes.push(OffsetChange {
            topic: topic.to_string(),
            partition: p,
            old_offset: old.get(&p).copied(),
            new_offset,
        });
    }
    if !reset.dry_run {
        let group_consumer = args.connect.group_consumer(group, &[("client.id", "runnel-group".to_string())])?;
        group_consumer
            .commit(&commit, CommitMode::Sync)
            .with_context(|| format!("cannot commit the new offsets of group {group}"))?;
    }
    match args.format {
        OutputFormat::Json => {
            println!("{}", serde_json::json!({ "group": group, "dry_run": reset.dry_run, "partitions": changes }))
        }
        OutputFormat::Table => {
            let rows = changes
                .iter()
                .map(|c| {
                    vec![
                        c.topic.clone(),
                        c.partition.to_string(),
                        format!(
                            "{} -> {}",
                            c.old_offset.map_or_else(|| "-".to_string(), |o| o.to_string()),
                            c.new_offset
                        ),
                    ]
                })
                .collect();
            print_table(&["TOPIC", "PARTITION", "OFFSET"], rows);
            if reset.dry_run {
                println!("dry run: nothing committed");
            }
        }
    }
    Ok(())
}

fn delete(args: &GroupArgs, group: &str) -> anyhow::Result<()> {
    let admin = args.connect.admin()?;
    let options = AdminOptions::new().request_timeout(Some(GROUP_TIMEOUT)).operation_timeout(Some(GROUP_TIMEOUT));
    let results =
        block_on(admin.delete_groups(&[group], &options))?.with_context(|| format!("cannot delete group {group}"))?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("cannot delete group {name}: {code}");
        }
    }
    match args.format {
        OutputFormat::Table => println!("deleted group {group}"),
        OutputFormat::Json => println!("{}", serde_json::json!({ "group": group, "deleted": true })),
    }
    Ok(())
}

/// Parses an RFC 3339 time such as 2026-11-29T08:00:00.250+01:00 into
/// milliseconds since the Unix epoch.
fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    let bad = || format!("expected an RFC 3339 time such as 2026-11-29T08:00:00Z, got `{s}`");
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(range).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let first3: String = frac[..digits].chars().chain("000".chars()).take(3).collect();
        millis = first3.parse::<i64>().map_err(|_| bad())?;
        rest = &frac[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let parse = |t: &str| t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse::<i64>().ok()).flatten();
            let (h, m) = (parse(&rest[1..3]).ok_or_else(bad)?, parse(&rest[4..6]).ok_or_else(bad)?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses a duration such as 1h30m, 90s, 2d or 500ms.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as 1h30m, 90s, 2d or 500ms, got `{s}`");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..].bytes().take_while(u8::is_ascii_alphabetic).count();
        if digits == 0 || letters == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit_ms: u64 = match &rest[digits..digits + letters] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
        total = total.checked_add(Duration::from_millis(ms)).ok_or_else(bad)?;
        rest = &rest[digits + letters..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_epoch_millis() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339_ms("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_rfc3339_ms("2023-11-14T23:13:20.5+01:00"), Ok(1_700_000_000_500));
        assert_eq!(parse_rfc3339_ms("2023-11-14T20:13:20.123456-02:00"), Ok(1_700_000_000_123));
        assert_eq!(parse_rfc3339_ms("2024-02-29t00:00:00z"), Ok(1_709_164_800_000));
        for bad in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20+1:00",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T2a:13:20Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_add_their_parts() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        for bad in ["", "h", "10", "1x", "1h 2m", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn consumer_assignments_decode() {
        // Version 0: topic "t" with partitions 2 and 0, then empty user data.
        let mut bytes = vec![0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            decode_assignment(&bytes).unwrap(),
            vec![TopicAssignment { topic: "t".into(), partitions: vec![0, 2] }]
        );
        assert!(decode_assignment(&[0]).is_err());
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 9]).is_err());
    }
}
