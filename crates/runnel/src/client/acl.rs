//! `runnel acl`: create, list and delete ACL bindings.
//!
//! librdkafka's Rust binding does not expose the ACL admin calls, so the
//! command speaks CreateAcls, DescribeAcls and DeleteAcls itself through
//! [`super::wire`], over plaintext or SASL_PLAINTEXT with PLAIN (the
//! `-X security.protocol=SASL_PLAINTEXT -X sasl.username=... -X
//! sasl.password=...` properties every client command takes). Names follow
//! Kafka's `kafka-acls.sh`: principals are `User:name`, hosts an IP address
//! or `*`, operations and permissions Kafka's upper-case names.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::wire::{self, Connection};
use super::{print_table, ConnectArgs, OutputFormat};

/// How long an ACL request may take.
const ACL_TIMEOUT: Duration = Duration::from_secs(15);
/// The versions this client speaks at most.
const ACL_VERSION_MAX: i16 = 3;

/// Kafka's codes: resource types, pattern types, operations, permissions.
const RESOURCE_ANY: i8 = 1;
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_GROUP: i8 = 3;
const RESOURCE_CLUSTER: i8 = 4;
const RESOURCE_TRANSACTIONAL_ID: i8 = 5;
const PATTERN_ANY: i8 = 1;
const OPERATION_ANY: i8 = 1;
const PERMISSION_ANY: i8 = 1;
const OPERATIONS: &[(&str, i8)] = &[
    ("ALL", 2),
    ("READ", 3),
    ("WRITE", 4),
    ("CREATE", 5),
    ("DELETE", 6),
    ("ALTER", 7),
    ("DESCRIBE", 8),
    ("CLUSTER_ACTION", 9),
    ("DESCRIBE_CONFIGS", 10),
    ("ALTER_CONFIGS", 11),
    ("IDEMPOTENT_WRITE", 12),
    ("CREATE_TOKENS", 13),
    ("DESCRIBE_TOKENS", 14),
    ("TWO_PHASE_COMMIT", 15),
];
const RESOURCE_TYPES: &[(&str, i8)] = &[
    ("ANY", 1),
    ("TOPIC", 2),
    ("GROUP", 3),
    ("CLUSTER", 4),
    ("TRANSACTIONAL_ID", 5),
    ("DELEGATION_TOKEN", 6),
    ("USER", 7),
];
const PATTERN_TYPES: &[(&str, i8)] = &[("ANY", 1), ("MATCH", 2), ("LITERAL", 3), ("PREFIXED", 4)];
const PERMISSIONS: &[(&str, i8)] = &[("ANY", 1), ("DENY", 2), ("ALLOW", 3)];

const ACL_AFTER_HELP: &str = "\
Examples:
  # as a super user (super.users=User:admin) on a SASL_PLAINTEXT listener
  export RUNNEL_BROKERS=127.0.0.1:9094
  SASL='-X security.protocol=SASL_PLAINTEXT -X sasl.username=admin -X sasl.password=admin-secret'

  runnel acl create $SASL --principal User:alice --operation READ --operation DESCRIBE --topic orders
  runnel acl create $SASL --principal User:alice --operation WRITE --topic sales- --resource-pattern-type prefixed
  runnel acl create $SASL --principal User:alice --operation READ --group billing
  runnel acl create $SASL --principal User:bob --operation ALL --permission deny --topic payroll
  runnel acl list $SASL
  runnel acl list $SASL --topic orders --resource-pattern-type match --format json
  runnel acl delete $SASL --principal User:alice --topic orders";

/// Create, list and delete ACL bindings (needs an authorizer on the broker).
#[derive(Args, Debug)]
#[command(after_help = ACL_AFTER_HELP)]
pub struct AclArgs {
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
    /// Create ACL bindings: one per --operation.
    ///
    /// Example: runnel acl create --principal User:alice --operation READ --topic orders
    #[command(verbatim_doc_comment)]
    Create(CreateArgs),
    /// List the ACL bindings the filters match (all of them without filters).
    ///
    /// Example: runnel acl list --principal User:alice --format json
    #[command(verbatim_doc_comment)]
    List(FilterArgs),
    /// Delete the ACL bindings the filters match; prints what was deleted.
    ///
    /// Example: runnel acl delete --principal User:alice --topic orders
    #[command(verbatim_doc_comment)]
    Delete(FilterArgs),
}

