//! Tests of the request guard.
//!
//! Three kinds: proptests that encode random requests with `kafka-protocol`
//! and require the guard to accept them and the decoder to give them back
//! (the schema table matches the decoder); hand-written hostile frames
//! (huge counts, bad lengths, bad tagged fields, truncation, trailing bytes);
//! and proptests on random and mutated bytes requiring that the guard never
//! panics and that whatever it accepts decodes completely. Every call goes
//! through [`guard`], which also asserts that the guard allocated nothing.

pub(crate) mod alloc;
mod hostile;
mod strategies;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::schema::{Field, Kind, APIS};
use super::walk::Walk;
use super::*;

/// Runs `check_request` and asserts that it made no heap allocation.
fn guard(frame: &[u8]) -> Result<FrameSummary, GuardError> {
    let (result, allocations) = alloc::counting(|| check_request(frame));
    assert_eq!(allocations, 0, "check_request allocated on a {}-byte frame", frame.len());
    result
}

fn header_version_of(api_key: i16, version: i16) -> i16 {
    ApiKey::try_from(api_key).expect("served api keys are known to kafka-protocol").request_header_version(version)
}

/// Decodes a frame the way the broker does: the header at the header version
/// the guard reported, then the body by api key. Returns the bytes left over.
fn decode(frame: &[u8], summary: &FrameSummary) -> Result<(RequestHeader, RequestKind, usize), String> {
    let api_key = ApiKey::try_from(summary.api_key).map_err(|()| "unknown api key".to_string())?;
    let mut buf = Bytes::copy_from_slice(frame);
    let header = RequestHeader::decode(&mut buf, summary.header_version).map_err(|e| e.to_string())?;
    let body = RequestKind::decode(api_key, &mut buf, summary.api_version).map_err(|e| e.to_string())?;
    Ok((header, body, buf.len()))
}

/// If the guard accepts `frame`, the decoder must decode it. Bytes after the
/// body may be left over: they are ignored, as Kafka ignores them.
fn accepted_frames_decode(frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(summary) = guard(frame) {
        if let Err(e) = decode(frame, &summary) {
            return Err(TestCaseError::fail(format!("guard accepted, decoder refused: {e}")));
        }
    }
    Ok(())
}

/// A request encoded by `kafka-protocol`, with the values it was built from.
#[derive(Debug, Clone)]
struct Sample {
    frame: Vec<u8>,
    header: RequestHeader,
    body: RequestKind,
    api_key: i16,
    version: i16,
}

fn sample(api_key: i16, version: i16) -> impl Strategy<Value = Sample> {
    let header_version = header_version_of(api_key, version);
    let header =
        (any::<i32>(), proptest::option::of(strategies::text()), strategies::unknown_tags(header_version >= 2));
    (header, strategies::request(api_key, version)).prop_map(move |((correlation_id, client_id, tags), body)| {
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(client_id)
            .with_unknown_tagged_fields(tags);
        let mut buf = BytesMut::new();
        header.encode(&mut buf, header_version).expect("a generated header encodes");
        body.encode(&mut buf, version).expect("a generated body encodes");
        Sample { frame: buf.to_vec(), header, body, api_key, version }
    })
}

/// Samples of one API at any version Runnel serves.
fn api_samples(api_key: i16) -> impl Strategy<Value = Sample> {
    let (min, max) = supported_versions(api_key).expect("a served api key");
    (min..=max).prop_flat_map(move |version| sample(api_key, version))
}

fn any_sample() -> impl Strategy<Value = Sample> {
    prop::sample::select(supported_apis()).prop_flat_map(|(api_key, _, _)| api_samples(api_key))
}

/// The guard accepts the sample with the right summary, and the decoder reads
/// back exactly the values that were encoded.
fn check_sample(s: &Sample) -> Result<(), TestCaseError> {
    let summary = guard(&s.frame).map_err(|e| TestCaseError::fail(format!("guard refused: {e}")))?;
    let expected = FrameSummary {
        api_key: s.api_key,
        api_version: s.version,
        correlation_id: s.header.correlation_id,
        header_version: header_version_of(s.api_key, s.version),
    };
    prop_assert_eq!(summary, expected);
    let (header, body, left) = decode(&s.frame, &summary).map_err(TestCaseError::fail)?;
    prop_assert_eq!(left, 0);
    prop_assert_eq!(&header, &s.header);
    prop_assert_eq!(&body, &s.body);
    Ok(())
}

/// Every proper prefix of a valid frame is refused.
fn check_truncations(frame: &[u8]) -> Result<(), TestCaseError> {
    for len in 0..frame.len() {
        prop_assert!(guard(&frame[..len]).is_err(), "prefix of {} of {} bytes accepted", len, frame.len());
    }
    Ok(())
}

