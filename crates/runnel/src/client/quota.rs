//! `runnel quota`: set, delete and describe client quotas (Kafka's
//! `kafka-configs --entity-type users|clients|ips` for quotas).
//!
//! librdkafka has no client quota API, so both actions speak
//! AlterClientQuotas and DescribeClientQuotas themselves through
//! [`super::wire`], on a plaintext connection to the first bootstrap broker
//! that answers; with another `security.protocol` the command refuses.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand};
use kafka_protocol::messages::alter_client_quotas_request::{self, AlterClientQuotasRequest};
use kafka_protocol::messages::describe_client_quotas_request::{ComponentData, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::wire;
use super::{print_table, ConnectArgs, OutputFormat};

/// How long a quota request may take.
const QUOTA_TIMEOUT: Duration = Duration::from_secs(15);

const QUOTA_AFTER_HELP: &str = "\
Examples:
  # 1 MB/s of produce and 2 MB/s of fetch for user alice, whatever her client id
  runnel quota set --user alice --producer-byte-rate 1048576 --consumer-byte-rate 2097152

  # a default for every client id, and a tighter one for one client of alice
  runnel quota set --default-client-id --producer-byte-rate 10485760
  runnel quota set --user alice --client-id batch --request-percentage 25

  # at most 10 new connections a second from one address, 50 from any other
  runnel quota set --ip 10.0.0.7 --connection-creation-rate 10
  runnel quota set --default-ip --connection-creation-rate 50

  runnel quota set --user alice --delete producer_byte_rate
  runnel quota describe
  runnel quota describe --user alice --format json
  runnel quota describe --any-user --strict";

/// Set, delete and describe client quotas (byte rates, request percentage,
/// connection creation rate) of users, client ids and IP addresses.
#[derive(Args, Debug)]
#[command(after_help = QUOTA_AFTER_HELP)]
pub struct QuotaArgs {
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
    /// Set or delete quotas of one entity: a user, a client id, a user and a
    /// client id, or an IP address (each by name or the default).
    ///
    /// Example: runnel quota set --user alice --producer-byte-rate 1048576
    #[command(verbatim_doc_comment)]
    Set(SetArgs),
    /// Show quotas whose entity matches the filter (no filter: all of them).
    ///
    /// Example: runnel quota describe --user alice
    #[command(verbatim_doc_comment)]
    Describe(DescribeArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("user_entity").args(["user", "default_user"])))]
#[command(group(ArgGroup::new("client_entity").args(["client_id", "default_client_id"])))]
#[command(group(ArgGroup::new("ip_entity").args(["ip", "default_ip"]).conflicts_with_all(["user_entity", "client_entity"])))]
#[command(group(ArgGroup::new("entity").required(true).multiple(true).args(["user", "default_user", "client_id", "default_client_id", "ip", "default_ip"])))]
#[command(group(ArgGroup::new("change").required(true).multiple(true).args(["producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate", "connection_creation_rate", "delete"])))]
struct SetArgs {
    /// The user (the principal name a client authenticated as; ANONYMOUS without authentication).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The default user: applies to each user without a quota of its own.
    #[arg(long)]
    default_user: bool,
    /// The client id (client.id of the client's requests).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// The default client id.
    #[arg(long)]
    default_client_id: bool,
    /// An IP address (connection_creation_rate only).
    #[arg(long, value_name = "ADDRESS")]
    ip: Option<String>,
    /// The default IP address.
    #[arg(long)]
    default_ip: bool,
    /// Produce request bytes per second (producer_byte_rate).
    #[arg(long, value_name = "BYTES")]
    producer_byte_rate: Option<u64>,
    /// Fetch response bytes per second (consumer_byte_rate).
    #[arg(long, value_name = "BYTES")]
    consumer_byte_rate: Option<u64>,
    /// Percent of one thread's time spent handling requests (request_percentage).
    #[arg(long, value_name = "PERCENT")]
    request_percentage: Option<f64>,
    /// Topic and partition mutations per second (controller_mutation_rate; stored, not enforced).
    #[arg(long, value_name = "RATE")]
    controller_mutation_rate: Option<f64>,
    /// New connections per second from one address (connection_creation_rate).
    #[arg(long, value_name = "RATE")]
    connection_creation_rate: Option<u64>,
    /// Remove this quota key, e.g. producer_byte_rate; repeatable.
    #[arg(long, value_name = "KEY")]
    delete: Vec<String>,
    /// Check the change without making it.
    #[arg(long)]
    validate_only: bool,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("user_filter").args(["user", "default_user", "any_user"])))]
