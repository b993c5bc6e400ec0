//! ApiVersions: which APIs and versions this broker serves.
//!
//! The table is [`guard::supported_apis`], the same one the guard enforces,
//! so what we advertise and what we accept cannot drift apart. A request with a
//! version newer than ours gets UNSUPPORTED_VERSION with our ranges in a v0
//! response, and the client retries with a version we know (KIP-511).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use crate::protocol::guard;

pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys()).with_finalized_features_epoch(-1)
}

/// The response to an ApiVersions request whose version we do not serve.
pub fn unsupported() -> ApiVersionsResponse {
    handle().with_error_code(ResponseError::UnsupportedVersion.code())
}

fn api_keys() -> Vec<ApiVersion> {
    guard::supported_apis()
        .iter()
        .map(|&(api_key, min, max)| {
            ApiVersion::default().with_api_key(api_key).with_min_version(min).with_max_version(max)
        })
        .collect()
}
