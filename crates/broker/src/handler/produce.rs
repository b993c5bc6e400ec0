//! Produce: validate each partition's batch, append it, and answer when the
//! `acks` promise holds.
//!
//! The handler runs in two phases. [`append`] validates and appends every
//! partition's batch in request order, on a blocking thread, before the
//! connection reads its next request, so pipelined requests append in the
//! order they were sent. The returned future then waits for durability:
//! `acks=all` waits for the fsync the flush policy requires; `acks=1` answers
//! once the batch is in the log (page cache); `acks=0` gets no response.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use runnel_log::{validate_batches, BatchError, Flusher};
use uuid::Uuid;

use crate::broker::{Broker, Topic};
use crate::error::ToErrorCode;
use crate::handler::now_ms;
use crate::partition::Partition;

/// `acks` values Kafka accepts.
const ACKS_NONE: i16 = 0;
const ACKS_LEADER: i16 = 1;
const ACKS_ALL: i16 = -1;
const COMPRESSION_ZSTD: i16 = 4;

/// Why a partition's batch was refused: the error, its message and, for
/// records refused one by one (KIP-467), their indexes in the batch.
type Refused = (ResponseError, Option<String>, Vec<(i32, String)>);

/// One partition's outcome after the append phase.
struct Appended {
    index: i32,
    result: Result<AppendOk, Refused>,
}

struct AppendOk {
    partition: Arc<Partition>,
    base_offset: i64,
    end_offset: i64,
    log_append_time: i64,
    log_start_offset: i64,
    wait_for_flush: bool,
}

struct TopicAppended {
    name: TopicName,
    topic_id: Uuid,
    partitions: Vec<Appended>,
}

/// Appends every batch, then returns the future that produces the response
/// (`None` for `acks=0`).
pub async fn append(
    broker: Arc<Broker>,
    req: ProduceRequest,
    version: i16,
) -> impl Future<Output = Option<ProduceResponse>> + Send {
    let acks = req.acks;
    let appended = if matches!(acks, ACKS_NONE | ACKS_LEADER | ACKS_ALL) {
        let b = broker.clone();
        tokio::task::spawn_blocking(move || append_all(&b, req, version)).await.expect("append does not panic")
    } else {
        reject_all(req, ResponseError::InvalidRequiredAcks)
    };
    async move {
        if acks == ACKS_NONE {
            return None;
        }
        let mut responses = Vec::with_capacity(appended.len());
        for topic in appended {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in topic.partitions {
                partitions.push(respond(p, acks, version).await);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_topic_id(topic.topic_id)
                    .with_partition_responses(partitions),
            );
        }
        Some(ProduceResponse::default().with_responses(responses))
    }
}

fn append_all(broker: &Broker, req: ProduceRequest, version: i16) -> Vec<TopicAppended> {
    let now = now_ms();
    // Bound on a batch's decompressed size when its records are read (the keys of a compacted topic's batches).
    let decompressed_bytes_max = broker.config.socket_request_max_bytes();
    let txn = crate::txn::ProduceTxn {
        broker,
        transactional_id: req.transactional_id.as_ref().map(|id| id.as_str()),
        version,
    };
    let mut out = Vec::with_capacity(req.topic_data.len());
    for topic_data in req.topic_data {
        // Produce v13 names topics by id (KIP-516).
        let topic =
            if version >= 13 { broker.topic_by_id(&topic_data.topic_id) } else { broker.topic(&topic_data.name) };
        let unknown =
            if version >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
        let partitions = topic_data
            .partition_data
            .into_iter()
            .map(|pd| Appended {
                index: pd.index,
                result: append_one(
                    broker.logs.flusher(),
                    topic.as_deref(),
                    pd.index,
                    pd.records,
                    version,
                    now,
                    unknown,
                    decompressed_bytes_max,
                    &txn,
                ),
            })
            .collect();
        out.push(TopicAppended { name: topic_data.name, topic_id: topic_data.topic_id, partitions });
    }
    out
}