#[command(group(ArgGroup::new("client_filter").args(["client_id", "default_client_id", "any_client_id"])))]
#[command(group(ArgGroup::new("ip_filter").args(["ip", "default_ip", "any_ip"])))]
struct DescribeArgs {
    /// Entities of this user.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Entities of the default user.
    #[arg(long)]
    default_user: bool,
    /// Entities of any user, the default included.
    #[arg(long)]
    any_user: bool,
    /// Entities of this client id.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Entities of the default client id.
    #[arg(long)]
    default_client_id: bool,
    /// Entities of any client id, the default included.
    #[arg(long)]
    any_client_id: bool,
    /// Entities of this IP address.
    #[arg(long, value_name = "ADDRESS")]
    ip: Option<String>,
    /// Entities of the default IP address.
    #[arg(long)]
    default_ip: bool,
    /// Entities of any IP address, the default included.
    #[arg(long)]
    any_ip: bool,
    /// Only entities with exactly the filtered entity types.
    #[arg(long)]
    strict: bool,
}

/// Runs `runnel quota`.
pub fn run(mut args: QuotaArgs) -> anyhow::Result<()> {
    args.connect.resolve()?;
    if args.connect.property("security.protocol").is_some_and(|p| !p.eq_ignore_ascii_case("plaintext")) {
        bail!("runnel quota speaks plaintext only (librdkafka has no client quota API)");
    }
    let mut conn = args.connect.wire(QUOTA_TIMEOUT)?;
    match &args.action {
        Action::Set(set) => alter(&mut conn, set),
        Action::Describe(filter) => describe(&mut conn, filter, args.format),
    }
}

/// The entity of `runnel quota set` as `(type, name)` pairs; `None` names the default.
fn set_entity(args: &SetArgs) -> Vec<(&'static str, Option<String>)> {
    let mut entity = Vec::new();
    if args.user.is_some() || args.default_user {
        entity.push(("user", args.user.clone()));
    }
    if args.client_id.is_some() || args.default_client_id {
        entity.push(("client-id", args.client_id.clone()));
    }
    if args.ip.is_some() || args.default_ip {
        entity.push(("ip", args.ip.clone()));
    }
    entity
}

/// The changes of `runnel quota set`: a value to set, or `None` to delete.
fn set_ops(args: &SetArgs) -> BTreeMap<String, Option<f64>> {
    let mut ops = BTreeMap::new();
    let values = [
        ("producer_byte_rate", args.producer_byte_rate.map(|v| v as f64)),
        ("consumer_byte_rate", args.consumer_byte_rate.map(|v| v as f64)),
        ("request_percentage", args.request_percentage),
        ("controller_mutation_rate", args.controller_mutation_rate),
        ("connection_creation_rate", args.connection_creation_rate.map(|v| v as f64)),
    ];
    for (key, value) in values {
        if let Some(value) = value {
            ops.insert(key.to_string(), Some(value));
        }
    }
    for key in &args.delete {
        ops.insert(key.clone(), None);
    }
    ops
}

