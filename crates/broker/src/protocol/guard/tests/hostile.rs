//! Hand-written hostile frames: each test states which lie a client tells and
//! checks that the guard refuses it for the right reason, without allocating
//! and without panicking, and that the honest variant still passes.

use kafka_protocol::messages::RequestKind;

use super::*;

/// The fixed fields of a Fetch body before its topic list, at `version`.
fn fetch_prefix(version: i16) -> Raw {
    let raw = Raw::request(1, version);
    let raw = if version <= 14 { raw.i32(-1) } else { raw };
    let raw = raw.i32(500).i32(1).i32(1 << 20).i8(0);
    if version >= 7 {
        raw.i32(0).i32(-1)
    } else {
        raw
    }
}

/// An empty Fetch v12+ body up to its tagged-field section: no topics, no
/// forgotten topics, empty rack id.
fn fetch_before_tags(version: i16) -> Raw {
    fetch_prefix(version).uvarint(1).uvarint(1).compact("")
}

/// Goal: a frame of about 30 bytes that claims 2^31-1 elements (or, compact,
/// 2^32-2) is refused before anything is sized from the count. Method: the
/// count sits in front of a few real bytes; `guard` asserts no allocation.
#[test]
fn huge_array_counts_are_refused_without_allocating() {
    let cases = [
        ("metadata v1", Raw::request(3, 1).i32(i32::MAX)),
        ("metadata v9", Raw::request(3, 9).uvarint(u32::MAX)),
        ("produce v3", Raw::request(0, 3).i16(-1).i16(1).i32(1000).i32(i32::MAX)),
        ("produce v9", Raw::request(0, 9).uvarint(0).i16(1).i32(1000).uvarint(u32::MAX)),
        ("fetch v4", fetch_prefix(4).i32(i32::MAX)),
        ("fetch v12", fetch_prefix(12).uvarint(u32::MAX)),
        ("create topics v2", Raw::request(19, 2).i32(i32::MAX)),
        ("create topics v5", Raw::request(19, 5).uvarint(u32::MAX)),
        (
            "create topics v2 broker ids",
            Raw::request(19, 2).i32(1).string("t").i32(1).i16(1).i32(1).i32(0).i32(i32::MAX),
        ),
        ("delete topics v1 names", Raw::request(20, 1).i32(i32::MAX)),
    ];
    for (name, raw) in cases {
        let raw = raw.bytes(&[0; 8]);
        assert!(raw.0.len() <= 56, "{name}: {} bytes", raw.0.len());
        assert_eq!(guard(&raw.0), malformed("array count exceeds the remaining bytes"), "{name}");
    }
}

/// Goal: a count just above what the bytes can hold is refused, the count
/// that fits is walked. Method: broker ids of a CreateTopics v2 assignment,
/// four bytes each.
#[test]
fn array_counts_are_checked_against_element_sizes() {
    let topic = |count: i32| {
        let raw = Raw::request(19, 2).i32(1).string("t").i32(1).i16(1).i32(1).i32(0).i32(count);
        raw.i32(1).i32(2).i32(0).i32(1000).i8(0)
    };
    // 17 bytes follow the count: two broker ids, an empty config list, the
    // timeout and validate_only. They could hold at most four ids.
    assert_accepted(&topic(2));
    assert_eq!(guard(&topic(4).0), malformed("frame ends inside a field"));
    assert_eq!(guard(&topic(5).0), malformed("array count exceeds the remaining bytes"));
}

#[test]
fn negative_lengths_other_than_minus_one_are_refused() {
    assert_eq!(guard(&Raw::request(3, 1).i32(-2).0), malformed("negative array length"));
    assert_eq!(guard(&Raw::request(3, 1).i32(i32::MIN).0), malformed("negative array length"));
    assert_eq!(guard(&Raw::request(3, 1).i32(1).i16(-2).0), malformed("negative string length"));
    assert_eq!(guard(&Raw::request(3, 1).i32(1).i16(i16::MIN).0), malformed("negative string length"));
    let records = Raw::request(0, 3).i16(-1).i16(1).i32(0).i32(1).string("t").i32(1).i32(0).i32(-2);
    assert_eq!(guard(&records.0), malformed("negative bytes length"));
    assert_eq!(guard(&Raw::fixed(3, 1).i16(-5).i32(-1).0), malformed("negative string length"));
}

