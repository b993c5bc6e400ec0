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
use runnel_log::{LogError, LogManager, Throttle};
use uuid::Uuid;

use crate::authz::{AclBinding, AclFilter, AclIndex, Authorizer, Operation, ResourceType};
use crate::config::{BrokerConfig, ConfigError};
use crate::group::{Coordinator, GroupConfig, OFFSETS_TOPIC};
use crate::meta::{MetaError, MetadataRecord, MetadataStore, ScramUsers, TopicMeta};
use crate::partition::Partition;
use crate::quota::manager::QuotaManager;
use crate::quota::{QuotaConfigs, QuotaEntity, QuotaError};
use crate::sasl::scram::{self, ScramCredential, ScramCredentials, ScramMechanism};
use crate::session::Session;
use crate::txn::{TxnConfig, TxnCoordinator, TXN_TOPIC};

/// Producer ids reserved per metadata record (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// The most partitions one topic may have; a bound on the logs one request
/// can make the broker open.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 100_000;

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
    #[error("number of partitions must be between 1 and 100000, got {0}")]
    InvalidPartitions(i32),
    #[error("replication factor {0} is larger than the 1 available broker")]
    InvalidReplicationFactor(i16),
    #[error("{0}")]
    InvalidConfig(#[from] ConfigError),
    #[error("unknown topic '{0}'")]
    Unknown(String),
    #[error("topic '{topic}' has {current} partitions; the count can only grow, {requested} requested")]
    PartitionsNotIncreased { topic: String, current: i32, requested: i32 },
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Why a client quota alteration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaAlterError {
    #[error(transparent)]
    Invalid(#[from] QuotaError),
    #[error(transparent)]
    Meta(#[from] MetaError),
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
    #[error("cannot create {TXN_TOPIC}: {0}")]
    TxnTopic(#[source] TopicError),
}

/// Producer ids reserved through the metadata log and not yet handed out:
/// `next..end`.
#[derive(Default)]
struct ProducerIdBlock {
    next: i64,
    end: i64,
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
    /// The transaction coordinator.
    pub txns: TxnCoordinator,
    /// The ACLs and the authorization settings.
    pub authorizer: Authorizer,
    producer_ids: Mutex<ProducerIdBlock>,
    meta: Mutex<MetadataStore>,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    cluster_id: String,
    /// `config` with the dynamic broker settings of the metadata image on
    /// top; replaced whenever those change.
    effective: RwLock<Arc<BrokerConfig>>,
    /// The log cleaner's I/O limit, `log.cleaner.io.max.bytes.per.second`;
    /// its rate follows dynamic changes at once, even mid-cleaning.
    cleaner_throttle: Throttle,
    /// The SCRAM credentials of the metadata image, as SASL listeners see
    /// them; replaced after every credential change.
    scram: Arc<ScramCredentials>,
    /// Client quotas in force and the rates measured against them.
    pub quotas: QuotaManager,
}

/// Which dynamic broker settings a change addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerScope {
    /// The cluster-wide default (resource name `""`).
    ClusterDefault,
    /// This broker (resource name = its node id).
    Node,
}

impl Broker {
    /// Opens the data directory: recovers the logs, replays the metadata log and
    /// reconciles the two. Blocking; call before serving.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, StartError> {
        let started = Instant::now();
        let data_dir = config.data_dir();
        let meta = MetadataStore::open_with(&data_dir, config.metadata_snapshot_after_bytes())?;
        let effective = Arc::new(dynamic_config(&config, &meta));
        let checkpoint_interval = Duration::from_millis(config.checkpoint_interval_ms());
        let logs =
            LogManager::open_with_interval(data_dir, effective.log_config(&BTreeMap::new()), checkpoint_interval)?;
        let cluster_id = meta.cluster_id().to_string();
        let scram = open_scram(&meta)?;
        let request_budget = Arc::new(tokio::sync::Semaphore::new(config.queued_max_request_bytes()));
        let groups = Coordinator::new(GroupConfig::from_broker(&config));
        let txns = TxnCoordinator::new(TxnConfig::from_broker(&config));
        let quota_windows = config.quota_windows();
        let quotas = meta.image().client_quotas().clone();
        let authorizer = Authorizer::from_config(&config);
        authorizer.set_acls(AclIndex::new(meta.image().acls().values()));
        let broker = Broker {
            config,
            logs,
            request_budget,
            groups,
            txns,
            authorizer,
            producer_ids: Mutex::new(ProducerIdBlock::default()),
            meta: Mutex::new(meta),
            topics: RwLock::new(HashMap::new()),
            cluster_id,
            cleaner_throttle: Throttle::new(effective.cleaner_io_max_bytes_per_second()),
            effective: RwLock::new(effective),
            scram,
            quotas: QuotaManager::new(quota_windows, QuotaConfigs::from_entities(quotas)),
        };
        broker.reconcile()?;
        broker.open_groups()?;
        broker.open_transactions()?;
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
                    ("segment.bytes".to_string(), self.config.offsets_topic_segment_bytes().to_string()),
                ]);
                self.create_topic(OFFSETS_TOPIC, partitions, configs).map_err(StartError::OffsetsTopic)?
            }
        };
        self.groups.load(topic.partitions.clone(), |id| {
            self.topic_by_id(id).map(|t| (t.meta.name.clone(), t.partitions.len() as i32))
        })?;
        Ok(())
    }

    /// Creates `__transaction_state` if it is missing and loads the
    /// transactions stored in it (after the groups, whose pending
    /// transactional offsets the recovered markers complete).
    fn open_transactions(&self) -> Result<(), StartError> {
        let topic = match self.topic(TXN_TOPIC) {
            Some(topic) => topic,
            None => {
                let partitions = self.config.transaction_state_log_num_partitions();
                let configs = BTreeMap::from([
                    ("cleanup.policy".to_string(), "compact".to_string()),
                    ("segment.bytes".to_string(), self.config.transaction_state_log_segment_bytes().to_string()),
                ]);
                self.create_topic(TXN_TOPIC, partitions, configs).map_err(StartError::TxnTopic)?
            }
        };
        self.txns.load(self, topic.partitions.clone())?;
        Ok(())
    }

    /// Hands out a producer id never handed out before, reserving a new
    /// block of [`PRODUCER_ID_BLOCK_SIZE`] ids through the metadata log
    /// (fsynced) when the current block is used up. Blocking.
    pub fn allocate_producer_id(&self) -> Result<i64, MetaError> {
        let mut block = self.producer_ids.lock();
        if block.next >= block.end {
            let mut meta = self.meta.lock();
            let start = meta.image().next_producer_id();
            let end = start + PRODUCER_ID_BLOCK_SIZE;
            meta.append(MetadataRecord::ProducerIds { next_producer_id: end })?;
            *block = ProducerIdBlock { next: start, end };
            tracing::info!(start, end, "producer id block reserved");
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    fn open_topic(&self, meta: TopicMeta) -> Result<Arc<Topic>, LogError> {
        self.open_partitions(meta, Vec::new())
    }

    /// The topic `meta` served by `existing` plus newly opened partitions up
    /// to `meta.partitions`.
    fn open_partitions(&self, meta: TopicMeta, existing: Vec<Arc<Partition>>) -> Result<Arc<Topic>, LogError> {
        let log_config = self.effective_config().log_config(&meta.configs);
        let mut partitions = existing;
        let counters = crate::metrics::TopicCounters::new(&meta.name);
        for index in partitions.len() as i32..meta.partitions {
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
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
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
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
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

    /// The log cleaner's I/O limit (`log.cleaner.io.max.bytes.per.second`).
    pub fn cleaner_throttle(&self) -> &Throttle {
        &self.cleaner_throttle
    }

    /// The broker configuration in force now: static settings with the
    /// dynamic ones on top.
    pub fn effective_config(&self) -> Arc<BrokerConfig> {
        self.effective.read().clone()
    }

    /// A topic's overrides in the metadata image.
    pub fn topic_configs(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.meta.lock().image().topic(name).map(|t| t.configs.clone())
    }

    /// Dynamic broker settings of `scope` in the metadata image.
    pub fn dynamic_broker_configs(&self, scope: BrokerScope) -> BTreeMap<String, String> {
        self.meta.lock().image().broker_configs(self.scope_node(scope))
    }

    fn scope_node(&self, scope: BrokerScope) -> Option<i32> {
        match scope {
            BrokerScope::ClusterDefault => None,
            BrokerScope::Node => Some(self.node_id()),
        }
    }

    /// Replaces a topic's overrides with `change(current)`, computed under the
    /// metadata lock so concurrent alters do not lose updates. The new values
    /// apply to the running partitions at once. With `validate_only`, checks
    /// and writes nothing. Blocking (fsync).
    pub fn alter_topic_configs(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError>,
    ) -> Result<(), TopicError> {
        let mut meta = self.meta.lock();
        let Some(current) = meta.image().topic(name).cloned() else {
            return Err(TopicError::Unknown(name.to_string()));
        };
        let configs = change(&current.configs)?;
        if validate_only || configs == current.configs {
            return Ok(());
        }
        meta.append(MetadataRecord::TopicConfigChanged { id: current.id, configs: configs.clone() })?;
        let log_config = self.effective_config().log_config(&configs);
        let mut topics = self.topics.write();
        if let Some(topic) = topics.get(name).cloned() {
            for p in &topic.partitions {
                p.set_log_config(log_config.clone());
            }
            let meta = TopicMeta { configs: configs.clone(), ..topic.meta.clone() };
            topics.insert(name.to_string(), Arc::new(Topic { meta, partitions: topic.partitions.clone() }));
        }
        crate::metrics::config_changed("topic");
        tracing::info!(topic = name, ?configs, "topic configs changed");
        Ok(())
    }

    /// Replaces the dynamic broker settings of `scope` with `change(current)`
    /// (under the metadata lock), then re-applies every topic's storage
    /// settings so the new defaults take effect at once. Blocking (fsync).
    pub fn alter_broker_configs(
        &self,
        scope: BrokerScope,
        validate_only: bool,
        change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError>,
    ) -> Result<(), TopicError> {
        let node = self.scope_node(scope);
        let mut meta = self.meta.lock();
        let current = meta.image().broker_configs(node);
        let configs = change(&current)?;
        if validate_only || configs == current {
            return Ok(());
        }
        meta.append(MetadataRecord::BrokerConfigChanged { node, configs: configs.clone() })?;
        let effective = Arc::new(dynamic_config(&self.config, &meta));
        *self.effective.write() = effective.clone();
        self.cleaner_throttle.set_rate(effective.cleaner_io_max_bytes_per_second());
        for topic in self.topics.read().values() {
            let log_config = effective.log_config(&topic.meta.configs);
            for p in &topic.partitions {
                p.set_log_config(log_config.clone());
            }
        }
        crate::metrics::config_changed("broker");
        tracing::info!(?node, ?configs, "dynamic broker configs changed");
        Ok(())
    }

    /// Every entity's client quotas in the metadata image.
    pub fn client_quotas(&self) -> BTreeMap<QuotaEntity, BTreeMap<String, f64>> {
        self.meta.lock().image().client_quotas().clone()
    }

    /// Sets (`Some`) or removes (`None`) client quotas of `entity`, one
    /// metadata record per changed key, after checking every key and value
    /// (Kafka's AlterClientQuotas: all of an entity's changes or none). The
    /// new quotas apply to live connections at once. Each record is durable
    /// on its own, so a crash midway leaves the keys written so far changed
    /// (Kafka's controller commits them as one batch). With `validate_only`,
    /// checks only. Blocking (fsync).
    pub fn alter_client_quotas(
        &self,
        entity: &QuotaEntity,
        ops: &BTreeMap<String, Option<f64>>,
        validate_only: bool,
    ) -> Result<(), QuotaAlterError> {
        for (key, value) in ops {
            if let Some(value) = value {
                crate::quota::validate_value(entity, key, *value)?;
            }
        }
        if validate_only {
            return Ok(());
        }
        let mut meta = self.meta.lock();
        let current = meta.image().client_quotas().get(entity).cloned().unwrap_or_default();
        let mut changed = false;
        for (key, value) in ops {
            if current.get(key).copied() == *value {
                continue;
            }
            meta.append(MetadataRecord::ClientQuota { entity: entity.clone(), key: key.clone(), value: *value })?;
            changed = true;
        }
        if changed {
            self.quotas.set_configs(QuotaConfigs::from_entities(meta.image().client_quotas().clone()));
            crate::metrics::config_changed("client_quota");
            tracing::info!(%entity, ?ops, "client quotas changed");
        }
        Ok(())
    }

    /// Raises a topic's partition count to `count`: the metadata record
    /// first, then the new logs (start-up creates logs a crash left missing).
    /// With `validate_only`, checks only. Blocking (fsync).
    pub fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        let mut meta = self.meta.lock();
        let Some(current) = meta.image().topic(name).cloned() else {
            return Err(TopicError::Unknown(name.to_string()));
        };
        if count <= current.partitions {
            return Err(TopicError::PartitionsNotIncreased {
                topic: name.to_string(),
                current: current.partitions,
                requested: count,
            });
        }
        if count > PARTITIONS_PER_TOPIC_MAX {
            return Err(TopicError::InvalidPartitions(count));
        }
        if validate_only {
            return Ok(());
        }
        let from = current.partitions;
        meta.append(MetadataRecord::PartitionsCreated { id: current.id, partitions: count })?;
        // The metadata lock keeps the topic as it is while its new logs open
        // outside the topics lock, so produce and fetch lookups go on meanwhile.
        let existing = self.topic(name).map(|t| t.partitions.clone()).unwrap_or_default();
        let topic_meta = TopicMeta { partitions: count, ..current };
        let topic = self.open_partitions(topic_meta, existing)?;
        self.topics.write().insert(name.to_string(), topic);
        tracing::info!(topic = name, from, to = count, "partitions created");
        Ok(())
    }

    /// The SCRAM credentials SASL listeners check logins against.
    pub fn scram_credentials(&self) -> Arc<ScramCredentials> {
        self.scram.clone()
    }

    /// Every user's SCRAM credentials in the metadata image.
    pub fn scram_users(&self) -> ScramUsers {
        self.meta.lock().image().scram_users().clone()
    }

    /// Sets `user`'s credential for `mechanism` (replacing any), durably;
    /// the next login sees it. Blocking (fsync).
    pub fn upsert_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<(), MetaError> {
        let iterations = credential.iterations;
        let mut meta = self.meta.lock();
        meta.append(MetadataRecord::UserScramCredential { user: user.to_string(), mechanism, credential })?;
        self.scram.replace(meta.image().scram_users().clone());
        crate::metrics::scram_credentials_changed("upsert");
        tracing::info!(user, mechanism = mechanism.name(), iterations, "SCRAM credential set");
        Ok(())
    }

    /// Removes `user`'s credential for `mechanism`, durably; `false` when
    /// there is none. Blocking (fsync).
    pub fn delete_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<bool, MetaError> {
        let mut meta = self.meta.lock();
        if !meta.image().scram_users().get(user).is_some_and(|c| c.contains_key(&mechanism)) {
            return Ok(false);
        }
        meta.append(MetadataRecord::RemoveUserScramCredential { user: user.to_string(), mechanism })?;
        self.scram.replace(meta.image().scram_users().clone());
        crate::metrics::scram_credentials_changed("delete");
        tracing::info!(user, mechanism = mechanism.name(), "SCRAM credential deleted");
        Ok(true)
    }

    /// Whether `session` may perform `operation` on a resource; a denial is
    /// logged at debug and counted. Every request-path check goes here.
    pub fn authorize(&self, session: &Session, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.authorizer.authorize(session, operation, resource_type, name)
    }

    /// Creates ACL bindings durably, one metadata record each; a binding
    /// that exists already is left as it is (Kafka does the same). The new
    /// bindings apply to every connection's next request. Blocking (fsync).
    pub fn create_acls(&self, acls: &[AclBinding]) -> Result<(), MetaError> {
        let mut meta = self.meta.lock();
        let mut records: Vec<MetadataRecord> = Vec::with_capacity(acls.len());
        for acl in acls {
            let exists = meta.image().acls().values().any(|a| a == acl);
            let repeated = records.iter().any(|r| matches!(r, MetadataRecord::AclCreated { acl: a, .. } if a == acl));
            if !exists && !repeated {
                records.push(MetadataRecord::AclCreated { id: Uuid::new_v4(), acl: acl.clone() });
            }
        }
        let result = meta.append_all(&records);
        if result.is_ok() {
            for record in &records {
                if let MetadataRecord::AclCreated { id, acl } = record {
                    tracing::info!(%id, ?acl, "acl created");
                }
            }
        }
        // Whatever reached the image is in force.
        self.authorizer.set_acls(AclIndex::new(meta.image().acls().values()));
        result
    }

    /// The ACL bindings `filter` matches, in a stable order.
    pub fn describe_acls(&self, filter: &AclFilter) -> Vec<AclBinding> {
        let meta = self.meta.lock();
        let mut acls: Vec<AclBinding> = meta.image().acls().values().filter(|a| filter.matches(a)).cloned().collect();
        acls.sort();
        acls
    }

    /// Deletes the ACL bindings each filter matches; returns them per filter
    /// (a binding two filters match is deleted once and reported for both,
    /// as Kafka does). Blocking (fsync).
    pub fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, MetaError> {
        let mut meta = self.meta.lock();
        let matched: Vec<Vec<(Uuid, AclBinding)>> = filters
            .iter()
            .map(|f| meta.image().acls().iter().filter(|(_, a)| f.matches(a)).map(|(id, a)| (*id, a.clone())).collect())
            .collect();
        let mut ids: Vec<Uuid> = matched.iter().flatten().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let records: Vec<MetadataRecord> = ids.iter().map(|id| MetadataRecord::AclRemoved { id: *id }).collect();
        let result = meta.append_all(&records);
        if result.is_ok() {
            for id in &ids {
                tracing::info!(%id, "acl deleted");
            }
        }
        self.authorizer.set_acls(AclIndex::new(meta.image().acls().values()));
        result.map(|()| matched.into_iter().map(|m| m.into_iter().map(|(_, a)| a).collect()).collect())
    }

    /// Clean shutdown of storage: flush, checkpoints, clean-shutdown marker.
    pub fn shutdown(&self) -> Result<(), LogError> {
        self.logs.shutdown()
    }
}

/// The SCRAM credentials of the image, with the broker's stand-in secret.
fn open_scram(meta: &MetadataStore) -> Result<Arc<ScramCredentials>, MetaError> {
    let secret = scram::load_or_create_secret(meta.dir())
        .map_err(|source| MetaError::Io { path: meta.dir().join(scram::SECRET_FILE), source })?;
    let credentials = ScramCredentials::new(&secret);
    credentials.replace(meta.image().scram_users().clone());
    Ok(Arc::new(credentials))
}

/// `config` with the image's dynamic settings for this node on top.
fn dynamic_config(config: &BrokerConfig, meta: &MetadataStore) -> BrokerConfig {
    let image = meta.image();
    config.with_dynamic(&image.broker_configs(None), &image.broker_configs(Some(config.node_id())))
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
