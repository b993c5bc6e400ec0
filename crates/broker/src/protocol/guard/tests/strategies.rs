//! Proptest strategies that build every request Runnel serves with
//! `kafka-protocol`'s own types, one version at a time.
//!
//! Each strategy sets only the fields that exist in the requested version and
//! leaves the others at their defaults, so the encoder writes them and the
//! decoder gives back an equal value. Lists hold 0 to 4 elements, strings are
//! arbitrary Unicode, optional fields are sometimes absent and flexible
//! versions carry up to three unknown tagged fields per struct. Unknown tags
//! start at 10, above every tag the decoder knows, because the encoder writes
//! unknown tags only above the known ones.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic, ForgottenTopic, ReplicaState};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafka_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use kafka_protocol::messages::{BrokerId, RequestKind, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use uuid::Uuid;

/// A request body of `api_key` at `version`.
///
/// # Panics
///
/// When Runnel serves `api_key` but no strategy builds it: every API in the
/// guard's table needs one here.
pub(super) fn request(api_key: i16, version: i16) -> BoxedStrategy<RequestKind> {
    match api_key {
        0 => produce(version).prop_map(RequestKind::from).boxed(),
        1 => fetch(version).prop_map(RequestKind::from).boxed(),
        2 => list_offsets(version).prop_map(RequestKind::from).boxed(),
        3 => metadata(version).prop_map(RequestKind::from).boxed(),
        10 => find_coordinator(version).prop_map(RequestKind::from).boxed(),
        17 => sasl_handshake().prop_map(RequestKind::from).boxed(),
        36 => sasl_authenticate(version).prop_map(RequestKind::from).boxed(),
        18 => api_versions(version).prop_map(RequestKind::from).boxed(),
        19 => create_topics(version).prop_map(RequestKind::from).boxed(),
        20 => delete_topics(version).prop_map(RequestKind::from).boxed(),
        // Admin APIs.
        21 => admin::delete_records(version).prop_map(RequestKind::from).boxed(),
        32 => admin::describe_configs(version).prop_map(RequestKind::from).boxed(),
        33 => admin::alter_configs(version).prop_map(RequestKind::from).boxed(),
        35 => admin::describe_log_dirs(version).prop_map(RequestKind::from).boxed(),
        37 => admin::create_partitions(version).prop_map(RequestKind::from).boxed(),
        43 => admin::elect_leaders(version).prop_map(RequestKind::from).boxed(),
        44 => admin::incremental_alter_configs(version).prop_map(RequestKind::from).boxed(),
        60 => admin::describe_cluster(version).prop_map(RequestKind::from).boxed(),
        75 => admin::describe_topic_partitions(version).prop_map(RequestKind::from).boxed(),
        // ACLs.
        29 => acls::describe_acls(version).prop_map(RequestKind::from).boxed(),
        30 => acls::create_acls(version).prop_map(RequestKind::from).boxed(),
        31 => acls::delete_acls(version).prop_map(RequestKind::from).boxed(),
        48 => admin::describe_client_quotas(version).prop_map(RequestKind::from).boxed(),
        49 => admin::alter_client_quotas(version).prop_map(RequestKind::from).boxed(),
        // SCRAM credentials.
        50 => scram::describe_user_scram_credentials().prop_map(RequestKind::from).boxed(),
        51 => scram::alter_user_scram_credentials().prop_map(RequestKind::from).boxed(),
        // Group coordinator.
        8 => groups::offset_commit(version).prop_map(RequestKind::from).boxed(),
        9 => groups::offset_fetch(version).prop_map(RequestKind::from).boxed(),
        11 => groups::join_group(version).prop_map(RequestKind::from).boxed(),
        12 => groups::heartbeat(version).prop_map(RequestKind::from).boxed(),
        13 => groups::leave_group(version).prop_map(RequestKind::from).boxed(),
        14 => groups::sync_group(version).prop_map(RequestKind::from).boxed(),
        15 => groups::describe_groups(version).prop_map(RequestKind::from).boxed(),
        16 => groups::list_groups(version).prop_map(RequestKind::from).boxed(),
        42 => groups::delete_groups(version).prop_map(RequestKind::from).boxed(),
        47 => groups::offset_delete(version).prop_map(RequestKind::from).boxed(),
        // Transaction coordinator and producer ids.
        22 => txn::init_producer_id(version).prop_map(RequestKind::from).boxed(),
        24 => txn::add_partitions_to_txn(version).prop_map(RequestKind::from).boxed(),
        25 => txn::add_offsets_to_txn(version).prop_map(RequestKind::from).boxed(),
        26 => txn::end_txn(version).prop_map(RequestKind::from).boxed(),
        27 => txn::write_txn_markers(version).prop_map(RequestKind::from).boxed(),
        28 => txn::txn_offset_commit(version).prop_map(RequestKind::from).boxed(),
        61 => txn::describe_producers(version).prop_map(RequestKind::from).boxed(),
        65 => txn::describe_transactions(version).prop_map(RequestKind::from).boxed(),
        66 => txn::list_transactions(version).prop_map(RequestKind::from).boxed(),
        68 => groups::consumer_group_heartbeat(version).prop_map(RequestKind::from).boxed(),
        69 => groups::consumer_group_describe(version).prop_map(RequestKind::from).boxed(),
        _ => panic!("no request strategy for api key {api_key}"),
    }
}