#[allow(clippy::too_many_arguments, reason = "one call site; the arguments are the request's parts")]
fn append_one(
    flusher: &Flusher,
    topic: Option<&Topic>,
    index: i32,
    records: Option<Bytes>,
    version: i16,
    now: i64,
    unknown: ResponseError,
    decompressed_bytes_max: usize,
    txn: &crate::txn::ProduceTxn<'_>,
) -> Result<AppendOk, Refused> {
    let partition = topic.and_then(|t| t.partition(index)).ok_or((unknown, None, Vec::new()))?.clone();
    if crate::group::is_internal_topic(&partition.topic) {
        // Only the broker writes its internal topics.
        let msg = format!("cannot append to internal topic {}", partition.topic);
        return Err((ResponseError::InvalidTopicException, Some(msg), Vec::new()));
    }
    let records = records.ok_or((ResponseError::InvalidRecord, Some("records are null".to_string()), Vec::new()))?;
    let config = partition.log.config();
    let validated = validate_batches(&records, config.max_message_bytes).map_err(|e| batch_error(&e))?;
    // Kafka accepts exactly one batch per partition from Produce v3 on.
    if validated.batches.len() != 1 {
        let msg = format!("produce requests with version {version} may carry exactly one record batch per partition");
        return Err((ResponseError::InvalidRecord, Some(msg), Vec::new()));
    }
    // Only the transaction coordinator writes transaction markers.
    if validated.batches[0].is_control() {
        let msg = "clients may not write control batches".to_string();
        return Err((ResponseError::InvalidRecord, Some(msg), Vec::new()));
    }
    // zstd needs Produce v7 (KIP-110); the compression codec is attributes bits 0-2.
    if version < 7 && validated.batches[0].attributes & 0x07 == COMPRESSION_ZSTD {
        return Err((ResponseError::UnsupportedCompressionType, None, Vec::new()));
    }
    txn.check(&validated.batches[0], &partition.topic, index).map_err(|(e, msg)| (e, Some(msg), Vec::new()))?;
    // A compacted topic refuses records without a key, as Kafka does; the log's config follows cleanup.policy.
    if config.compact {
        check_keys(&records, decompressed_bytes_max)?;
    }
    let mut owned = records.to_vec();
    let info = partition.log.append(&mut owned, &validated, 0, now).map_err(|e| {
        // A full disk is logged by the storage engine and cleared by freeing space; a producer-state refusal is the
        // client's (answered with its error code); anything else is an error.
        if e.is_producer_refusal() {
            tracing::debug!(topic = %partition.topic, partition = index, error = %e, "append refused");
        } else if !matches!(e, runnel_log::LogError::StorageFull { .. }) {
            tracing::error!(topic = %partition.topic, partition = index, error = %e, "append failed");
        }
        (e.error(), Some(e.to_string()), Vec::new())
    })?;
    if info.duplicate {
        // A retried batch: the original append's offsets, nothing written.
        metrics::counter!(crate::metrics::PRODUCE_DUPLICATES).increment(1);
    } else {
        partition.on_appended();
        partition.counters.bytes_in.increment(owned.len() as u64);
        partition.counters.records_in.increment(info.records_count as u64);
    }
    let wait_for_flush = partition.flush_required(now);
    if wait_for_flush {
        flusher.request(&partition.log);
    }
    Ok(AppendOk {
        base_offset: info.base_offset,
        end_offset: info.last_offset + 1,
        log_append_time: info.log_append_time,
        log_start_offset: info.log_start_offset,
        wait_for_flush,
        partition,
    })
}

fn batch_error(e: &BatchError) -> Refused {
    (e.error(), Some(e.to_string()), Vec::new())
}

/// A compacted topic's batch must give every record a key; otherwise the
/// whole batch is refused with INVALID_RECORD, naming each keyless record.
fn check_keys(batch: &[u8], decompressed_bytes_max: usize) -> Result<(), Refused> {
    const NO_KEY: &str = "Compacted topic cannot accept message without key in topic partition";
    let records = runnel_log::records::records(batch, decompressed_bytes_max).map_err(|e| batch_error(&e))?;
    let mut keyless = Vec::new();
    for (i, record) in records.enumerate() {
        let record = record.map_err(|e| batch_error(&e))?;
        if record.key.is_none() {
            keyless.push((i as i32, NO_KEY.to_string()));
        }
    }
    if keyless.is_empty() {
        return Ok(());
    }
    let message = "One or more records have been rejected".to_string();
    Err((ResponseError::InvalidRecord, Some(message), keyless))
}

async fn respond(appended: Appended, acks: i16, version: i16) -> PartitionProduceResponse {
    let base = PartitionProduceResponse::default().with_index(appended.index);
    match appended.result {
        Ok(ok) => {
            if acks == ACKS_ALL && ok.wait_for_flush {
                let waiting = metrics::gauge!(crate::metrics::PRODUCE_WAITING);
                waiting.increment(1);
                let flushed = ok.partition.wait_flushed(ok.end_offset).await;
                waiting.decrement(1);
                if !flushed {
                    return base.with_error_code(ResponseError::KafkaStorageError.code());
                }
            }
            let done = base.with_base_offset(ok.base_offset).with_log_append_time_ms(ok.log_append_time);
            // The log start offset is in the response from v5 (KIP-107).
            if version >= 5 {
                done.with_log_start_offset(ok.log_start_offset)
            } else {
                done
            }
        }
        Err((error, message, record_errors)) => {
            metrics::counter!(crate::metrics::PRODUCE_ERRORS, "error" => format!("{error:?}")).increment(1);
            let failed = base.with_error_code(error.code()).with_base_offset(-1);
            // Error messages and per-record errors are in the response from v8 (KIP-467).
            if version >= 8 {
                let record_errors = record_errors
                    .into_iter()
                    .map(|(i, m)| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(i)
                            .with_batch_index_error_message(Some(StrBytes::from_string(m)))
                    })
                    .collect();
                failed.with_error_message(message.map(StrBytes::from_string)).with_record_errors(record_errors)
            } else {
                failed
            }
        }
    }
}

fn reject_all(req: ProduceRequest, error: ResponseError) -> Vec<TopicAppended> {
    req.topic_data
        .into_iter()
        .map(|t| TopicAppended {
            name: t.name,
            topic_id: t.topic_id,
            partitions: t
                .partition_data
                .into_iter()
                .map(|p| Appended { index: p.index, result: Err((error, None, Vec::new())) })
                .collect(),
        })
        .collect()
}
