//! Fetch: whole record batches below the high watermark, with long polling.
//!
//! A read_committed fetch (`isolation_level` 1) reads only below the last
//! stable offset (the first offset of the oldest open transaction, never above
//! the high watermark) and lists the aborted transactions that own records in
//! what it returns, so the client can drop them. Every response states that
//! bound as `last_stable_offset`, whatever the isolation level. A commit or
//! abort marker is appended through the log like any batch, so the high
//! watermark moves whenever the last stable offset does: long polls wait on
//! the high watermark alone.
//!
//! Each round reads every requested partition on a blocking thread. If the
//! round found fewer than `min_bytes`, the request waits until a requested
//! partition's high watermark moves or `max_wait_ms` passes, then reads again.
//! The watchers are taken before the read, so data that arrives between the
//! read and the wait still wakes it. Sizes follow KIP-74: partitions are
//! filled in request order up to `max_bytes` (capped by `fetch.max.bytes`)
//! and each up to its `partition_max_bytes`, but the first batch of the
//! first non-empty partition is returned whole even when it is larger, so a
//! consumer always makes progress. Fetch sessions are not kept: every
//! response is a full, sessionless one (session id 0), which Kafka clients
//! accept.

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::partition::Partition;

/// Longest wait a client may ask for; Kafka clients use at most a few seconds.
const MAX_WAIT_MS_MAX: i32 = 60_000;

/// One requested partition, resolved once per request.
struct Target {
    partition_index: i32,
    partition: Result<Arc<Partition>, ResponseError>,
    fetch_offset: i64,
    partition_max_bytes: usize,
}

struct TopicTargets {
    name: TopicName,
    topic_id: Uuid,
    targets: Vec<Target>,
}

/// Which records a fetch may see (the request's `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Everything below the high watermark.
    ReadUncommitted,
    /// Everything below the last stable offset, with the aborted transactions.
    ReadCommitted,
}

impl Isolation {
    /// Kafka's `isolation_level`: 1 is read_committed; anything else reads uncommitted.
    pub(crate) fn from_level(level: i8) -> Isolation {
        if level == 1 {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        }
    }
}

/// The partition's high watermark and its last stable offset as clients see
/// it: the log's, capped by the high watermark (nothing at or above the high
/// watermark is served, whether a transaction is open or not).
pub(crate) fn watermarks(partition: &Partition) -> (i64, i64) {
    let hw = partition.high_watermark();
    (hw, partition.log.last_stable_offset().min(hw))
}

pub async fn handle(broker: Arc<Broker>, req: FetchRequest, version: i16) -> FetchResponse {
    let topics = resolve(&broker, req.topics, version);
    let isolation = Isolation::from_level(req.isolation_level);
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0).min(broker.config.fetch_max_bytes());
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.clamp(0, MAX_WAIT_MS_MAX) as u64);
    let topics = Arc::new(topics);
    loop {
        let mut watchers: Vec<watch::Receiver<i64>> = topics
            .iter()
            .flat_map(|t| t.targets.iter())
            .filter_map(|t| t.partition.as_ref().ok().map(|p| p.watch_high_watermark()))
            .collect();
        let round = topics.clone();
        let (responses, bytes, errors) =
            tokio::task::spawn_blocking(move || read_round(&round, max_bytes, isolation, version))
                .await
                .expect("fetch read does not panic");
        if bytes >= min_bytes || errors || Instant::now() >= deadline || watchers.is_empty() {
            count_out(&topics, &responses);
            return FetchResponse::default().with_responses(responses);
        }
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        let waiting = metrics::gauge!(crate::metrics::FETCH_WAITING);
        waiting.increment(1);
        let timed_out = tokio::time::timeout_at(deadline, changed).await.is_err();
        waiting.decrement(1);
        if timed_out {
            // Nothing arrived in time: one last read returns whatever is there.
            let round = topics.clone();
            let (responses, _, _) =
                tokio::task::spawn_blocking(move || read_round(&round, max_bytes, isolation, version))
                    .await
                    .expect("fetch read does not panic");
            count_out(&topics, &responses);
            return FetchResponse::default().with_responses(responses);
        }
    }
}

/// Adds what a response returns to its topics' bytes-out and records-out counters.
fn count_out(topics: &[TopicTargets], responses: &[FetchableTopicResponse]) {
    for (topic, response) in topics.iter().zip(responses) {
        for (target, data) in topic.targets.iter().zip(&response.partitions) {
            let (Ok(partition), Some(records)) = (&target.partition, &data.records) else { continue };
            partition.counters.bytes_out.increment(records.len() as u64);
            partition.counters.records_out.increment(records_in_batches(records));
        }
    }
}

