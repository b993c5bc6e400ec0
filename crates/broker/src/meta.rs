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

use crate::authz::AclBinding;
use crate::quota::QuotaEntity;
use crate::sasl::scram::{ScramCredential, ScramMechanism};

/// One metadata change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic with its id, partition count and topic-level configs.
    Topic { name: String, id: Uuid, partitions: i32, configs: BTreeMap<String, String> },
    /// A topic removed by id.
    RemoveTopic { id: Uuid },
    /// A topic's overrides replaced as a whole (IncrementalAlterConfigs,
    /// AlterConfigs).
    TopicConfigChanged { id: Uuid, configs: BTreeMap<String, String> },
    /// Dynamic broker settings replaced as a whole: for one node, or the
    /// cluster-wide default when `node` is `None`.
    BrokerConfigChanged { node: Option<i32>, configs: BTreeMap<String, String> },
    /// A topic's partition count raised (CreatePartitions); absolute, so
    /// replaying it twice changes nothing.
    PartitionsCreated { id: Uuid, partitions: i32 },
    /// Producer ids below `next_producer_id` are handed out: the broker
    /// reserves a block of ids with this record before it hands out the
    /// first of them, so no id is given twice, whatever the crash. Absolute;
    /// the image keeps the largest value.
    ProducerIds { next_producer_id: i64 },
    /// A user's SCRAM credential for one mechanism, set whole
    /// (AlterUserScramCredentials upsertion): salt, iterations, StoredKey
    /// and ServerKey, never the password.
    UserScramCredential { user: String, mechanism: ScramMechanism, credential: ScramCredential },
    /// A user's SCRAM credential for one mechanism removed.
    RemoveUserScramCredential { user: String, mechanism: ScramMechanism },
    /// One client quota of one entity set to `value`, or removed when
    /// `value` is `None` (Kafka's ClientQuotaRecord). Absolute.
    ClientQuota { entity: QuotaEntity, key: String, value: Option<f64> },
    /// An ACL binding created under `id` (CreateAcls); absolute.
    AclCreated { id: Uuid, acl: AclBinding },
    /// The ACL binding with `id` removed (DeleteAcls).
    AclRemoved { id: Uuid },
}

