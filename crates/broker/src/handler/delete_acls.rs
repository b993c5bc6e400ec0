//! DeleteAcls: removes the bindings each filter matches and reports them
//! per filter.
//!
//! The caller needs ALTER on the cluster; without an authorizer every filter
//! fails with SECURITY_DISABLED; a filter with an UNKNOWN code fails with
//! INVALID_REQUEST and the others are still applied.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_request::{DeleteAclsFilter, DeleteAclsRequest};
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::authz::acl::InvalidAcl;
use crate::authz::{AclBinding, AclFilter, Operation};
use crate::broker::Broker;
use crate::handler::create_acls::{refused, RefusalMessage};
use crate::session::Session;

pub async fn handle(broker: Arc<Broker>, session: &Session, req: DeleteAclsRequest) -> DeleteAclsResponse {
    if let Some(error) = refused(&broker, session, Operation::Alter) {
        let results = req.filters.iter().map(|_| failed(error, error.message())).collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let parsed: Vec<Result<AclFilter, InvalidAcl>> = req.filters.iter().map(filter).collect();
    let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let deleted =
        tokio::task::spawn_blocking(move || broker.delete_acls(&valid)).await.expect("delete acls does not panic");
    let mut deleted = match deleted {
        Ok(deleted) => deleted.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e.to_string()); parsed.len()],
    }
    .into_iter();
    let results = parsed
        .into_iter()
        .map(|p| match p {
            Err(e) => failed(ResponseError::InvalidRequest, e.0),
            Ok(_) => match deleted.next().expect("one result per valid filter") {
                Ok(acls) => {
                    DeleteAclsFilterResult::default().with_matching_acls(acls.into_iter().map(matching).collect())
                }
                Err(message) => failed(ResponseError::KafkaStorageError, message),
            },
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn filter(f: &DeleteAclsFilter) -> Result<AclFilter, InvalidAcl> {
    AclFilter::from_raw(
        f.resource_type_filter,
        f.resource_name_filter.as_deref(),
        f.pattern_type_filter,
        f.principal_filter.as_deref(),
        f.host_filter.as_deref(),
        f.operation,
        f.permission_type,
    )
}

fn failed(error: ResponseError, message: String) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

fn matching(acl: AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(acl.resource_type.code())
        .with_resource_name(StrBytes::from_string(acl.resource_name))
        .with_pattern_type(acl.pattern_type.code())
        .with_principal(StrBytes::from_string(acl.principal))
        .with_host(StrBytes::from_string(acl.host))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission.code())
}
