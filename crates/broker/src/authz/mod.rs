//! Authorization with Apache Kafka's ACL model.
//!
//! An ACL binding says that a principal (`User:alice`, or `User:*` for every
//! user) connecting from a host (an IP address, or `*`) is allowed or denied
//! an operation on the resources of a pattern: one resource type plus a name
//! that is LITERAL (with `*` matching every name) or PREFIXED. [`acl`] holds
//! these types and the filters DescribeAcls and DeleteAcls take; [`index`]
//! holds the bindings indexed for the checks; [`Authorizer`] adds Kafka's
//! configuration (`authorizer.class.name`, `super.users`,
//! `allow.everyone.if.no.acl.found`).
//!
//! The rules are Kafka's StandardAuthorizer rules: DENY wins over ALLOW; ALL
//! matches every operation; an ALLOW of READ, WRITE, DELETE or ALTER implies
//! DESCRIBE and an ALLOW of ALTER_CONFIGS implies DESCRIBE_CONFIGS; super
//! users are always allowed; a resource no binding matches at all is allowed
//! only with `allow.everyone.if.no.acl.found`.
//!
//! The bindings themselves are metadata records (see [`crate::meta`]); the
//! broker rebuilds the index whenever they change, so a change applies to
//! the very next request of every connection. Handlers never see wire types
//! here; `handler::authz` translates.

pub mod acl;
pub mod index;

use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::RwLock;

pub use acl::{AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType};
pub use index::AclIndex;

use crate::config::BrokerConfig;
use crate::session::{Principal, Session};

/// The name of the one CLUSTER resource, as in Kafka.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Kafka's KRaft authorizer, the one `authorizer.class.name` names to turn
/// authorization on.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// Kafka's ZooKeeper-era authorizer; accepted as a synonym.
pub const ACL_AUTHORIZER: &str = "kafka.security.authorizer.AclAuthorizer";

/// Metric: requests (or parts of requests) denied, by operation and resource type.
pub const AUTHORIZATION_DENIED: &str = "runnel_authorization_denied_total";

/// The authorizer of one broker: its settings and the ACLs in force.
pub struct Authorizer {
    enabled: bool,
    /// `super.users` as (type, name) pairs.
    super_users: Vec<(String, String)>,
    allow_if_no_acl: bool,
    acls: RwLock<Arc<AclIndex>>,
}

impl Authorizer {
    /// The authorizer `config` describes, with no ACLs yet.
    pub fn from_config(config: &BrokerConfig) -> Authorizer {
        let enabled = !config.str_value("authorizer.class.name").trim().is_empty();
        let super_users = config
            .str_value("super.users")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.split_once(':').map(|(t, n)| (t.to_string(), n.to_string())))
            .collect();
        Authorizer {
            enabled,
            super_users,
            allow_if_no_acl: config.str_value("allow.everyone.if.no.acl.found") == "true",
            acls: RwLock::new(Arc::new(AclIndex::default())),
        }
    }

    /// Whether `authorizer.class.name` is set; when it is not, every request
    /// is allowed and the ACL APIs answer SECURITY_DISABLED.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Replaces the ACLs in force (after a metadata change or on start).
    pub fn set_acls(&self, acls: AclIndex) {
        *self.acls.write() = Arc::new(acls);
    }

    /// The ACLs in force now.
    pub fn acls(&self) -> Arc<AclIndex> {
        self.acls.read().clone()
    }

    fn is_super_user(&self, principal: &Principal) -> bool {
        self.super_users.iter().any(|(t, n)| t == principal.principal_type && *n == principal.name)
    }

    /// Whether `principal` at `host` may perform `operation` on the resource
    /// `resource_type`/`name`. Allocates nothing.
    pub fn check(
        &self,
        principal: &Principal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.is_super_user(principal) {
            return true;
        }
        self.acls.read().authorize(principal, host, operation, resource_type, name, self.allow_if_no_acl)
    }

    /// Whether `principal` may perform `operation` on at least one resource
    /// of `resource_type` (Kafka's `authorizeByResourceType`, KIP-679):
    /// InitProducerId without a transactional id accepts a WRITE on any topic
    /// in place of IDEMPOTENT_WRITE on the cluster.
    pub fn check_any(&self, principal: &Principal, host: IpAddr, operation: Operation, rt: ResourceType) -> bool {
        if !self.enabled || self.is_super_user(principal) {
            return true;
        }
        self.acls.read().authorize_any(principal, host, operation, rt, self.allow_if_no_acl)
    }

    /// Checks for `session` and records a denial (debug log and counter).
    pub fn authorize(&self, session: &Session, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        let allowed = self.check(&session.principal, session.peer.ip(), operation, resource_type, name);
        if !allowed {
            denied(session, operation, resource_type, name);
        }
        allowed
    }

    /// The bit set of operations `session` may perform on a resource, as
    /// the `authorized_operations` fields carry it (bit n = operation code n).
    pub fn authorized_operations(&self, session: &Session, resource_type: ResourceType, name: &str) -> i32 {
        resource_type
            .operations()
            .iter()
            .filter(|op| self.check(&session.principal, session.peer.ip(), **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

/// Logs and counts one denial.
pub fn denied(session: &Session, operation: Operation, resource_type: ResourceType, name: &str) {
    tracing::debug!(
        principal = %session.principal,
        host = %session.peer.ip(),
        operation = operation.name(),
        resource_type = resource_type.name(),
        resource = name,
        "authorization denied"
    );
    metrics::counter!(AUTHORIZATION_DENIED, "operation" => operation.name(), "resource_type" => resource_type.name())
        .increment(1);
}

/// Whether `name` selects authorization: Kafka's two authorizer classes.
pub fn is_known_authorizer(name: &str) -> bool {
    let name = name.trim();
    name.is_empty() || name == STANDARD_AUTHORIZER || name == ACL_AUTHORIZER
}

#[cfg(test)]
mod tests;
