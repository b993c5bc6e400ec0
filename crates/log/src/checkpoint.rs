//! Checkpoint files and the clean-shutdown marker of a log directory, and atomic file replacement.
//!
//! Checkpoints use Kafka's text format so operators and tools recognise them: line 1 the version (`0`), line 2 the
//! number of entries, then one `topic partition offset` line per partition. The clean-shutdown marker uses the same
//! framing with more columns per partition (`topic partition log_end_offset active_segment_bytes first_append_ms`),
//! which is everything a clean start needs to open a partition without reading its `.log` files. Every file is
//! replaced atomically: write `name.tmp`, fsync it, rename it over `name`, fsync the directory.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::error::{io_err, LogError};

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Each compacted partition's first dirty offset: where the part the cleaner has not compacted yet starts.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";

const VERSION: &str = "0";

/// A partition's row: topic, partition, and the numeric columns.
pub type Row = (String, i32, Vec<i64>);

/// Renders rows in the checkpoint text format.
pub fn format_rows(rows: &[Row]) -> String {
    let mut out = format!("{VERSION}\n{}\n", rows.len());
    for (topic, partition, values) in rows {
        out.push_str(&format!("{topic} {partition}"));
        for v in values {
            out.push_str(&format!(" {v}"));
        }
        out.push('\n');
    }
    out
}

/// Parses the checkpoint text format with `columns` numbers after topic and partition. Errors carry the line number.
pub fn parse_rows(text: &str, columns: usize) -> Result<Vec<Row>, (usize, String)> {
    let mut lines = text.lines();
    match lines.next() {
        Some(VERSION) => {}
        other => return Err((1, format!("unsupported version {other:?}"))),
    }
    let count: usize = lines.next().and_then(|l| l.trim().parse().ok()).ok_or((2, "bad entry count".to_string()))?;
    // The count is only compared, never used to size anything.
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let line_number = i + 3;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 2 + columns {
            return Err((line_number, format!("expected {} fields, found {}", 2 + columns, fields.len())));
        }
        let partition = fields[1].parse().map_err(|_| (line_number, "bad partition".to_string()))?;
        let values = fields[2..]
            .iter()
            .map(|f| f.parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| (line_number, "bad number".to_string()))?;
        rows.push((fields[0].to_string(), partition, values));
    }
    if rows.len() != count {
        return Err((2, format!("header says {count} entries, found {}", rows.len())));
    }
    Ok(rows)
}

/// Reads `dir/name` as rows; a missing file is `None`.
pub(crate) fn read_rows(dir: &Path, name: &str, columns: usize) -> Result<Option<Vec<Row>>, LogError> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    parse_rows(&text, columns).map(Some).map_err(|(line, reason)| LogError::Malformed { path, line, reason })
}

/// Reads a `topic partition offset` checkpoint into a map; missing means empty.
pub(crate) fn read_offsets(dir: &Path, name: &str) -> Result<HashMap<(String, i32), i64>, LogError> {
    let rows = read_rows(dir, name, 1)?.unwrap_or_default();
    Ok(rows.into_iter().map(|(topic, partition, values)| ((topic, partition), values[0])).collect())
}

/// Replaces `dir/name` with `contents` atomically and durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(contents).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    sync_dir(dir)
}

/// Fsyncs a directory, making file creations, renames and deletions in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))
}

/// Removes `dir/name` durably if it exists.
pub(crate) fn remove_durably(dir: &Path, name: &str) -> Result<(), LogError> {
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_roundtrip_in_kafka_format() {
        let rows = vec![("orders".to_string(), 0, vec![42]), ("my-topic.v2".to_string(), 11, vec![7])];
        let text = format_rows(&rows);
        assert_eq!(text, "0\n2\norders 0 42\nmy-topic.v2 11 7\n");
        assert_eq!(parse_rows(&text, 1).unwrap(), rows);
        assert_eq!(parse_rows("0\n0\n", 1).unwrap(), vec![]);
    }

    #[test]
    fn malformed_files_are_errors() {
        assert_eq!(parse_rows("1\n0\n", 1).unwrap_err().0, 1);
        assert_eq!(parse_rows("0\nx\n", 1).unwrap_err().0, 2);
        assert_eq!(parse_rows("0\n1\nt 0\n", 1).unwrap_err().0, 3);
        assert_eq!(parse_rows("0\n2\nt 0 5\n", 1).unwrap_err().0, 2);
        assert_eq!(parse_rows("0\n1\nt 0 five\n", 1).unwrap_err().0, 3);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "cp", b"one").unwrap();
        write_atomic(dir.path(), "cp", b"two").unwrap();
        assert_eq!(std::fs::read(dir.path().join("cp")).unwrap(), b"two");
        assert!(!dir.path().join("cp.tmp").exists());
        let err = read_rows(dir.path(), "cp", 1).unwrap_err();
        assert!(matches!(err, LogError::Malformed { line: 1, .. }));
        remove_durably(dir.path(), "cp").unwrap();
        remove_durably(dir.path(), "cp").unwrap();
        assert_eq!(read_rows(dir.path(), "cp", 1).unwrap(), None);
    }
}
