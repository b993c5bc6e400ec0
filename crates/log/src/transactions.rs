//! The log's side of idempotence and transactions: producer state checked on append, transaction markers, the
//! last stable offset, the aborted-transactions index and the producer-state snapshots (see `producer.rs` for the
//! rules).
//!
//! Files beside the segments: `<base>.txnindex` holds the aborted transactions whose abort marker lies in the
//! segment with that base offset, and `<offset>.snapshot` the producer state as of an offset (written when a
//! segment rolls, and fsynced at a clean shutdown). Opening a log loads the newest readable snapshot at or below the
//! log end offset, keeps the `.txnindex` entries below it, and replays the batch headers from it to the end,
//! rebuilding the state and the index entries after it. A snapshot is never trusted beyond the log it describes:
//! snapshots above the recovered end are deleted. Without a snapshot the replay starts at the log start offset.

use std::collections::HashMap;
use std::io::Write;

use super::*;
use crate::batch::{BatchError, BatchHeader, BATCH_LENGTH_POS};
use crate::producer::{
    decode_aborted, encode_aborted, Checked, CompletedTxn, ProducerBatch, ProducerStates, Refusal, Staged, NO_SEQUENCE,
};
use crate::scan::BatchCursor;
use crate::varint::{write_varint, write_varlong};

use crate::segment::TXN_INDEX_EXT;
const SNAPSHOT_EXT: &str = "snapshot";
/// Snapshots kept per partition: the newest, and one before it in case the newest is lost in a crash.
const SNAPSHOTS_KEPT: usize = 2;
/// Read buffer for the replay of batch headers.
const REPLAY_BUFFER_BYTES: usize = 64 * 1024;

/// A transaction marker to append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marker {
    pub producer_id: i64,
    pub epoch: i16,
    pub control: ControlType,
    pub coordinator_epoch: i32,
}

/// Producer state and aborted transactions as a log opens with them.
#[derive(Debug, Default)]
pub(crate) struct LoadedTxnState {
    pub producers: ProducerStates,
    /// Ordered by marker offset.
    pub aborted: Vec<AbortedTxn>,
}

impl ProducerBatch {
    fn from_header(header: &BatchHeader) -> ProducerBatch {
        ProducerBatch {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_seq: header.base_sequence,
            last_offset_delta: header.last_offset_delta,
            transactional: header.is_transactional(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        }
    }
}

impl LogError {
    /// A write refused by producer state: the log is fine and stays writable.
    pub fn is_producer_refusal(&self) -> bool {
        matches!(
            self,
            LogError::OutOfOrderSequence { .. }
                | LogError::InvalidProducerEpoch { .. }
                | LogError::InvalidTxnState { .. }
                | LogError::CoordinatorFenced { .. }
        )
    }
}

impl Log {
    pub(super) fn refused(&self, refusal: Refusal) -> LogError {
        let (topic, partition) = (self.topic.clone(), self.partition);
        match refusal {
            Refusal::OutOfOrder { producer_id, expected, found } => {
                LogError::OutOfOrderSequence { topic, partition, producer_id, expected, found }
            }
            Refusal::Epoch { producer_id, epoch, current } => {
                LogError::InvalidProducerEpoch { topic, partition, producer_id, epoch, current }
            }
            Refusal::TxnState { producer_id, reason } => {
                LogError::InvalidTxnState { topic, partition, producer_id, reason }
            }
            Refusal::CoordinatorFenced { producer_id, epoch, current } => {
                LogError::CoordinatorFenced { topic, partition, producer_id, epoch, current }
            }
        }
    }

    /// Checks the batches of an append (offsets from `base_offset`) against producer state.
    pub(super) fn check_producers(
        &self,
        st: &LogState,
        validated: &ValidatedBatches,
        base_offset: i64,
    ) -> Result<Checked, LogError> {
        // Plain (non-idempotent) batches are the common case: nothing to check, nothing to allocate.
        if validated.batches.iter().all(|b| b.producer_id == crate::producer::NO_PRODUCER_ID) {
            return Ok(Checked::Write(Staged::default()));
        }
        let mut next = base_offset;
        let batches: Vec<ProducerBatch> = validated
            .batches
            .iter()
            .map(|info| {
                let batch = ProducerBatch::from_info(info, next);
                next += i64::from(info.records_count);
                batch
            })
            .collect();
        st.producers.check(&batches).map_err(|r| self.refused(r))
    }