/// SCRAM credentials per user and mechanism.
pub type ScramUsers = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// What the image knows about a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// The current metadata: the result of applying every record in order.
///
/// Every record sets state absolutely (keyed by topic name or id, or by
/// broker), so applying a record a second time, or applying an older record
/// and then every later one again, gives the same image. Snapshot replay
/// relies on it (see [`MetadataStore::snapshot`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetadataImage {
    topics: BTreeMap<String, TopicMeta>,
    ids: BTreeMap<Uuid, String>,
    /// Dynamic broker settings per node id.
    node_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Dynamic cluster-wide default broker settings.
    cluster_configs: BTreeMap<String, String>,
    /// The first producer id not yet reserved.
    next_producer_id: i64,
    /// SCRAM credentials; a user without any is absent.
    scram: ScramUsers,
    /// Client quotas: each entity's keys and values.
    client_quotas: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
    /// ACL bindings by id.
    acls: BTreeMap<Uuid, AclBinding>,
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
            MetadataRecord::TopicConfigChanged { id, configs } => {
                if let Some(topic) = self.ids.get(id).and_then(|name| self.topics.get_mut(name)) {
                    topic.configs = configs.clone();
                }
            }
            MetadataRecord::BrokerConfigChanged { node: None, configs } => self.cluster_configs = configs.clone(),
            MetadataRecord::BrokerConfigChanged { node: Some(node), configs } => {
                if configs.is_empty() {
                    self.node_configs.remove(node);
                } else {
                    self.node_configs.insert(*node, configs.clone());
                }
            }
            MetadataRecord::PartitionsCreated { id, partitions } => {
                if let Some(topic) = self.ids.get(id).and_then(|name| self.topics.get_mut(name)) {
                    topic.partitions = topic.partitions.max(*partitions);
                }
            }
            MetadataRecord::ProducerIds { next_producer_id } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
            MetadataRecord::UserScramCredential { user, mechanism, credential } => {
                self.scram.entry(user.clone()).or_default().insert(*mechanism, credential.clone());
            }
            MetadataRecord::RemoveUserScramCredential { user, mechanism } => {
                if let Some(credentials) = self.scram.get_mut(user) {
                    credentials.remove(mechanism);
                    if credentials.is_empty() {
                        self.scram.remove(user);
                    }
                }
            }
            MetadataRecord::ClientQuota { entity, key, value: Some(value) } => {
                self.client_quotas.entry(entity.clone()).or_default().insert(key.clone(), *value);
            }
            MetadataRecord::ClientQuota { entity, key, value: None } => {
                if let Some(values) = self.client_quotas.get_mut(entity) {
                    values.remove(key);
                    if values.is_empty() {
                        self.client_quotas.remove(entity);
                    }
                }
            }
            MetadataRecord::AclCreated { id, acl } => {
                self.acls.insert(*id, acl.clone());
            }
            MetadataRecord::AclRemoved { id } => {
                self.acls.remove(id);
            }
        }
    }

    /// Records that rebuild this image from an empty one: the snapshot.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let topics = self.topics.values().map(|t| MetadataRecord::Topic {
            name: t.name.clone(),
            id: t.id,
            partitions: t.partitions,
            configs: t.configs.clone(),
        });
        let cluster = (!self.cluster_configs.is_empty())
            .then(|| MetadataRecord::BrokerConfigChanged { node: None, configs: self.cluster_configs.clone() });
        let nodes = self
            .node_configs
            .iter()
            .map(|(node, configs)| MetadataRecord::BrokerConfigChanged { node: Some(*node), configs: configs.clone() });
        let producer_ids = (self.next_producer_id > 0)
            .then_some(MetadataRecord::ProducerIds { next_producer_id: self.next_producer_id });
        let scram = self.scram.iter().flat_map(|(user, credentials)| {
            credentials.iter().map(|(mechanism, credential)| MetadataRecord::UserScramCredential {
                user: user.clone(),
                mechanism: *mechanism,
                credential: credential.clone(),
            })
        });
        let quotas = self.client_quotas.iter().flat_map(|(entity, values)| {
            values.iter().map(|(key, value)| MetadataRecord::ClientQuota {
                entity: entity.clone(),
                key: key.clone(),
                value: Some(*value),
            })
        });
        let acls = self.acls.iter().map(|(id, acl)| MetadataRecord::AclCreated { id: *id, acl: acl.clone() });
        topics.chain(cluster).chain(nodes).chain(producer_ids).chain(scram).chain(quotas).chain(acls).collect()
    }

    /// SCRAM credentials per user and mechanism.
    pub fn scram_users(&self) -> &ScramUsers {
        &self.scram
    }

    /// Every entity's client quotas.
    pub fn client_quotas(&self) -> &BTreeMap<QuotaEntity, BTreeMap<String, f64>> {
        &self.client_quotas
    }

    /// The ACL bindings by id.
    pub fn acls(&self) -> &BTreeMap<Uuid, AclBinding> {
        &self.acls
    }

    /// The first producer id no block has reserved yet.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Dynamic settings of broker `node`, or the cluster default for `None`.
    pub fn broker_configs(&self, node: Option<i32>) -> BTreeMap<String, String> {
        match node {
            None => self.cluster_configs.clone(),
            Some(node) => self.node_configs.get(&node).cloned().unwrap_or_default(),
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
    /// A snapshot is written whole and fsynced before it is renamed into
    /// place, so a bad line in it is corruption, not a torn write.
    #[error("metadata snapshot {path}: corrupt line {line}")]
    CorruptSnapshot { path: PathBuf, line: usize },
}

/// Kafka's default for `metadata.log.max.record.bytes.between.snapshots`.
pub const SNAPSHOT_AFTER_BYTES_DEFAULT: u64 = 20 * 1024 * 1024;

/// The local metadata log plus the image it produces.
///
/// Layout in `<data>/__cluster_metadata/`: `metadata.snapshot` (optional; the
/// image as records, same line format) and `metadata.log` (records written
/// since that snapshot). Once the log holds more than `snapshot_after_bytes`
/// the image is snapshotted and the log emptied.
pub struct MetadataStore {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    image: MetadataImage,
    cluster_id: String,
    /// Bytes in `metadata.log` now.
    log_bytes: u64,
    snapshot_after_bytes: u64,
}

const SNAPSHOT_FILE: &str = "metadata.snapshot";
const SNAPSHOT_TMP_FILE: &str = "metadata.snapshot.tmp";

impl MetadataStore {
    /// Opens (or creates) `<data_dir>/__cluster_metadata/` with the default
    /// snapshot bound.
    pub fn open(data_dir: &Path) -> Result<MetadataStore, MetaError> {
        MetadataStore::open_with(data_dir, SNAPSHOT_AFTER_BYTES_DEFAULT)
    }

    /// Opens (or creates) the store: loads the snapshot if there is one,
    /// replays the log on top of it and truncates a torn last record.
    pub fn open_with(data_dir: &Path, snapshot_after_bytes: u64) -> Result<MetadataStore, MetaError> {
        let dir = data_dir.join("__cluster_metadata");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MetaError::Io { path: path.clone(), source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let cluster_id = load_cluster_id(&dir).map_err(io(&dir))?;
        // A snapshot that never got renamed into place is discarded.
        let tmp = dir.join(SNAPSHOT_TMP_FILE);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp)(e)),
            _ => {}
        }
        let mut image = load_snapshot(&dir.join(SNAPSHOT_FILE))?;
        let path = dir.join("metadata.log");
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io(&path))?;
        let valid_len = replay(&file, &mut image).map_err(io(&path))?;
        let file_len = file.metadata().map_err(io(&path))?.len();
        if valid_len < file_len {
            tracing::warn!(path = %path.display(), valid_len, file_len, "truncating torn metadata record");
            file.set_len(valid_len).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        file.flush().map_err(io(&path))?;
        Ok(MetadataStore { dir, path, file, image, cluster_id, log_bytes: valid_len, snapshot_after_bytes })
    }

    /// The image stored under `data_dir`, read without opening the store for
    /// writing (nothing is created or repaired); `None` when there is none.
    /// `runnel serve --print-config` uses it to show dynamic settings.
    pub fn read_image(data_dir: &Path) -> Result<Option<MetadataImage>, MetaError> {
        let dir = data_dir.join("__cluster_metadata");
        if !dir.is_dir() {
            return Ok(None);
        }
        let mut image = load_snapshot(&dir.join(SNAPSHOT_FILE))?;
        let path = dir.join("metadata.log");
        match File::open(&path) {
            Ok(file) => {
                replay(&file, &mut image).map_err(|source| MetaError::Io { path: path.clone(), source })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(MetaError::Io { path, source }),
        }
        Ok(Some(image))
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// `<data>/__cluster_metadata/`, where the store keeps its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes in the metadata log since the last snapshot.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Appends `record` durably (write + fdatasync), then applies it. When the
    /// log has grown past its bound, snapshots the image afterwards; the
    /// record is durable either way, so a failed snapshot is logged and
    /// retried on the next append. See [`MetadataStore::append_all`].
    pub fn append(&mut self, record: MetadataRecord) -> Result<(), MetaError> {
        self.append_all(std::slice::from_ref(&record))
    }

    /// Appends `records` with one write and one fdatasync, then applies
    /// them in order (CreateAcls and DeleteAcls change many bindings at
    /// once). A crash may keep a prefix of them: each record stands alone.
    pub fn append_all(&mut self, records: &[MetadataRecord]) -> Result<(), MetaError> {
        if records.is_empty() {
            return Ok(());
        }
        let text: String = records.iter().map(encode_line).collect();
        let io = |source| MetaError::Io { path: self.path.clone(), source };
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(|source| MetaError::Io { path: self.path.clone(), source })?;
        self.log_bytes += text.len() as u64;
        for record in records {
            self.image.apply(record);
        }
        if self.log_bytes > self.snapshot_after_bytes {
            if let Err(e) = self.snapshot() {
                tracing::error!(error = %e, "metadata snapshot failed; the log keeps growing until one succeeds");
            }
        }
        Ok(())
    }

    /// Writes the image to `metadata.snapshot` atomically (temp file, fsync,
    /// rename, directory fsync), then empties the log. A crash after the
    /// rename and before the truncation leaves snapshot plus the whole old
    /// log, which replays to the same image (see [`MetadataImage`]).
    pub fn snapshot(&mut self) -> Result<(), MetaError> {
        let started = std::time::Instant::now();
        let tmp = self.dir.join(SNAPSHOT_TMP_FILE);
        let target = self.dir.join(SNAPSHOT_FILE);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MetaError::Io { path: path.clone(), source }
        };
        let records = self.image.to_records();
        let mut text = String::new();
        for record in &records {
            text.push_str(&encode_line(record));
        }
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io(&self.dir))?;
        self.file.set_len(0).map_err(io(&self.path))?;
        self.file.sync_all().map_err(io(&self.path))?;
        let log_bytes = std::mem::take(&mut self.log_bytes);
        crate::metrics::metadata_snapshot_written();
        tracing::info!(
            records = records.len(),
            snapshot_bytes = text.len(),
            log_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "metadata snapshot written"
        );
        Ok(())
    }
}