#[path = "strategies_acls.rs"]
mod acls;
#[path = "strategies_groups.rs"]
mod groups;
#[path = "strategies_scram.rs"]
mod scram;
#[path = "strategies_txn.rs"]
mod txn;

pub(super) fn text() -> impl Strategy<Value = StrBytes> {
    "\\PC{0,8}".prop_map(StrBytes::from_string)
}

pub(super) fn topic_name() -> impl Strategy<Value = TopicName> {
    text().prop_map(TopicName)
}

pub(super) fn uuid() -> impl Strategy<Value = Uuid> {
    any::<[u8; 16]>().prop_map(Uuid::from_bytes)
}

pub(super) fn list<S: Strategy>(element: S) -> impl Strategy<Value = Vec<S::Value>> {
    vec(element, 0..5)
}

/// Unknown tagged fields; none in non-flexible versions.
pub(super) fn unknown_tags(flexible: bool) -> impl Strategy<Value = BTreeMap<i32, Bytes>> {
    let max = if flexible { 3 } else { 0 };
    btree_map(10i32..400, vec(any::<u8>(), 0..6).prop_map(Bytes::from), 0..=max)
}

fn api_versions(v: i16) -> impl Strategy<Value = ApiVersionsRequest> {
    (text(), text(), unknown_tags(v >= 3)).prop_map(move |(name, software_version, tags)| {
        let mut request = ApiVersionsRequest::default().with_unknown_tagged_fields(tags);
        if v >= 3 {
            request.client_software_name = name;
            request.client_software_version = software_version;
        }
        request
    })
}

fn sasl_handshake() -> impl Strategy<Value = SaslHandshakeRequest> {
    text().prop_map(|mechanism| SaslHandshakeRequest::default().with_mechanism(mechanism))
}

fn sasl_authenticate(v: i16) -> impl Strategy<Value = SaslAuthenticateRequest> {
    (vec(any::<u8>(), 0..40), unknown_tags(v >= 2)).prop_map(|(token, tags)| {
        SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)).with_unknown_tagged_fields(tags)
    })
}

fn metadata(v: i16) -> impl Strategy<Value = MetadataRequest> {
    let flags = (any::<bool>(), any::<bool>(), any::<bool>());
    let topic = (uuid(), option::of(topic_name()), unknown_tags(v >= 9)).prop_map(move |(id, name, tags)| {
        let mut topic = MetadataRequestTopic::default().with_name(name).with_unknown_tagged_fields(tags);
        if v >= 10 {
            topic.topic_id = id;
        }
        topic
    });
    (option::of(list(topic)), flags, unknown_tags(v >= 9)).prop_map(
        move |(topics, (auto, cluster, topic_ops), tags)| {
            let mut request = MetadataRequest::default().with_topics(topics).with_unknown_tagged_fields(tags);
            if v >= 4 {
                request.allow_auto_topic_creation = auto;
            }
            if (8..=10).contains(&v) {
                request.include_cluster_authorized_operations = cluster;
            }
            if v >= 8 {
                request.include_topic_authorized_operations = topic_ops;
            }
            request
        },
    )
}

