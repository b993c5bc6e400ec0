//! The client commands `runnel topic`, `runnel produce`, `runnel consume`,
//! `runnel group`, `runnel cluster` and `runnel completions` against the real
//! broker binary: topic life cycle, byte-exact round trips through both input
//! and output formats, start positions, Ctrl-C, consumer group offsets, and
//! one-line errors for an unreachable broker or an unknown topic.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::BrokerProcess;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// How long one client command may run before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `runnel ARGS` with piped stdin, stdout and stderr.
fn spawn(args: &[&str]) -> Child {
    spawn_with_env(args, &[])
}

/// Starts `runnel ARGS` with extra environment variables.
fn spawn_with_env(args: &[&str], vars: &[(&str, &std::path::Path)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .env_remove("RUNNEL_BROKERS")
        .env_remove("RUNNEL_PROFILE")
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runnel")
}

/// Waits for `child` while collecting its output; kills it when it outlives
/// `COMMAND_TIMEOUT`.
fn finish(mut child: Child, what: &str) -> Output {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for runnel") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill runnel");
            child.wait().expect("reap runnel");
            panic!("runnel {what} ran longer than {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().expect("stdout reader").expect("read stdout");
    let stderr = err_reader.join().expect("stderr reader").expect("read stderr");
    Output { status, stdout, stderr }
}

/// Runs `runnel ARGS` with `input` on stdin.
fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = spawn(args);
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    finish(child, &format!("{args:?}"))
}

/// Runs `runnel ARGS`, asserts success and returns stdout.
fn ok(args: &[&str], input: &[u8]) -> Vec<u8> {
    let out = run(args, input);
    assert!(out.status.success(), "runnel {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn ok_text(args: &[&str], input: &[u8]) -> String {
    String::from_utf8(ok(args, input)).expect("utf-8 stdout")
}

/// Asserts a failed run wrote exactly one line, starting `runnel:`, to
/// stderr and nothing to stdout; returns that line.
fn one_line_error(args: &[&str], input: &[u8]) -> String {
    let out = run(args, input);
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert!(!out.status.success(), "runnel {args:?} should fail; stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line on stderr for {args:?}: {stderr:?}");
    assert!(stderr.starts_with("runnel: "), "stderr of {args:?}: {stderr:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout for {args:?}: {:?}", String::from_utf8_lossy(&out.stdout));
    stderr
}

/// Goal: a topic can be created, seen, described and deleted from the
/// command line, in both output formats. Method: create `life` with 3
/// partitions, check `list` (table and JSON), `describe` (table rows and
/// JSON fields: leader, replicas, ISR, watermarks), change its configs and
/// add partitions (and fail to remove some), then delete it and check
/// `list` no longer shows it and `describe` fails.
#[test]
fn topic_life_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();

    let created = ok_text(&["topic", "create", "life", "--partitions", "3", "--brokers", b], b"");
    assert!(created.contains("life") && created.contains('3'), "{created}");

    let table = ok_text(&["topic", "list", "--brokers", b], b"");
    assert!(table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["life", "3"]), "{table}");
    let list: Value = serde_json::from_slice(&ok(&["topic", "list", "--format", "json", "--brokers", b], b"")).unwrap();
    assert!(list.as_array().unwrap().iter().any(|t| t["name"] == "life" && t["partitions"] == 3), "{list}");

    let table = ok_text(&["topic", "describe", "life", "--brokers", b], b"");
    let rows: Vec<Vec<&str>> = table.lines().skip(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "{table}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], i.to_string(), "{table}");
        assert_eq!(&row[4..], ["0", "0"], "empty partitions: {table}");
    }
    let json = ok(&["topic", "describe", "life", "--format", "json", "--brokers", b], b"");
    let describe: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(describe["name"], "life");
    let partitions = describe["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3, "{describe}");
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition"], i);
        let leader = p["leader"].as_i64().unwrap();
        assert!(leader >= 0, "{p}");
        assert_eq!(p["replicas"], serde_json::json!([leader]), "{p}");
        assert_eq!(p["isr"], serde_json::json!([leader]), "{p}");
        assert_eq!((p["log_start_offset"].as_i64(), p["high_watermark"].as_i64()), (Some(0), Some(0)), "{p}");
    }

    // Config overrides: set two, then remove one and change the other; a third change shows what the broker
    // kept (the command reads the overrides back before writing).
    let alter = |extra: &[&str]| -> Value {
        let mut args = vec!["topic", "alter-config", "life", "--format", "json", "--brokers", b];
        args.extend_from_slice(extra);
        serde_json::from_slice(&ok(&args, b"")).unwrap()
    };
    let set = alter(&["--set", "retention.ms=1000", "--set", "cleanup.policy=compact"]);
    assert_eq!(set["configs"], serde_json::json!({"cleanup.policy": "compact", "retention.ms": "1000"}));
    let changed = alter(&["--delete", "cleanup.policy", "--set", "retention.ms=2000"]);
    assert_eq!(changed["configs"], serde_json::json!({"retention.ms": "2000"}));
    let kept = alter(&["--set", "segment.ms=60000"]);
    assert_eq!(kept["configs"], serde_json::json!({"retention.ms": "2000", "segment.ms": "60000"}));
    one_line_error(&["topic", "alter-config", "life", "--delete", "cleanup.policy", "--brokers", b], b"");
    one_line_error(&["topic", "alter-config", "life", "--set", "retention.ms=soon", "--brokers", b], b"");

    // Partitions only grow.
    ok(&["topic", "add-partitions", "life", "--total", "5", "--brokers", b], b"");
    let json = ok(&["topic", "describe", "life", "--format", "json", "--brokers", b], b"");
    let describe: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(describe["partitions"].as_array().unwrap().len(), 5, "{describe}");
    one_line_error(&["topic", "add-partitions", "life", "--total", "2", "--brokers", b], b"");

    ok(&["topic", "delete", "life", "--brokers", b], b"");
    let table = ok_text(&["topic", "list", "--brokers", b], b"");
    assert!(!table.lines().any(|l| l.split_whitespace().next() == Some("life")), "{table}");
    one_line_error(&["topic", "describe", "life", "--brokers", b], b"");
}