/// Goal: -1 (compact: 0) is accepted exactly where the decoder reads an
/// `Option`, and refused elsewhere.
#[test]
fn nulls_are_accepted_only_in_nullable_fields() {
    // Metadata topics: null asks for every topic.
    assert_accepted(&Raw::request(3, 1).i32(-1));
    let (_, body) = assert_accepted(&Raw::request(3, 9).uvarint(0).i8(1).i8(0).i8(0).uvarint(0));
    assert!(matches!(body, RequestKind::Metadata(m) if m.topics.is_none()));
    // Produce: null transactional id and null records are fine, null topics are not.
    assert_accepted(&Raw::request(0, 3).i16(-1).i16(1).i32(0).i32(1).string("t").i32(1).i32(0).i32(-1));
    let null_topics = Raw::request(0, 3).i16(-1).i16(1).i32(0).i32(-1);
    assert_eq!(guard(&null_topics.0), malformed("null array in a non-nullable field"));
    let null_topics = Raw::request(0, 9).uvarint(0).i16(1).i32(0).uvarint(0).uvarint(0);
    assert_eq!(guard(&null_topics.0), malformed("null array in a non-nullable field"));
    // ApiVersions v3: the client software name is required.
    assert_eq!(guard(&Raw::request(18, 3).uvarint(0).0), malformed("null string in a non-nullable field"));
    // CreateTopics: a config value may be null, a topic name may not.
    let config = |key: Raw| key.i16(-1).i32(0).i8(0);
    let topic = |name: Raw| name.i32(1).i16(1).i32(0).i32(1);
    assert_accepted(&config(topic(Raw::request(19, 2).i32(1).string("t")).string("k")));
    let null_name = config(topic(Raw::request(19, 2).i32(1).i16(-1)).string("k"));
    assert_eq!(guard(&null_name.0), malformed("null string in a non-nullable field"));
    // The request header's client id is nullable.
    let (header, _) = assert_accepted(&Raw::fixed(3, 1).i16(-1).i32(-1));
    assert_eq!(header.client_id, None);
}

#[test]
fn lengths_past_the_end_are_refused() {
    let string = Raw::request(3, 1).i32(1).i16(100).bytes(b"abc");
    assert_eq!(guard(&string.0), malformed("string runs past the end of the frame"));
    let compact = Raw::request(3, 9).uvarint(2).uvarint(101).bytes(b"abc");
    assert_eq!(guard(&compact.0), malformed("string runs past the end of the frame"));
    let records = Raw::request(0, 3).i16(-1).i16(1).i32(0).i32(1).string("t").i32(1).i32(0).i32(1000).bytes(b"abc");
    assert_eq!(guard(&records.0), malformed("bytes run past the end of the frame"));
    let client_id = Raw::fixed(3, 1).i16(300).bytes(b"abc");
    assert_eq!(guard(&client_id.0), malformed("string runs past the end of the frame"));
}

/// Goal: tagged-field sections are refused when a size or count runs past
/// the frame, in a body and in a v2 request header.
#[test]
fn tagged_fields_past_the_end_are_refused() {
    let metadata = || Raw::request(3, 9).uvarint(0).i8(1).i8(0).i8(0);
    assert_accepted(&metadata().uvarint(1).uvarint(5).uvarint(3).bytes(b"abc"));
    let past_end = metadata().uvarint(1).uvarint(5).uvarint(100).bytes(b"abc");
    assert_eq!(guard(&past_end.0), malformed("tagged field runs past the end of the frame"));
    let huge_size = metadata().uvarint(1).uvarint(5).uvarint(u32::MAX).bytes(b"abc");
    assert_eq!(guard(&huge_size.0), malformed("tagged field runs past the end of the frame"));
    let huge_count = metadata().uvarint(u32::MAX).bytes(&[0; 8]);
    assert_eq!(guard(&huge_count.0), malformed("tagged field count exceeds the remaining bytes"));
    let header = Raw::fixed(3, 9).string("c").uvarint(1).uvarint(0).uvarint(50).bytes(b"abc");
    assert_eq!(guard(&header.0), malformed("tagged field runs past the end of the frame"));
}

/// Goal: tags the decoder knows are walked with their schema, because the
/// decoder reads them by type and ignores their size. Method: Fetch's
/// cluster id (tag 0, v12+) and replica state (tag 1, v15+).
#[test]
fn known_tagged_fields_are_walked() {
    let (_, body) = assert_accepted(&fetch_before_tags(12).uvarint(1).uvarint(0).uvarint(4).compact("abc"));
    assert!(matches!(body, RequestKind::Fetch(f) if f.cluster_id.as_deref() == Some("abc")));
    let padded = fetch_before_tags(12).uvarint(1).uvarint(0).uvarint(6).compact("abc").bytes(&[0, 0]);
    assert_eq!(guard(&padded.0), malformed("tagged field size does not match its content"));
    let short = fetch_before_tags(12).uvarint(1).uvarint(0).uvarint(2).compact("abc");
    assert_eq!(guard(&short.0), malformed("string runs past the end of the frame"));
    let state = |version| fetch_before_tags(version).uvarint(1).uvarint(1).uvarint(13).i32(3).i64(9).uvarint(0);
    assert_eq!(guard(&state(12).0), malformed("tagged field is not valid in this version"));
    let (_, body) = assert_accepted(&state(15));
    assert!(matches!(body, RequestKind::Fetch(f) if f.replica_state.replica_epoch == 9));
    // A partition's replica directory id (tag 0) is known from v17 only.
    let partition = |version| {
        let raw = fetch_prefix(version).uvarint(2).bytes(&[0; 16]).uvarint(2);
        let raw = raw.i32(0).i32(-1).i64(0).i32(-1).i64(-1).i32(1 << 20);
        raw.uvarint(1).uvarint(0).uvarint(16).bytes(&[1; 16]).uvarint(0).uvarint(1).compact("").uvarint(0)
    };
    assert_eq!(guard(&partition(16).0), malformed("tagged field is not valid in this version"));
    assert_accepted(&partition(17));
}

