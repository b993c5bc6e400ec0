//! `runnel user`: create, delete and list the SCRAM users SASL listeners
//! with SCRAM-SHA-256 or SCRAM-SHA-512 log in (AlterUserScramCredentials
//! and DescribeUserScramCredentials).
//!
//! As Kafka's admin client does, the password is salted here: the command
//! picks a random 32-byte salt, computes `Hi(password, salt, iterations)`
//! with PBKDF2 and sends only that, from which the broker keeps StoredKey and
//! ServerKey. The password comes from a file or standard input, never from
//! the command line, and is never printed. The requests go through
//! [`super::wire`], since librdkafka's Rust binding does not expose them,
//! secured as the command's properties say ([`super::secure`]).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use ring::rand::{SecureRandom, SystemRandom};
use runnel_broker::sasl::scram::{self, ScramMechanism};
use serde::Serialize;

use super::wire::{self, Connection};
use super::{print_table, ConnectArgs, OutputFormat};

/// How long a user admin request may take.
const USER_TIMEOUT: Duration = Duration::from_secs(15);

/// Bytes of the random salt of a new credential.
const SALT_BYTES: usize = 32;

/// The longest password file read.
const PASSWORD_BYTES_MAX: u64 = 64 * 1024;

const USER_AFTER_HELP: &str = "\
Examples:
  # the first user, over a PLAINTEXT listener (or a SASL_PLAINTEXT one as a PLAIN user)
  runnel user create admin --mechanism SCRAM-SHA-512 --password-file /etc/runnel/admin.password
  printf '%s' \"$PASSWORD\" | runnel user create alice --mechanism SCRAM-SHA-256 --password-stdin

  # as an existing SCRAM user, on a SASL_PLAINTEXT listener
  runnel user list --brokers 127.0.0.1:9094 -X security.protocol=SASL_PLAINTEXT \\
      -X sasl.mechanism=SCRAM-SHA-512 -X sasl.username=admin -X sasl.password=...

  runnel user list --format json
  runnel user delete alice --mechanism SCRAM-SHA-256
  runnel user delete alice";

/// Create, delete and list SCRAM users (SASL/SCRAM-SHA-256 and SCRAM-SHA-512 credentials).
#[derive(Args, Debug)]
#[command(after_help = USER_AFTER_HELP)]
pub struct UserArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Output format: a table for people, JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    #[command(subcommand)]
    action: Action,
}

/// A SCRAM mechanism, under Kafka's name.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Mechanism {
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl Mechanism {
    fn scram(self) -> ScramMechanism {
        match self {
            Mechanism::ScramSha256 => ScramMechanism::Sha256,
            Mechanism::ScramSha512 => ScramMechanism::Sha512,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Set a user's credential for one mechanism (creating the user, or
    /// replacing its password for that mechanism).
    ///
    /// Example: runnel user create alice --mechanism SCRAM-SHA-512 --password-file alice.password
    #[command(verbatim_doc_comment, group(ArgGroup::new("password").required(true)))]
    Create {
        /// The user name.
        name: String,
        /// The SCRAM mechanism the credential is for.
        #[arg(long, value_enum)]
        mechanism: Mechanism,
        /// PBKDF2 iterations, 4096 to 16384.
        #[arg(long, default_value_t = scram::ITERATIONS_MIN,
              value_parser = clap::value_parser!(i32).range(scram::ITERATIONS_MIN as i64..=scram::ITERATIONS_MAX as i64))]
        iterations: i32,
        /// Read the password from this file (one trailing newline is dropped).
        #[arg(long, value_name = "FILE", group = "password")]
        password_file: Option<PathBuf>,
        /// Read the password from standard input (one trailing newline is dropped).
        #[arg(long, group = "password")]
        password_stdin: bool,
    },
    /// Delete a user's credential for one mechanism, or all of its credentials.
    ///
    /// Example: runnel user delete alice --mechanism SCRAM-SHA-256
    #[command(verbatim_doc_comment)]
    Delete {
        /// The user name.
        name: String,
        /// Only this mechanism's credential [default: every credential the user has].
        #[arg(long, value_enum)]
        mechanism: Option<Mechanism>,
    },
    /// List users with their mechanisms and iteration counts.
    ///
    /// Example: runnel user list --format json
    #[command(verbatim_doc_comment)]
    List,
}

/// One credential as `list` shows it.
#[derive(Debug, Serialize, PartialEq)]
struct Credential {
    user: String,
    mechanism: String,
    iterations: i32,
}

pub fn run(mut args: UserArgs) -> anyhow::Result<()> {
    args.connect.resolve()?;
    match &args.action {
        Action::Create { name, mechanism, iterations, password_file, password_stdin: _ } => {
            let password = match password_file {
                Some(path) => read_password(
                    std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
                )?,
                None => read_password(std::io::stdin())?,
            };
            create(&args.connect, name, mechanism.scram(), *iterations, &password)
        }
        Action::Delete { name, mechanism } => delete(&args.connect, name, mechanism.map(Mechanism::scram)),
        Action::List => list(&args.connect, args.format),
    }
}