fn produce(v: i16) -> impl Strategy<Value = ProduceRequest> {
    let flexible = v >= 9;
    let records = option::of(vec(any::<u8>(), 0..40).prop_map(Bytes::from));
    let partition = (any::<i32>(), records, unknown_tags(flexible)).prop_map(|(index, records, tags)| {
        PartitionProduceData::default().with_index(index).with_records(records).with_unknown_tagged_fields(tags)
    });
    let topic = (topic_name(), uuid(), list(partition), unknown_tags(flexible)).prop_map(
        move |(name, id, partitions, tags)| {
            let mut topic =
                TopicProduceData::default().with_partition_data(partitions).with_unknown_tagged_fields(tags);
            if v <= 12 {
                topic.name = name;
            } else {
                topic.topic_id = id;
            }
            topic
        },
    );
    let transactional_id = option::of(text().prop_map(TransactionalId));
    (transactional_id, any::<i16>(), any::<i32>(), list(topic), unknown_tags(flexible)).prop_map(
        |(transactional_id, acks, timeout_ms, topics, tags)| {
            ProduceRequest::default()
                .with_transactional_id(transactional_id)
                .with_acks(acks)
                .with_timeout_ms(timeout_ms)
                .with_topic_data(topics)
                .with_unknown_tagged_fields(tags)
        },
    )
}

fn fetch_partition(v: i16) -> impl Strategy<Value = FetchPartition> {
    let numbers = (any::<i32>(), any::<i32>(), any::<i64>(), any::<i32>(), any::<i64>(), any::<i32>());
    (numbers, option::of(uuid()), unknown_tags(v >= 12)).prop_map(move |(numbers, directory, tags)| {
        let (partition, leader_epoch, fetch_offset, last_fetched_epoch, log_start_offset, max_bytes) = numbers;
        let mut p = FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(fetch_offset)
            .with_partition_max_bytes(max_bytes)
            .with_unknown_tagged_fields(tags);
        if v >= 9 {
            p.current_leader_epoch = leader_epoch;
        }
        if v >= 12 {
            p.last_fetched_epoch = last_fetched_epoch;
        }
        if v >= 5 {
            p.log_start_offset = log_start_offset;
        }
        if let Some(directory) = directory.filter(|_| v >= 17) {
            p.replica_directory_id = directory;
        }
        // A follower's high watermark (tag 1) exists from v18; reuse the random log start offset.
        if v >= 18 && log_start_offset % 2 == 0 {
            p.high_watermark = log_start_offset;
        }
        p
    })
}

fn fetch_topic(v: i16) -> impl Strategy<Value = FetchTopic> {
    (topic_name(), uuid(), list(fetch_partition(v)), unknown_tags(v >= 12)).prop_map(
        move |(name, id, partitions, tags)| {
            let mut topic = FetchTopic::default().with_partitions(partitions).with_unknown_tagged_fields(tags);
            if v <= 12 {
                topic.topic = name;
            } else {
                topic.topic_id = id;
            }
            topic
        },
    )
}

fn forgotten_topic(v: i16) -> impl Strategy<Value = ForgottenTopic> {
    (topic_name(), uuid(), list(any::<i32>()), unknown_tags(v >= 12)).prop_map(move |(name, id, partitions, tags)| {
        let mut topic = ForgottenTopic::default().with_partitions(partitions).with_unknown_tagged_fields(tags);
        if v <= 12 {
            topic.topic = name;
        } else {
            topic.topic_id = id;
        }
        topic
    })
}

fn replica_state() -> impl Strategy<Value = ReplicaState> {
    (any::<i32>(), any::<i64>(), unknown_tags(true)).prop_map(|(id, epoch, tags)| {
        ReplicaState::default().with_replica_id(BrokerId(id)).with_replica_epoch(epoch).with_unknown_tagged_fields(tags)
    })
}

