//! The ACL types, with Kafka's names and wire codes: resource types, pattern
//! types, operations, permissions, a binding and a binding filter.
//!
//! The codes are those of Kafka's `ResourceType`, `PatternType`,
//! `AclOperation` and `AclPermissionType`; code 0 is UNKNOWN in each, which
//! a request may carry but a binding never holds.

use serde::{Deserialize, Serialize};

/// Generates a Kafka enum with its codes and upper-case names.
macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($variant = $code,)*
        }

        impl $name {
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant,)*];

            /// The value of a wire code; `None` for UNKNOWN and codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }

            pub fn code(self) -> i8 {
                self as i8
            }

            /// Kafka's name, e.g. `TRANSACTIONAL_ID`.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// Parses Kafka's name, case-insensitively, `-` standing for `_`.
            pub fn parse(text: &str) -> Option<$name> {
                let text = text.trim().replace('-', "_");
                Self::ALL_VALUES.iter().copied().find(|v| v.name().eq_ignore_ascii_case(&text))
            }
        }
    };
}

kafka_enum!(
    /// What kind of resource an ACL is about.
    ResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

kafka_enum!(
    /// How an ACL's resource name matches names: LITERAL and PREFIXED in
    /// bindings; ANY and MATCH only in filters.
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// An operation on a resource.
    Operation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

kafka_enum!(
    /// Whether an ACL allows or denies.
    Permission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// The resource name that a LITERAL pattern uses to match every name.
pub const WILDCARD: &str = "*";

impl ResourceType {
    /// The operations Kafka defines on this resource type, which the
    /// `authorized_operations` fields report on.
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => {
                &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe]
            }
            ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

/// One ACL: a resource pattern and an entry (principal, host, operation,
/// permission). Stored in the metadata log under an id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice` or `User:*`.
    pub principal: String,
    /// An IP address or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Why a binding or a filter is refused: INVALID_REQUEST with this message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

/// Raw wire values of a binding, as CreateAcls carries them.
#[derive(Clone, Debug, Default)]
pub struct RawAcl<'a> {
    pub resource_type: i8,
    pub resource_name: &'a str,
    pub pattern_type: i8,
    pub principal: &'a str,
    pub host: &'a str,
    pub operation: i8,
    pub permission: i8,
}

impl AclBinding {
    /// A binding from CreateAcls' raw values, with Kafka's validation.
    pub fn from_raw(raw: &RawAcl<'_>) -> Result<AclBinding, InvalidAcl> {
        let invalid = |m: String| Err(InvalidAcl(m));
        let resource_type = match ResourceType::from_code(raw.resource_type) {
            Some(ResourceType::Any) | None => return invalid(format!("invalid resource type {}", raw.resource_type)),
            Some(t) => t,
        };
        let pattern_type = match PatternType::from_code(raw.pattern_type) {
            Some(p @ (PatternType::Literal | PatternType::Prefixed)) => p,
            _ => return invalid(format!("invalid pattern type {}", raw.pattern_type)),
        };
        let operation = match Operation::from_code(raw.operation) {
            Some(Operation::Any) | None => return invalid(format!("invalid operation {}", raw.operation)),
            Some(o) => o,
        };
        let permission = match Permission::from_code(raw.permission) {
            Some(Permission::Any) | None => return invalid(format!("invalid permission type {}", raw.permission)),
            Some(p) => p,
        };
        if raw.resource_name.is_empty() {
            return invalid("Invalid empty resource name".into());
        }
        if resource_type == ResourceType::Cluster && raw.resource_name != super::CLUSTER_NAME {
            return invalid(format!("The only valid name for the CLUSTER resource is {}", super::CLUSTER_NAME));
        }
        check_principal(raw.principal)?;
        // Kafka accepts any host text; one that is not `*` or an IP address
        // never matches a client.
        if raw.host.is_empty() {
            return invalid("Invalid empty host".into());
        }
        Ok(AclBinding {
            resource_type,
            resource_name: raw.resource_name.to_string(),
            pattern_type,
            principal: raw.principal.to_string(),
            host: raw.host.to_string(),
            operation,
            permission,
        })
    }
}

/// Kafka's principal syntax, `Type:name`.
fn check_principal(principal: &str) -> Result<(), InvalidAcl> {
    match principal.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => Ok(()),
        _ => Err(InvalidAcl(format!(
            "Could not parse principal from `{principal}` (no colon is present separating the principal type from the principal name)"
        ))),
    }
}

/// A filter over bindings (DescribeAcls, DeleteAcls): `None` strings and ANY
/// values match everything; pattern type MATCH matches the bindings that
/// would apply to the named resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// A filter that matches every binding.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    /// A filter from raw wire values; UNKNOWN (or undefined) codes are
    /// INVALID_REQUEST, as in Kafka.
    #[allow(clippy::too_many_arguments)]
    pub fn from_raw(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, InvalidAcl> {
        let unknown = |what: &str, code: i8| InvalidAcl(format!("invalid {what} {code} in filter"));
        Ok(AclFilter {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or_else(|| unknown("resource type", resource_type))?,
            resource_name: resource_name.map(str::to_string),
            pattern_type: PatternType::from_code(pattern_type).ok_or_else(|| unknown("pattern type", pattern_type))?,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: Operation::from_code(operation).ok_or_else(|| unknown("operation", operation))?,
            permission: Permission::from_code(permission).ok_or_else(|| unknown("permission type", permission))?,
        })
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_pattern(acl)
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == Operation::Any || self.operation == acl.operation)
            && (self.permission == Permission::Any || self.permission == acl.permission)
    }

    fn matches_pattern(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match) && self.pattern_type != acl.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else { return true };
        if self.pattern_type == PatternType::Any || self.pattern_type == acl.pattern_type {
            return *name == acl.resource_name;
        }
        // MATCH: the bindings that apply to the resource `name`.
        match acl.pattern_type {
            PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&acl.resource_name),
            PatternType::Any | PatternType::Match => false,
        }
    }
}