/// A password from `source`, without one trailing newline; never empty.
fn read_password(source: impl Read) -> anyhow::Result<String> {
    let mut text = String::new();
    source.take(PASSWORD_BYTES_MAX + 1).read_to_string(&mut text).context("cannot read the password")?;
    if text.len() as u64 > PASSWORD_BYTES_MAX {
        bail!("the password is longer than {PASSWORD_BYTES_MAX} bytes");
    }
    let password = text.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&text);
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password.to_string())
}

fn connection(connect: &ConnectArgs) -> anyhow::Result<Connection> {
    let conn = connect.wire(USER_TIMEOUT)?;
    for (name, key) in [("AlterUserScramCredentials", 51), ("DescribeUserScramCredentials", 50)] {
        if conn.version_of(key).is_none() {
            bail!("broker {} does not serve {name}", conn.addr());
        }
    }
    Ok(conn)
}

fn create(
    connect: &ConnectArgs,
    name: &str,
    mechanism: ScramMechanism,
    iterations: i32,
    password: &str,
) -> anyhow::Result<()> {
    let mut salt = vec![0u8; SALT_BYTES];
    SystemRandom::new().fill(&mut salt).map_err(|_| anyhow::anyhow!("no system random bytes"))?;
    let salted = scram::salted_password(mechanism, password.as_bytes(), &salt, iterations as u32);
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_mechanism(mechanism.kafka_type())
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted));
    let mut conn = connection(connect)?;
    alter(&mut conn, AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]))?;
    println!("set the {} credential of user {name} ({iterations} iterations)", mechanism.name());
    Ok(())
}

fn delete(connect: &ConnectArgs, name: &str, mechanism: Option<ScramMechanism>) -> anyhow::Result<()> {
    let mut conn = connection(connect)?;
    let mechanisms = match mechanism {
        Some(m) => vec![m],
        None => {
            let found = describe(&mut conn, Some(name))?;
            found.iter().filter_map(|c| ScramMechanism::parse(&c.mechanism)).collect()
        }
    };
    // One request per mechanism: a user named twice in one request is refused (DUPLICATE_RESOURCE).
    for m in mechanisms {
        let deletion = ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_mechanism(m.kafka_type());
        alter(&mut conn, AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]))?;
        println!("deleted the {} credential of user {name}", m.name());
    }
    Ok(())
}

/// Sends one alteration; a per-user error is the command's error.
fn alter(conn: &mut Connection, request: AlterUserScramCredentialsRequest) -> anyhow::Result<()> {
    let response = conn.send(0, &request)?;
    for result in &response.results {
        if result.error_code != 0 {
            let message = result.error_message.as_ref().map(|m| format!(": {m}")).unwrap_or_default();
            bail!("user {}: {}{message}", result.user.as_str(), wire::error_name(result.error_code));
        }
    }
    Ok(())
}

/// The credentials of `user`, or of every user.
fn describe(conn: &mut Connection, user: Option<&str>) -> anyhow::Result<Vec<Credential>> {
    let users = user.map(|u| vec![UserName::default().with_name(StrBytes::from_string(u.to_string()))]);
    let response = conn.send(0, &DescribeUserScramCredentialsRequest::default().with_users(users))?;
    if response.error_code != 0 {
        bail!("cannot describe SCRAM users: {}", wire::error_name(response.error_code));
    }
    let mut credentials = Vec::new();
    for result in &response.results {
        if result.error_code == ResponseError::ResourceNotFound.code() {
            bail!("user {} has no SCRAM credential", result.user.as_str());
        }
        if result.error_code != 0 {
            bail!("user {}: {}", result.user.as_str(), wire::error_name(result.error_code));
        }
        for info in &result.credential_infos {
            let mechanism = ScramMechanism::from_kafka_type(info.mechanism)
                .map_or_else(|| format!("UNKNOWN({})", info.mechanism), |m| m.name().to_string());
            credentials.push(Credential { user: result.user.to_string(), mechanism, iterations: info.iterations });
        }
    }
    credentials.sort_by(|a, b| (&a.user, &a.mechanism).cmp(&(&b.user, &b.mechanism)));
    Ok(credentials)
}

fn list(connect: &ConnectArgs, format: OutputFormat) -> anyhow::Result<()> {
    let mut conn = connection(connect)?;
    let credentials = describe(&mut conn, None)?;
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&credentials)?),
        OutputFormat::Table => {
            let rows = credentials
                .iter()
                .map(|c| vec![c.user.clone(), c.mechanism.clone(), c.iterations.to_string()])
                .collect();
            print_table(&["USER", "MECHANISM", "ITERATIONS"], rows);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_lose_one_trailing_newline_and_must_not_be_empty() {
        assert_eq!(read_password(&b"secret\n"[..]).unwrap(), "secret");
        assert_eq!(read_password(&b"secret\r\n"[..]).unwrap(), "secret");
        assert_eq!(read_password(&b"se cret \n\n"[..]).unwrap(), "se cret \n");
        assert!(read_password(&b"\n"[..]).is_err());
        assert!(read_password(&b""[..]).is_err());
        assert!(read_password(&vec![b'x'; PASSWORD_BYTES_MAX as usize + 1][..]).is_err());
    }
}
