//! Cluster metadata as a state machine: an append-only log of records applied
//! to an in-memory image.
//!
//! Every change (a topic created, a topic deleted) is first appended to the
//! metadata log and fsynced, then applied to the image; on start the log is
//! replayed. A change is therefore either wholly before or wholly after a crash.
//! On one node the log is a local file; the cluster replaces the file with the
//! replicated log of a consensus group and keeps the records and the image.
//!
//! File format: one record per line, `<crc32c as 8 hex digits> <json>\n`, where
//! the CRC covers the JSON text. Replay stops at the first line that is torn or
//! fails its CRC and truncates the file there: only the last append can be torn,
//! and it was never acknowledged.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One metadata change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic with its id, partition count and topic-level configs.
    Topic { name: String, id: Uuid, partitions: i32, configs: BTreeMap<String, String> },
    /// A topic removed by id.
    RemoveTopic { id: Uuid },
}

/// What the image knows about a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// The current metadata: the result of applying every record in order.
#[derive(Clone, Debug, Default)]
pub struct MetadataImage {
    topics: BTreeMap<String, TopicMeta>,
    ids: BTreeMap<Uuid, String>,
}

impl MetadataImage {
    /// Applies one record. Records are validated before they are appended, so
    /// applying never fails.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::Topic { name, id, partitions, configs } => {
                let meta = TopicMeta { name: name.clone(), id: *id, partitions: *partitions, configs: configs.clone() };
                if let Some(old) = self.topics.insert(name.clone(), meta) {
                    self.ids.remove(&old.id);
                }
                self.ids.insert(*id, name.clone());
            }
            MetadataRecord::RemoveTopic { id } => {
                if let Some(name) = self.ids.remove(id) {
                    self.topics.remove(&name);
                }
            }
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicMeta> {
        self.ids.get(id).and_then(|name| self.topics.get(name))
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicMeta> {
        self.topics.values()
    }
}

/// Metadata log errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    #[error("metadata log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The local metadata log plus the image it produces.
pub struct MetadataStore {
    path: PathBuf,
    file: File,
    image: MetadataImage,
    cluster_id: String,
}

impl MetadataStore {
    /// Opens (or creates) `<data_dir>/__cluster_metadata/`, replays the log and
    /// truncates a torn last record.
    pub fn open(data_dir: &Path) -> Result<MetadataStore, MetaError> {
        let dir = data_dir.join("__cluster_metadata");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MetaError::Io { path: path.clone(), source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let cluster_id = load_cluster_id(&dir).map_err(io(&dir))?;
        let path = dir.join("metadata.log");
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io(&path))?;
        let (image, valid_len) = replay(&file).map_err(io(&path))?;
        let file_len = file.metadata().map_err(io(&path))?.len();
        if valid_len < file_len {
            tracing::warn!(path = %path.display(), valid_len, file_len, "truncating torn metadata record");
            file.set_len(valid_len).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        file.flush().map_err(io(&path))?;
        Ok(MetadataStore { path, file, image, cluster_id })
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Appends `record` durably (write + fdatasync), then applies it.
    pub fn append(&mut self, record: MetadataRecord) -> Result<(), MetaError> {
        let json = serde_json::to_string(&record).expect("metadata records serialize");
        let line = format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes()));
        let io = |source| MetaError::Io { path: self.path.clone(), source };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(|source| MetaError::Io { path: self.path.clone(), source })?;
        self.image.apply(&record);
        Ok(())
    }
}

/// Replays every intact record; returns the image and the byte length of the
/// intact prefix.
fn replay(file: &File) -> std::io::Result<(MetadataImage, u64)> {
    let mut image = MetadataImage::default();
    let mut reader = BufReader::new(file);
    let mut valid_len = 0u64;
    let mut line = String::new();
    loop {
        line.clear();
        let n = match reader.read_line(&mut line) {
            Ok(n) => n,
            // A torn write can leave bytes that are not UTF-8: the end of the log.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => break,
            Err(e) => return Err(e),
        };
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        match parse_line(line.trim_end_matches('\n')) {
            Some(record) => image.apply(&record),
            None => break,
        }
        valid_len += n as u64;
    }
    Ok((image, valid_len))
}

fn parse_line(line: &str) -> Option<MetadataRecord> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc != crc32c::crc32c(json.as_bytes()) {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Reads the cluster id, creating one on first start (kept in `cluster.id`).
fn load_cluster_id(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("cluster.id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Ok(_) | Err(_) => {
            let id = Uuid::new_v4().simple().to_string()[..22].to_string();
            let tmp = dir.join("cluster.id.tmp");
            let mut f = File::create(&tmp)?;
            f.write_all(id.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            File::open(dir)?.sync_all()?;
            Ok(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: i32) -> MetadataRecord {
        MetadataRecord::Topic { name: name.into(), id: Uuid::new_v4(), partitions, configs: BTreeMap::new() }
    }

    #[test]
    fn replays_records_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open(dir.path()).unwrap();
        let cluster_id = store.cluster_id().to_string();
        store.append(topic("a", 1)).unwrap();
        store.append(topic("b", 3)).unwrap();
        let a_id = store.image().topic("a").unwrap().id;
        store.append(MetadataRecord::RemoveTopic { id: a_id }).unwrap();
        drop(store);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert!(store.image().topic("a").is_none());
        assert_eq!(store.image().topic("b").unwrap().partitions, 3);
        assert_eq!(store.cluster_id(), cluster_id);
    }

    #[test]
    fn torn_last_record_is_dropped_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open(dir.path()).unwrap();
        store.append(topic("kept", 2)).unwrap();
        drop(store);
        let path = dir.path().join("__cluster_metadata/metadata.log");
        let intact = std::fs::metadata(&path).unwrap().len();
        // A record cut short mid-write, then one with a flipped CRC.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"0badc0de {\"type\":\"Topic\",\"na").unwrap();
        drop(f);
        let mut store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), intact);
        assert!(store.image().topic("kept").is_some());
        store.append(topic("after", 1)).unwrap();
        drop(store);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert!(store.image().topic("after").is_some());
    }

    #[test]
    fn corrupt_crc_stops_replay() {
        let line = "00000000 {\"type\":\"RemoveTopic\",\"id\":\"00000000-0000-0000-0000-000000000000\"}";
        assert!(parse_line(line).is_none());
    }
}
