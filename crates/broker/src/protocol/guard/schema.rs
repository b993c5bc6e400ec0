//! The wire schema of every request Runnel serves, as a table the guard walks.
//!
//! Each request body is a list of [`Field`]s; a field has a [`Kind`], the
//! versions in which it is on the wire and, for tagged fields (KIP-482), its
//! tag. The table mirrors the `decode` functions that `kafka-protocol` 0.18
//! generates (`src/messages/*_request.rs`): field order, types, version ranges,
//! nullability (an `Option` in the decoded struct) and the tags the decoder
//! knows. The guard and the decoder must agree byte for byte, so a change here
//! needs the proptests in `guard/tests.rs` for the changed API (see the module
//! documentation of `guard` for how to add an API).

/// The versions Runnel serves of one request, its flexible threshold and its
/// body.
#[derive(Debug)]
pub(crate) struct Api {
    pub key: i16,
    pub min: i16,
    pub max: i16,
    /// The first version that uses compact strings, bytes and arrays and
    /// carries a tagged-field section after every struct (KIP-482).
    pub flexible_from: i16,
    pub body: &'static [Field],
}

/// How a field is laid out on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Int8,
    Int16,
    Int32,
    Int64,
    Float64,
    Bool,
    Uuid,
    /// INT16 length (compact: unsigned varint length + 1), UTF-8, never null.
    String,
    NullableString,
    /// INT32 length (compact: unsigned varint length + 1), never null.
    Bytes,
    #[allow(dead_code, reason = "no request Runnel serves yet has a nullable BYTES field")]
    NullableBytes,
    /// A produce request's record batches: nullable bytes whose content the
    /// guard does not walk; record batches are checked where they are parsed.
    Records,
    /// INT32 count (compact: unsigned varint count + 1), never null.
    Array(&'static Kind),
    NullableArray(&'static Kind),
    /// A nested struct, decoded inline at the request's version.
    Struct(&'static [Field]),
    /// An optional struct: an INT8 that is 1 when the struct follows.
    NullableStruct(&'static [Field]),
}

/// One field of a request struct.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// First version with this field.
    pub min: i16,
    /// Last version with this field.
    pub max: i16,
    /// `Some` for a tagged field, which only appears in the tagged-field
    /// section of flexible versions.
    pub tag: Option<u32>,
}

impl Field {
    /// A field present in every version of its request.
    pub const fn new(name: &'static str, kind: Kind) -> Field {
        Field { name, kind, min: 0, max: i16::MAX, tag: None }
    }

    /// Present from version `min` on.
    pub const fn since(self, min: i16) -> Field {
        Field { min, ..self }
    }

    /// Present up to and including version `max`.
    pub const fn until(self, max: i16) -> Field {
        Field { max, ..self }
    }

    /// A tagged field with this tag.
    pub const fn tagged(self, tag: u32) -> Field {
        Field { tag: Some(tag), ..self }
    }

    pub const fn present_in(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

use Kind::{Bool, Int16, Int32, Int64, Int8, NullableString, Records, Uuid};

const STRING: Kind = Kind::String;

/// Every request Runnel serves. Keys must be unique; `supported_apis` lists
/// them in this order.
pub(crate) const APIS: &[Api] = &[
    Api { key: 0, min: 3, max: 13, flexible_from: 9, body: PRODUCE },
    Api { key: 1, min: 4, max: 18, flexible_from: 12, body: FETCH },
    Api { key: 2, min: 1, max: 10, flexible_from: 6, body: LIST_OFFSETS },
    Api { key: 3, min: 0, max: 12, flexible_from: 9, body: METADATA },
    Api { key: 10, min: 0, max: 6, flexible_from: 3, body: FIND_COORDINATOR },
    Api { key: 18, min: 0, max: 4, flexible_from: 3, body: API_VERSIONS },
    Api { key: 19, min: 2, max: 7, flexible_from: 5, body: CREATE_TOPICS },
    Api { key: 20, min: 1, max: 6, flexible_from: 4, body: DELETE_TOPICS },
    // Admin APIs.
    Api { key: 21, min: 0, max: 2, flexible_from: 2, body: DELETE_RECORDS },
    Api { key: 32, min: 1, max: 4, flexible_from: 4, body: DESCRIBE_CONFIGS },
    Api { key: 33, min: 0, max: 2, flexible_from: 2, body: ALTER_CONFIGS },
    Api { key: 35, min: 1, max: 4, flexible_from: 2, body: DESCRIBE_LOG_DIRS },
    Api { key: 37, min: 0, max: 3, flexible_from: 2, body: CREATE_PARTITIONS },
    Api { key: 43, min: 0, max: 2, flexible_from: 2, body: ELECT_LEADERS },
    Api { key: 44, min: 0, max: 1, flexible_from: 1, body: INCREMENTAL_ALTER_CONFIGS },
    Api { key: 60, min: 0, max: 2, flexible_from: 0, body: DESCRIBE_CLUSTER },
    Api { key: 75, min: 0, max: 0, flexible_from: 0, body: DESCRIBE_TOPIC_PARTITIONS },
    // ACLs.
    Api { key: 29, min: 1, max: 3, flexible_from: 2, body: DESCRIBE_ACLS },
    Api { key: 30, min: 1, max: 3, flexible_from: 2, body: CREATE_ACLS },
    Api { key: 31, min: 1, max: 3, flexible_from: 2, body: DELETE_ACLS },
    // Client quotas.
    Api { key: 48, min: 0, max: 1, flexible_from: 1, body: DESCRIBE_CLIENT_QUOTAS },
    Api { key: 49, min: 0, max: 1, flexible_from: 1, body: ALTER_CLIENT_QUOTAS },
    // SCRAM credentials.
    Api { key: 50, min: 0, max: 0, flexible_from: 0, body: DESCRIBE_USER_SCRAM_CREDENTIALS },
    Api { key: 51, min: 0, max: 0, flexible_from: 0, body: ALTER_USER_SCRAM_CREDENTIALS },
    // Group coordinator.
    Api { key: 8, min: 2, max: 9, flexible_from: 8, body: OFFSET_COMMIT },
    Api { key: 9, min: 1, max: 9, flexible_from: 6, body: OFFSET_FETCH },
    Api { key: 11, min: 0, max: 9, flexible_from: 6, body: JOIN_GROUP },
    Api { key: 12, min: 0, max: 4, flexible_from: 4, body: HEARTBEAT },
    Api { key: 13, min: 0, max: 5, flexible_from: 4, body: LEAVE_GROUP },
    Api { key: 14, min: 0, max: 5, flexible_from: 4, body: SYNC_GROUP },
    Api { key: 15, min: 0, max: 5, flexible_from: 5, body: DESCRIBE_GROUPS },
    Api { key: 16, min: 0, max: 5, flexible_from: 3, body: LIST_GROUPS },
    Api { key: 42, min: 0, max: 2, flexible_from: 2, body: DELETE_GROUPS },
    Api { key: 47, min: 0, max: 0, flexible_from: 1, body: OFFSET_DELETE },
    // Authentication: answered by `sasl` before a SASL listener's client has
    // authenticated, and with ILLEGAL_SASL_STATE after that or elsewhere.
    Api { key: 17, min: 0, max: 1, flexible_from: 2, body: SASL_HANDSHAKE },
    Api { key: 36, min: 0, max: 2, flexible_from: 2, body: SASL_AUTHENTICATE },
    // Transaction coordinator and producer ids.
    Api { key: 22, min: 0, max: 5, flexible_from: 2, body: INIT_PRODUCER_ID },
    Api { key: 24, min: 0, max: 5, flexible_from: 3, body: ADD_PARTITIONS_TO_TXN },
    Api { key: 25, min: 0, max: 4, flexible_from: 3, body: ADD_OFFSETS_TO_TXN },
    Api { key: 26, min: 0, max: 5, flexible_from: 3, body: END_TXN },
    Api { key: 27, min: 1, max: 1, flexible_from: 1, body: WRITE_TXN_MARKERS },
    Api { key: 28, min: 0, max: 5, flexible_from: 3, body: TXN_OFFSET_COMMIT },
    Api { key: 61, min: 0, max: 0, flexible_from: 0, body: DESCRIBE_PRODUCERS },
    Api { key: 65, min: 0, max: 0, flexible_from: 0, body: DESCRIBE_TRANSACTIONS },
    Api { key: 66, min: 0, max: 2, flexible_from: 0, body: LIST_TRANSACTIONS },
    // The consumer group protocol (KIP-848).
    Api { key: 68, min: 0, max: 1, flexible_from: 0, body: CONSUMER_GROUP_HEARTBEAT },
    Api { key: 69, min: 0, max: 1, flexible_from: 0, body: CONSUMER_GROUP_DESCRIBE },
];

// Produce (0): produce_request.rs. Version 13 names topics by id (KIP-516).
const PRODUCE: &[Field] = &[
    Field::new("transactional_id", NullableString),
    Field::new("acks", Int16),
    Field::new("timeout_ms", Int32),
    Field::new("topic_data", Kind::Array(&Kind::Struct(PRODUCE_TOPIC))),
];
const PRODUCE_TOPIC: &[Field] = &[
    Field::new("name", STRING).until(12),
    Field::new("topic_id", Uuid).since(13),
    Field::new("partition_data", Kind::Array(&Kind::Struct(PRODUCE_PARTITION))),
];
const PRODUCE_PARTITION: &[Field] = &[Field::new("index", Int32), Field::new("records", Records)];

// Fetch (1): fetch_request.rs. Topic ids replace names from version 13.
const FETCH: &[Field] = &[
    Field::new("cluster_id", NullableString).since(12).tagged(0),
    Field::new("replica_id", Int32).until(14),
    Field::new("replica_state", Kind::Struct(FETCH_REPLICA_STATE)).since(15).tagged(1),
    Field::new("max_wait_ms", Int32),
    Field::new("min_bytes", Int32),
    Field::new("max_bytes", Int32),
    Field::new("isolation_level", Int8),
    Field::new("session_id", Int32).since(7),
    Field::new("session_epoch", Int32).since(7),
    Field::new("topics", Kind::Array(&Kind::Struct(FETCH_TOPIC))),
    Field::new("forgotten_topics_data", Kind::Array(&Kind::Struct(FETCH_FORGOTTEN))).since(7),
    Field::new("rack_id", STRING).since(11),
];
const FETCH_REPLICA_STATE: &[Field] =
    &[Field::new("replica_id", Int32).since(15), Field::new("replica_epoch", Int64).since(15)];
const FETCH_TOPIC: &[Field] = &[
    Field::new("topic", STRING).until(12),
    Field::new("topic_id", Uuid).since(13),
    Field::new("partitions", Kind::Array(&Kind::Struct(FETCH_PARTITION))),
];
const FETCH_PARTITION: &[Field] = &[
    Field::new("partition", Int32),
    Field::new("current_leader_epoch", Int32).since(9),
    Field::new("fetch_offset", Int64),
    Field::new("last_fetched_epoch", Int32).since(12),
    Field::new("log_start_offset", Int64).since(5),
    Field::new("partition_max_bytes", Int32),
    Field::new("replica_directory_id", Uuid).since(17).tagged(0),
    Field::new("high_watermark", Int64).since(18).tagged(1),
];
const FETCH_FORGOTTEN: &[Field] = &[
    Field::new("topic", STRING).since(7).until(12),
    Field::new("topic_id", Uuid).since(13),
    Field::new("partitions", Kind::Array(&Int32)).since(7),
];

// ListOffsets (2): list_offsets_request.rs.
const LIST_OFFSETS: &[Field] = &[
    Field::new("replica_id", Int32),
    Field::new("isolation_level", Int8).since(2),
    Field::new("topics", Kind::Array(&Kind::Struct(LIST_OFFSETS_TOPIC))),
    Field::new("timeout_ms", Int32).since(10),
];
const LIST_OFFSETS_TOPIC: &[Field] =
    &[Field::new("name", STRING), Field::new("partitions", Kind::Array(&Kind::Struct(LIST_OFFSETS_PARTITION)))];
const LIST_OFFSETS_PARTITION: &[Field] = &[
    Field::new("partition_index", Int32),
    Field::new("current_leader_epoch", Int32).since(4),
    Field::new("timestamp", Int64),
];

// Metadata (3): metadata_request.rs. A null topic list asks for every topic.
const METADATA: &[Field] = &[
    Field::new("topics", Kind::NullableArray(&Kind::Struct(METADATA_TOPIC))),
    Field::new("allow_auto_topic_creation", Bool).since(4),
    Field::new("include_cluster_authorized_operations", Bool).since(8).until(10),
    Field::new("include_topic_authorized_operations", Bool).since(8),
];
const METADATA_TOPIC: &[Field] = &[Field::new("topic_id", Uuid).since(10), Field::new("name", NullableString)];

// FindCoordinator (10): find_coordinator_request.rs. From v4 one request
// names several keys (KIP-699).
const FIND_COORDINATOR: &[Field] = &[
    Field::new("key", STRING).until(3),
    Field::new("key_type", Int8).since(1),
    Field::new("coordinator_keys", Kind::Array(&STRING)).since(4),
];

// ApiVersions (18): api_versions_request.rs (client software name, KIP-511).
const API_VERSIONS: &[Field] =
    &[Field::new("client_software_name", STRING).since(3), Field::new("client_software_version", STRING).since(3)];

// SaslHandshake (17): sasl_handshake_request.rs; never flexible.
const SASL_HANDSHAKE: &[Field] = &[Field::new("mechanism", STRING)];

// SaslAuthenticate (36): sasl_authenticate_request.rs; flexible from v2.
const SASL_AUTHENTICATE: &[Field] = &[Field::new("auth_bytes", Kind::Bytes)];

// CreateTopics (19): create_topics_request.rs.
const CREATE_TOPICS: &[Field] = &[
    Field::new("topics", Kind::Array(&Kind::Struct(CREATABLE_TOPIC))),
    Field::new("timeout_ms", Int32),
    Field::new("validate_only", Bool),
];
const CREATABLE_TOPIC: &[Field] = &[
    Field::new("name", STRING),
    Field::new("num_partitions", Int32),
    Field::new("replication_factor", Int16),
    Field::new("assignments", Kind::Array(&Kind::Struct(CREATABLE_ASSIGNMENT))),
    Field::new("configs", Kind::Array(&Kind::Struct(CREATABLE_CONFIG))),
];
const CREATABLE_ASSIGNMENT: &[Field] =
    &[Field::new("partition_index", Int32), Field::new("broker_ids", Kind::Array(&Int32))];
const CREATABLE_CONFIG: &[Field] = &[Field::new("name", STRING), Field::new("value", NullableString)];

// DeleteTopics (20): delete_topics_request.rs. Version 6 names topics by
// name or id.
const DELETE_TOPICS: &[Field] = &[
    Field::new("topics", Kind::Array(&Kind::Struct(DELETE_TOPIC_STATE))).since(6),
    Field::new("topic_names", Kind::Array(&STRING)).until(5),
    Field::new("timeout_ms", Int32),
];
const DELETE_TOPIC_STATE: &[Field] =
    &[Field::new("name", NullableString).since(6), Field::new("topic_id", Uuid).since(6)];

// Admin APIs.

// DeleteRecords (21): delete_records_request.rs.
const DELETE_RECORDS: &[Field] =
    &[Field::new("topics", Kind::Array(&Kind::Struct(DELETE_RECORDS_TOPIC))), Field::new("timeout_ms", Int32)];
const DELETE_RECORDS_TOPIC: &[Field] =
    &[Field::new("name", STRING), Field::new("partitions", Kind::Array(&Kind::Struct(DELETE_RECORDS_PARTITION)))];
const DELETE_RECORDS_PARTITION: &[Field] = &[Field::new("partition_index", Int32), Field::new("offset", Int64)];

// DescribeAcls (29): describe_acls_request.rs; the decoder starts at v1,
// where pattern_type_filter is always present.
const DESCRIBE_ACLS: &[Field] = ACL_FILTER;
const ACL_FILTER: &[Field] = &[
    Field::new("resource_type_filter", Int8),
    Field::new("resource_name_filter", NullableString),
    Field::new("pattern_type_filter", Int8),
    Field::new("principal_filter", NullableString),
    Field::new("host_filter", NullableString),
    Field::new("operation", Int8),
    Field::new("permission_type", Int8),
];

// CreateAcls (30): create_acls_request.rs.
const CREATE_ACLS: &[Field] = &[Field::new("creations", Kind::Array(&Kind::Struct(ACL_CREATION)))];
const ACL_CREATION: &[Field] = &[
    Field::new("resource_type", Int8),
    Field::new("resource_name", STRING),
    Field::new("resource_pattern_type", Int8),
    Field::new("principal", STRING),
    Field::new("host", STRING),
    Field::new("operation", Int8),
    Field::new("permission_type", Int8),
];

// DeleteAcls (31): delete_acls_request.rs.
const DELETE_ACLS: &[Field] = &[Field::new("filters", Kind::Array(&Kind::Struct(ACL_FILTER)))];

// DescribeConfigs (32): describe_configs_request.rs; the decoder starts at v1.
const DESCRIBE_CONFIGS: &[Field] = &[
    Field::new("resources", Kind::Array(&Kind::Struct(DESCRIBE_CONFIGS_RESOURCE))),
    Field::new("include_synonyms", Bool),
    Field::new("include_documentation", Bool).since(3),
];
const DESCRIBE_CONFIGS_RESOURCE: &[Field] = &[
    Field::new("resource_type", Int8),
    Field::new("resource_name", STRING),
    Field::new("configuration_keys", Kind::NullableArray(&STRING)),
];

// AlterConfigs (33): alter_configs_request.rs.
const ALTER_CONFIGS: &[Field] =
    &[Field::new("resources", Kind::Array(&Kind::Struct(ALTER_CONFIGS_RESOURCE))), Field::new("validate_only", Bool)];
const ALTER_CONFIGS_RESOURCE: &[Field] = &[
    Field::new("resource_type", Int8),
    Field::new("resource_name", STRING),
    Field::new("configs", Kind::Array(&Kind::Struct(ALTERABLE_CONFIG))),
];
const ALTERABLE_CONFIG: &[Field] = &[Field::new("name", STRING), Field::new("value", NullableString)];

// DescribeLogDirs (35): describe_log_dirs_request.rs; a null topic list asks
// for every partition.
const DESCRIBE_LOG_DIRS: &[Field] =
    &[Field::new("topics", Kind::NullableArray(&Kind::Struct(DESCRIBABLE_LOG_DIR_TOPIC)))];
const DESCRIBABLE_LOG_DIR_TOPIC: &[Field] =
    &[Field::new("topic", STRING), Field::new("partitions", Kind::Array(&Int32))];

// CreatePartitions (37): create_partitions_request.rs.
const CREATE_PARTITIONS: &[Field] = &[
    Field::new("topics", Kind::Array(&Kind::Struct(CREATE_PARTITIONS_TOPIC))),
    Field::new("timeout_ms", Int32),
    Field::new("validate_only", Bool),
];
const CREATE_PARTITIONS_TOPIC: &[Field] = &[
    Field::new("name", STRING),
    Field::new("count", Int32),
    Field::new("assignments", Kind::NullableArray(&Kind::Struct(CREATE_PARTITIONS_ASSIGNMENT))),
];
const CREATE_PARTITIONS_ASSIGNMENT: &[Field] = &[Field::new("broker_ids", Kind::Array(&Int32))];

// ElectLeaders (43): elect_leaders_request.rs; a null list means every partition.
// DescribeClientQuotas (48): describe_client_quotas_request.rs.
const DESCRIBE_CLIENT_QUOTAS: &[Field] =
    &[Field::new("components", Kind::Array(&Kind::Struct(CLIENT_QUOTA_COMPONENT))), Field::new("strict", Bool)];
const CLIENT_QUOTA_COMPONENT: &[Field] =
    &[Field::new("entity_type", STRING), Field::new("match_type", Int8), Field::new("match", NullableString)];

// AlterClientQuotas (49): alter_client_quotas_request.rs.
const ALTER_CLIENT_QUOTAS: &[Field] =
    &[Field::new("entries", Kind::Array(&Kind::Struct(CLIENT_QUOTA_ENTRY))), Field::new("validate_only", Bool)];
const CLIENT_QUOTA_ENTRY: &[Field] = &[
    Field::new("entity", Kind::Array(&Kind::Struct(CLIENT_QUOTA_ENTITY))),
    Field::new("ops", Kind::Array(&Kind::Struct(CLIENT_QUOTA_OP))),
];
const CLIENT_QUOTA_ENTITY: &[Field] = &[Field::new("entity_type", STRING), Field::new("entity_name", NullableString)];
const CLIENT_QUOTA_OP: &[Field] =
    &[Field::new("key", STRING), Field::new("value", Kind::Float64), Field::new("remove", Bool)];

const ELECT_LEADERS: &[Field] = &[
    Field::new("election_type", Int8).since(1),
    Field::new("topic_partitions", Kind::NullableArray(&Kind::Struct(ELECT_LEADERS_TOPIC))),
    Field::new("timeout_ms", Int32),
];
const ELECT_LEADERS_TOPIC: &[Field] = &[Field::new("topic", STRING), Field::new("partitions", Kind::Array(&Int32))];

// IncrementalAlterConfigs (44): incremental_alter_configs_request.rs.
const INCREMENTAL_ALTER_CONFIGS: &[Field] = &[
    Field::new("resources", Kind::Array(&Kind::Struct(INCREMENTAL_ALTER_RESOURCE))),
    Field::new("validate_only", Bool),
];
const INCREMENTAL_ALTER_RESOURCE: &[Field] = &[
    Field::new("resource_type", Int8),
    Field::new("resource_name", STRING),
    Field::new("configs", Kind::Array(&Kind::Struct(INCREMENTAL_ALTERABLE_CONFIG))),
];
const INCREMENTAL_ALTERABLE_CONFIG: &[Field] =
    &[Field::new("name", STRING), Field::new("config_operation", Int8), Field::new("value", NullableString)];

// DescribeUserScramCredentials (50): describe_user_scram_credentials_request.rs.
const DESCRIBE_USER_SCRAM_CREDENTIALS: &[Field] =
    &[Field::new("users", Kind::NullableArray(&Kind::Struct(SCRAM_USER_NAME)))];
const SCRAM_USER_NAME: &[Field] = &[Field::new("name", STRING)];

// AlterUserScramCredentials (51): alter_user_scram_credentials_request.rs.
const ALTER_USER_SCRAM_CREDENTIALS: &[Field] = &[
    Field::new("deletions", Kind::Array(&Kind::Struct(SCRAM_CREDENTIAL_DELETION))),
    Field::new("upsertions", Kind::Array(&Kind::Struct(SCRAM_CREDENTIAL_UPSERTION))),
];
const SCRAM_CREDENTIAL_DELETION: &[Field] = &[Field::new("name", STRING), Field::new("mechanism", Int8)];
const SCRAM_CREDENTIAL_UPSERTION: &[Field] = &[
    Field::new("name", STRING),
    Field::new("mechanism", Int8),
    Field::new("iterations", Int32),
    Field::new("salt", Kind::Bytes),
    Field::new("salted_password", Kind::Bytes),
];

// DescribeCluster (60): describe_cluster_request.rs.
const DESCRIBE_CLUSTER: &[Field] = &[
    Field::new("include_cluster_authorized_operations", Bool),
    Field::new("endpoint_type", Int8).since(1),
    Field::new("include_fenced_brokers", Bool).since(2),
];

// DescribeTopicPartitions (75): describe_topic_partitions_request.rs.
const DESCRIBE_TOPIC_PARTITIONS: &[Field] = &[
    Field::new("topics", Kind::Array(&Kind::Struct(DESCRIBE_TOPIC_PARTITIONS_TOPIC))),
    Field::new("response_partition_limit", Int32),
    Field::new("cursor", Kind::NullableStruct(DESCRIBE_TOPIC_PARTITIONS_CURSOR)),
];
const DESCRIBE_TOPIC_PARTITIONS_TOPIC: &[Field] = &[Field::new("name", STRING)];
const DESCRIBE_TOPIC_PARTITIONS_CURSOR: &[Field] =
    &[Field::new("topic_name", STRING), Field::new("partition_index", Int32)];
// Group coordinator.

// OffsetCommit (8): offset_commit_request.rs. Versions 0 and 1 are not
// decoded by kafka-protocol; no current client sends them.
const OFFSET_COMMIT: &[Field] = &[
    Field::new("group_id", STRING),
    Field::new("generation_id_or_member_epoch", Int32),
    Field::new("member_id", STRING),
    Field::new("group_instance_id", NullableString).since(7),
    Field::new("retention_time_ms", Int64).until(4),
    Field::new("topics", Kind::Array(&Kind::Struct(OFFSET_COMMIT_TOPIC))),
];
const OFFSET_COMMIT_TOPIC: &[Field] =
    &[Field::new("name", STRING), Field::new("partitions", Kind::Array(&Kind::Struct(OFFSET_COMMIT_PARTITION)))];
const OFFSET_COMMIT_PARTITION: &[Field] = &[
    Field::new("partition_index", Int32),
    Field::new("committed_offset", Int64),
    Field::new("committed_leader_epoch", Int32).since(6),
    Field::new("committed_metadata", NullableString),
];

// OffsetFetch (9): offset_fetch_request.rs. From v8 several groups per
// request (KIP-709).
const OFFSET_FETCH: &[Field] = &[
    Field::new("group_id", STRING).until(7),
    Field::new("topics", Kind::NullableArray(&Kind::Struct(OFFSET_FETCH_TOPIC))).until(7),
    Field::new("groups", Kind::Array(&Kind::Struct(OFFSET_FETCH_GROUP))).since(8),
    Field::new("require_stable", Bool).since(7),
];
const OFFSET_FETCH_TOPIC: &[Field] =
    &[Field::new("name", STRING).until(7), Field::new("partition_indexes", Kind::Array(&Int32)).until(7)];
const OFFSET_FETCH_GROUP: &[Field] = &[
    Field::new("group_id", STRING).since(8),
    Field::new("member_id", NullableString).since(9),
    Field::new("member_epoch", Int32).since(9),
    Field::new("topics", Kind::NullableArray(&Kind::Struct(OFFSET_FETCH_GROUP_TOPIC))).since(8),
];
const OFFSET_FETCH_GROUP_TOPIC: &[Field] =
    &[Field::new("name", STRING).since(8), Field::new("partition_indexes", Kind::Array(&Int32)).since(8)];

// JoinGroup (11): join_group_request.rs.
const JOIN_GROUP: &[Field] = &[
    Field::new("group_id", STRING),
    Field::new("session_timeout_ms", Int32),
    Field::new("rebalance_timeout_ms", Int32).since(1),
    Field::new("member_id", STRING),
    Field::new("group_instance_id", NullableString).since(5),
    Field::new("protocol_type", STRING),
    Field::new("protocols", Kind::Array(&Kind::Struct(JOIN_GROUP_PROTOCOL))),
    Field::new("reason", NullableString).since(8),
];
const JOIN_GROUP_PROTOCOL: &[Field] = &[Field::new("name", STRING), Field::new("metadata", Kind::Bytes)];

// Heartbeat (12): heartbeat_request.rs.
const HEARTBEAT: &[Field] = &[
    Field::new("group_id", STRING),
    Field::new("generation_id", Int32),
    Field::new("member_id", STRING),
    Field::new("group_instance_id", NullableString).since(3),
];

// LeaveGroup (13): leave_group_request.rs. From v3 a batch of members.
const LEAVE_GROUP: &[Field] = &[
    Field::new("group_id", STRING),
    Field::new("member_id", STRING).until(2),
    Field::new("members", Kind::Array(&Kind::Struct(LEAVE_GROUP_MEMBER))).since(3),
];
const LEAVE_GROUP_MEMBER: &[Field] = &[
    Field::new("member_id", STRING).since(3),
    Field::new("group_instance_id", NullableString).since(3),
    Field::new("reason", NullableString).since(5),
];

// SyncGroup (14): sync_group_request.rs.
const SYNC_GROUP: &[Field] = &[
    Field::new("group_id", STRING),
    Field::new("generation_id", Int32),
    Field::new("member_id", STRING),
    Field::new("group_instance_id", NullableString).since(3),
    Field::new("protocol_type", NullableString).since(5),
    Field::new("protocol_name", NullableString).since(5),
    Field::new("assignments", Kind::Array(&Kind::Struct(SYNC_GROUP_ASSIGNMENT))),
];
const SYNC_GROUP_ASSIGNMENT: &[Field] = &[Field::new("member_id", STRING), Field::new("assignment", Kind::Bytes)];

// DescribeGroups (15): describe_groups_request.rs.
const DESCRIBE_GROUPS: &[Field] =
    &[Field::new("groups", Kind::Array(&STRING)), Field::new("include_authorized_operations", Bool).since(3)];

// ListGroups (16): list_groups_request.rs.
const LIST_GROUPS: &[Field] = &[
    Field::new("states_filter", Kind::Array(&STRING)).since(4),
    Field::new("types_filter", Kind::Array(&STRING)).since(5),
];

// DeleteGroups (42): delete_groups_request.rs.
const DELETE_GROUPS: &[Field] = &[Field::new("groups_names", Kind::Array(&STRING))];

// OffsetDelete (47): offset_delete_request.rs; never flexible.
const OFFSET_DELETE: &[Field] =
    &[Field::new("group_id", STRING), Field::new("topics", Kind::Array(&Kind::Struct(OFFSET_DELETE_TOPIC)))];
const OFFSET_DELETE_TOPIC: &[Field] =
    &[Field::new("name", STRING), Field::new("partitions", Kind::Array(&Kind::Struct(OFFSET_DELETE_PARTITION)))];
const OFFSET_DELETE_PARTITION: &[Field] = &[Field::new("partition_index", Int32)];

// Transaction coordinator and producer ids.

// InitProducerId (22): init_producer_id_request.rs. A null transactional id
// asks for an idempotent producer's id; v3 adds the id and epoch of a
// producer recovering (KIP-360).
const INIT_PRODUCER_ID: &[Field] = &[
    Field::new("transactional_id", NullableString),
    Field::new("transaction_timeout_ms", Int32),
    Field::new("producer_id", Int64).since(3),
    Field::new("producer_epoch", Int16).since(3),
];

// AddPartitionsToTxn (24): add_partitions_to_txn_request.rs. From v4 a batch
// of transactions, the form brokers use to verify (KIP-890).
const ADD_PARTITIONS_TO_TXN: &[Field] = &[
    Field::new("transactions", Kind::Array(&Kind::Struct(ADD_PARTITIONS_TO_TXN_TRANSACTION))).since(4),
    Field::new("v3_and_below_transactional_id", STRING).until(3),
    Field::new("v3_and_below_producer_id", Int64).until(3),
    Field::new("v3_and_below_producer_epoch", Int16).until(3),
    Field::new("v3_and_below_topics", Kind::Array(&Kind::Struct(ADD_PARTITIONS_TO_TXN_TOPIC))).until(3),
];
const ADD_PARTITIONS_TO_TXN_TRANSACTION: &[Field] = &[
    Field::new("transactional_id", STRING).since(4),
    Field::new("producer_id", Int64).since(4),
    Field::new("producer_epoch", Int16).since(4),
    Field::new("verify_only", Bool).since(4),
    Field::new("topics", Kind::Array(&Kind::Struct(ADD_PARTITIONS_TO_TXN_TOPIC))).since(4),
];
const ADD_PARTITIONS_TO_TXN_TOPIC: &[Field] =
    &[Field::new("name", STRING), Field::new("partitions", Kind::Array(&Int32))];

// AddOffsetsToTxn (25): add_offsets_to_txn_request.rs.
const ADD_OFFSETS_TO_TXN: &[Field] = &[
    Field::new("transactional_id", STRING),
    Field::new("producer_id", Int64),
    Field::new("producer_epoch", Int16),
    Field::new("group_id", STRING),
];

// EndTxn (26): end_txn_request.rs.
const END_TXN: &[Field] = &[
    Field::new("transactional_id", STRING),
    Field::new("producer_id", Int64),
    Field::new("producer_epoch", Int16),
    Field::new("committed", Bool),
];

// WriteTxnMarkers (27): write_txn_markers_request.rs; the decoder knows v1 only.
const WRITE_TXN_MARKERS: &[Field] = &[Field::new("markers", Kind::Array(&Kind::Struct(WRITABLE_TXN_MARKER)))];
const WRITABLE_TXN_MARKER: &[Field] = &[
    Field::new("producer_id", Int64),
    Field::new("producer_epoch", Int16),
    Field::new("transaction_result", Bool),
    Field::new("topics", Kind::Array(&Kind::Struct(WRITABLE_TXN_MARKER_TOPIC))),
    Field::new("coordinator_epoch", Int32),
];
const WRITABLE_TXN_MARKER_TOPIC: &[Field] =
    &[Field::new("name", STRING), Field::new("partition_indexes", Kind::Array(&Int32))];

// TxnOffsetCommit (28): txn_offset_commit_request.rs. v3 adds the group
// member (KIP-447).
const TXN_OFFSET_COMMIT: &[Field] = &[
    Field::new("transactional_id", STRING),
    Field::new("group_id", STRING),
    Field::new("producer_id", Int64),
    Field::new("producer_epoch", Int16),
    Field::new("generation_id", Int32).since(3),
    Field::new("member_id", STRING).since(3),
    Field::new("group_instance_id", NullableString).since(3),
    Field::new("topics", Kind::Array(&Kind::Struct(TXN_OFFSET_COMMIT_TOPIC))),
];
const TXN_OFFSET_COMMIT_TOPIC: &[Field] =
    &[Field::new("name", STRING), Field::new("partitions", Kind::Array(&Kind::Struct(TXN_OFFSET_COMMIT_PARTITION)))];
const TXN_OFFSET_COMMIT_PARTITION: &[Field] = &[
    Field::new("partition_index", Int32),
    Field::new("committed_offset", Int64),
    Field::new("committed_leader_epoch", Int32).since(2),
    Field::new("committed_metadata", NullableString),
];

// DescribeProducers (61): describe_producers_request.rs.
const DESCRIBE_PRODUCERS: &[Field] = &[Field::new("topics", Kind::Array(&Kind::Struct(DESCRIBE_PRODUCERS_TOPIC)))];
const DESCRIBE_PRODUCERS_TOPIC: &[Field] =
    &[Field::new("name", STRING), Field::new("partition_indexes", Kind::Array(&Int32))];

// DescribeTransactions (65): describe_transactions_request.rs.
const DESCRIBE_TRANSACTIONS: &[Field] = &[Field::new("transactional_ids", Kind::Array(&STRING))];

// ListTransactions (66): list_transactions_request.rs. v1 adds the duration
// filter (KIP-994), v2 a regular-expression filter on ids (KIP-1152).
const LIST_TRANSACTIONS: &[Field] = &[
    Field::new("state_filters", Kind::Array(&STRING)),
    Field::new("producer_id_filters", Kind::Array(&Int64)),
    Field::new("duration_filter", Int64).since(1),
    Field::new("transactional_id_pattern", NullableString).since(2),
];
// ConsumerGroupHeartbeat (68): consumer_group_heartbeat_request.rs; always
// flexible. Version 1 adds the subscribed topic regex.
const CONSUMER_GROUP_HEARTBEAT: &[Field] = &[
    Field::new("group_id", STRING),
    Field::new("member_id", STRING),
    Field::new("member_epoch", Int32),
    Field::new("instance_id", NullableString),
    Field::new("rack_id", NullableString),
    Field::new("rebalance_timeout_ms", Int32),
    Field::new("subscribed_topic_names", Kind::NullableArray(&STRING)),
    Field::new("subscribed_topic_regex", NullableString).since(1),
    Field::new("server_assignor", NullableString),
    Field::new("topic_partitions", Kind::NullableArray(&Kind::Struct(CONSUMER_GROUP_HEARTBEAT_TOPIC))),
];
const CONSUMER_GROUP_HEARTBEAT_TOPIC: &[Field] =
    &[Field::new("topic_id", Uuid), Field::new("partitions", Kind::Array(&Int32))];

// ConsumerGroupDescribe (69): consumer_group_describe_request.rs; always flexible.
const CONSUMER_GROUP_DESCRIBE: &[Field] =
    &[Field::new("group_ids", Kind::Array(&STRING)), Field::new("include_authorized_operations", Bool)];

/// `(key, min, max)` for every entry of [`APIS`], built at compile time so the
/// table stays the single source of truth.
pub(crate) const SUPPORTED: [(i16, i16, i16); APIS.len()] = {
    let mut out = [(0, 0, 0); APIS.len()];
    let mut i = 0;
    while i < APIS.len() {
        let api = &APIS[i];
        assert!(api.min >= 0 && api.min <= api.max, "empty version range");
        let mut j = 0;
        while j < i {
            assert!(APIS[j].key != api.key, "duplicate api key");
            j += 1;
        }
        out[i] = (api.key, api.min, api.max);
        i += 1;
    }
    out
};

/// The table entry for `key`, if Runnel serves it.
pub(crate) fn api(key: i16) -> Option<&'static Api> {
    APIS.iter().find(|api| api.key == key)
}