/// Goal: keys, values and headers survive the line format byte for byte and
/// in order. Method: produce lines with `--key-separator : --header a=1`
/// (a value holding the separator, a line without key, non-ASCII text, an
/// empty value) to a one-partition topic, read them back with
/// `--from beginning --until-end --format '%k=%s|%h\n'` and compare with the
/// expected rendering; the producer reports the acknowledged count.
#[test]
fn line_round_trip_keeps_keys_values_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();
    ok(&["topic", "create", "lines", "--partitions", "1", "--brokers", b], b"");

    let input = "k1:v1\nk2:a:b\nno separator\nschlüssel:wert ☃\nk5:\n";
    let out = run(&["produce", "lines", "--key-separator", ":", "--header", "a=1", "--brokers", b], input.as_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "produce failed: {stderr}");
    assert!(stderr.contains("acknowledged 5 records"), "{stderr}");

    let args = ["consume", "lines", "--from", "beginning", "--until-end", "--format", "%k=%s|%h\\n", "--brokers", b];
    let output = ok_text(&args, b"");
    assert_eq!(output, "k1=v1|a=1\nk2=a:b|a=1\n=no separator|a=1\nschlüssel=wert ☃|a=1\nk5=|a=1\n");

    // The other template fields: topic, partition, offset, and a timestamp
    // taken at produce time.
    let args = ["consume", "lines", "--from", "beginning", "--count", "1", "--format", "%t %p %o %T", "--brokers", b];
    let line = ok_text(&args, b"");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(&fields[..3], ["lines", "0", "0"], "{line}");
    assert!(fields[3].parse::<i64>().unwrap() > 1_600_000_000_000, "{line}");
}

