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
