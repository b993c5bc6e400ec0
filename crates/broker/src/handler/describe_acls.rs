//! DescribeAcls: the ACL bindings a filter matches, grouped by resource
//! pattern.
//!
//! The caller needs DESCRIBE on the cluster; without an authorizer the
//! answer is SECURITY_DISABLED; a filter with an UNKNOWN code is
//! INVALID_REQUEST.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_request::DescribeAclsRequest;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::authz::{AclBinding, AclFilter, Operation};
use crate::broker::Broker;
use crate::handler::create_acls::{refused, RefusalMessage};
use crate::session::Session;

pub fn handle(broker: &Broker, session: &Session, req: DescribeAclsRequest) -> DescribeAclsResponse {
    if let Some(error) = refused(broker, session, Operation::Describe) {
        return failed(error, error.message());
    }
    let filter = AclFilter::from_raw(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    );
    match filter {
        Ok(filter) => DescribeAclsResponse::default().with_resources(resources(broker.describe_acls(&filter))),
        Err(e) => failed(ResponseError::InvalidRequest, e.0),
    }
}

fn failed(error: ResponseError, message: String) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

/// Bindings grouped by (resource type, name, pattern type), as Kafka answers.
fn resources(acls: Vec<AclBinding>) -> Vec<DescribeAclsResource> {
    let mut grouped: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in acls {
        let key = (acl.resource_type.code(), acl.resource_name.clone(), acl.pattern_type.code());
        grouped.entry(key).or_default().push(
            AclDescription::default()
                .with_principal(StrBytes::from_string(acl.principal))
                .with_host(StrBytes::from_string(acl.host))
                .with_operation(acl.operation.code())
                .with_permission_type(acl.permission.code()),
        );
    }
    grouped
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect()
}