fn fetch(v: i16) -> impl Strategy<Value = FetchRequest> {
    let flexible = v >= 12;
    let numbers = (any::<i32>(), any::<i32>(), any::<i32>(), any::<i32>(), any::<i8>(), any::<i32>(), any::<i32>());
    let lists = (list(fetch_topic(v)), list(forgotten_topic(v)));
    let extras = (text(), option::of(text()), option::of(replica_state()), unknown_tags(flexible));
    (numbers, lists, extras).prop_map(move |(numbers, (topics, forgotten), extras)| {
        let (replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level, session_id, session_epoch) = numbers;
        let (rack_id, cluster_id, replica_state, tags) = extras;
        let mut request = FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(min_bytes)
            .with_max_bytes(max_bytes)
            .with_isolation_level(isolation_level)
            .with_topics(topics)
            .with_unknown_tagged_fields(tags);
        if v <= 14 {
            request.replica_id = BrokerId(replica_id);
        }
        if v >= 7 {
            request.session_id = session_id;
            request.session_epoch = session_epoch;
            request.forgotten_topics_data = forgotten;
        }
        if v >= 11 {
            request.rack_id = rack_id;
        }
        if flexible {
            request.cluster_id = cluster_id;
        }
        if let Some(state) = replica_state.filter(|_| v >= 15) {
            request.replica_state = state;
        }
        request
    })
}

fn list_offsets(v: i16) -> impl Strategy<Value = ListOffsetsRequest> {
    let flexible = v >= 6;
    let partition = (any::<i32>(), any::<i32>(), any::<i64>(), unknown_tags(flexible)).prop_map(
        move |(index, leader_epoch, timestamp, tags)| {
            let mut p = ListOffsetsPartition::default()
                .with_partition_index(index)
                .with_timestamp(timestamp)
                .with_unknown_tagged_fields(tags);
            if v >= 4 {
                p.current_leader_epoch = leader_epoch;
            }
            p
        },
    );
    let topic = (topic_name(), list(partition), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
        ListOffsetsTopic::default().with_name(name).with_partitions(partitions).with_unknown_tagged_fields(tags)
    });
    (any::<i32>(), any::<i8>(), list(topic), any::<i32>(), unknown_tags(flexible)).prop_map(
        move |(replica_id, isolation_level, topics, timeout_ms, tags)| {
            let mut request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(replica_id))
                .with_topics(topics)
                .with_unknown_tagged_fields(tags);
            if v >= 2 {
                request.isolation_level = isolation_level;
            }
            if v >= 10 {
                request.timeout_ms = timeout_ms;
            }
            request
        },
    )
}

fn create_topics(v: i16) -> impl Strategy<Value = CreateTopicsRequest> {
    let flexible = v >= 5;
    let assignment = (any::<i32>(), list(any::<i32>()), unknown_tags(flexible)).prop_map(|(index, brokers, tags)| {
        CreatableReplicaAssignment::default()
            .with_partition_index(index)
            .with_broker_ids(brokers.into_iter().map(BrokerId).collect())
            .with_unknown_tagged_fields(tags)
    });
    let config = (text(), option::of(text()), unknown_tags(flexible)).prop_map(|(name, value, tags)| {
        CreatableTopicConfig::default().with_name(name).with_value(value).with_unknown_tagged_fields(tags)
    });
    let counts = (any::<i32>(), any::<i16>());
    let topic = (topic_name(), counts, list(assignment), list(config), unknown_tags(flexible)).prop_map(
        |(name, (partitions, replication), assignments, configs, tags)| {
            CreatableTopic::default()
                .with_name(name)
                .with_num_partitions(partitions)
                .with_replication_factor(replication)
                .with_assignments(assignments)
                .with_configs(configs)
                .with_unknown_tagged_fields(tags)
        },
    );
    (list(topic), any::<i32>(), any::<bool>(), unknown_tags(flexible)).prop_map(
        |(topics, timeout_ms, validate_only, tags)| {
            CreateTopicsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(timeout_ms)
                .with_validate_only(validate_only)
                .with_unknown_tagged_fields(tags)
        },
    )
}

