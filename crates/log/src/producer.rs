//! Producer state: what idempotent and transactional producers have written to one partition.
//!
//! Each producer id has an entry with its epoch, the sequence ranges and offsets of its last five batches (so a
//! retried batch is recognised and answered with its original offsets instead of being written twice), the
//! coordinator epoch of its last transaction marker, and the first offset of its open transaction, if any. The open
//! transactions' first offsets give the partition's last stable offset: read_committed consumers read below it.
//!
//! The rules are Kafka's. A batch's epoch older than the producer's is refused; a newer epoch must start at sequence
//! 0; within an epoch the first sequence must follow the last one (wrapping after `i32::MAX`). A producer the
//! partition does not know (new, or forgotten after retention or expiry) may start at any sequence. A producer with
//! an open transaction may only write transactional batches until its marker. A marker may carry a newer epoch than
//! the producer's (the coordinator bumps it when it aborts on a timeout or fences a producer), never an older one,
//! and never an older coordinator epoch.
//!
//! Checks run against a staged copy of the entries a write touches; the entries change only once the write is in
//! the log, so an append undone by a full disk leaves no trace. The state is snapshotted beside the segments
//! (`<offset>.snapshot`, the state as of that offset) when a segment rolls and at a clean shutdown; opening a log
//! loads the newest snapshot at or below the log end offset and replays the batch headers after it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::batch::BatchInfo;

/// `producerId` of a batch from a producer without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// `baseSequence` of a batch that carries no sequence (coordinator writes, control batches).
pub const NO_SEQUENCE: i32 = -1;
/// How many of a producer's batches are remembered for duplicate detection (Kafka's in-flight request limit).
const BATCHES_KEPT: usize = 5;

/// What a transaction marker (control batch) says about the producer's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    /// The control record key's type field (Kafka: 0 abort, 1 commit).
    pub fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
        }
    }

    /// The control type for a control record key's type field; other types (e.g. leader change) are not markers.
    pub fn from_code(code: i16) -> Option<ControlType> {
        match code {
            0 => Some(ControlType::Abort),
            1 => Some(ControlType::Commit),
            _ => None,
        }
    }
}

/// One producer's state in a partition, as DescribeProducers reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The last sequence written, -1 if none.
    pub last_sequence: i32,
    /// The max timestamp of the producer's last batch (or marker), -1 if none.
    pub last_timestamp: i64,
    /// The coordinator epoch of the producer's last transaction marker, -1 if none.
    pub coordinator_epoch: i32,
    /// The first offset of the producer's open transaction in this partition, -1 if none.
    pub current_txn_start_offset: i64,
}

/// An aborted transaction in a partition: the `.txnindex` entry (Kafka's 34-byte layout) and what read_committed
/// fetches return so consumers drop its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// The offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the abort marker was written.
    pub last_stable_offset: i64,
}

/// Sequence, offsets and timestamp of one of a producer's recent batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most `BATCHES_KEPT`.
    pub batches: VecDeque<BatchMeta>,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    pub txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            txn_first_offset: None,
        }
    }

    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    /// A new epoch forgets the old epoch's batches.
    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }
}

/// The producer fields of one batch about to be appended, with the offsets it will get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub last_offset_delta: i32,
    pub transactional: bool,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

impl ProducerBatch {
    pub(crate) fn from_info(info: &BatchInfo, first_offset: i64) -> ProducerBatch {
        ProducerBatch {
            producer_id: info.producer_id,
            epoch: info.producer_epoch,
            first_seq: info.base_sequence,
            last_offset_delta: info.last_offset_delta,
            transactional: info.is_transactional(),
            first_offset,
            last_offset: first_offset + i64::from(info.last_offset_delta),
            max_timestamp: info.max_timestamp,
        }
    }

    fn last_seq(&self) -> i32 {
        increment_sequence(self.first_seq, self.last_offset_delta)
    }

    fn has_sequence(&self) -> bool {
        self.first_seq != NO_SEQUENCE
    }
}

/// `seq + delta`, wrapping to 0 after `i32::MAX` as producers do.
pub(crate) fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

/// Why producer state refuses a write; the log adds the partition and maps it to a `LogError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    OutOfOrder { producer_id: i64, expected: i32, found: i32 },
    Epoch { producer_id: i64, epoch: i16, current: i16 },
    TxnState { producer_id: i64, reason: &'static str },
    CoordinatorFenced { producer_id: i64, epoch: i32, current: i32 },
}

/// The outcome of checking an append's batches.
#[derive(Debug)]
pub(crate) enum Checked {
    /// Write the batches, then apply these entries.
    Write(Staged),
    /// The append repeats a recent batch: answer with its offsets and write nothing.
    Duplicate(BatchMeta),
}