    /// The answer to a duplicate batch: the offsets the original append assigned.
    pub(super) fn duplicate_info(st: &LogState, meta: crate::producer::BatchMeta) -> AppendInfo {
        AppendInfo {
            base_offset: meta.first_offset,
            last_offset: meta.last_offset,
            log_append_time: -1,
            log_start_offset: st.log_start_offset,
            records_count: meta.last_offset - meta.first_offset + 1,
            duplicate: true,
        }
    }

    /// After a marker is in the log: ends the producer's transaction and indexes an abort.
    pub(super) fn complete_marker(
        &self,
        st: &mut LogState,
        marker: &Marker,
        offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let done: CompletedTxn = st.producers.apply_marker(
            marker.producer_id,
            marker.epoch,
            marker.control,
            marker.coordinator_epoch,
            offset,
            now_ms,
        );
        if done.aborted {
            let lso = st.producers.first_unstable_offset().unwrap_or(offset + 1);
            let entry = AbortedTxn {
                producer_id: done.producer_id,
                first_offset: done.first_offset,
                last_offset: done.last_offset,
                last_stable_offset: lso,
            };
            append_txn_index(&self.dir, st.active().base_offset, &entry)?;
            st.aborted.push(entry);
        }
        Ok(())
    }

    /// Writes the producer-state snapshot as of the log end offset. Failing to write one only costs a longer replay
    /// on the next open, so a roll logs the error and goes on; a clean shutdown fsyncs it.
    pub(super) fn write_snapshot(&self, st: &LogState, sync: bool) -> Result<(), LogError> {
        let offset = st.log_end_offset;
        let path = segment_file(&self.dir, offset, SNAPSHOT_EXT);
        let tmp = path.with_extension("snapshot.tmp");
        let bytes = st.producers.encode();
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            if sync {
                file.sync_data()?;
            }
            std::fs::rename(&tmp, &path)
        };
        write().map_err(io_err("write producer snapshot", &path))?;
        if sync {
            sync_dir(&self.dir)?;
        }
        for old in list_offsets_with_ext(&self.dir, SNAPSHOT_EXT)?.iter().rev().skip(SNAPSHOTS_KEPT) {
            let old = segment_file(&self.dir, *old, SNAPSHOT_EXT);
            std::fs::remove_file(&old).map_err(io_err("remove", &old))?;
        }
        Ok(())
    }

    /// At a roll: the snapshot as of the new segment's base, and the rolled segment's `.txnindex` joins the files
    /// the flusher makes durable.
    pub(super) fn on_roll(&self, st: &mut LogState, rolled_base: i64) {
        if let Err(err) = self.write_snapshot(st, false) {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %err, "cannot write producer snapshot");
        }
        let path = segment_file(&self.dir, rolled_base, TXN_INDEX_EXT);
        if let Ok(file) = File::open(&path) {
            st.pending_flush.push(Arc::new(file));
        }
    }

    /// Appends a transaction marker (a control batch of one record) for `producer_id` and ends its open transaction
    /// in this partition: a commit makes its records visible to read_committed consumers, an abort adds an entry to
    /// the aborted-transactions index. The marker's epoch may be newer than the producer's (the coordinator bumps it
    /// when it aborts on a timeout or fences); an older one is refused with `InvalidProducerEpoch`, an older
    /// coordinator epoch with `CoordinatorFenced`. A marker for a producer with no open transaction is still written.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        control: ControlType,
        coordinator_epoch: i32,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let mut batch = control_batch(producer_id, producer_epoch, control, coordinator_epoch, now_ms);
        let validated = crate::batch::validate_batches(&batch, usize::MAX).expect("a control batch is valid");
        let marker = Marker { producer_id, epoch: producer_epoch, control, coordinator_epoch };
        self.append_with(&mut batch, &validated, leader_epoch, now_ms, Some(&marker))
    }

    /// The first offset of the oldest open transaction, or the log end offset when none is open. The broker serves
    /// read_committed fetches below the smaller of this and the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        let st = self.state.lock();
        st.producers.first_unstable_offset().unwrap_or(st.log_end_offset)
    }

    /// Aborted transactions that may own records in `[from, to)`: those whose marker is at or after `from` and whose
    /// first offset is before `to`, ordered by first offset. A read_committed fetch returns them with its records.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let st = self.state.lock();
        // Entries are in marker order, so those ending before `from` are skipped by a binary search.
        let first = st.aborted.partition_point(|a| a.last_offset < from);
        let mut found: Vec<AbortedTxn> = st.aborted[first..].iter().filter(|a| a.first_offset < to).copied().collect();
        found.sort_by_key(|a| (a.first_offset, a.producer_id));
        found
    }

    /// The producers with state in this partition (DescribeProducers), ordered by producer id.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.state.lock().producers.infos()
    }

    /// Forgets producers whose last write is older than `expiration_ms` (`producer.id.expiration.ms`) and that have
    /// no open transaction; returns how many were removed.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.state.lock().producers.expire(now_ms, expiration_ms)
    }

    /// Drops the aborted-transaction entries wholly below the new log start offset.
    pub(super) fn forget_aborted_below(st: &mut LogState, log_start_offset: i64) {
        st.aborted.retain(|a| a.last_offset >= log_start_offset);
    }

    /// Aborted transactions whose records may lie below `end`, by producer id, for the cleaner.
    pub(super) fn aborted_ranges(st: &LogState, end: i64) -> AbortedRanges {
        let mut ranges = AbortedRanges::new();
        for a in st.aborted.iter().filter(|a| a.first_offset < end) {
            ranges.entry(a.producer_id).or_default().push((a.first_offset, a.last_offset));
        }
        ranges
    }
}