proptest! {
    #[test]
    fn accepts_encoded_produce(s in api_samples(0)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_fetch(s in api_samples(1)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_list_offsets(s in api_samples(2)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_metadata(s in api_samples(3)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_api_versions(s in api_samples(18)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_sasl_handshake(s in api_samples(17)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_sasl_authenticate(s in api_samples(36)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_create_topics(s in api_samples(19)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_delete_topics(s in api_samples(20)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_offset_commit(s in api_samples(8)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_offset_fetch(s in api_samples(9)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_join_group(s in api_samples(11)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_heartbeat(s in api_samples(12)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_leave_group(s in api_samples(13)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_sync_group(s in api_samples(14)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_describe_groups(s in api_samples(15)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_list_groups(s in api_samples(16)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_delete_groups(s in api_samples(42)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_offset_delete(s in api_samples(47)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_init_producer_id(s in api_samples(22)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_add_partitions_to_txn(s in api_samples(24)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_add_offsets_to_txn(s in api_samples(25)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_end_txn(s in api_samples(26)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_write_txn_markers(s in api_samples(27)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_txn_offset_commit(s in api_samples(28)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_describe_producers(s in api_samples(61)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_describe_transactions(s in api_samples(65)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_list_transactions(s in api_samples(66)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_describe_user_scram_credentials(s in api_samples(50)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_alter_user_scram_credentials(s in api_samples(51)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_describe_client_quotas(s in api_samples(48)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_alter_client_quotas(s in api_samples(49)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_describe_acls(s in api_samples(29)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_create_acls(s in api_samples(30)) { check_sample(&s)?; }

    #[test]
    fn accepts_encoded_delete_acls(s in api_samples(31)) { check_sample(&s)?; }

    #[test]
    fn refuses_every_truncation(s in any_sample()) { check_truncations(&s.frame)?; }

    #[test]
    fn arbitrary_bytes_never_panic(frame in vec(any::<u8>(), 0..300)) {
        accepted_frames_decode(&frame)?;
    }

    /// A valid fixed header for a served API in front of random bytes, so the
    /// walk gets past the api key and version checks.
    #[test]
    fn random_bodies_never_panic(
        api in prop::sample::select(supported_apis()),
        version in any::<Index>(),
        correlation_id in any::<i32>(),
        rest in vec(any::<u8>(), 0..300),
    ) {
        let (api_key, min, max) = api;
        let version = min + version.index((max - min + 1) as usize) as i16;
        let mut frame = Vec::new();
        frame.put_i16(api_key);
        frame.put_i16(version);
        frame.put_i32(correlation_id);
        frame.extend_from_slice(&rest);
        accepted_frames_decode(&frame)?;
    }

    /// Valid frames with a few bytes overwritten, inserted or removed.
    #[test]
    fn mutated_frames_never_panic(s in any_sample(), edits in vec((0..3u8, any::<Index>(), any::<u8>()), 1..4)) {
        let mut frame = s.frame;
        for (op, at, byte) in edits {
            let at = at.index(frame.len() + 1);
            match op {
                0 if at < frame.len() => frame[at] = byte,
                1 => frame.insert(at, byte),
                _ if at < frame.len() => { frame.remove(at); }
                _ => {}
            }
        }
        accepted_frames_decode(&frame)?;
    }
}

/// Goal: every (api, version) pair Runnel serves is exercised, whatever the
/// random draws above. Method: a deterministic runner draws eight requests
/// per pair; each must round-trip and each of its prefixes must be refused.
#[test]
fn every_served_version_round_trips_and_refuses_truncation() {
    let mut runner = TestRunner::deterministic();
    for &(api_key, min, max) in supported_apis() {
        for version in min..=max {
            for _ in 0..8 {
                let s = sample(api_key, version).new_tree(&mut runner).expect("strategy").current();
                let result = check_sample(&s).and_then(|()| check_truncations(&s.frame));
                result.unwrap_or_else(|e| panic!("api key {api_key} v{version}: {e}"));
            }
        }
    }
}

/// Goal: the flexible threshold in the table agrees with the header version
/// the decoder picks, which switches to header v2 exactly at flexible
/// versions.
#[test]
fn flexible_versions_match_the_header_versions() {
    for api in APIS {
        for version in api.min..=api.max {
            let header_version = header_version_of(api.key, version);
            assert!(header_version == 1 || header_version == 2, "api key {} v{version}", api.key);
            assert_eq!(header_version == 2, version >= api.flexible_from, "api key {} v{version}", api.key);
        }
    }
}

/// Goal: array counts bound the walk, which needs every array element to
/// take at least one byte in every version. Method: visit every array in the
/// table at every served version.
#[test]
fn every_array_element_takes_at_least_one_byte() {
    fn visit(walk: Walk, fields: &[Field], path: &str) {
        for field in fields.iter().filter(|field| field.present_in(walk.version)) {
            let path = format!("{path}.{}", field.name);
            let mut kind = &field.kind;
            while let Kind::Array(element) | Kind::NullableArray(element) = kind {
                assert!(walk.min_bytes(element) >= 1, "{path} v{}", walk.version);
                kind = element;
            }
            if let Kind::Struct(inner) = kind {
                visit(walk, inner, &path);
            }
        }
    }
    for api in APIS {
        for version in api.min..=api.max {
            let walk = Walk { version, flexible: version >= api.flexible_from };
            visit(walk, api.body, &format!("api key {}", api.key));
        }
    }
}

/// Goal: the zero-allocation assertions in [`guard`] can fail. Method: the
/// counter sees an allocation made on purpose.
#[test]
fn allocation_counter_sees_allocations() {
    let (bytes, allocations) = alloc::counting(|| vec![0u8; 64]);
    assert_eq!(bytes.len(), 64);
    assert!(allocations >= 1);
}

#[test]
fn serves_the_foundation_apis() {
    let expected = [(0, 3, 13), (1, 4, 18), (2, 1, 10), (3, 0, 12), (10, 0, 6), (18, 0, 4), (19, 2, 7), (20, 1, 6)];
    assert_eq!(&supported_apis()[..expected.len()], &expected);
    let groups = [
        (8, 2, 9),
        (9, 1, 9),
        (11, 0, 9),
        (12, 0, 4),
        (13, 0, 5),
        (14, 0, 5),
        (15, 0, 5),
        (16, 0, 5),
        (42, 0, 2),
        (47, 0, 0),
    ];
    for api in groups {
        assert!(supported_apis().contains(&api), "group coordinator API {api:?} is served");
    }
    assert_eq!(supported_versions(1), Some((4, 18)));
    assert_eq!(supported_versions(18), Some((0, 4)));
    assert_eq!(supported_versions(8), Some((2, 9)));
    assert_eq!(supported_versions(23), None);
}

#[test]
fn serves_the_admin_apis() {
    let admin = [
        (21, 0, 2),
        (32, 1, 4),
        (33, 0, 2),
        (35, 1, 4),
        (37, 0, 3),
        (43, 0, 2),
        (44, 0, 1),
        (48, 0, 1),
        (49, 0, 1),
        (60, 0, 2),
        (75, 0, 0),
    ];
    for api in admin {
        assert!(supported_apis().contains(&api), "{api:?}");
    }
}

#[test]
fn serves_the_acl_apis() {
    for api in [(29, 1, 3), (30, 1, 3), (31, 1, 3)] {
        assert!(supported_apis().contains(&api), "{api:?}");
    }
}

#[test]
fn serves_the_transaction_apis() {
    let txn =
        [(22, 0, 5), (24, 0, 5), (25, 0, 4), (26, 0, 5), (27, 1, 1), (28, 0, 5), (61, 0, 0), (65, 0, 0), (66, 0, 2)];
    for api in txn {
        assert!(supported_apis().contains(&api), "{api:?}");
    }
}

/// A hand-written frame, for inputs no encoder writes.
struct Raw(Vec<u8>);

impl Raw {
    /// The fixed header part with correlation id 7 and nothing after it.
    fn fixed(api_key: i16, version: i16) -> Raw {
        Raw(Vec::new()).i16(api_key).i16(version).i32(7)
    }

    /// A request header with client id "c" and, at header v2, no tagged
    /// fields.
    fn request(api_key: i16, version: i16) -> Raw {
        let raw = Raw::fixed(api_key, version).string("c");
        if header_version_of(api_key, version) == 2 {
            raw.uvarint(0)
        } else {
            raw
        }
    }

    fn i8(mut self, v: i8) -> Raw {
        self.0.put_i8(v);
        self
    }

    fn i16(mut self, v: i16) -> Raw {
        self.0.put_i16(v);
        self
    }

    fn i32(mut self, v: i32) -> Raw {
        self.0.put_i32(v);
        self
    }

    fn i64(mut self, v: i64) -> Raw {
        self.0.put_i64(v);
        self
    }

    fn uvarint(mut self, mut v: u32) -> Raw {
        while v >= 0x80 {
            self.0.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.put_u8(v as u8);
        self
    }

    fn bytes(mut self, bytes: &[u8]) -> Raw {
        self.0.extend_from_slice(bytes);
        self
    }

    /// A non-compact string.
    fn string(self, s: &str) -> Raw {
        self.i16(s.len() as i16).bytes(s.as_bytes())
    }

    /// A compact string.
    fn compact(self, s: &str) -> Raw {
        self.uvarint(s.len() as u32 + 1).bytes(s.as_bytes())
    }
}

fn malformed(reason: &'static str) -> Result<FrameSummary, GuardError> {
    Err(GuardError::Malformed(reason))
}

/// The guard accepts the frame and the decoder reads all of it.
fn assert_accepted(raw: &Raw) -> (RequestHeader, RequestKind) {
    let summary = guard(&raw.0).unwrap_or_else(|e| panic!("refused: {e}"));
    let (header, body, left) = decode(&raw.0, &summary).unwrap_or_else(|e| panic!("decoder refused: {e}"));
    assert_eq!(left, 0);
    (header, body)
}