/// The resource an ACL is about.
#[derive(Args, Debug, Default)]
struct ResourceArgs {
    /// A topic name (or prefix with --resource-pattern-type prefixed; * for every topic).
    #[arg(long)]
    topic: Option<String>,
    /// A consumer group id.
    #[arg(long)]
    group: Option<String>,
    /// The cluster (kafka-cluster).
    #[arg(long)]
    cluster: bool,
    /// A transactional id.
    #[arg(long)]
    transactional_id: Option<String>,
}

impl ResourceArgs {
    /// The resource type code and name; `None` when no resource is named.
    fn resource(&self) -> anyhow::Result<Option<(i8, String)>> {
        let named: Vec<(i8, String)> = [
            self.topic.clone().map(|t| (RESOURCE_TOPIC, t)),
            self.group.clone().map(|g| (RESOURCE_GROUP, g)),
            self.cluster.then(|| (RESOURCE_CLUSTER, "kafka-cluster".to_string())),
            self.transactional_id.clone().map(|t| (RESOURCE_TRANSACTIONAL_ID, t)),
        ]
        .into_iter()
        .flatten()
        .collect();
        match named.len() {
            0 => Ok(None),
            1 => Ok(named.into_iter().next()),
            _ => bail!("name one resource: --topic, --group, --cluster or --transactional-id"),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum PatternArg {
    Any,
    Match,
    Literal,
    Prefixed,
}

impl PatternArg {
    fn code(self) -> i8 {
        match self {
            PatternArg::Any => 1,
            PatternArg::Match => 2,
            PatternArg::Literal => 3,
            PatternArg::Prefixed => 4,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum PermissionArg {
    Allow,
    Deny,
}

impl PermissionArg {
    fn code(self) -> i8 {
        match self {
            PermissionArg::Deny => 2,
            PermissionArg::Allow => 3,
        }
    }
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("resource").required(true).args(["topic", "group", "cluster", "transactional_id"])))]
struct CreateArgs {
    /// The principal, e.g. User:alice, or User:* for every user.
    #[arg(long)]
    principal: String,
    /// The client address the ACL applies to, or * for any.
    #[arg(long, default_value = "*")]
    host: String,
    /// An operation: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,
    /// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE or ALL; repeatable.
    #[arg(long = "operation", required = true, value_parser = parse_operation)]
    operations: Vec<i8>,
    /// Allow or deny.
    #[arg(long, value_enum, default_value_t = PermissionArg::Allow)]
    permission: PermissionArg,
    #[command(flatten)]
    resource: ResourceArgs,
    /// How the resource name matches: literal (the name, or * for all) or prefixed.
    #[arg(long, value_enum, default_value_t = PatternArg::Literal)]
    resource_pattern_type: PatternArg,
}

#[derive(Args, Debug)]
struct FilterArgs {
    /// Only bindings of this principal.
    #[arg(long)]
    principal: Option<String>,
    /// Only bindings for this host.
    #[arg(long)]
    host: Option<String>,
    /// Only bindings of this operation.
    #[arg(long, value_parser = parse_operation)]
    operation: Option<i8>,
    /// Only bindings with this permission.
    #[arg(long, value_enum)]
    permission: Option<PermissionArg>,
    #[command(flatten)]
    resource: ResourceArgs,
    /// How a named resource matches bindings: any pattern type with that exact
    /// name, match (every binding that applies to the resource, wildcards and
    /// prefixes included), literal or prefixed.
    #[arg(long, value_enum, default_value_t = PatternArg::Any)]
    resource_pattern_type: PatternArg,
}

fn parse_operation(s: &str) -> Result<i8, String> {
    let upper = s.trim().to_ascii_uppercase().replace('-', "_");
    OPERATIONS.iter().find(|(name, _)| *name == upper).map(|(_, code)| *code).ok_or_else(|| {
        let names: Vec<&str> = OPERATIONS.iter().map(|(n, _)| *n).collect();
        format!("unknown operation '{s}'; one of {}", names.join(", "))
    })
}

fn name_of(table: &[(&'static str, i8)], code: i8) -> String {
    table.iter().find(|(_, c)| *c == code).map_or_else(|| format!("UNKNOWN({code})"), |(n, _)| n.to_string())
}

/// One binding as printed.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct AclRow {
    resource_type: String,
    resource_name: String,
    pattern_type: String,
    principal: String,
    host: String,
    operation: String,
    permission: String,
}

pub fn run(mut args: AclArgs) -> anyhow::Result<()> {
    args.connect.resolve()?;
    if let Action::Delete(filter) = &args.action {
        if filter.resource.resource()?.is_none() && filter.principal.is_none() {
            bail!("refusing to delete every ACL: name a resource or a --principal");
        }
    }
    let mut conn = args.connect.wire(ACL_TIMEOUT)?;
    match &args.action {
        Action::Create(create) => run_create(&mut conn, create),
        Action::List(filter) => {
            let rows = describe(&mut conn, filter)?;
            print_rows(args.format, rows)
        }
        Action::Delete(filter) => {
            let rows = delete(&mut conn, filter)?;
            print_rows(args.format, rows)
        }
    }
}

fn version<R: kafka_protocol::protocol::Request>(conn: &Connection) -> anyhow::Result<i16> {
    conn.version::<R>(ACL_VERSION_MAX).with_context(|| format!("broker {} does not serve API {}", conn.addr(), R::KEY))
}

fn run_create(conn: &mut Connection, args: &CreateArgs) -> anyhow::Result<()> {
    let (resource_type, resource_name) = args.resource.resource()?.context("name a resource")?;
    let creations: Vec<AclCreation> = args
        .operations
        .iter()
        .map(|op| {
            AclCreation::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource_name.clone()))
                .with_resource_pattern_type(args.resource_pattern_type.code())
                .with_principal(StrBytes::from_string(args.principal.clone()))
                .with_host(StrBytes::from_string(args.host.clone()))
                .with_operation(*op)
                .with_permission_type(args.permission.code())
        })
        .collect();
    let version = version::<CreateAclsRequest>(conn)?;
    let response = conn.send(version, &CreateAclsRequest::default().with_creations(creations))?;
    let mut failed = false;
    for (result, op) in response.results.iter().zip(&args.operations) {
        if result.error_code != 0 {
            failed = true;
            let message = result.error_message.as_deref().unwrap_or_default();
            eprintln!(
                "cannot create the {} ACL: {} {message}",
                name_of(OPERATIONS, *op),
                wire::error_name(result.error_code)
            );
        }
    }
    if failed {
        bail!("some ACLs were not created");
    }
    println!(
        "created {} ACL(s) for {} on {} {resource_name}",
        args.operations.len(),
        args.principal,
        name_of(RESOURCE_TYPES, resource_type)
    );
    Ok(())
}

/// The wire filter of the command-line filters.
struct Filter {
    resource_type: i8,
    resource_name: Option<String>,
    pattern_type: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission: i8,
}

fn filter(args: &FilterArgs) -> anyhow::Result<Filter> {
    let (resource_type, resource_name) = match args.resource.resource()? {
        Some((t, n)) => (t, Some(n)),
        None => (RESOURCE_ANY, None),
    };
    Ok(Filter {
        resource_type,
        resource_name,
        pattern_type: if resource_type == RESOURCE_ANY && args.resource_pattern_type == PatternArg::Match {
            PATTERN_ANY
        } else {
            args.resource_pattern_type.code()
        },
        principal: args.principal.clone(),
        host: args.host.clone(),
        operation: args.operation.unwrap_or(OPERATION_ANY),
        permission: args.permission.map_or(PERMISSION_ANY, PermissionArg::code),
    })
}

fn text(s: &Option<String>) -> Option<StrBytes> {
    s.clone().map(StrBytes::from_string)
}

fn describe(conn: &mut Connection, args: &FilterArgs) -> anyhow::Result<Vec<AclRow>> {
    let f = filter(args)?;
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(f.resource_type)
        .with_resource_name_filter(text(&f.resource_name))
        .with_pattern_type_filter(f.pattern_type)
        .with_principal_filter(text(&f.principal))
        .with_host_filter(text(&f.host))
        .with_operation(f.operation)
        .with_permission_type(f.permission);
    let version = version::<DescribeAclsRequest>(conn)?;
    let response = conn.send(version, &request)?;
    if response.error_code != 0 {
        let message = response.error_message.as_deref().unwrap_or_default();
        bail!("cannot list ACLs: {} {message}", wire::error_name(response.error_code));
    }
    let mut rows = Vec::new();
    for resource in response.resources {
        for acl in resource.acls {
            rows.push(AclRow {
                resource_type: name_of(RESOURCE_TYPES, resource.resource_type),
                resource_name: resource.resource_name.to_string(),
                pattern_type: name_of(PATTERN_TYPES, resource.pattern_type),
                principal: acl.principal.to_string(),
                host: acl.host.to_string(),
                operation: name_of(OPERATIONS, acl.operation),
                permission: name_of(PERMISSIONS, acl.permission_type),
            });
        }
    }
    rows.sort();
    Ok(rows)
}

fn delete(conn: &mut Connection, args: &FilterArgs) -> anyhow::Result<Vec<AclRow>> {
    let f = filter(args)?;
    let request = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(f.resource_type)
        .with_resource_name_filter(text(&f.resource_name))
        .with_pattern_type_filter(f.pattern_type)
        .with_principal_filter(text(&f.principal))
        .with_host_filter(text(&f.host))
        .with_operation(f.operation)
        .with_permission_type(f.permission)]);
    let version = version::<DeleteAclsRequest>(conn)?;
    let response = conn.send(version, &request)?;
    let mut rows = Vec::new();
    for result in response.filter_results {
        if result.error_code != 0 {
            let message = result.error_message.as_deref().unwrap_or_default();
            bail!("cannot delete ACLs: {} {message}", wire::error_name(result.error_code));
        }
        for acl in result.matching_acls {
            rows.push(AclRow {
                resource_type: name_of(RESOURCE_TYPES, acl.resource_type),
                resource_name: acl.resource_name.to_string(),
                pattern_type: name_of(PATTERN_TYPES, acl.pattern_type),
                principal: acl.principal.to_string(),
                host: acl.host.to_string(),
                operation: name_of(OPERATIONS, acl.operation),
                permission: name_of(PERMISSIONS, acl.permission_type),
            });
        }
    }
    rows.sort();
    Ok(rows)
}

fn print_rows(format: OutputFormat, rows: Vec<AclRow>) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&rows)?),
        OutputFormat::Table => {
            let rows = rows
                .into_iter()
                .map(|r| {
                    vec![
                        r.principal,
                        r.host,
                        r.operation,
                        r.permission,
                        r.resource_type,
                        r.resource_name,
                        r.pattern_type,
                    ]
                })
                .collect();
            print_table(&["PRINCIPAL", "HOST", "OPERATION", "PERMISSION", "RESOURCE-TYPE", "NAME", "PATTERN"], rows);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_by_kafka_name() {
        assert_eq!(parse_operation("read"), Ok(3));
        assert_eq!(parse_operation("describe-configs"), Ok(10));
        assert!(parse_operation("fly").is_err());
    }

    #[test]
    fn one_resource_at_most() {
        let both = ResourceArgs { topic: Some("t".into()), group: Some("g".into()), ..Default::default() };
        assert!(both.resource().is_err());
        let cluster = ResourceArgs { cluster: true, ..Default::default() };
        assert_eq!(cluster.resource().unwrap(), Some((RESOURCE_CLUSTER, "kafka-cluster".to_string())));
    }
}
