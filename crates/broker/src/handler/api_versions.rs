//! ApiVersions: which APIs and versions this broker serves.
//!
//! The table is [`guard::supported_apis`], the same one the guard enforces,
//! so what we advertise and what we accept cannot drift apart; the one
//! deliberate exception is Produce's minimum version, below. A request with a
//! version newer than ours gets UNSUPPORTED_VERSION with our ranges in a v0
//! response, and the client retries with a version we know (KIP-511).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use crate::protocol::guard;

pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys()).with_finalized_features_epoch(-1)
}

/// The response to an ApiVersions request whose version we do not serve.
pub fn unsupported() -> ApiVersionsResponse {
    handle().with_error_code(ResponseError::UnsupportedVersion.code())
}

/// Produce is advertised from v0 although only v3+ is served: librdkafka
/// before 2.10 enables gzip, snappy and lz4 only when the broker lists
/// Produce v0, and Apache Kafka 4.0 advertises v0 for the same reason while
/// refusing v0-v2 when they arrive (KAFKA-18659). The guard still refuses
/// them, which closes the connection.
const PRODUCE_ADVERTISED_MIN_VERSION: i16 = 0;

fn api_keys() -> Vec<ApiVersion> {
    guard::supported_apis()
        .iter()
        .map(|&(api_key, min, max)| {
            let min = if api_key == ApiKey::Produce as i16 { PRODUCE_ADVERTISED_MIN_VERSION } else { min };
            ApiVersion::default().with_api_key(api_key).with_min_version(min).with_max_version(max)
        })
        .collect()
}

/// The table of served APIs in docs/COMPATIBILITY.md, rendered from the same
/// table ApiVersions answers with, so the document cannot drift from the
/// code: a test compares the two (and rewrites the document when
/// `RUNNEL_UPDATE_DOCS=1`).
pub fn compatibility_markdown() -> String {
    use std::fmt::Write as _;

    let served = guard::supported_apis();
    let mut out = String::from(
        "| API | key | Runnel serves | advertised | versions `kafka-protocol` 0.18 knows |\n|---|---|---|---|---|\n",
    );
    for &(key, min, max) in served {
        let api = ApiKey::try_from(key).expect("served APIs are known to kafka-protocol");
        let known = api.valid_versions();
        let advertised = if key == ApiKey::Produce as i16 { PRODUCE_ADVERTISED_MIN_VERSION } else { min };
        let _ =
            writeln!(out, "| {api:?} | {key} | v{min}-v{max} | v{advertised}-v{max} | v{}-v{} |", known.min, known.max);
    }
    let missing: Vec<String> = ApiKey::iter()
        .filter(|api| !served.iter().any(|&(key, _, _)| key == *api as i16))
        .map(|api| format!("{api:?} ({})", api as i16))
        .collect();
    let _ = write!(out, "\nNot served yet ({}): {}.\n", missing.len(), missing.join(", "));
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const BEGIN: &str = "<!-- BEGIN GENERATED: served APIs (cargo test -p runnel-broker compatibility_doc) -->\n";
    const END: &str = "<!-- END GENERATED -->";

    fn repo_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// docs/COMPATIBILITY.md holds exactly the table this build serves.
    /// Regenerate with `RUNNEL_UPDATE_DOCS=1 cargo test -p runnel-broker compatibility_doc`.
    #[test]
    fn compatibility_doc_matches_the_served_table() {
        let path = repo_root().join("docs/COMPATIBILITY.md");
        let doc = std::fs::read_to_string(&path).expect("docs/COMPATIBILITY.md exists");
        let start = doc.find(BEGIN).expect("generated section start marker") + BEGIN.len();
        let end = start + doc[start..].find(END).expect("generated section end marker");
        let table = format!("{}\n{}", conformance_line(&repo_root()), compatibility_markdown());
        if doc[start..end] == table {
            return;
        }
        if std::env::var_os("RUNNEL_UPDATE_DOCS").is_some() {
            let updated = format!("{}{}{}", &doc[..start], table, &doc[end..]);
            std::fs::write(&path, updated).expect("rewrite docs/COMPATIBILITY.md");
            return;
        }
        panic!(
            "docs/COMPATIBILITY.md is out of date with the served APIs; run \
             `RUNNEL_UPDATE_DOCS=1 cargo test -p runnel-broker compatibility_doc` and commit.\nexpected:\n{table}"
        );
    }

    /// The librdkafka pass count: allow-listed test numbers against those
    /// compat/librdkafka/FINDINGS.md lists as failing in the default scenario.
    fn conformance_line(root: &std::path::Path) -> String {
        let allow = std::fs::read_to_string(root.join("compat/librdkafka/allow-list.txt")).expect("allow-list");
        let passing = allow.lines().filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).count();
        let findings = std::fs::read_to_string(root.join("compat/librdkafka/FINDINGS.md")).expect("FINDINGS.md");
        let default_scenario = findings.split("`noautocreate` scenario").next().unwrap_or("");
        let failing = default_scenario.lines().filter(|l| l.starts_with("| 0") || l.starts_with("| 1")).count();
        format!(
            "librdkafka {} conformance: {passing} of {} broker-facing test numbers pass and run in CI \
             (compat/librdkafka/allow-list.txt); the {failing} others are explained in \
             compat/librdkafka/FINDINGS.md.\n",
            "2.12.1",
            passing + failing
        )
    }

    #[test]
    fn every_served_api_is_in_the_table_with_its_range() {
        let table = compatibility_markdown();
        for &(key, min, max) in guard::supported_apis() {
            let api = ApiKey::try_from(key).unwrap();
            assert!(table.contains(&format!("| {api:?} | {key} | v{min}-v{max} |")), "{api:?} missing:\n{table}");
        }
        assert!(table.contains("| Produce | 0 | v3-"), "{table}");
        assert!(table.contains("Not served yet ("), "{table}");
    }
}