fn find_coordinator(v: i16) -> impl Strategy<Value = FindCoordinatorRequest> {
    (text(), any::<i8>(), list(text()), unknown_tags(v >= 3)).prop_map(move |(key, key_type, keys, tags)| {
        let mut request = FindCoordinatorRequest::default().with_unknown_tagged_fields(tags);
        if v <= 3 {
            request.key = key;
        } else {
            request.coordinator_keys = keys;
        }
        if v >= 1 {
            request.key_type = key_type;
        }
        request
    })
}

fn delete_topics(v: i16) -> impl Strategy<Value = DeleteTopicsRequest> {
    let flexible = v >= 4;
    let state = (option::of(topic_name()), uuid(), unknown_tags(flexible)).prop_map(|(name, id, tags)| {
        DeleteTopicState::default().with_name(name).with_topic_id(id).with_unknown_tagged_fields(tags)
    });
    (list(state), list(topic_name()), any::<i32>(), unknown_tags(flexible)).prop_map(
        move |(topics, names, timeout_ms, tags)| {
            let mut request =
                DeleteTopicsRequest::default().with_timeout_ms(timeout_ms).with_unknown_tagged_fields(tags);
            if v >= 6 {
                request.topics = topics;
            } else {
                request.topic_names = names;
            }
            request
        },
    )
}

