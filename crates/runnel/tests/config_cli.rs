//! `runnel serve` configuration from the command line: the TOML file,
//! `RUNNEL_` environment variables, `--set` and their precedence, seen
//! through `--print-config`; and validation errors that name the key.

mod common;

use std::process::Command;

fn serve(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command.arg("serve").args(args);
    // Only the variables a test sets: the test command's own RUNNEL_ variables would add warning lines.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("RUNNEL_")) {
        command.env_remove(name);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run runnel");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

fn line<'a>(printed: &'a str, key: &str) -> &'a str {
    printed
        .lines()
        .find(|l| l.starts_with(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} not printed:\n{printed}"))
}

/// Goal: each source is applied and the later one wins: file < environment
/// < --set. Method: set num.partitions in all three, log.segment.bytes in
/// file and environment, message.max.bytes in the file only; read
/// --print-config.
#[test]
fn precedence_is_file_then_environment_then_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runnel.toml");
    std::fs::write(&file, "num.partitions = 2\nlog.segment.bytes = 1048576\nmessage.max.bytes = 2000\n").unwrap();
    let file = file.to_string_lossy().to_string();
    let env = [("RUNNEL_NUM_PARTITIONS", "3"), ("RUNNEL_LOG_SEGMENT_BYTES", "2097152")];
    let (ok, out, err) = serve(&["--config", &file, "--set", "num.partitions=4", "--print-config"], &env);
    assert!(ok, "{err}");
    assert_eq!(line(&out, "num.partitions"), "num.partitions=4  # Override");
    assert_eq!(line(&out, "log.segment.bytes"), "log.segment.bytes=2097152  # Env");
    assert_eq!(line(&out, "message.max.bytes"), "message.max.bytes=2000  # File");
    assert_eq!(line(&out, "socket.request.max.bytes"), "socket.request.max.bytes=104857600  # Default");
}

/// Goal: a bad value from any source is one clear line naming the key and
/// the allowed range, and a non-zero exit.
#[test]
fn invalid_values_name_the_key() {
    for (args, env) in [
        (vec!["--set", "num.partitions=0", "--print-config"], vec![]),
        (vec!["--print-config"], vec![("RUNNEL_NUM_PARTITIONS", "zero")]),
    ] {
        let (ok, _, err) = serve(&args, &env);
        assert!(!ok);
        assert!(err.contains("num.partitions"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let (ok, _, err) = serve(&["--set", "no.such.setting=1", "--print-config"], &[]);
    assert!(!ok && err.contains("no.such.setting"), "{err}");
}

/// Goal: --print-config shows dynamic settings stored in the data directory
/// with their source, as the running broker applies them. Method: alter
/// message.max.bytes for this node (AlterConfigs through the
/// admin client) on a running broker, stop it, and print the configuration
/// of the same data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_config_shows_dynamic_settings() {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = common::BrokerProcess::start(&data, &[]);
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &broker.addr).create().unwrap();
    let change = AlterConfig::new(ResourceSpecifier::Broker(1)).set("message.max.bytes", "700000");
    admin.alter_configs(&[change], &AdminOptions::new()).await.expect("alter_configs");
    assert_eq!(broker.terminate(), Some(0));
    let data = data.to_string_lossy().to_string();
    let (ok, out, err) = serve(&["--data-dir", &data, "--print-config"], &[]);
    assert!(ok, "{err}");
    assert_eq!(line(&out, "message.max.bytes"), "message.max.bytes=700000  # DynamicBroker");
    assert_eq!(line(&out, "num.partitions"), "num.partitions=1  # Default");
}

/// Goal: credentials in a JAAS line never appear in --print-config, while
/// the key and its source still do.
#[test]
fn print_config_hides_sasl_credentials() {
    let jaas =
        r#"sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="s3cret-pw";"#;
    let (ok, out, err) = serve(&["--set", jaas, "--print-config"], &[]);
    assert!(ok, "{err}");
    assert!(!out.contains("s3cret-pw") && !err.contains("s3cret-pw"), "the password is printed:\n{out}");
    assert!(line(&out, "sasl.jaas.config").ends_with("# Override"), "{out}");
}