/// Aborted transactions' `(first offset, marker offset)` ranges by producer id.
pub(crate) type AbortedRanges = HashMap<i64, Vec<(i64, i64)>>;

/// Whether a data batch belongs to an aborted transaction (by the ranges of `aborted_ranges`).
pub(crate) fn is_aborted(ranges: &AbortedRanges, header: &BatchHeader) -> bool {
    header.is_transactional()
        && !header.is_control()
        && ranges
            .get(&header.producer_id)
            .is_some_and(|r| r.iter().any(|&(first, last)| first <= header.base_offset && header.base_offset <= last))
}

/// A control batch holding one marker record: key (version 0, type), value (version 0, coordinator epoch).
pub(crate) fn control_batch(
    producer_id: i64,
    epoch: i16,
    control: ControlType,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&control.code().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut record = Vec::with_capacity(20);
    record.push(0); // attributes
    write_varlong(0, &mut record); // timestamp delta
    write_varint(0, &mut record); // offset delta
    write_varint(key.len() as i32, &mut record);
    record.extend_from_slice(&key);
    write_varint(value.len() as i32, &mut record);
    record.extend_from_slice(&value);
    write_varint(0, &mut record); // headers
    let mut body = Vec::with_capacity(record.len() + 2);
    write_varint(record.len() as i32, &mut body);
    body.extend_from_slice(&record);
    let header = BatchHeader {
        base_offset: 0,
        batch_length: (crate::BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + body.len()) as i32,
        partition_leader_epoch: -1,
        magic: MAGIC_V2,
        crc: 0,
        attributes: 0x30, // transactional and control
        last_offset_delta: 0,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id,
        producer_epoch: epoch,
        base_sequence: NO_SEQUENCE,
        records_count: 1,
    };
    let mut out = vec![0u8; crate::BATCH_HEADER_BYTES];
    header.encode(&mut out);
    out.extend_from_slice(&body);
    let crc = batch_crc(&out);
    out[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(
        i32::from_be_bytes(out[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].try_into().unwrap()) as usize + 12,
        out.len()
    );
    out
}

/// The marker a control batch holds: its type and coordinator epoch; `None` for other control records.
fn read_marker(batch: &[u8]) -> Result<Option<(ControlType, i32)>, BatchError> {
    let mut recs = crate::records::records(batch, crate::records::DECOMPRESSED_BATCH_BYTES_MAX)?;
    let Some(record) = recs.next() else { return Ok(None) };
    let record = record?;
    let key = record.key.as_deref().unwrap_or_default();
    let Some(control) = key.get(2..4).and_then(|t| ControlType::from_code(i16::from_be_bytes([t[0], t[1]]))) else {
        return Ok(None);
    };
    let coordinator_epoch = record
        .value
        .as_deref()
        .and_then(|v| v.get(2..6))
        .map_or(-1, |e| i32::from_be_bytes(e.try_into().expect("4 bytes")));
    Ok(Some((control, coordinator_epoch)))
}

fn append_txn_index(dir: &Path, segment_base: i64, entry: &AbortedTxn) -> Result<(), LogError> {
    let path = segment_file(dir, segment_base, TXN_INDEX_EXT);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err("open transaction index", &path))?;
    file.write_all(&encode_aborted(entry)).map_err(io_err("write transaction index", &path))
}