fn alter(conn: &mut wire::Connection, args: &SetArgs) -> anyhow::Result<()> {
    let entity = set_entity(args);
    let ops = set_ops(args);
    let entry = alter_client_quotas_request::EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| {
                    alter_client_quotas_request::EntityData::default()
                        .with_entity_type(StrBytes::from_static_str(t))
                        .with_entity_name(n.clone().map(StrBytes::from_string))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(k, v)| {
                    alter_client_quotas_request::OpData::default()
                        .with_key(StrBytes::from_string(k.clone()))
                        .with_value(v.unwrap_or(0.0))
                        .with_remove(v.is_none())
                })
                .collect(),
        );
    let request = AlterClientQuotasRequest::default().with_entries(vec![entry]).with_validate_only(args.validate_only);
    let addr = conn.addr().to_string();
    let version = conn
        .version::<AlterClientQuotasRequest>(1)
        .with_context(|| format!("broker {addr} does not serve AlterClientQuotas"))?;
    let response = conn.send(version, &request)?;
    let Some(result) = response.entries.first() else { bail!("broker {addr} answered no entry") };
    if result.error_code != 0 {
        let message = result.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
        bail!("cannot alter the quotas of {}: {} {message}", entity_text(&entity), wire::error_name(result.error_code));
    }
    let verb = if args.validate_only { "would change" } else { "changed" };
    println!("{verb} the quotas of {}", entity_text(&entity));
    Ok(())
}

fn entity_text(entity: &[(&str, Option<String>)]) -> String {
    entity.iter().map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>"))).collect::<Vec<_>>().join(",")
}

/// Filter components: match type 0 (exact), 1 (default) or 2 (any).
fn filter_components(args: &DescribeArgs) -> Vec<ComponentData> {
    let kinds = [
        ("user", &args.user, args.default_user, args.any_user),
        ("client-id", &args.client_id, args.default_client_id, args.any_client_id),
        ("ip", &args.ip, args.default_ip, args.any_ip),
    ];
    let mut out = Vec::new();
    for (entity_type, name, default, any) in kinds {
        let component = ComponentData::default().with_entity_type(StrBytes::from_static_str(entity_type));
        if let Some(name) = name {
            out.push(component.with_match_type(0).with_match(Some(StrBytes::from_string(name.clone()))));
        } else if default {
            out.push(component.with_match_type(1).with_match(None));
        } else if any {
            out.push(component.with_match_type(2).with_match(None));
        }
    }
    out
}

/// One entity's quotas as `runnel quota describe --format json` prints it.
#[derive(Serialize)]
struct QuotaEntry {
    /// Entity type to name; null names the default.
    entity: BTreeMap<String, Option<String>>,
    values: BTreeMap<String, f64>,
}

fn describe(conn: &mut wire::Connection, args: &DescribeArgs, format: OutputFormat) -> anyhow::Result<()> {
    let request =
        DescribeClientQuotasRequest::default().with_components(filter_components(args)).with_strict(args.strict);
    let addr = conn.addr().to_string();
    let version = conn
        .version::<DescribeClientQuotasRequest>(1)
        .with_context(|| format!("broker {addr} does not serve DescribeClientQuotas"))?;
    let response = conn.send(version, &request)?;
    if response.error_code != 0 {
        let message = response.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
        bail!("cannot describe quotas: {} {message}", wire::error_name(response.error_code));
    }
    let mut entries: Vec<QuotaEntry> = response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| QuotaEntry {
            entity: e
                .entity
                .iter()
                .map(|c| (c.entity_type.to_string(), c.entity_name.as_ref().map(|n| n.to_string())))
                .collect(),
            values: e.values.iter().map(|v| (v.key.to_string(), v.value)).collect(),
        })
        .collect();
    entries.sort_by(|a, b| a.entity.cmp(&b.entity));
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&entries)?),
        OutputFormat::Table => {
            let mut rows = Vec::new();
            for e in &entries {
                let mut entity: Vec<(&str, Option<String>)> =
                    e.entity.iter().map(|(t, n)| (t.as_str(), n.clone())).collect();
                // Kafka's order: user before client-id.
                entity.sort_by_key(|(t, _)| ["user", "client-id", "ip"].iter().position(|k| k == t));
                for (key, value) in &e.values {
                    rows.push(vec![entity_text(&entity), key.clone(), value.to_string()]);
                }
            }
            print_table(&["ENTITY", "KEY", "VALUE"], rows);
        }
    }
    Ok(())
}
