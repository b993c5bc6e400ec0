//! `PacedWriter`: how the log cleaner writes a cleaned segment without hurting appends on the same disk.
//!
//! Writes are buffered, and each buffer is charged to the cleaner's [`Throttle`] before it goes to the kernel. Every
//! `WRITEBACK_CHUNK_BYTES` the writer also asks the kernel to write that chunk to disk and waits for it
//! (`sync_file_range`). Without that, a cleaned segment of hundreds of megabytes stays dirty in the page cache until the
//! final fdatasync writes it in one burst, and on ext4 a journal commit waits for the data blocks its transaction
//! allocated, so the flusher's small fdatasyncs of the partitions being produced to would queue behind the whole
//! burst. Written back chunk by chunk, at most one chunk is ever in flight and the final fdatasync has little left to
//! do. `sync_file_range` makes nothing durable by itself (no metadata, no disk cache flush): the caller still
//! fdatasyncs the file before relying on it.

use std::fs::File;
use std::io::Write;

use crate::throttle::Throttle;

/// The buffer in front of the file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Bytes handed to the kernel between two write-backs: the most any one write-back has to wait for.
pub(crate) const WRITEBACK_CHUNK_BYTES: u64 = 1 << 20;

/// A buffered, throttled writer that writes its file back to disk in bounded chunks.
pub(crate) struct PacedWriter<'a> {
    file: File,
    buffer: Vec<u8>,
    /// Bytes handed to the kernel.
    written: u64,
    /// Bytes written back to disk (a prefix of `written`).
    written_back: u64,
    throttle: &'a Throttle,
}

impl<'a> PacedWriter<'a> {
    /// Writes `file` from its current position, which must be its start.
    pub(crate) fn new(file: File, throttle: &'a Throttle) -> PacedWriter<'a> {
        PacedWriter { file, buffer: Vec::with_capacity(WRITE_BUFFER_BYTES), written: 0, written_back: 0, throttle }
    }

    /// Hands the buffered bytes to the kernel and returns the file; the caller fdatasyncs it.
    pub(crate) fn into_file(mut self) -> std::io::Result<File> {
        self.drain()?;
        Ok(self.file)
    }

    fn drain(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.throttle.acquire(self.buffer.len() as u64);
        self.file.write_all(&self.buffer)?;
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        if self.written - self.written_back >= WRITEBACK_CHUNK_BYTES {
            write_back(&self.file, self.written_back, self.written - self.written_back)?;
            self.written_back = self.written;
        }
        Ok(())
    }
}

impl Write for PacedWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.buffer.len() + bytes.len() > WRITE_BUFFER_BYTES {
            self.drain()?;
        }
        // A batch larger than the buffer goes through it in buffer-sized pieces, each throttled.
        let taken = bytes.len().min(WRITE_BUFFER_BYTES - self.buffer.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.drain()
    }
}

/// Writes `len` bytes of `file` from `offset` back to disk and waits until they are written.
#[cfg(target_os = "linux")]
fn write_back(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: sync_file_range only reads the descriptor, which `file` keeps open for the duration of the call.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Other systems have no ranged write-back; the final fdatasync writes everything.
#[cfg(not(target_os = "linux"))]
fn write_back(_file: &File, _offset: u64, _len: u64) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::throttle::{Clock, BURST};

    /// A clock that only moves when slept on.
    #[derive(Default)]
    struct ManualClock(parking_lot::Mutex<Duration>);

    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            *self.0.lock()
        }
        fn sleep(&self, duration: Duration) {
            *self.0.lock() += duration;
        }
    }

    // Goal: what goes in comes out, whatever the sizes of the writes (small ones, ones larger than the buffer), and
    // every byte written is charged to the throttle. Method: write 5.5 MiB in mixed pieces at 10 MB/s on a manual
    // clock; the file holds the same bytes and the clock advanced by the bytes' cost at that rate.
    #[test]
    fn writes_every_byte_and_charges_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let clock = Arc::new(ManualClock::default());
        let throttle = Throttle::with_clock(10_000_000.0, BURST, clock.clone());
        let mut writer = PacedWriter::new(File::create(&path).unwrap(), &throttle);
        let mut expected = Vec::new();
        let mut seed = 0u8;
        for size in [1usize, 100, 70_000, 3 << 20, 5, 1 << 20, 2 << 19].iter().cycle().take(9) {
            let piece: Vec<u8> = (0..*size).map(|i| seed.wrapping_add(i as u8)).collect();
            seed = seed.wrapping_add(17);
            writer.write_all(&piece).unwrap();
            expected.extend_from_slice(&piece);
        }
        let file = writer.into_file().unwrap();
        file.sync_data().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        let cost = Duration::from_secs_f64(expected.len() as f64 / 10_000_000.0);
        let elapsed = clock.now();
        let (over, under) = (elapsed.saturating_sub(cost), cost.saturating_sub(elapsed));
        assert!(
            over <= Duration::from_micros(1) && under <= Duration::from_millis(1),
            "clock {elapsed:?}, cost {cost:?}"
        );
        assert_eq!(throttle.throttled(), elapsed);
    }
}
