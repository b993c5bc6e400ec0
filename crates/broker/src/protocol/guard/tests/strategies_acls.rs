//! Strategies for the ACL requests, in the style of `strategies.rs`: any
//! codes (valid or not, the guard does not judge them), nullable filter
//! strings sometimes absent.

use kafka_protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
use kafka_protocol::messages::delete_acls_request::{DeleteAclsFilter, DeleteAclsRequest};
use kafka_protocol::messages::describe_acls_request::DescribeAclsRequest;
use proptest::option;
use proptest::prelude::*;

use super::{list, text, unknown_tags};

type Filter = (i8, Option<kafka_protocol::protocol::StrBytes>, i8, Option<kafka_protocol::protocol::StrBytes>);

fn filter_parts() -> impl Strategy<Value = (Filter, Option<kafka_protocol::protocol::StrBytes>, i8, i8)> {
    ((any::<i8>(), option::of(text()), any::<i8>(), option::of(text())), option::of(text()), any::<i8>(), any::<i8>())
}

pub(in super::super) fn describe_acls(v: i16) -> impl Strategy<Value = DescribeAclsRequest> {
    (filter_parts(), unknown_tags(v >= 2)).prop_map(|(((rt, name, pt, principal), host, op, perm), tags)| {
        DescribeAclsRequest::default()
            .with_resource_type_filter(rt)
            .with_resource_name_filter(name)
            .with_pattern_type_filter(pt)
            .with_principal_filter(principal)
            .with_host_filter(host)
            .with_operation(op)
            .with_permission_type(perm)
            .with_unknown_tagged_fields(tags)
    })
}

pub(in super::super) fn delete_acls(v: i16) -> impl Strategy<Value = DeleteAclsRequest> {
    let filter =
        (filter_parts(), unknown_tags(v >= 2)).prop_map(|(((rt, name, pt, principal), host, op, perm), tags)| {
            DeleteAclsFilter::default()
                .with_resource_type_filter(rt)
                .with_resource_name_filter(name)
                .with_pattern_type_filter(pt)
                .with_principal_filter(principal)
                .with_host_filter(host)
                .with_operation(op)
                .with_permission_type(perm)
                .with_unknown_tagged_fields(tags)
        });
    (list(filter), unknown_tags(v >= 2))
        .prop_map(|(filters, tags)| DeleteAclsRequest::default().with_filters(filters).with_unknown_tagged_fields(tags))
}

pub(in super::super) fn create_acls(v: i16) -> impl Strategy<Value = CreateAclsRequest> {
    let creation = ((any::<i8>(), text(), any::<i8>(), text()), text(), any::<i8>(), any::<i8>(), unknown_tags(v >= 2))
        .prop_map(|((rt, name, pt, principal), host, op, perm, tags)| {
            AclCreation::default()
                .with_resource_type(rt)
                .with_resource_name(name)
                .with_resource_pattern_type(pt)
                .with_principal(principal)
                .with_host(host)
                .with_operation(op)
                .with_permission_type(perm)
                .with_unknown_tagged_fields(tags)
        });
    (list(creation), unknown_tags(v >= 2)).prop_map(|(creations, tags)| {
        CreateAclsRequest::default().with_creations(creations).with_unknown_tagged_fields(tags)
    })
}