/// Goal: the JSON formats carry every field, null keys and values, and bytes
/// that are not UTF-8, and consume's JSON can be fed back to produce.
/// Method: produce JSON lines (text, null key, null value, base64 binary,
/// explicit partition and timestamp) to a two-partition topic; consume with
/// `--format json` and compare field by field; then produce that output into
/// a second topic and check the records there are the same.
#[test]
fn json_round_trip_carries_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();
    ok(&["topic", "create", "js", "--partitions", "2", "--brokers", b], b"");
    ok(&["topic", "create", "js-copy", "--partitions", "2", "--brokers", b], b"");

    let input = concat!(
        r#"{"key":"k1","value":"v1","headers":{"h1":"x","h2":null},"partition":1,"timestamp":1700000000001}"#,
        "\n\n",
        r#"{"key":null,"value":"no key","partition":1}"#,
        "\n",
        r#"{"key":"tombstone","value":null,"partition":1}"#,
        "\n",
        r#"{"key":"Ymlu","value":"/wAB","encoding":"base64","partition":0}"#,
        "\n",
    );
    ok(&["produce", "js", "--format", "json", "--brokers", b], input.as_bytes());

    let consume = |topic: &str| -> Vec<Value> {
        let args = ["consume", topic, "--from", "beginning", "--until-end", "--format", "json", "--brokers", b];
        let mut records: Vec<Value> =
            ok_text(&args, b"").lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
        records.sort_by_key(|r| (r["partition"].as_i64(), r["offset"].as_i64()));
        records
    };
    let records = consume("js");
    assert_eq!(records.len(), 4, "{records:?}");

    let bin = &records[0];
    assert_eq!((bin["partition"].as_i64(), bin["offset"].as_i64()), (Some(0), Some(0)));
    assert_eq!(bin["encoding"], "base64");
    assert_eq!(bin["key"], "Ymlu", "the key (\"bin\") is base64 too when any field is");
    assert_eq!(bin["value"], "/wAB");

    let first = &records[1];
    assert_eq!(
        (first["topic"].as_str(), first["partition"].as_i64(), first["offset"].as_i64()),
        (Some("js"), Some(1), Some(0))
    );
    assert_eq!(first["encoding"], "utf-8");
    assert_eq!(first["key"], "k1");
    assert_eq!(first["value"], "v1");
    assert_eq!(first["timestamp"], 1_700_000_000_001i64);
    assert_eq!(first["headers"], serde_json::json!({"h1": "x", "h2": null}));

    assert!(records[2]["key"].is_null());
    assert_eq!(records[2]["value"], "no key");
    assert_eq!(records[3]["key"], "tombstone");
    assert!(records[3]["value"].is_null());
    assert_eq!(records[3]["headers"], serde_json::json!({}));

    // consume's output is produce's input.
    let dump: String = records.iter().map(|r| format!("{r}\n")).collect();
    ok(&["produce", "js-copy", "--format", "json", "--brokers", b], dump.as_bytes());
    let copies = consume("js-copy");
    let strip = |r: &Value| {
        let mut r = r.clone();
        r.as_object_mut().unwrap().remove("topic");
        r
    };
    assert_eq!(copies.iter().map(strip).collect::<Vec<_>>(), records.iter().map(strip).collect::<Vec<_>>());
}

/// Goal: `--from` starts where it says, per partition, and `--count` stops.
/// Method: five records with timestamps 1000..5000 in one partition; check
/// `--from 2`, `--from -2`, `--from @3000`, `--from 99` (past the end: no
/// records), `--from end` with `--until-end` (nothing) and `--count 2`.
#[test]
fn consume_starts_at_offset_tail_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();
    ok(&["topic", "create", "pos", "--partitions", "1", "--brokers", b], b"");
    let input: String = (0..5).map(|i| format!("{{\"value\":\"r{i}\",\"timestamp\":{}}}\n", (i + 1) * 1000)).collect();
    ok(&["produce", "pos", "--format", "json", "--brokers", b], input.as_bytes());

    let read = |from: &str, extra: &[&str]| {
        let mut args = vec!["consume", "pos", "--from", from, "--format", "%o:%s ", "--brokers", b];
        args.extend_from_slice(extra);
        ok_text(&args, b"")
    };
    assert_eq!(read("2", &["--until-end"]), "2:r2 3:r3 4:r4 ");
    assert_eq!(read("-2", &["--until-end"]), "3:r3 4:r4 ");
    assert_eq!(read("@3000", &["--until-end"]), "2:r2 3:r3 4:r4 ");
    assert_eq!(read("@2500", &["--until-end"]), "2:r2 3:r3 4:r4 ");
    assert_eq!(read("@9000", &["--until-end"]), "");
    assert_eq!(read("99", &["--until-end"]), "");
    assert_eq!(read("end", &["--until-end"]), "");
    assert_eq!(read("beginning", &["--count", "2"]), "0:r0 1:r1 ");
    assert_eq!(read("1", &["--partition", "0", "--count", "1"]), "1:r1 ");
}