fn encode_line(record: &MetadataRecord) -> String {
    let json = serde_json::to_string(record).expect("metadata records serialize");
    format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes()))
}

/// The image a snapshot holds; empty when there is none.
fn load_snapshot(path: &Path) -> Result<MetadataImage, MetaError> {
    let mut image = MetadataImage::default();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(image),
        Err(source) => return Err(MetaError::Io { path: path.to_path_buf(), source }),
    };
    for (i, line) in text.lines().enumerate() {
        let record = parse_line(line).ok_or(MetaError::CorruptSnapshot { path: path.to_path_buf(), line: i + 1 })?;
        image.apply(&record);
    }
    Ok(image)
}

/// Applies every intact record of the log to `image`; returns the byte length
/// of the intact prefix.
fn replay(file: &File, image: &mut MetadataImage) -> std::io::Result<u64> {
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
    Ok(valid_len)
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

    // Goal: client quota records replay to the same quotas, removals included, survive a snapshot, and
    // replaying them twice changes nothing.
    #[test]
    fn client_quotas_replay_and_snapshot() {
        use crate::quota::EntityName;
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open(dir.path()).unwrap();
        let alice = QuotaEntity::user(EntityName::Name("alice".into()));
        let default_client = QuotaEntity::client(EntityName::Default);
        let set = |entity: &QuotaEntity, key: &str, value: Option<f64>| MetadataRecord::ClientQuota {
            entity: entity.clone(),
            key: key.into(),
            value,
        };
        let records = [
            set(&alice, "producer_byte_rate", Some(1024.0)),
            set(&alice, "consumer_byte_rate", Some(2048.0)),
            set(&default_client, "request_percentage", Some(50.0)),
            set(&alice, "consumer_byte_rate", None),
            set(&alice, "producer_byte_rate", Some(4096.0)),
        ];
        for r in &records {
            store.append(r.clone()).unwrap();
        }
        let expected = BTreeMap::from([
            (alice.clone(), BTreeMap::from([("producer_byte_rate".to_string(), 4096.0)])),
            (default_client.clone(), BTreeMap::from([("request_percentage".to_string(), 50.0)])),
        ]);
        assert_eq!(store.image().client_quotas(), &expected);
        drop(store);
        let mut store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.image().client_quotas(), &expected);
        let mut twice = store.image().clone();
        for r in &records {
            twice.apply(r);
        }
        assert_eq!(twice.client_quotas(), &expected);
        store.snapshot().unwrap();
        drop(store);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.image().client_quotas(), &expected);
        store
            .image()
            .to_records()
            .iter()
            .for_each(|r| assert!(!matches!(r, MetadataRecord::ClientQuota { value: None, .. })));
        let mut removed = store.image().clone();
        removed.apply(&set(&default_client, "request_percentage", None));
        assert!(!removed.client_quotas().contains_key(&default_client), "an entity without quotas is dropped");
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

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A stream of every record kind, with deletes and re-creations.
    fn changes(store: &mut MetadataStore, round: usize) {
        let name = format!("t{}", round % 5);
        if let Some(old) = store.image().topic(&name).cloned() {
            store.append(MetadataRecord::RemoveTopic { id: old.id }).unwrap();
        }
        let id = Uuid::new_v4();
        store.append(MetadataRecord::Topic { name, id, partitions: 1, configs: BTreeMap::new() }).unwrap();
        store.append(MetadataRecord::PartitionsCreated { id, partitions: 2 + round as i32 }).unwrap();
        let value = round.to_string();
        store.append(MetadataRecord::TopicConfigChanged { id, configs: configs(&[("retention.ms", &value)]) }).unwrap();
        let node = if round.is_multiple_of(2) { None } else { Some(1) };
        let configs = configs(&[("log.retention.ms", &value)]);
        store.append(MetadataRecord::BrokerConfigChanged { node, configs }).unwrap();
        store.append(MetadataRecord::ProducerIds { next_producer_id: 1000 * (round as i64 + 1) }).unwrap();
        let user = format!("u{}", round % 3);
        let mechanism = if round.is_multiple_of(2) { ScramMechanism::Sha256 } else { ScramMechanism::Sha512 };
        store
            .append(MetadataRecord::UserScramCredential {
                user: user.clone(),
                mechanism,
                credential: credential(round),
            })
            .unwrap();
        if round % 4 == 3 {
            store.append(MetadataRecord::RemoveUserScramCredential { user, mechanism }).unwrap();
        }
        // One ACL per round; every third round removes the oldest one.
        store.append(MetadataRecord::AclCreated { id: Uuid::new_v4(), acl: acl(&format!("t{round}")) }).unwrap();
        if round % 3 == 2 {
            let oldest = *store.image().acls().keys().next().unwrap();
            store.append(MetadataRecord::AclRemoved { id: oldest }).unwrap();
        }
    }

    fn credential(seed: usize) -> ScramCredential {
        let b = seed as u8;
        ScramCredential {
            salt: vec![b; 16],
            iterations: 4096 + seed as i32,
            stored_key: vec![b; 32],
            server_key: vec![!b; 32],
        }
    }

    // Goal: SCRAM credential records set state absolutely. Method: a table of
    // record sequences with the users each must leave; every sequence replays
    // to the same image when applied twice over, when an older prefix is
    // applied first (a snapshot plus the whole old log), and from its own
    // snapshot records.
    #[test]
    fn scram_records_replay_idempotently() {
        let set = |user: &str, mechanism, seed| MetadataRecord::UserScramCredential {
            user: user.into(),
            mechanism,
            credential: credential(seed),
        };
        let remove = |user: &str, mechanism| MetadataRecord::RemoveUserScramCredential { user: user.into(), mechanism };
        let (sha256, sha512) = (ScramMechanism::Sha256, ScramMechanism::Sha512);
        type Expected = Vec<(&'static str, ScramMechanism, i32)>;
        let table: Vec<(Vec<MetadataRecord>, Expected)> = vec![
            (vec![set("a", sha256, 1)], vec![("a", sha256, 4097)]),
            (vec![set("a", sha256, 1), set("a", sha256, 2)], vec![("a", sha256, 4098)]),
            (vec![set("a", sha256, 1), set("a", sha512, 2)], vec![("a", sha256, 4097), ("a", sha512, 4098)]),
            (vec![set("a", sha256, 1), remove("a", sha256)], vec![]),
            (vec![remove("a", sha256)], vec![]),
            (vec![set("a", sha256, 1), remove("a", sha512)], vec![("a", sha256, 4097)]),
            (vec![set("a", sha256, 1), remove("a", sha256), set("a", sha256, 3)], vec![("a", sha256, 4099)]),
            (vec![set("a", sha256, 1), set("b", sha512, 2), remove("a", sha256)], vec![("b", sha512, 4098)]),
        ];
        for (records, expected) in table {
            let mut image = MetadataImage::default();
            records.iter().for_each(|r| image.apply(r));
            let users: Vec<(&str, ScramMechanism, i32)> = image
                .scram_users()
                .iter()
                .flat_map(|(u, c)| c.iter().map(move |(m, c)| (u.as_str(), *m, c.iterations)))
                .collect();
            assert_eq!(users, expected, "{records:?}");
            let mut twice = image.clone();
            records.iter().for_each(|r| twice.apply(r));
            assert_eq!(twice, image, "applied twice: {records:?}");
            for prefix in 0..records.len() {
                let mut replayed = MetadataImage::default();
                records[..prefix].iter().chain(&records).for_each(|r| replayed.apply(r));
                assert_eq!(replayed, image, "prefix {prefix} then all: {records:?}");
            }
            let mut from_snapshot = MetadataImage::default();
            image.to_records().iter().for_each(|r| from_snapshot.apply(r));
            assert_eq!(from_snapshot, image, "snapshot of {records:?}");
        }
    }

    fn acl(topic: &str) -> AclBinding {
        use crate::authz::{Operation, PatternType, Permission, ResourceType};
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: topic.to_string(),
            pattern_type: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    // Goal: ACL records replay to the same bindings, twice applied or not.
    // Method: create, remove, reopen; then apply the whole log again on top.
    #[test]
    fn acl_records_replay_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open(dir.path()).unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let records = [
            MetadataRecord::AclCreated { id: a, acl: acl("x") },
            MetadataRecord::AclCreated { id: b, acl: acl("y") },
            MetadataRecord::AclRemoved { id: a },
        ];
        for r in &records {
            store.append(r.clone()).unwrap();
        }
        drop(store);
        let store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.image().acls().keys().collect::<Vec<_>>(), vec![&b]);
        let mut again = store.image().clone();
        for r in &records {
            again.apply(r);
        }
        assert_eq!(&again, store.image());
        let mut rebuilt = MetadataImage::default();
        for r in store.image().to_records() {
            rebuilt.apply(&r);
        }
        assert_eq!(&rebuilt, store.image());
    }

    // Goal: snapshots bound the log and lose nothing. Method: a small bound,
    // many changes, then reopen and compare with the image kept in memory.
    #[test]
    fn snapshots_bound_the_log_and_replay_to_the_same_image() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open_with(dir.path(), 2048).unwrap();
        for round in 0..60 {
            changes(&mut store, round);
            assert!(store.log_bytes() <= 2048 + 1024, "round {round}: {}", store.log_bytes());
        }
        let expected = store.image().clone();
        assert!(dir.path().join("__cluster_metadata/metadata.snapshot").exists());
        assert_eq!(expected.broker_configs(None), configs(&[("log.retention.ms", "58")]));
        assert_eq!(expected.broker_configs(Some(1)), configs(&[("log.retention.ms", "59")]));
        assert_eq!(expected.topic("t4").unwrap().partitions, 61);
        assert_eq!(expected.next_producer_id(), 60_000);
        assert_eq!(expected.scram_users().len(), 3);
        assert_eq!(expected.acls().len(), 40);
        drop(store);
        let store = MetadataStore::open_with(dir.path(), 2048).unwrap();
        assert_eq!(store.image(), &expected);
    }

    // Goal: a crash between the snapshot's rename and the log's truncation
    // replays to the same image. Method: put the old log back after a
    // snapshot, as if the truncation never happened; leave a stale temp file.
    #[test]
    fn snapshot_plus_the_whole_old_log_replays_to_the_same_image() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open(dir.path()).unwrap();
        for round in 0..12 {
            changes(&mut store, round);
        }
        let log = dir.path().join("__cluster_metadata/metadata.log");
        let old_log = std::fs::read(&log).unwrap();
        let expected = store.image().clone();
        store.snapshot().unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        drop(store);
        std::fs::write(&log, &old_log).unwrap();
        std::fs::write(dir.path().join("__cluster_metadata/metadata.snapshot.tmp"), b"half a snap").unwrap();
        let mut store = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(store.image(), &expected);
        assert!(!dir.path().join("__cluster_metadata/metadata.snapshot.tmp").exists());
        // Appends after the snapshot replay on top of it.
        changes(&mut store, 12);
        let expected = store.image().clone();
        drop(store);
        assert_eq!(MetadataStore::open(dir.path()).unwrap().image(), &expected);
    }

    #[test]
    fn corrupt_snapshot_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MetadataStore::open(dir.path()).unwrap();
        store.append(topic("a", 1)).unwrap();
        store.snapshot().unwrap();
        drop(store);
        let path = dir.path().join("__cluster_metadata/metadata.snapshot");
        let text = std::fs::read_to_string(&path).unwrap().replace("\"a\"", "\"b\"");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(MetadataStore::open(dir.path()), Err(MetaError::CorruptSnapshot { line: 1, .. })));
    }

    #[test]
    fn corrupt_crc_stops_replay() {
        let line = "00000000 {\"type\":\"RemoveTopic\",\"id\":\"00000000-0000-0000-0000-000000000000\"}";
        assert!(parse_line(line).is_none());
    }
}