/// Entries as they will be once the checked write is in the log.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    entries: HashMap<i64, ProducerEntry>,
}

/// A transaction that a marker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub aborted: bool,
}

/// Every producer's state in one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
    /// First offset of each open transaction, to its producer id.
    open: BTreeMap<i64, i64>,
}

impl ProducerStates {
    /// Checks the batches of one append, in order, each against the state the earlier ones leave.
    pub(crate) fn check(&self, batches: &[ProducerBatch]) -> Result<Checked, Refusal> {
        let mut staged = Staged::default();
        for batch in batches.iter().filter(|b| b.producer_id != NO_PRODUCER_ID) {
            let current = staged.entries.get(&batch.producer_id).or_else(|| self.producers.get(&batch.producer_id));
            if let Some(duplicate) = current.and_then(|entry| find_duplicate(entry, batch)) {
                return Ok(Checked::Duplicate(duplicate));
            }
            let next = check_batch(current, batch)?;
            staged.entries.insert(batch.producer_id, next);
        }
        Ok(Checked::Write(staged))
    }

    /// Applies the entries of a checked write that is now in the log.
    pub(crate) fn apply(&mut self, staged: Staged) {
        for (producer_id, entry) in staged.entries {
            self.set_entry(producer_id, entry);
        }
    }

    fn set_entry(&mut self, producer_id: i64, entry: ProducerEntry) {
        let old_txn = self.producers.get(&producer_id).and_then(|e| e.txn_first_offset);
        if old_txn != entry.txn_first_offset {
            if let Some(first) = old_txn {
                self.open.remove(&first);
            }
            if let Some(first) = entry.txn_first_offset {
                self.open.insert(first, producer_id);
            }
        }
        self.producers.insert(producer_id, entry);
    }

    /// Applies a batch read back from the log (recovery): no checks, the log already holds it.
    pub(crate) fn replay_batch(&mut self, batch: &ProducerBatch) {
        if batch.producer_id == NO_PRODUCER_ID {
            return;
        }
        let current = self.producers.get(&batch.producer_id);
        let entry = next_entry(current, batch);
        self.set_entry(batch.producer_id, entry);
    }