/// Goal: Ctrl-C ends a consumer that waits for new records cleanly, with
/// what it printed flushed. Method: start `consume --from beginning` on a
/// topic with two records, wait until both are printed, send SIGINT, and
/// check a zero exit with both records on stdout and nothing on stderr.
#[test]
fn consume_exits_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();
    ok(&["topic", "create", "tail", "--partitions", "1", "--brokers", b], b"");
    ok(&["produce", "tail", "--brokers", b], b"one\ntwo\n");

    let mut child = spawn(&["consume", "tail", "--from", "beginning", "--brokers", b]);
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    while !seen.ends_with(b"two\n") {
        let n = stdout.read(&mut buf).expect("read consume output");
        assert!(n > 0, "consume closed stdout early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // SAFETY: kill(2) with a pid this test spawned and still owns.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    child.stdout = Some(stdout);
    let out = finish(child, "consume after SIGINT");
    assert!(out.status.success(), "exit after SIGINT: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(seen, b"one\ntwo\n");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
}

/// Goal: the usual mistakes end with one line that says what is wrong and a
/// non-zero exit, never a stack trace or a hang. Method: every client
/// command against a closed port (127.0.0.1:1), then consume, produce,
/// describe and delete of an unknown topic, a partition the topic lacks,
/// and bad input lines.
#[test]
fn mistakes_fail_with_one_line() {
    let unreachable = "127.0.0.1:1";
    for args in [
        &["topic", "list", "--brokers", unreachable][..],
        &["topic", "create", "x", "--brokers", unreachable],
        &["group", "describe", "g", "--brokers", unreachable],
        &["consume", "x", "--brokers", unreachable],
        &["produce", "x", "--brokers", unreachable],
    ] {
        let line = one_line_error(args, b"v\n");
        assert!(line.contains("cannot reach broker at 127.0.0.1:1"), "{line}");
    }

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();
    for args in [
        &["consume", "missing", "--brokers", b][..],
        &["produce", "missing", "--brokers", b],
        &["topic", "describe", "missing", "--brokers", b],
        &["topic", "delete", "missing", "--brokers", b],
    ] {
        let line = one_line_error(args, b"v\n");
        assert!(line.contains("topic missing does not exist"), "{line}");
    }

    ok(&["topic", "create", "one", "--partitions", "1", "--brokers", b], b"");
    let line = one_line_error(&["topic", "create", "one", "--brokers", b], b"");
    assert!(line.contains("already exists"), "{line}");
    let line = one_line_error(&["consume", "one", "--partition", "3", "--brokers", b], b"");
    assert!(line.contains("no partition 3"), "{line}");
    let line = one_line_error(&["produce", "one", "--format", "json", "--brokers", b], b"{\"value\":\"ok\"}\n{bad\n");
    assert!(line.contains("input line 2") && line.contains("1 earlier records acknowledged"), "{line}");
    let line = one_line_error(&["consume", "one", "--format", "%q", "--brokers", b], b"");
    assert!(line.contains("%q"), "{line}");
}

/// The committed offset, log end offset and lag of `topic`'s partitions in
/// `runnel group describe GROUP --format json`, by partition.
fn group_offsets(b: &str, group: &str, topic: &str) -> Vec<(i64, Option<i64>, i64, Option<i64>)> {
    let json: Value =
        serde_json::from_slice(&ok(&["group", "describe", group, "--format", "json", "--brokers", b], b""))
            .expect("describe is JSON");
    json["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .filter(|o| o["topic"] == topic)
        .map(|o| {
            (
                o["partition"].as_i64().unwrap(),
                o["committed_offset"].as_i64(),
                o["log_end_offset"].as_i64().unwrap(),
                o["lag"].as_i64(),
            )
        })
        .collect()
}

/// Goal: `runnel group` shows and changes a group's offsets as an operator
/// expects. Method: records with known timestamps in two partitions (10 and
/// 4), offsets 6 and 1 committed for group `billing` by an rdkafka consumer;
/// then `list` shows the group, `describe` gives committed offset, log end
/// offset and lag per partition, a dry-run reset changes nothing, a reset to
/// offset 3 makes `consume --group` start at 3 in both partitions, a reset
/// to a time lands on the first record at or after it, a reset is refused
/// while a `consume --group` member is active (and `describe` shows that
/// member and its partitions), and after `delete` the group is gone.
#[test]
fn group_offsets_describe_reset_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &["group.initial.rebalance.delay.ms=100"]);
    let b = broker.addr.as_str();
    ok(&["topic", "create", "gt", "--partitions", "2", "--brokers", b], b"");
    // Partition 0: offsets 0..10 with timestamps 1000, 2000, ..., 10000; partition 1: 4 records.
    let mut input: String =
        (0..10).map(|i| format!("{{\"value\":\"a{i}\",\"partition\":0,\"timestamp\":{}}}\n", (i + 1) * 1000)).collect();
    input.extend((0..4).map(|i| format!("{{\"value\":\"b{i}\",\"partition\":1,\"timestamp\":{}}}\n", (i + 1) * 1000)));
    ok(&["produce", "gt", "--format", "json", "--brokers", b], input.as_bytes());

    let committer = broker.consumer(&[("group.id", "billing")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("gt", 0, Offset::Offset(6)).unwrap();
    tpl.add_partition_offset("gt", 1, Offset::Offset(1)).unwrap();
    committer.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(committer);

    let table = ok_text(&["group", "list", "--brokers", b], b"");
    assert!(table.lines().any(|l| l.split_whitespace().next() == Some("billing")), "{table}");
    let list: Value = serde_json::from_slice(&ok(&["group", "list", "--format", "json", "--brokers", b], b"")).unwrap();
    assert!(list.as_array().unwrap().iter().any(|g| g["group"] == "billing" && g["state"] == "Empty"), "{list}");

    assert_eq!(group_offsets(b, "billing", "gt"), [(0, Some(6), 10, Some(4)), (1, Some(1), 4, Some(3))]);
    let table = ok_text(&["group", "describe", "billing", "--brokers", b], b"");
    assert!(
        table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["gt", "0", "6", "10", "4", "-"]),
        "{table}"
    );

    let dry = ok_text(
        &["group", "reset-offsets", "billing", "--topic", "gt", "--to-earliest", "--dry-run", "--brokers", b],
        b"",
    );
    assert!(dry.contains("6 -> 0") && dry.contains("1 -> 0"), "{dry}");
    assert_eq!(group_offsets(b, "billing", "gt"), [(0, Some(6), 10, Some(4)), (1, Some(1), 4, Some(3))], "dry run");

    let reset =
        ok_text(&["group", "reset-offsets", "billing", "--topic", "gt", "--to-offset", "3", "--brokers", b], b"");
    assert!(reset.contains("6 -> 3") && reset.contains("1 -> 3"), "{reset}");
    assert_eq!(group_offsets(b, "billing", "gt"), [(0, Some(3), 10, Some(7)), (1, Some(3), 4, Some(1))]);
    let read =
        ok_text(&["consume", "gt", "--group", "billing", "--until-end", "--format", "%p:%o ", "--brokers", b], b"");
    let mut firsts = std::collections::BTreeMap::new();
    let mut count = 0;
    for item in read.split_whitespace() {
        let (p, o) = item.split_once(':').unwrap();
        firsts.entry(p.to_string()).or_insert(o.parse::<i64>().unwrap());
        count += 1;
    }
    assert_eq!(firsts, [("0".to_string(), 3), ("1".to_string(), 3)].into(), "{read}");
    assert_eq!(count, 7 + 1, "{read}");
    // consume --group committed what it printed.
    assert_eq!(group_offsets(b, "billing", "gt"), [(0, Some(10), 10, Some(0)), (1, Some(4), 4, Some(0))]);

    // 00:00:04.5 falls between the records stamped 4000 (offset 3) and 5000 (offset 4).
    let args = ["group", "reset-offsets", "billing", "--topic", "gt", "--partition", "0", "--format", "json"];
    let out = ok(&[&args[..], &["--to-datetime", "1970-01-01T00:00:04.500Z", "--brokers", b]].concat(), b"");
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out["partitions"],
        serde_json::json!([{"topic": "gt", "partition": 0, "old_offset": 10, "new_offset": 4}])
    );
    assert_eq!(group_offsets(b, "billing", "gt")[0], (0, Some(4), 10, Some(6)));

    // An active member blocks the reset.
    let member = spawn(&["consume", "gt", "--group", "billing", "--brokers", b]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let json: Value =
            serde_json::from_slice(&ok(&["group", "describe", "billing", "--format", "json", "--brokers", b], b""))
                .unwrap();
        let members = json["members"].as_array().unwrap();
        if json["state"] == "Stable" && members.len() == 1 {
            assert_eq!(members[0]["client_id"], "runnel-consume", "{json}");
            assert_eq!(members[0]["assignment"], serde_json::json!([{"topic": "gt", "partitions": [0, 1]}]), "{json}");
            let member_id = members[0]["member_id"].as_str().unwrap();
            assert!(json["offsets"].as_array().unwrap().iter().all(|o| o["member_id"] == member_id), "{json}");
            break;
        }
        assert!(Instant::now() < deadline, "the member did not join: {json}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let line =
        one_line_error(&["group", "reset-offsets", "billing", "--topic", "gt", "--to-latest", "--brokers", b], b"");
    assert!(line.contains("active members"), "{line}");
    // SAFETY: kill(2) with a pid this test spawned and still owns.
    assert_eq!(unsafe { libc::kill(member.id() as i32, libc::SIGINT) }, 0);
    let out = finish(member, "consume --group after SIGINT");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    ok(&["group", "delete", "billing", "--brokers", b], b"");
    let table = ok_text(&["group", "list", "--brokers", b], b"");
    assert!(!table.lines().any(|l| l.split_whitespace().next() == Some("billing")), "{table}");
    let line = one_line_error(&["group", "describe", "billing", "--brokers", b], b"");
    assert!(line.contains("does not exist"), "{line}");
}

/// A consumer of the consumer group protocol (KIP-848) in group `group`.
fn kip848_member(addr: &str, group: &str, client_id: &str, extra: &[(&str, &str)]) -> rdkafka::consumer::BaseConsumer {
    let mut config = rdkafka::config::ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("consumer-protocol consumer")
}

/// The partitions of `topic` a consumer owns now.
fn owned(consumer: &rdkafka::consumer::BaseConsumer) -> Vec<i32> {
    let mut ps: Vec<i32> =
        consumer.assignment().expect("assignment").elements().iter().map(|e| e.partition()).collect();
    ps.sort_unstable();
    ps
}

/// `runnel group describe GROUP --format json`.
fn describe_json(b: &str, group: &str) -> Value {
    serde_json::from_slice(&ok(&["group", "describe", group, "--format", "json", "--brokers", b], b""))
        .expect("describe is JSON")
}

/// Goal: `runnel group list` and `describe` show a group of the consumer
/// group protocol (KIP-848) as it is, never as Dead or without members, and
/// `reset-offsets` and `delete` work on it once it is empty. Method: two
/// rdkafka consumers with `group.protocol=consumer` (one static) split a
/// 4-partition topic holding 5 records per partition and commit offset 2 in
/// each partition they own; then `list` must give type `consumer` and state
/// Stable, `describe` (JSON and table) the assignor, the group and
/// assignment epochs, both members with instance id, client id, host,
/// epoch, subscription and an assignment equal to their target and to what
/// the clients own, and the lag table with each partition's owner; a reset
/// is refused while they are members. After both close (and the static
/// member's session has ended), the group is Empty and still of type consumer; a reset to the earliest offsets commits 0
/// everywhere and `delete` removes it.
#[test]
fn consumer_protocol_group_list_describe_reset_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    // The static member's session ends 2 s after it closes (it may come back until then).
    let settings = ["group.consumer.heartbeat.interval.ms=200", "group.consumer.session.timeout.ms=2000"];
    let broker = BrokerProcess::start(&dir.path().join("data"), &settings);
    let b = broker.addr.as_str();
    ok(&["topic", "create", "kt", "--partitions", "4", "--brokers", b], b"");
    let input: String = (0..20).map(|i| format!("{{\"value\":\"v{i}\",\"partition\":{}}}\n", i % 4)).collect();
    ok(&["produce", "kt", "--format", "json", "--brokers", b], input.as_bytes());

    let members = [
        kip848_member(b, "kip", "member-a", &[]),
        kip848_member(b, "kip", "member-b", &[("group.instance.id", "static-b")]),
    ];
    for m in &members {
        m.subscribe(&["kt"]).expect("subscribe");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for m in &members {
            if let Some(Err(e)) = m.poll(Duration::from_millis(50)) {
                panic!("poll error: {e}");
            }
        }
        let (a, c) = (owned(&members[0]), owned(&members[1]));
        if a.len() == 2 && c.len() == 2 && a.iter().all(|p| !c.contains(p)) {
            break;
        }
        assert!(Instant::now() < deadline, "no split of the partitions: {a:?} {c:?}");
    }
    for m in &members {
        let mut tpl = TopicPartitionList::new();
        for p in owned(m) {
            tpl.add_partition_offset("kt", p, Offset::Offset(2)).unwrap();
        }
        m.commit(&tpl, CommitMode::Sync).expect("commit");
    }

    let list: Value = serde_json::from_slice(&ok(&["group", "list", "--format", "json", "--brokers", b], b"")).unwrap();
    let listed = list.as_array().unwrap().iter().find(|g| g["group"] == "kip").cloned();
    assert_eq!(
        listed,
        Some(serde_json::json!({"group": "kip", "type": "consumer", "state": "Stable", "protocol_type": "consumer"})),
        "{list}"
    );
    let table = ok_text(&["group", "list", "--brokers", b], b"");
    assert!(
        table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["kip", "consumer", "Stable", "consumer"]),
        "{table}"
    );

    let json = describe_json(b, "kip");
    assert_eq!(
        (&json["type"], &json["state"], &json["protocol"]),
        (&"consumer".into(), &"Stable".into(), &"uniform".into()),
        "{json}"
    );
    let group_epoch = json["group_epoch"].as_i64().expect("group epoch");
    assert!(group_epoch >= 2, "{json}");
    assert_eq!(json["assignment_epoch"].as_i64(), Some(group_epoch), "{json}");
    let described = json["members"].as_array().expect("members");
    assert_eq!(described.len(), 2, "{json}");
    let mut owners = std::collections::BTreeMap::new();
    for (consumer, client_id, instance_id) in
        [(&members[0], "member-a", Value::Null), (&members[1], "member-b", Value::from("static-b"))]
    {
        let m = described.iter().find(|m| m["client_id"] == client_id).unwrap_or_else(|| panic!("{client_id}: {json}"));
        assert_eq!(m["instance_id"], instance_id, "{json}");
        assert_eq!(m["host"], "/127.0.0.1", "{json}");
        assert!(m["member_epoch"].as_i64().is_some_and(|e| e > 0 && e <= group_epoch), "{json}");
        assert_eq!(m["subscribed_topics"], serde_json::json!(["kt"]), "{json}");
        let assignment = serde_json::json!([{"topic": "kt", "partitions": owned(consumer)}]);
        assert_eq!(m["assignment"], assignment, "{json}");
        assert_eq!(m["target_assignment"], assignment, "{json}");
        for p in owned(consumer) {
            owners.insert(p, m["member_id"].as_str().unwrap().to_string());
        }
    }
    let offsets: Vec<(i64, i64, i64, i64, String)> = json["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let field = |k: &str| o[k].as_i64().unwrap_or_else(|| panic!("{k}: {json}"));
            let member = o["member_id"].as_str().unwrap_or("-").to_string();
            (field("partition"), field("committed_offset"), field("log_end_offset"), field("lag"), member)
        })
        .collect();
    let expected: Vec<_> = (0..4).map(|p| (p, 2, 5, 3, owners[&(p as i32)].clone())).collect();
    assert_eq!(offsets, expected, "{json}");

    let table = ok_text(&["group", "describe", "kip", "--brokers", b], b"");
    let header = format!("group kip: type consumer, state Stable, assignor uniform, group epoch {group_epoch}");
    assert!(table.starts_with(&header) && table.lines().next().unwrap().ends_with("2 members"), "{table}");
    assert!(table.lines().any(|l| l.contains("static-b") && l.contains("member-b") && l.contains(" kt ")), "{table}");
    let owner0 = &owners[&0];
    assert!(
        table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["kt", "0", "2", "5", "3", owner0.as_str()]),
        "{table}"
    );

    let line =
        one_line_error(&["group", "reset-offsets", "kip", "--topic", "kt", "--to-earliest", "--brokers", b], b"");
    assert!(line.contains("2 active members"), "{line}");

    drop(members);
    let deadline = Instant::now() + Duration::from_secs(20);
    let json = loop {
        let json = describe_json(b, "kip");
        if json["members"].as_array().is_some_and(|m| m.is_empty()) {
            break json;
        }
        assert!(Instant::now() < deadline, "the members did not leave: {json}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!((&json["type"], &json["state"]), (&"consumer".into(), &"Empty".into()), "{json}");
    assert!(json["offsets"].as_array().unwrap().iter().all(|o| o["lag"] == 3 && o["member_id"].is_null()), "{json}");

    let reset = ok_text(&["group", "reset-offsets", "kip", "--topic", "kt", "--to-earliest", "--brokers", b], b"");
    assert_eq!(reset.matches("2 -> 0").count(), 4, "{reset}");
    let json = describe_json(b, "kip");
    assert!(json["offsets"].as_array().unwrap().iter().all(|o| o["committed_offset"] == 0 && o["lag"] == 5), "{json}");
    assert_eq!(json["type"], "consumer", "a reset leaves the group a consumer group: {json}");

    ok(&["group", "delete", "kip", "--brokers", b], b"");
    let table = ok_text(&["group", "list", "--brokers", b], b"");
    assert!(!table.lines().any(|l| l.split_whitespace().next() == Some("kip")), "{table}");
    let line = one_line_error(&["group", "describe", "kip", "--brokers", b], b"");
    assert!(line.contains("does not exist"), "{line}");
}

/// Goal: `runnel cluster` describes a one-broker cluster and calls it
/// healthy, and `runnel completions` prints scripts. Method: `cluster info
/// --format json` must list exactly the broker the test started (its port),
/// name it controller and carry a cluster id; `cluster health` exits 0 with
/// "healthy"; `completions bash|zsh|fish` print scripts naming `runnel`.
#[test]
fn cluster_info_health_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();
    ok(&["topic", "create", "c1", "--partitions", "3", "--brokers", b], b"");
    let info: Value =
        serde_json::from_slice(&ok(&["cluster", "info", "--format", "json", "--brokers", b], b"")).unwrap();
    let brokers = info["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{info}");
    let port: i64 = b.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(brokers[0]["port"], port, "{info}");
    assert_eq!(info["controller_id"], brokers[0]["id"], "{info}");
    assert!(info["cluster_id"].as_str().is_some_and(|id| !id.is_empty()), "{info}");
    assert!(info["topics"].as_u64().unwrap() >= 1 && info["partitions"].as_u64().unwrap() >= 3, "{info}");
    let table = ok_text(&["cluster", "info", "--brokers", b], b"");
    assert!(table.contains("controller"), "{table}");

    let health = ok_text(&["cluster", "health", "--brokers", b], b"");
    assert!(health.starts_with("healthy"), "{health}");

    let bash = ok_text(&["completions", "bash"], b"");
    assert!(bash.contains("_runnel") && bash.contains("complete") && bash.contains("reset-offsets"), "{bash}");
    for shell in ["zsh", "fish"] {
        assert!(ok_text(&["completions", shell], b"").contains("runnel"), "{shell}");
    }
}

