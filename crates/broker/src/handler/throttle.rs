//! Throttle times on the wire (KIP-219): every response type with a
//! `throttle_time_ms` field carries the throttle a client quota gave the
//! request, and a throttled fetch is answered with no data, as Kafka does.

use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind};

/// Sets `throttle_time_ms` on every response type that has it; the encoder
/// leaves it out of versions without the field.
pub fn set_throttle_time(response: &mut ResponseKind, throttle_ms: i32) {
    macro_rules! set {
        ($($kind:ident),* $(,)?) => {
            match response {
                $(ResponseKind::$kind(r) => r.throttle_time_ms = throttle_ms,)*
                _ => {}
            }
        };
    }
    set!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        TxnOffsetCommit,
        DescribeConfigs,
        AlterConfigs,
        DescribeLogDirs,
        CreatePartitions,
        DeleteGroups,
        ElectLeaders,
        IncrementalAlterConfigs,
        OffsetDelete,
        DescribeClientQuotas,
        AlterClientQuotas,
        DescribeCluster,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
        ConsumerGroupHeartbeat,
        ConsumerGroupDescribe,
        DescribeTopicPartitions,
    );
}

/// Whether a client speaking `api` at `version` throttles itself on
/// `throttle_time_ms` (KIP-219, Kafka 2.0). Older versions expect the broker
/// to hold the response back for the throttle time instead.
pub fn client_throttles(api: ApiKey, version: i16) -> bool {
    let first = match api {
        ApiKey::Produce => 6,
        ApiKey::Fetch => 8,
        ApiKey::Metadata => 6,
        ApiKey::ListOffsets => 3,
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => 4,
        ApiKey::FindCoordinator
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::SyncGroup
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups
        | ApiKey::ApiVersions
        | ApiKey::DeleteTopics
        | ApiKey::DescribeConfigs => 2,
        ApiKey::JoinGroup | ApiKey::CreateTopics => 3,
        ApiKey::DeleteRecords
        | ApiKey::InitProducerId
        | ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit
        | ApiKey::AlterConfigs
        | ApiKey::DescribeLogDirs
        | ApiKey::CreatePartitions
        | ApiKey::DeleteGroups
        | ApiKey::ElectLeaders => 1,
        // Every later API was designed with KIP-219 in force.
        _ => 0,
    };
    version >= first
}

/// Record bytes in a fetch response: what counts against `consumer_byte_rate`.
pub fn fetch_record_bytes(response: &FetchResponse) -> usize {
    response.responses.iter().flat_map(|t| &t.partitions).map(|p| p.records.as_ref().map_or(0, |r| r.len())).sum()
}

/// The answer to a throttled fetch: no partitions, no error, the throttle
/// time (Kafka's `getThrottledResponse`); the client fetches the same
/// offsets again after the throttle.
pub fn throttled_fetch(throttle_ms: i32) -> FetchResponse {
    FetchResponse::default().with_throttle_time_ms(throttle_ms)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{MetadataResponse, ProduceResponse};

    use super::*;

    // Goal: the throttle lands in the field of each response type, and only pre-KIP-219 versions are held back.
    #[test]
    fn throttle_is_set_and_versions_follow_kip_219() {
        let mut produce = ResponseKind::Produce(ProduceResponse::default());
        set_throttle_time(&mut produce, 1234);
        assert!(matches!(produce, ResponseKind::Produce(r) if r.throttle_time_ms == 1234));
        let mut metadata = ResponseKind::Metadata(MetadataResponse::default());
        set_throttle_time(&mut metadata, 7);
        assert!(matches!(metadata, ResponseKind::Metadata(r) if r.throttle_time_ms == 7));
        assert!(!client_throttles(ApiKey::Produce, 5) && client_throttles(ApiKey::Produce, 6));
        assert!(!client_throttles(ApiKey::Fetch, 7) && client_throttles(ApiKey::Fetch, 8));
        assert!(client_throttles(ApiKey::DescribeClientQuotas, 0));
    }
}