    /// Checks a transaction marker for `producer_id`.
    pub(crate) fn check_marker(&self, producer_id: i64, epoch: i16, coordinator_epoch: i32) -> Result<(), Refusal> {
        let Some(entry) = self.producers.get(&producer_id) else { return Ok(()) };
        if epoch < entry.epoch {
            return Err(Refusal::Epoch { producer_id, epoch, current: entry.epoch });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(Refusal::CoordinatorFenced {
                producer_id,
                epoch: coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Applies a marker written at `offset`: the producer's transaction in this partition ends.
    pub(crate) fn apply_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        control: ControlType,
        coordinator_epoch: i32,
        offset: i64,
        timestamp: i64,
    ) -> CompletedTxn {
        let mut entry = self.producers.get(&producer_id).cloned().unwrap_or_else(|| ProducerEntry::new(epoch));
        entry.set_epoch(epoch);
        // A marker for a transaction that wrote nothing here still ends it, at the marker itself.
        let first_offset = entry.txn_first_offset.take().unwrap_or(offset);
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_timestamp = timestamp;
        self.set_entry(producer_id, entry);
        CompletedTxn { producer_id, first_offset, last_offset: offset, aborted: control == ControlType::Abort }
    }

    /// The first offset of the oldest open transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.open.keys().next().copied()
    }

    pub(crate) fn infos(&self) -> Vec<ProducerInfo> {
        self.producers
            .iter()
            .map(|(&producer_id, e)| ProducerInfo {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.last_seq().unwrap_or(-1),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect()
    }

    /// Removes producers without an open transaction whose last write is older than `now_ms - expiration_ms`.
    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let horizon = now_ms.saturating_sub(expiration_ms);
        let before = self.producers.len();
        self.producers.retain(|_, e| e.txn_first_offset.is_some() || e.last_timestamp >= horizon);
        before - self.producers.len()
    }

    /// The snapshot file's bytes: magic, CRC-32C of the rest, then the entries.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 64);
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (&producer_id, e) in &self.producers {
            body.extend_from_slice(&producer_id.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(body.len() + 8);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot taken at offset `at`; `None` if it is torn, not a snapshot, or names an offset at or
    /// beyond `at` (a snapshot only describes the log below it).
    pub(crate) fn decode(bytes: &[u8], at: i64) -> Option<ProducerStates> {
        let body = bytes.strip_prefix(SNAPSHOT_MAGIC)?;
        let (crc, body) = body.split_first_chunk::<4>()?;
        if u32::from_be_bytes(*crc) != crc32c::crc32c(body) {
            return None;
        }
        let mut r = Reader(body);
        let count = r.u32()?;
        let mut states = ProducerStates::default();
        for _ in 0..count {
            let producer_id = r.i64()?;
            let epoch = r.i16()?;
            let coordinator_epoch = r.i32()?;
            let last_timestamp = r.i64()?;
            let txn_first_offset = match r.i64()? {
                -1 => None,
                offset if (0..at).contains(&offset) => Some(offset),
                _ => return None,
            };
            let n = r.u8()?;
            if usize::from(n) > BATCHES_KEPT {
                return None;
            }
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                let meta = BatchMeta {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: r.i64()?,
                };
                if !(0 <= meta.first_offset && meta.first_offset <= meta.last_offset && meta.last_offset < at) {
                    return None;
                }
                batches.push_back(meta);
            }
            states.set_entry(
                producer_id,
                ProducerEntry { epoch, batches, last_timestamp, coordinator_epoch, txn_first_offset },
            );
        }
        r.0.is_empty().then_some(states)
    }
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"RPS1";

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

/// The recent batch this one repeats, if any: same epoch, same sequence range.
fn find_duplicate(entry: &ProducerEntry, batch: &ProducerBatch) -> Option<BatchMeta> {
    if !batch.has_sequence() || entry.epoch != batch.epoch {
        return None;
    }
    let last_seq = batch.last_seq();
    entry.batches.iter().find(|b| b.first_seq == batch.first_seq && b.last_seq == last_seq).copied()
}

/// Checks `batch` against the producer's entry and returns the entry after it.
fn check_batch(current: Option<&ProducerEntry>, batch: &ProducerBatch) -> Result<ProducerEntry, Refusal> {
    let producer_id = batch.producer_id;
    if let Some(entry) = current {
        if batch.epoch < entry.epoch {
            return Err(Refusal::Epoch { producer_id, epoch: batch.epoch, current: entry.epoch });
        }
        if batch.has_sequence() {
            if batch.epoch != entry.epoch {
                if batch.first_seq != 0 {
                    return Err(Refusal::OutOfOrder { producer_id, expected: 0, found: batch.first_seq });
                }
            } else if let Some(last) = entry.last_seq() {
                if !in_sequence(last, batch.first_seq) {
                    let expected = increment_sequence(last, 1);
                    return Err(Refusal::OutOfOrder { producer_id, expected, found: batch.first_seq });
                }
            }
        }
        if entry.txn_first_offset.is_some() && !batch.transactional {
            return Err(Refusal::TxnState {
                producer_id,
                reason: "a non-transactional write while a transaction is open",
            });
        }
    }
    Ok(next_entry(current, batch))
}

/// The producer's entry once `batch` is written.
fn next_entry(current: Option<&ProducerEntry>, batch: &ProducerBatch) -> ProducerEntry {
    let mut entry = current.cloned().unwrap_or_else(|| ProducerEntry::new(batch.epoch));
    entry.set_epoch(batch.epoch);
    if batch.has_sequence() {
        if entry.batches.len() == BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq(),
            first_offset: batch.first_offset,
            last_offset: batch.last_offset,
            timestamp: batch.max_timestamp,
        });
    }
    entry.last_timestamp = batch.max_timestamp;
    if batch.transactional && entry.txn_first_offset.is_none() {
        entry.txn_first_offset = Some(batch.first_offset);
    }
    entry
}

/// The `.txnindex` entry layout: version (i16, 0), producer id, first offset, last offset, last stable offset.
pub(crate) const TXN_ENTRY_BYTES: usize = 34;

pub(crate) fn encode_aborted(txn: &AbortedTxn) -> [u8; TXN_ENTRY_BYTES] {
    let mut out = [0u8; TXN_ENTRY_BYTES];
    out[2..10].copy_from_slice(&txn.producer_id.to_be_bytes());
    out[10..18].copy_from_slice(&txn.first_offset.to_be_bytes());
    out[18..26].copy_from_slice(&txn.last_offset.to_be_bytes());
    out[26..34].copy_from_slice(&txn.last_stable_offset.to_be_bytes());
    out
}

/// The whole entries of a `.txnindex` file; a torn tail is ignored (recovery rewrites what it replays).
pub(crate) fn decode_aborted(bytes: &[u8]) -> Vec<AbortedTxn> {
    bytes
        .chunks_exact(TXN_ENTRY_BYTES)
        .filter(|c| c[0..2] == [0, 0])
        .map(|c| {
            let i64_at = |p: usize| i64::from_be_bytes(c[p..p + 8].try_into().expect("8 bytes"));
            AbortedTxn {
                producer_id: i64_at(2),
                first_offset: i64_at(10),
                last_offset: i64_at(18),
                last_stable_offset: i64_at(26),
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "producer_tests.rs"]
mod tests;