/// Goal: bytes after the body are ignored, as Kafka ignores them. Method:
/// the exact all-topics Metadata v12 frame librdkafka 2.x sends (its null
/// topic array count sits in a 4-byte placeholder, leaving three zero bytes),
/// and an ApiVersions frame with garbage appended, are accepted.
#[test]
fn trailing_bytes_are_ignored_as_kafka_does() {
    let librdkafka_all_topics: &[u8] =
        &[0, 3, 0, 12, 0, 0, 0, 3, 0, 7, b'r', b'd', b'k', b'a', b'f', b'k', b'a', 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(guard(librdkafka_all_topics).is_ok());
    let mut frame = Raw::request(18, 3).compact("runnel").compact("1").uvarint(0).0;
    assert!(guard(&frame).is_ok());
    frame.extend_from_slice(b"garbage");
    assert!(guard(&frame).is_ok());
}

/// Goal: every prefix of a rich valid frame is refused and none panics.
#[test]
fn every_prefix_of_a_fetch_frame_is_refused() {
    let raw = fetch_prefix(13).uvarint(2).bytes(&[7; 16]).uvarint(3);
    let partition = |raw: Raw| raw.i32(0).i32(-1).i64(0).i32(-1).i64(-1).i32(1 << 20).uvarint(0);
    let raw = partition(partition(raw)).uvarint(0).uvarint(2).bytes(&[8; 16]).uvarint(3).i32(1).i32(2).uvarint(0);
    let raw = raw.compact("rack").uvarint(1).uvarint(0).uvarint(8).compact("cluster");
    assert_accepted(&raw);
    for len in 0..raw.0.len() {
        assert!(guard(&raw.0[..len]).is_err(), "prefix of {len} bytes accepted");
    }
}

#[test]
fn headers_are_checked_before_bodies() {
    assert_eq!(guard(&[0; 7]), Err(GuardError::ShortHeader));
    assert_eq!(guard(&[]), Err(GuardError::ShortHeader));
    assert_eq!(peek_header(&Raw::fixed(18, 9).0), Ok((18, 9, 7)));
    assert_eq!(guard(&Raw::fixed(9999, 0).0), Err(GuardError::UnknownApiKey(9999)));
    assert_eq!(guard(&Raw::fixed(-1, 0).0), Err(GuardError::UnknownApiKey(-1)));
    // OffsetForLeaderEpoch is a Kafka API that Runnel does not serve yet.
    assert_eq!(guard(&Raw::fixed(23, 4).0), Err(GuardError::UnknownApiKey(23)));
    // KIP-511: a newer ApiVersions is answered, whatever its body holds.
    let newer = Raw::fixed(18, 5).bytes(&[0xff; 40]);
    assert_eq!(guard(&newer.0), Err(GuardError::UnsupportedVersion { api_key: 18, version: 5, correlation_id: 7 }));
    assert_eq!(
        guard(&Raw::fixed(3, 13).0),
        Err(GuardError::UnsupportedVersion { api_key: 3, version: 13, correlation_id: 7 })
    );
    assert_eq!(
        guard(&Raw::fixed(0, 2).0),
        Err(GuardError::UnsupportedVersion { api_key: 0, version: 2, correlation_id: 7 })
    );
    assert_eq!(
        guard(&Raw::fixed(1, -1).0),
        Err(GuardError::UnsupportedVersion { api_key: 1, version: -1, correlation_id: 7 })
    );
    assert_eq!(guard(&Raw::fixed(3, 1).bytes(&[0]).0), malformed("frame ends inside a field"));
}

#[test]
fn varints_longer_than_32_bits_are_refused() {
    let metadata = |count: &[u8]| Raw::request(3, 9).bytes(count).bytes(&[0; 8]);
    let too_long = [0xff, 0xff, 0xff, 0xff, 0x1f];
    assert_eq!(guard(&metadata(&too_long).0), malformed("varint longer than 32 bits"));
    let continued = [0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    assert_eq!(guard(&metadata(&continued).0), malformed("varint longer than 32 bits"));
    // An over-long encoding of 1 (an empty topic list) still fits in 32 bits.
    assert_accepted(&Raw::request(3, 9).bytes(&[0x81, 0x80, 0x80, 0x80, 0x00]).i8(1).i8(0).i8(0).uvarint(0));
}

#[test]
fn strings_must_be_utf8() {
    let topic = Raw::request(3, 1).i32(1).i16(2).bytes(&[0xff, 0xfe]);
    assert_eq!(guard(&topic.0), malformed("string is not valid utf-8"));
    let client_id = Raw::fixed(3, 1).i16(1).bytes(&[0x80]).i32(-1);
    assert_eq!(guard(&client_id.0), malformed("string is not valid utf-8"));
    assert_accepted(&Raw::request(3, 1).i32(1).string("thé"));
}
