//! Walking the batches of a segment file: a positional buffered reader, a header cursor for the fetch path, and
//! the validating scan that recovery uses.
//!
//! The fetch path trusts what the log wrote but still checks every header's bounds, magic and offset order, so a
//! corrupt file surfaces as `LogError::Corrupt` rather than as bytes sent to a consumer. The recovery scan checks
//! everything (bounds, magic, CRC-32C, increasing offsets, record count) and streams the CRC so a garbage length never
//! makes it read a huge batch into memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::batch::{check_stored_record_count, BatchHeader, ATTRIBUTES_POS, BATCH_LENGTH_MIN, MAGIC_V2};
use crate::error::{io_err, LogError};
use crate::segment::IndexBuilder;
use crate::BATCH_HEADER_BYTES;

/// A `Read + Seek` view of `file[..end]` through positional reads, so many readers can share one `File`.
pub(crate) struct PreadReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl<'a> PreadReader<'a> {
    pub(crate) fn new(file: &'a File, pos: u64, end: u64) -> PreadReader<'a> {
        PreadReader { file, pos, end }
    }
}

impl Read for PreadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.end.saturating_sub(self.pos) as usize);
        if n == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += read as u64;
        Ok(read)
    }
}

impl Seek for PreadReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.end.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// Reads batch headers one after another from a position known to start a batch.
pub(crate) struct BatchCursor<'a> {
    reader: BufReader<PreadReader<'a>>,
    path: &'a Path,
    pos: u64,
    end: u64,
}

impl<'a> BatchCursor<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, start: u64, end: u64, buffer_bytes: usize) -> BatchCursor<'a> {
        let reader = BufReader::with_capacity(buffer_bytes, PreadReader::new(file, start, end));
        BatchCursor { reader, path, pos: start, end }
    }

    /// The next batch's position and header, or `None` at the end of the data.
    pub(crate) fn next_header(&mut self) -> Result<Option<(u64, BatchHeader)>, LogError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let corrupt = |reason: &str| LogError::Corrupt {
            path: self.path.to_path_buf(),
            position: self.pos,
            reason: reason.to_string(),
        };
        if self.end - self.pos < BATCH_HEADER_BYTES as u64 {
            return Err(corrupt("partial batch header at the end of the segment"));
        }
        let mut buf = [0u8; BATCH_HEADER_BYTES];
        self.reader.read_exact(&mut buf).map_err(io_err("read", self.path))?;
        let header = BatchHeader::parse(&buf).expect("61 bytes");
        let total = header.total_bytes() as u64;
        if header.magic != MAGIC_V2 || header.batch_length < BATCH_LENGTH_MIN || total > self.end - self.pos {
            return Err(corrupt("invalid batch header"));
        }
        let skip = (total - BATCH_HEADER_BYTES as u64) as i64;
        self.reader.seek_relative(skip).map_err(io_err("seek", self.path))?;
        let position = self.pos;
        self.pos += total;
        Ok(Some((position, header)))
    }
}

/// Reads the batch at the reader's position and checks it completely. `Ok(Err(reason))` is an invalid batch; the
/// outer error is an I/O failure. `remaining` is the number of bytes left in the file from this position.
fn check_batch(
    reader: &mut BufReader<PreadReader<'_>>,
    remaining: u64,
    expected: Expected,
    path: &Path,
) -> Result<Result<BatchHeader, &'static str>, LogError> {
    if remaining < BATCH_HEADER_BYTES as u64 {
        return Ok(Err("partial batch header"));
    }
    let mut buf = [0u8; BATCH_HEADER_BYTES];
    reader.read_exact(&mut buf).map_err(io_err("read", path))?;
    let header = BatchHeader::parse(&buf).expect("61 bytes");
    if header.magic != MAGIC_V2 {
        return Ok(Err("invalid magic"));
    }
    if header.batch_length < BATCH_LENGTH_MIN || header.total_bytes() as u64 > remaining {
        return Ok(Err("batch length outside the file"));
    }
    match expected {
        Expected::Exactly(offset) if header.base_offset != offset => {
            return Ok(Err("base offset differs from the index entry"));
        }
        Expected::AtLeast(offset) if header.base_offset < offset => {
            return Ok(Err("base offset goes backwards"));
        }
        _ => {}
    }
    if check_stored_record_count(&header, 0).is_err() {
        return Ok(Err("inconsistent record count"));
    }
    let mut crc = crc32c::crc32c(&buf[ATTRIBUTES_POS..]);
    let mut left = header.total_bytes() - BATCH_HEADER_BYTES;
    while left > 0 {
        let chunk = reader.fill_buf().map_err(io_err("read", path))?;
        if chunk.is_empty() {
            return Ok(Err("file ended inside a batch"));
        }
        let n = chunk.len().min(left);
        crc = crc32c::crc32c_append(crc, &chunk[..n]);
        reader.consume(n);
        left -= n;
    }
    if crc != header.crc {
        return Ok(Err("crc mismatch"));
    }
    Ok(Ok(header))
}