/// Goal: `--profile` supplies brokers and client properties, and `--brokers`
/// and `-X` override them. Method: a profiles.toml under a temporary
/// XDG_CONFIG_HOME with a profile naming the test broker, one naming a
/// closed port, and one holding an invalid client property; check which
/// commands reach the broker and that an unknown profile fails with one line.
#[test]
fn profiles_supply_brokers_and_properties() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let b = broker.addr.as_str();
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("runnel")).unwrap();
    let file = format!(
        "[here]\nbrokers = \"{b}\"\n\n[nowhere]\nbrokers = \"127.0.0.1:1\"\n\n\
         [bad]\nbrokers = \"{b}\"\nproperties = {{ \"socket.timeout.ms\" = \"not-a-number\" }}\n"
    );
    std::fs::write(config.join("runnel").join("profiles.toml"), file).unwrap();
    let run_env = |args: &[&str]| finish(spawn_with_env(args, &[("XDG_CONFIG_HOME", &config)]), &format!("{args:?}"));

    let out = run_env(&["cluster", "info", "--format", "json", "--profile", "here"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let port: i64 = b.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(info["brokers"][0]["port"], port, "{info}");

    // --brokers wins over the profile's brokers.
    let out = run_env(&["cluster", "health", "--profile", "nowhere", "--brokers", b]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The profile's properties reach the client; -X comes after them.
    let out = run_env(&["cluster", "health", "--profile", "bad"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("socket.timeout.ms"), "{out:?}");
    let out = run_env(&["cluster", "health", "--profile", "bad", "-X", "socket.timeout.ms=10000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = run_env(&["group", "list", "--profile", "missing"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.lines().count() == 1, "{stderr}");
    assert!(stderr.contains("no such profile") && stderr.contains("bad, here, nowhere"), "{stderr}");
}
