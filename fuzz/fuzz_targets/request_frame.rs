//! Fuzzes a request frame (the bytes after the 4-byte length prefix) through
//! the broker's front door: `check_request`, then, for a frame it accepts,
//! `kafka-protocol` decoding of the header at the reported header version and
//! of the body by api key and version, as `protocol::decode_request` does.
//!
//! The guard promises that an accepted frame decodes completely and that the
//! decoder is never handed an array count the frame cannot back. So this
//! target panics if an accepted frame fails to decode or leaves bytes over,
//! and libFuzzer's `-rss_limit_mb` / `-malloc_limit_mb` catch any huge
//! allocation on the way.

#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use runnel_broker::protocol::guard::check_request;

fuzz_target!(|frame: &[u8]| {
    let Ok(summary) = check_request(frame) else {
        return;
    };
    let api_key = ApiKey::try_from(summary.api_key).expect("the guard accepts only known api keys");
    let mut buf = Bytes::copy_from_slice(frame);
    let header = RequestHeader::decode(&mut buf, summary.header_version)
        .unwrap_or_else(|e| panic!("guard accepted a header the decoder refuses: {e}"));
    assert_eq!(header.request_api_key, summary.api_key);
    assert_eq!(header.request_api_version, summary.api_version);
    assert_eq!(header.correlation_id, summary.correlation_id);
    if let Err(e) = RequestKind::decode(api_key, &mut buf, summary.api_version) {
        panic!("guard accepted a {api_key:?} v{} body the decoder refuses: {e}", summary.api_version);
    }
    // Bytes after the body may remain: the broker ignores them, as Kafka does.
});
