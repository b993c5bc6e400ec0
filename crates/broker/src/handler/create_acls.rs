//! CreateAcls: new ACL bindings, each validated as Kafka does.
//!
//! The caller needs ALTER on the cluster; without an authorizer every
//! creation fails with SECURITY_DISABLED. An invalid creation (UNKNOWN or ANY
//! codes, a MATCH or ANY pattern, an empty name, a CLUSTER name other than
//! `kafka-cluster`, a principal without `Type:`, an empty host) gets
//! INVALID_REQUEST and the others are still created.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::CreateAclsRequest;
use kafka_protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::authz::acl::RawAcl;
use crate::authz::{AclBinding, Operation, ResourceType, CLUSTER_NAME};
use crate::broker::Broker;
use crate::session::Session;

pub async fn handle(broker: Arc<Broker>, session: &Session, req: CreateAclsRequest) -> CreateAclsResponse {
    if let Some(error) = refused(&broker, session, Operation::Alter) {
        let results = req.creations.iter().map(|_| result(error, error.message())).collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let parsed: Vec<Result<AclBinding, String>> = req
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_raw(&RawAcl {
                resource_type: c.resource_type,
                resource_name: &c.resource_name,
                pattern_type: c.resource_pattern_type,
                principal: &c.principal,
                host: &c.host,
                operation: c.operation,
                permission: c.permission_type,
            })
            .map_err(|e| e.0)
        })
        .collect();
    let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let stored =
        tokio::task::spawn_blocking(move || broker.create_acls(&valid)).await.expect("create acls does not panic");
    let results = parsed
        .into_iter()
        .map(|p| match (p, &stored) {
            (Err(message), _) => result(ResponseError::InvalidRequest, message),
            (Ok(_), Ok(())) => AclCreationResult::default(),
            (Ok(_), Err(e)) => result(ResponseError::KafkaStorageError, e.to_string()),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

fn result(error: ResponseError, message: impl Into<String>) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.into())))
}

/// The error the ACL APIs answer before looking at the request: no
/// authorizer (SECURITY_DISABLED), or no `operation` on the cluster.
pub fn refused(broker: &Broker, session: &Session, operation: Operation) -> Option<ResponseError> {
    if !broker.authorizer.enabled() {
        return Some(ResponseError::SecurityDisabled);
    }
    (!broker.authorize(session, operation, ResourceType::Cluster, CLUSTER_NAME))
        .then_some(ResponseError::ClusterAuthorizationFailed)
}

/// The text Kafka gives with the refusals of [`refused`].
pub trait RefusalMessage {
    fn message(&self) -> String;
}

impl RefusalMessage for ResponseError {
    fn message(&self) -> String {
        match self {
            ResponseError::SecurityDisabled => "No Authorizer is configured on the broker".to_string(),
            other => other.to_string(),
        }
    }
}
