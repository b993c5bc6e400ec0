//! The guard every request frame passes before `kafka-protocol` decodes it.
//!
//! The decoder sizes vectors from array counts read off the wire before it
//! checks that the elements exist (`Vec::with_capacity(n)` in its `Array` and
//! `CompactArray` decoders), so a frame of a few dozen bytes can ask for tens
//! of gigabytes and abort the process. [`check_request`] therefore walks the
//! whole frame first: the request header at the header version the decoder
//! uses, then the body by the schema of its API key and version. It proves
//! that every length and count is backed by bytes in the frame, that every
//! tagged-field section is well formed and that strings are UTF-8 (bytes
//! after the body are ignored, as Kafka ignores them). The walk borrows the frame, never allocates, takes
//! time linear in the frame length and stack proportional to the schema's
//! nesting. A frame it accepts decodes without error.
//!
//! [`supported_apis`] and [`supported_versions`] read the same table, so the
//! versions advertised in ApiVersions are exactly the versions the guard
//! walks.
//!
//! # Adding an API
//!
//! 1. Open `src/messages/<name>_request.rs` of `kafka-protocol` 0.18 and read
//!    each `decode` function (one per struct).
//! 2. In `guard/schema.rs`, write one `const NAME: &[Field]` per struct, with
//!    the fields in decode order. Use `Field::new(name, kind)`, then
//!    `.since(v)` / `.until(v)` for the `if version >= v` / `version <= v`
//!    conditions. A field decoded into an `Option` is nullable
//!    (`NullableString`, `NullableArray`, ...). A field read inside the
//!    `match tag` of the tagged-field loop gets `.tagged(tag)` and the version
//!    of its `bail!("Tag ... is not valid")` guard. Nested structs are
//!    `Kind::Array(&Kind::Struct(CHILD))`.
//! 3. Add an `Api` entry to `APIS` with the key, the versions Runnel serves
//!    (at most the decoder's `VERSIONS`) and `flexible_from`, the first
//!    version whose decode reads compact types and a tagged-field section.
//! 4. In `guard/tests.rs`, add a strategy building the request with
//!    `kafka-protocol`'s types and list it in `request_strategy`; the
//!    proptests then prove for every version that the guard accepts what the
//!    encoder writes and that the decoder accepts what the guard passes.

mod schema;
mod walk;

#[cfg(test)]
pub(crate) mod tests;

use kafka_protocol::messages::ApiKey;
use walk::{Cursor, Walk};

/// What the guard learned about a frame it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSummary {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    /// The request header version to decode the header with.
    pub header_version: i16,
}

/// Why a frame is refused before decoding.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum GuardError {
    #[error("frame too short for a request header")]
    ShortHeader,
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// The caller answers ApiVersions with UNSUPPORTED_VERSION in a v0
    /// response (KIP-511) and closes the connection for any other API.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16, correlation_id: i32 },
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

/// The versions Runnel serves for `api_key`; the single source of truth also
/// used for the ApiVersions response.
pub fn supported_versions(api_key: i16) -> Option<(i16, i16)> {
    schema::api(api_key).map(|api| (api.min, api.max))
}

/// `(api key, min version, max version)` for every API Runnel serves.
pub fn supported_apis() -> &'static [(i16, i16, i16)] {
    &schema::SUPPORTED
}

/// Reads only the fixed part of the request header (api key, api version,
/// correlation id), which every header version starts with; enough to answer
/// UNSUPPORTED_VERSION.
pub fn peek_header(frame: &[u8]) -> Result<(i16, i16, i32), GuardError> {
    let Some(&[k0, k1, v0, v1, c0, c1, c2, c3]) = frame.first_chunk::<8>() else {
        return Err(GuardError::ShortHeader);
    };
    let api_key = i16::from_be_bytes([k0, k1]);
    let api_version = i16::from_be_bytes([v0, v1]);
    let correlation_id = i32::from_be_bytes([c0, c1, c2, c3]);
    Ok((api_key, api_version, correlation_id))
}

/// Validates an entire request frame: the bytes after the 4-byte length
/// prefix, header and body. See the module documentation for what is checked.
pub fn check_request(frame: &[u8]) -> Result<FrameSummary, GuardError> {
    let (api_key, api_version, correlation_id) = peek_header(frame)?;
    let api = schema::api(api_key).ok_or(GuardError::UnknownApiKey(api_key))?;
    if api_version < api.min || api_version > api.max {
        return Err(GuardError::UnsupportedVersion { api_key, version: api_version, correlation_id });
    }
    let header_version =
        ApiKey::try_from(api_key).map_err(|()| GuardError::UnknownApiKey(api_key))?.request_header_version(api_version);
    let mut cur = Cursor::new(frame);
    walk_header(&mut cur, header_version)?;
    let body = Walk { version: api_version, flexible: api_version >= api.flexible_from };
    body.fields(&mut cur, api.body)?;
    // Bytes after the body are ignored, as Kafka's own request parser ignores
    // them. librdkafka relies on it: its flexible Metadata request for all
    // topics writes the null compact array count into a 4-byte placeholder
    // and leaves three zero bytes behind, which shift the later fields by
    // three bytes and end up after the body. The decoder never sees past the
    // walked fields, so trailing bytes cost nothing.
    Ok(FrameSummary { api_key, api_version, correlation_id, header_version })
}

/// Walks a request header. Version 1 is api key, api version, correlation id
/// and a nullable INT16-length client id; version 2 keeps that client id
/// non-compact (so any broker can read it, KIP-482) and adds a tagged-field
/// section.
fn walk_header(cur: &mut Cursor<'_>, header_version: i16) -> Result<(), GuardError> {
    // The fixed part was read by `peek_header`.
    cur.take(8, GuardError::ShortHeader)?;
    let fixed = Walk { version: header_version, flexible: false };
    fixed.kind(cur, &schema::Kind::NullableString)?;
    match header_version {
        1 => Ok(()),
        2 => Walk { version: header_version, flexible: true }.tagged_section(cur, &[]),
        _ => Err(GuardError::Malformed("unsupported request header version")),
    }
}
