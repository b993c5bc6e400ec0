//! Strategies for the transaction coordinator's requests, in the style of
//! `strategies.rs`: fields set only in the versions that have them.

use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::describe_producers_request::{DescribeProducersRequest, TopicRequest};
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{GroupId, ProducerId, TransactionalId};
use proptest::option;
use proptest::prelude::*;

use super::{list, text, topic_name, unknown_tags};

fn txn_id() -> impl Strategy<Value = TransactionalId> {
    text().prop_map(TransactionalId)
}

fn producer_id() -> impl Strategy<Value = ProducerId> {
    any::<i64>().prop_map(ProducerId)
}

pub(in super::super) fn init_producer_id(v: i16) -> impl Strategy<Value = InitProducerIdRequest> {
    let flexible = v >= 2;
    (option::of(txn_id()), any::<i32>(), producer_id(), any::<i16>(), unknown_tags(flexible)).prop_map(
        move |(id, timeout, pid, epoch, tags)| {
            let mut r = InitProducerIdRequest::default()
                .with_transactional_id(id)
                .with_transaction_timeout_ms(timeout)
                .with_unknown_tagged_fields(tags);
            if v >= 3 {
                r.producer_id = pid;
                r.producer_epoch = epoch;
            }
            r
        },
    )
}

fn add_partitions_topic(flexible: bool) -> impl Strategy<Value = AddPartitionsToTxnTopic> {
    (topic_name(), list(any::<i32>()), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
        AddPartitionsToTxnTopic::default().with_name(name).with_partitions(partitions).with_unknown_tagged_fields(tags)
    })
}

pub(in super::super) fn add_partitions_to_txn(v: i16) -> impl Strategy<Value = AddPartitionsToTxnRequest> {
    let flexible = v >= 3;
    let transaction = (
        txn_id(),
        producer_id(),
        any::<i16>(),
        any::<bool>(),
        list(add_partitions_topic(flexible)),
        unknown_tags(flexible),
    )
        .prop_map(|(id, pid, epoch, verify_only, topics, tags)| {
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(id)
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_verify_only(verify_only)
                .with_topics(topics)
                .with_unknown_tagged_fields(tags)
        });
    let old = (txn_id(), producer_id(), any::<i16>(), list(add_partitions_topic(flexible)));
    (list(transaction), old, unknown_tags(flexible)).prop_map(move |(transactions, (id, pid, epoch, topics), tags)| {
        let r = AddPartitionsToTxnRequest::default().with_unknown_tagged_fields(tags);
        if v >= 4 {
            r.with_transactions(transactions)
        } else {
            r.with_v3_and_below_transactional_id(id)
                .with_v3_and_below_producer_id(pid)
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(topics)
        }
    })
}

pub(in super::super) fn add_offsets_to_txn(v: i16) -> impl Strategy<Value = AddOffsetsToTxnRequest> {
    (txn_id(), producer_id(), any::<i16>(), text(), unknown_tags(v >= 3)).prop_map(|(id, pid, epoch, group, tags)| {
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(id)
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(group))
            .with_unknown_tagged_fields(tags)
    })
}

pub(in super::super) fn end_txn(v: i16) -> impl Strategy<Value = EndTxnRequest> {
    (txn_id(), producer_id(), any::<i16>(), any::<bool>(), unknown_tags(v >= 3)).prop_map(
        |(id, pid, epoch, committed, tags)| {
            EndTxnRequest::default()
                .with_transactional_id(id)
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_committed(committed)
                .with_unknown_tagged_fields(tags)
        },
    )
}

pub(in super::super) fn write_txn_markers(_v: i16) -> impl Strategy<Value = WriteTxnMarkersRequest> {
    let topic = (topic_name(), list(any::<i32>()), unknown_tags(true)).prop_map(|(name, partitions, tags)| {
        WritableTxnMarkerTopic::default()
            .with_name(name)
            .with_partition_indexes(partitions)
            .with_unknown_tagged_fields(tags)
    });
    let marker = (producer_id(), any::<i16>(), any::<bool>(), list(topic), any::<i32>(), unknown_tags(true)).prop_map(
        |(pid, epoch, result, topics, coordinator_epoch, tags)| {
            WritableTxnMarker::default()
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_transaction_result(result)
                .with_topics(topics)
                .with_coordinator_epoch(coordinator_epoch)
                .with_unknown_tagged_fields(tags)
        },
    );
    (list(marker), unknown_tags(true)).prop_map(|(markers, tags)| {
        WriteTxnMarkersRequest::default().with_markers(markers).with_unknown_tagged_fields(tags)
    })
}

pub(in super::super) fn txn_offset_commit(v: i16) -> impl Strategy<Value = TxnOffsetCommitRequest> {
    let flexible = v >= 3;
    let partition = (any::<i32>(), any::<i64>(), any::<i32>(), option::of(text()), unknown_tags(flexible)).prop_map(
        move |(index, offset, epoch, metadata, tags)| {
            let mut p = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_metadata(metadata)
                .with_unknown_tagged_fields(tags);
            if v >= 2 {
                p.committed_leader_epoch = epoch;
            }
            p
        },
    );
    let topic = (topic_name(), list(partition), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
        TxnOffsetCommitRequestTopic::default()
            .with_name(name)
            .with_partitions(partitions)
            .with_unknown_tagged_fields(tags)
    });
    let head = (txn_id(), text(), producer_id(), any::<i16>());
    let member = (any::<i32>(), text(), option::of(text()));
    (head, member, list(topic), unknown_tags(flexible)).prop_map(
        move |((id, group, pid, epoch), (generation, member_id, instance), topics, tags)| {
            let mut r = TxnOffsetCommitRequest::default()
                .with_transactional_id(id)
                .with_group_id(GroupId(group))
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_topics(topics)
                .with_unknown_tagged_fields(tags);
            if v >= 3 {
                r.generation_id = generation;
                r.member_id = member_id;
                r.group_instance_id = instance;
            }
            r
        },
    )
}

pub(in super::super) fn describe_producers(_v: i16) -> impl Strategy<Value = DescribeProducersRequest> {
    let topic = (topic_name(), list(any::<i32>()), unknown_tags(true)).prop_map(|(name, partitions, tags)| {
        TopicRequest::default().with_name(name).with_partition_indexes(partitions).with_unknown_tagged_fields(tags)
    });
    (list(topic), unknown_tags(true)).prop_map(|(topics, tags)| {
        DescribeProducersRequest::default().with_topics(topics).with_unknown_tagged_fields(tags)
    })
}

pub(in super::super) fn describe_transactions(_v: i16) -> impl Strategy<Value = DescribeTransactionsRequest> {
    (list(txn_id()), unknown_tags(true)).prop_map(|(ids, tags)| {
        DescribeTransactionsRequest::default().with_transactional_ids(ids).with_unknown_tagged_fields(tags)
    })
}

pub(in super::super) fn list_transactions(v: i16) -> impl Strategy<Value = ListTransactionsRequest> {
    (list(text()), list(producer_id()), any::<i64>(), option::of(text()), unknown_tags(true)).prop_map(
        move |(states, pids, duration, pattern, tags)| {
            let mut r = ListTransactionsRequest::default()
                .with_state_filters(states)
                .with_producer_id_filters(pids)
                .with_unknown_tagged_fields(tags);
            if v >= 1 {
                r.duration_filter = duration;
            }
            if v >= 2 {
                r.transactional_id_pattern = pattern;
            }
            r
        },
    )
}