/// Offsets named by the files `<20 digits>.<ext>` in `dir`, sorted.
fn list_offsets_with_ext(dir: &Path, ext: &str) -> Result<Vec<i64>, LogError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some((stem, e)) = name.to_str().and_then(|n| n.split_once('.')) else { continue };
        if e == ext && stem.len() == 20 {
            if let Ok(offset) = stem.parse::<i64>() {
                found.push(offset);
            }
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Loads producer state and aborted transactions for a log that opens with `segments` (see the module docs).
pub(crate) fn load_txn_state(
    dir: &Path,
    segments: &[Segment],
    log_start_offset: i64,
    log_end_offset: i64,
) -> Result<LoadedTxnState, LogError> {
    let mut producers = None;
    let mut replay_from = log_start_offset;
    for offset in list_offsets_with_ext(dir, SNAPSHOT_EXT)?.into_iter().rev() {
        let path = segment_file(dir, offset, SNAPSHOT_EXT);
        if offset > log_end_offset || offset < log_start_offset {
            // Beyond the recovered end, or below data retention removed: it describes a log that is not there.
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            continue;
        }
        if producers.is_some() {
            continue;
        }
        match std::fs::read(&path).ok().and_then(|bytes| ProducerStates::decode(&bytes, offset)) {
            Some(state) => {
                producers = Some(state);
                replay_from = offset;
            }
            None => {
                tracing::warn!(path = %path.display(), "ignoring an unreadable producer snapshot");
                std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
    }
    let mut loaded = LoadedTxnState { producers: producers.unwrap_or_default(), aborted: Vec::new() };
    // Index entries below the replay start are kept; the replay rebuilds the rest.
    for segment in segments {
        let path = segment_file(dir, segment.base_offset, TXN_INDEX_EXT);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let entries = decode_aborted(&bytes);
        // Entries from the replayed part are rebuilt; nonsense ones (a damaged file) are dropped.
        let kept: Vec<AbortedTxn> = entries
            .iter()
            .filter(|a| (0..=a.last_offset).contains(&a.first_offset) && a.last_offset < replay_from)
            .copied()
            .collect();
        if kept.len() != entries.len() || bytes.len() != entries.len() * crate::producer::TXN_ENTRY_BYTES {
            let rewritten: Vec<u8> = kept.iter().flat_map(encode_aborted).collect();
            std::fs::write(&path, rewritten).map_err(io_err("rewrite transaction index", &path))?;
        }
        loaded.aborted.extend(kept);
    }
    loaded.aborted.retain(|a| a.last_offset >= log_start_offset);
    replay(dir, segments, replay_from, log_end_offset, &mut loaded)?;
    Ok(loaded)
}

/// Re-applies the batches in `[from, log_end_offset)` to the loaded state.
fn replay(
    dir: &Path,
    segments: &[Segment],
    from: i64,
    log_end_offset: i64,
    loaded: &mut LoadedTxnState,
) -> Result<(), LogError> {
    if from >= log_end_offset {
        return Ok(());
    }
    let first = segments.partition_point(|s| s.base_offset <= from).saturating_sub(1);
    for segment in &segments[first..] {
        let view = segment.view();
        let start = match read::find_batch(&view, from)? {
            Some((position, _)) => position,
            None => continue,
        };
        let mut cursor = BatchCursor::new(&view.file, &view.path, start, view.end, REPLAY_BUFFER_BYTES);
        while let Some((position, header)) = cursor.next_header()? {
            if header.base_offset < from {
                continue;
            }
            if !header.is_control() {
                loaded.producers.replay_batch(&ProducerBatch::from_header(&header));
                continue;
            }
            let mut batch = vec![0u8; header.total_bytes()];
            std::os::unix::fs::FileExt::read_exact_at(&*view.file, &mut batch, position)
                .map_err(io_err("read", &view.path))?;
            let marker = read_marker(&batch).map_err(|e| LogError::Corrupt {
                path: view.path.to_path_buf(),
                position,
                reason: format!("unreadable control batch: {e}"),
            })?;
            let Some((control, coordinator_epoch)) = marker else { continue };
            let done = loaded.producers.apply_marker(
                header.producer_id,
                header.producer_epoch,
                control,
                coordinator_epoch,
                header.base_offset,
                header.max_timestamp,
            );
            if done.aborted {
                let lso = loaded.producers.first_unstable_offset().unwrap_or(done.last_offset + 1);
                let entry = AbortedTxn {
                    producer_id: done.producer_id,
                    first_offset: done.first_offset,
                    last_offset: done.last_offset,
                    last_stable_offset: lso,
                };
                append_txn_index(dir, segment.base_offset, &entry)?;
                loaded.aborted.push(entry);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "transactions_tests.rs"]
mod tests;
