//! The broker's shared state: configuration, the metadata store, the log
//! manager and the partitions it serves.
//!
//! Topic changes go through [`Broker::create_topic`] and
//! [`Broker::delete_topic`], which write the metadata record first and then
//! create or remove the logs. Start-up repairs what a crash between the two
//! steps left behind: missing logs of live topics are created, logs of topics
//! that no longer exist are removed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use runnel_log::{LogError, LogManager};
use uuid::Uuid;

use crate::config::{BrokerConfig, ConfigError};
use crate::group::{Coordinator, GroupConfig, OFFSETS_TOPIC, OFFSETS_TOPIC_SEGMENT_BYTES};
use crate::meta::{MetaError, MetadataRecord, MetadataStore, TopicMeta};
use crate::partition::Partition;

/// Kafka's limit on topic name length.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// A topic and its partitions, as served now.
pub struct Topic {
    pub meta: TopicMeta,
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }
}

/// Why a topic could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    #[error("invalid topic name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("number of partitions must be at least 1, got {0}")]
    InvalidPartitions(i32),
    #[error("replication factor {0} is larger than the 1 available broker")]
    InvalidReplicationFactor(i16),
    #[error("{0}")]
    InvalidConfig(#[from] ConfigError),
    #[error("unknown topic '{0}'")]
    Unknown(String),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Errors that stop the broker from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("cannot create {OFFSETS_TOPIC}: {0}")]
    OffsetsTopic(#[source] TopicError),
}

/// Shared broker state.
pub struct Broker {
    pub config: BrokerConfig,
    pub logs: LogManager,
    /// Bytes of request frames read and not yet answered, over all
    /// connections: `queued.max.request.bytes` permits, one per byte.
    pub request_budget: Arc<tokio::sync::Semaphore>,
    /// The consumer group coordinator.
    pub groups: Coordinator,
    meta: Mutex<MetadataStore>,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    cluster_id: String,
}

impl Broker {
    /// Opens the data directory: recovers the logs, replays the metadata log and
    /// reconciles the two. Blocking; call before serving.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, StartError> {
        let started = Instant::now();
        let data_dir = config.data_dir();
        let meta = MetadataStore::open(&data_dir)?;
        let checkpoint_interval = Duration::from_millis(config.checkpoint_interval_ms());
        let logs = LogManager::open_with_interval(data_dir, config.log_config(&BTreeMap::new()), checkpoint_interval)?;
        let cluster_id = meta.cluster_id().to_string();
        let request_budget = Arc::new(tokio::sync::Semaphore::new(config.queued_max_request_bytes()));
        let groups = Coordinator::new(GroupConfig::from_broker(&config));
        let broker = Broker {
            config,
            logs,
            request_budget,
            groups,
            meta: Mutex::new(meta),
            topics: RwLock::new(HashMap::new()),
            cluster_id,
        };
        broker.reconcile()?;
        broker.open_groups()?;
        tracing::info!(
            topics = broker.topics.read().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "broker state loaded"
        );
        Ok(Arc::new(broker))
    }

    fn reconcile(&self) -> Result<(), LogError> {
        let meta = self.meta.lock();
        let image = meta.image();
        for log in self.logs.logs() {
            let (topic, partition) = log.topic_partition();
            let live = image.topic(&topic).is_some_and(|t| partition < t.partitions);
            if !live {
                tracing::info!(topic, partition, "removing log of a topic that no longer exists");
                self.logs.delete(&topic, partition)?;
            }
        }
        let mut topics = self.topics.write();
        for meta in image.topics() {
            let topic = self.open_topic(meta.clone())?;
            topics.insert(meta.name.clone(), topic);
        }
        Ok(())
    }

    /// Creates `__consumer_offsets` if it is missing and loads the groups
    /// stored in it.
    fn open_groups(&self) -> Result<(), StartError> {
        let topic = match self.topic(OFFSETS_TOPIC) {
            Some(topic) => topic,
            None => {
                let partitions = self.config.offsets_topic_num_partitions();
                let configs = BTreeMap::from([
                    ("cleanup.policy".to_string(), "compact".to_string()),
                    ("segment.bytes".to_string(), OFFSETS_TOPIC_SEGMENT_BYTES.to_string()),
                ]);
                self.create_topic(OFFSETS_TOPIC, partitions, configs).map_err(StartError::OffsetsTopic)?
            }
        };
        self.groups.load(topic.partitions.clone())?;
        Ok(())
    }

    fn open_topic(&self, meta: TopicMeta) -> Result<Arc<Topic>, LogError> {
        let log_config = self.config.log_config(&meta.configs);
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        let counters = crate::metrics::TopicCounters::new(&meta.name);
        for index in 0..meta.partitions {
            let log = self.logs.get_or_create(&meta.name, index, log_config.clone())?;
            // Logs found at start-up open with the broker defaults; apply the topic's own settings.
            log.set_config(log_config.clone());
            if log.flushed_offset() < log.log_end_offset() {
                // Recovered data is whole but may not be on disk yet: flush it
                // before it becomes visible through the high watermark.
                self.logs.flusher().request(&log);
            }
            partitions.push(Partition::new(meta.name.clone(), meta.id, index, log, counters.clone()));
        }
        Ok(Arc::new(Topic { meta, partitions }))
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id()
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.meta.id == *id).cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<_> = self.topics.read().values().cloned().collect();
        topics.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        topics
    }

    /// Validates a topic creation without performing it.
    pub fn check_new_topic(&self, name: &str, partitions: i32) -> Result<(), TopicError> {
        validate_topic_name(name)?;
        if partitions < 1 {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        if self.meta.lock().image().topic(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        Ok(())
    }

    /// Creates a topic durably. Blocking (fsync); call from a blocking thread.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        validate_topic_name(name)?;
        if partitions < 1 {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        let mut meta = self.meta.lock();
        if meta.image().topic(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let id = Uuid::new_v4();
        meta.append(MetadataRecord::Topic { name: name.to_string(), id, partitions, configs: configs.clone() })?;
        let topic_meta = TopicMeta { name: name.to_string(), id, partitions, configs };
        let topic = self.open_topic(topic_meta)?;
        self.topics.write().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, %id, "topic created");
        Ok(topic)
    }

    /// Deletes a topic: the metadata record first, then its logs. Blocking.
    pub fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        let mut meta = self.meta.lock();
        let Some(topic) = meta.image().topic(name).cloned() else {
            return Err(TopicError::Unknown(name.to_string()));
        };
        meta.append(MetadataRecord::RemoveTopic { id: topic.id })?;
        self.topics.write().remove(name);
        for index in 0..topic.partitions {
            self.logs.delete(name, index)?;
        }
        tracing::info!(topic = name, id = %topic.id, "topic deleted");
        Ok(())
    }

    /// Clean shutdown of storage: flush, checkpoints, clean-shutdown marker.
    pub fn shutdown(&self) -> Result<(), LogError> {
        self.logs.shutdown()
    }
}

/// Kafka's topic name rules: 1 to 249 characters from `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let invalid = |reason| Err(TopicError::InvalidName { name: name.to_string(), reason });
    if name.is_empty() {
        return invalid("the name is empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return invalid("longer than 249 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name("ä").is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