/// The base offset a batch must have: exactly a known one (an index entry or the previous batch's next offset), or,
/// in a closed segment that compaction may have rewritten, any offset after the previous batch.
#[derive(Debug, Clone, Copy)]
enum Expected {
    Exactly(i64),
    AtLeast(i64),
}

/// Buffer size of the recovery scan.
const SCAN_BUFFER_BYTES: usize = 1 << 20;

/// Whether the batch at `position` is whole and valid with base offset `expected_offset`.
pub(crate) fn batch_is_valid_at(
    file: &File,
    path: &Path,
    position: u64,
    end: u64,
    expected_offset: i64,
) -> Result<bool, LogError> {
    if position >= end {
        return Ok(false);
    }
    let mut reader = BufReader::with_capacity(64 * 1024, PreadReader::new(file, position, end));
    Ok(check_batch(&mut reader, end - position, Expected::Exactly(expected_offset), path)?.is_ok())
}

/// What a recovery scan of one segment found.
#[derive(Debug)]
pub(crate) struct ScanOutcome {
    /// Position just after the last valid batch.
    pub valid_end: u64,
    /// Offset after the last valid batch.
    pub next_offset: i64,
    pub offset_entries: Vec<crate::offset_index::OffsetEntry>,
    pub time_entries: Vec<crate::time_index::TimeEntry>,
    pub bytes_scanned: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub invalid: Option<&'static str>,
}

/// Validates the batches of `file[start..end]`, the first expected at `expected_offset`, feeding `builder` to
/// rebuild the indexes. With `gaps_below`, offsets may jump forward (a compacted segment) but must stay below it;
/// without, each batch starts exactly at the previous one's next offset. With `resumed`, the first batch already has its index entries (the scan resumes at an
/// offset index entry) and only contributes its timestamp.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_batches(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    expected_offset: i64,
    gaps_below: Option<i64>,
    builder: &mut IndexBuilder,
    resumed: bool,
) -> Result<ScanOutcome, LogError> {
    let mut reader = BufReader::with_capacity(SCAN_BUFFER_BYTES, PreadReader::new(file, start, end));
    let mut outcome = ScanOutcome {
        valid_end: start,
        next_offset: expected_offset,
        offset_entries: Vec::new(),
        time_entries: Vec::new(),
        bytes_scanned: 0,
        invalid: None,
    };
    while outcome.valid_end < end {
        let position = outcome.valid_end;
        let expected = match gaps_below {
            Some(_) => Expected::AtLeast(outcome.next_offset),
            None => Expected::Exactly(outcome.next_offset),
        };
        let header = match check_batch(&mut reader, end - position, expected, path)? {
            Ok(header) if gaps_below.is_some_and(|limit| header.last_offset() >= limit) => {
                outcome.invalid = Some("batch offsets reach the next segment");
                break;
            }
            Ok(header) => header,
            Err(reason) => {
                outcome.invalid = Some(reason);
                break;
            }
        };
        let size = header.total_bytes() as u64;
        if resumed && position == start {
            builder.observe_timestamp(header.base_offset, header.max_timestamp);
        } else {
            let (offset_entry, time_entry) = builder.on_batch(header.base_offset, position, size, header.max_timestamp);
            outcome.offset_entries.extend(offset_entry);
            outcome.time_entries.extend(time_entry);
        }
        outcome.valid_end += size;
        outcome.next_offset = header.last_offset() + 1;
    }
    outcome.bytes_scanned = reader.into_inner().pos - start;
    Ok(outcome)
}