/// Records in a run of whole batches, from their headers.
fn records_in_batches(mut bytes: &[u8]) -> u64 {
    let mut records = 0u64;
    while let Ok(header) = runnel_log::BatchHeader::parse(bytes) {
        records += u64::try_from(header.last_offset_delta).map_or(0, |d| d + 1);
        let Some(rest) = bytes.get(header.total_bytes()..) else { break };
        bytes = rest;
    }
    records
}

fn resolve(
    broker: &Broker,
    topics: Vec<kafka_protocol::messages::fetch_request::FetchTopic>,
    version: i16,
) -> Vec<TopicTargets> {
    topics
        .into_iter()
        .map(|t| {
            // Fetch v13 names topics by id (KIP-516).
            let (topic, unknown) = if version >= 13 {
                (broker.topic_by_id(&t.topic_id), ResponseError::UnknownTopicId)
            } else {
                (broker.topic(&t.topic), ResponseError::UnknownTopicOrPartition)
            };
            let targets = t
                .partitions
                .into_iter()
                .map(|p| Target {
                    partition_index: p.partition,
                    partition: topic.as_ref().and_then(|t| t.partition(p.partition)).cloned().ok_or(unknown),
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                })
                .collect();
            TopicTargets { name: t.topic, topic_id: t.topic_id, targets }
        })
        .collect()
}

/// Reads every target once. Returns the responses, the record bytes found and
/// whether any partition answered with an error (which ends the wait at once).
fn read_round(
    topics: &[TopicTargets],
    max_bytes: usize,
    isolation: Isolation,
    version: i16,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut any_error = false;
    let responses = topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .targets
                .iter()
                .map(|target| {
                    let data = read_partition(target, remaining, total == 0, isolation, version);
                    let len = data.records.as_ref().map_or(0, |r| r.len());
                    remaining = remaining.saturating_sub(len);
                    total += len;
                    any_error |= data.error_code != 0;
                    data
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    (responses, total, any_error)
}

fn read_partition(
    target: &Target,
    remaining: usize,
    first_with_data: bool,
    isolation: Isolation,
    version: i16,
) -> PartitionData {
    let base =
        PartitionData::default().with_partition_index(target.partition_index).with_preferred_read_replica(BrokerId(-1));
    let partition = match &target.partition {
        Ok(p) => p,
        Err(e) => return base.with_error_code(e.code()).with_high_watermark(-1),
    };
    let (hw, lso) = watermarks(partition);
    let base = base.with_high_watermark(hw).with_last_stable_offset(lso);
    let (upper_bound, base) = match isolation {
        // Kafka sends a null list to read_uncommitted fetches.
        Isolation::ReadUncommitted => (hw, base.with_aborted_transactions(None)),
        Isolation::ReadCommitted => (lso, base),
    };
    let max = target.partition_max_bytes.min(remaining);
    let (data, log_start_offset) = match partition.log.read(target.fetch_offset, max, upper_bound, first_with_data) {
        Ok(read) => {
            let data = match isolation {
                Isolation::ReadCommitted => {
                    let aborted = aborted_in(partition, target.fetch_offset, &read.bytes);
                    base.with_aborted_transactions(Some(aborted))
                }
                Isolation::ReadUncommitted => base,
            };
            (data.with_records(Some(read.bytes)), read.log_start_offset)
        }
        Err(e) => (base.with_error_code(e.error_code()), partition.log.log_start_offset()),
    };
    // The log start offset is in the response from v5 (KIP-107).
    if version >= 5 {
        data.with_log_start_offset(log_start_offset)
    } else {
        data
    }
}

/// The aborted transactions that may own records in `records`, read from
/// `fetch_offset`: none when nothing was read.
fn aborted_in(partition: &Partition, fetch_offset: i64, records: &[u8]) -> Vec<AbortedTransaction> {
    let Some(end) = end_offset(records) else { return Vec::new() };
    partition
        .log
        .aborted_transactions(fetch_offset, end)
        .into_iter()
        .map(|txn| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(txn.producer_id))
                .with_first_offset(txn.first_offset)
        })
        .collect()
}

/// One past the last offset of a run of whole batches; `None` when empty.
fn end_offset(mut bytes: &[u8]) -> Option<i64> {
    let mut end = None;
    while let Ok(header) = runnel_log::BatchHeader::parse(bytes) {
        end = Some(header.last_offset() + 1);
        let Some(rest) = bytes.get(header.total_bytes()..) else { break };
        bytes = rest;
    }
    end
}