/// Strategies for the admin APIs.
mod admin {
    use kafka_protocol::messages::alter_client_quotas_request::{self, AlterClientQuotasRequest};
    use kafka_protocol::messages::alter_configs_request::{self, AlterConfigsRequest};
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsTopic,
    };
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::describe_client_quotas_request::{self, DescribeClientQuotasRequest};
    use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
    use kafka_protocol::messages::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
    use kafka_protocol::messages::describe_log_dirs_request::{DescribableLogDirTopic, DescribeLogDirsRequest};
    use kafka_protocol::messages::describe_topic_partitions_request::{
        Cursor, DescribeTopicPartitionsRequest, TopicRequest,
    };
    use kafka_protocol::messages::elect_leaders_request::{ElectLeadersRequest, TopicPartitions};
    use kafka_protocol::messages::incremental_alter_configs_request::{self, IncrementalAlterConfigsRequest};
    use kafka_protocol::messages::BrokerId;

    use super::*;

    pub(super) fn delete_records(v: i16) -> impl Strategy<Value = DeleteRecordsRequest> {
        let flexible = v >= 2;
        let partition = (any::<i32>(), any::<i64>(), unknown_tags(flexible)).prop_map(|(index, offset, tags)| {
            DeleteRecordsPartition::default()
                .with_partition_index(index)
                .with_offset(offset)
                .with_unknown_tagged_fields(tags)
        });
        let topic = (topic_name(), list(partition), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
            DeleteRecordsTopic::default().with_name(name).with_partitions(partitions).with_unknown_tagged_fields(tags)
        });
        (list(topic), any::<i32>(), unknown_tags(flexible)).prop_map(|(topics, timeout_ms, tags)| {
            DeleteRecordsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(timeout_ms)
                .with_unknown_tagged_fields(tags)
        })
    }

    pub(super) fn describe_configs(v: i16) -> impl Strategy<Value = DescribeConfigsRequest> {
        let flexible = v >= 4;
        let resource = (any::<i8>(), text(), option::of(list(text())), unknown_tags(flexible)).prop_map(
            |(resource_type, name, keys, tags)| {
                DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(name)
                    .with_configuration_keys(keys)
                    .with_unknown_tagged_fields(tags)
            },
        );
        (list(resource), any::<bool>(), any::<bool>(), unknown_tags(flexible)).prop_map(
            move |(resources, synonyms, documentation, tags)| {
                let mut request = DescribeConfigsRequest::default()
                    .with_resources(resources)
                    .with_include_synonyms(synonyms)
                    .with_unknown_tagged_fields(tags);
                if v >= 3 {
                    request.include_documentation = documentation;
                }
                request
            },
        )
    }

    pub(super) fn alter_configs(v: i16) -> impl Strategy<Value = AlterConfigsRequest> {
        let flexible = v >= 2;
        let config = (text(), option::of(text()), unknown_tags(flexible)).prop_map(|(name, value, tags)| {
            alter_configs_request::AlterableConfig::default()
                .with_name(name)
                .with_value(value)
                .with_unknown_tagged_fields(tags)
        });
        let resource = (any::<i8>(), text(), list(config), unknown_tags(flexible)).prop_map(
            |(resource_type, name, configs, tags)| {
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(name)
                    .with_configs(configs)
                    .with_unknown_tagged_fields(tags)
            },
        );
        (list(resource), any::<bool>(), unknown_tags(flexible)).prop_map(|(resources, validate_only, tags)| {
            AlterConfigsRequest::default()
                .with_resources(resources)
                .with_validate_only(validate_only)
                .with_unknown_tagged_fields(tags)
        })
    }

    pub(super) fn describe_client_quotas(v: i16) -> impl Strategy<Value = DescribeClientQuotasRequest> {
        let flexible = v >= 1;
        let component = (text(), any::<i8>(), option::of(text()), unknown_tags(flexible)).prop_map(
            |(entity_type, match_type, matched, tags)| {
                describe_client_quotas_request::ComponentData::default()
                    .with_entity_type(entity_type)
                    .with_match_type(match_type)
                    .with_match(matched)
                    .with_unknown_tagged_fields(tags)
            },
        );
        (list(component), any::<bool>(), unknown_tags(flexible)).prop_map(|(components, strict, tags)| {
            DescribeClientQuotasRequest::default()
                .with_components(components)
                .with_strict(strict)
                .with_unknown_tagged_fields(tags)
        })
    }

    pub(super) fn alter_client_quotas(v: i16) -> impl Strategy<Value = AlterClientQuotasRequest> {
        let flexible = v >= 1;
        let entity = (text(), option::of(text()), unknown_tags(flexible)).prop_map(|(entity_type, name, tags)| {
            alter_client_quotas_request::EntityData::default()
                .with_entity_type(entity_type)
                .with_entity_name(name)
                .with_unknown_tagged_fields(tags)
        });
        // Finite values only: NaN is not equal to itself, so the round trip could not compare it.
        let op =
            (text(), -1e12f64..1e12, any::<bool>(), unknown_tags(flexible)).prop_map(|(key, value, remove, tags)| {
                alter_client_quotas_request::OpData::default()
                    .with_key(key)
                    .with_value(value)
                    .with_remove(remove)
                    .with_unknown_tagged_fields(tags)
            });
        let entry = (list(entity), list(op), unknown_tags(flexible)).prop_map(|(entity, ops, tags)| {
            alter_client_quotas_request::EntryData::default()
                .with_entity(entity)
                .with_ops(ops)
                .with_unknown_tagged_fields(tags)
        });
        (list(entry), any::<bool>(), unknown_tags(flexible)).prop_map(|(entries, validate_only, tags)| {
            AlterClientQuotasRequest::default()
                .with_entries(entries)
                .with_validate_only(validate_only)
                .with_unknown_tagged_fields(tags)
        })
    }

    pub(super) fn incremental_alter_configs(v: i16) -> impl Strategy<Value = IncrementalAlterConfigsRequest> {
        let flexible = v >= 1;
        let config = (text(), any::<i8>(), option::of(text()), unknown_tags(flexible)).prop_map(
            |(name, operation, value, tags)| {
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(name)
                    .with_config_operation(operation)
                    .with_value(value)
                    .with_unknown_tagged_fields(tags)
            },
        );
        let resource = (any::<i8>(), text(), list(config), unknown_tags(flexible)).prop_map(
            |(resource_type, name, configs, tags)| {
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(name)
                    .with_configs(configs)
                    .with_unknown_tagged_fields(tags)
            },
        );
        (list(resource), any::<bool>(), unknown_tags(flexible)).prop_map(|(resources, validate_only, tags)| {
            IncrementalAlterConfigsRequest::default()
                .with_resources(resources)
                .with_validate_only(validate_only)
                .with_unknown_tagged_fields(tags)
        })
    }

    pub(super) fn describe_log_dirs(v: i16) -> impl Strategy<Value = DescribeLogDirsRequest> {
        let flexible = v >= 2;
        let topic = (topic_name(), list(any::<i32>()), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
            DescribableLogDirTopic::default()
                .with_topic(name)
                .with_partitions(partitions)
                .with_unknown_tagged_fields(tags)
        });
        (option::of(list(topic)), unknown_tags(flexible)).prop_map(|(topics, tags)| {
            DescribeLogDirsRequest::default().with_topics(topics).with_unknown_tagged_fields(tags)
        })
    }

    pub(super) fn create_partitions(v: i16) -> impl Strategy<Value = CreatePartitionsRequest> {
        let flexible = v >= 2;
        let assignment = (list(any::<i32>()), unknown_tags(flexible)).prop_map(|(brokers, tags)| {
            CreatePartitionsAssignment::default()
                .with_broker_ids(brokers.into_iter().map(BrokerId).collect())
                .with_unknown_tagged_fields(tags)
        });
        let topic = (topic_name(), any::<i32>(), option::of(list(assignment)), unknown_tags(flexible)).prop_map(
            |(name, count, assignments, tags)| {
                CreatePartitionsTopic::default()
                    .with_name(name)
                    .with_count(count)
                    .with_assignments(assignments)
                    .with_unknown_tagged_fields(tags)
            },
        );
        (list(topic), any::<i32>(), any::<bool>(), unknown_tags(flexible)).prop_map(
            |(topics, timeout_ms, validate_only, tags)| {
                CreatePartitionsRequest::default()
                    .with_topics(topics)
                    .with_timeout_ms(timeout_ms)
                    .with_validate_only(validate_only)
                    .with_unknown_tagged_fields(tags)
            },
        )
    }

    pub(super) fn elect_leaders(v: i16) -> impl Strategy<Value = ElectLeadersRequest> {
        let flexible = v >= 2;
        let topic = (topic_name(), list(any::<i32>()), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
            TopicPartitions::default().with_topic(name).with_partitions(partitions).with_unknown_tagged_fields(tags)
        });
        (any::<i8>(), option::of(list(topic)), any::<i32>(), unknown_tags(flexible)).prop_map(
            move |(election_type, topics, timeout_ms, tags)| {
                let mut request = ElectLeadersRequest::default()
                    .with_topic_partitions(topics)
                    .with_timeout_ms(timeout_ms)
                    .with_unknown_tagged_fields(tags);
                if v >= 1 {
                    request.election_type = election_type;
                }
                request
            },
        )
    }

    pub(super) fn describe_cluster(v: i16) -> impl Strategy<Value = DescribeClusterRequest> {
        (any::<bool>(), any::<i8>(), any::<bool>(), unknown_tags(true)).prop_map(
            move |(operations, endpoint_type, fenced, tags)| {
                let mut request = DescribeClusterRequest::default()
                    .with_include_cluster_authorized_operations(operations)
                    .with_unknown_tagged_fields(tags);
                if v >= 1 {
                    request.endpoint_type = endpoint_type;
                }
                if v >= 2 {
                    request.include_fenced_brokers = fenced;
                }
                request
            },
        )
    }

    pub(super) fn describe_topic_partitions(_v: i16) -> impl Strategy<Value = DescribeTopicPartitionsRequest> {
        let topic = (topic_name(), unknown_tags(true))
            .prop_map(|(name, tags)| TopicRequest::default().with_name(name).with_unknown_tagged_fields(tags));
        let cursor = (topic_name(), any::<i32>(), unknown_tags(true)).prop_map(|(name, index, tags)| {
            Cursor::default().with_topic_name(name).with_partition_index(index).with_unknown_tagged_fields(tags)
        });
        (list(topic), any::<i32>(), option::of(cursor), unknown_tags(true)).prop_map(|(topics, limit, cursor, tags)| {
            DescribeTopicPartitionsRequest::default()
                .with_topics(topics)
                .with_response_partition_limit(limit)
                .with_cursor(cursor)
                .with_unknown_tagged_fields(tags)
        })
    }
}
