//! The ACLs in force, indexed for the checks on the request path.
//!
//! Bindings are grouped by resource type, then by pattern: LITERAL names
//! (the wildcard `*` among them) in a hash map, PREFIXED names in a hash map
//! plus the set of prefix lengths in use. A check for a name therefore looks
//! up the name, `*`, and the name's first `n` bytes for each prefix length
//! `n`: a handful of hash lookups, no scan over unrelated bindings and no
//! allocation. The index is rebuilt from the metadata image on every ACL
//! change, which is rare; checks only read it.

use std::collections::HashMap;
use std::net::IpAddr;

use super::acl::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};
use crate::session::Principal;

/// Where a binding applies: `*`, one address, or (a host that is not an
/// IP address, which Kafka accepts and never matches) nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    Any,
    Ip(IpAddr),
    Never,
}

/// One binding's entry, pre-parsed for matching.
#[derive(Debug)]
struct Entry {
    principal_type: String,
    /// `*` for every principal of the type.
    principal_name: String,
    host: Host,
    operation: Operation,
    permission: Permission,
}

impl Entry {
    fn new(acl: &AclBinding) -> Entry {
        let (principal_type, principal_name) = acl.principal.split_once(':').unwrap_or(("User", &acl.principal));
        Entry {
            principal_type: principal_type.to_string(),
            principal_name: principal_name.to_string(),
            host: match acl.host.as_str() {
                WILDCARD => Host::Any,
                text => text.parse().map_or(Host::Never, Host::Ip),
            },
            operation: acl.operation,
            permission: acl.permission,
        }
    }

    fn applies_to(&self, principal: &Principal, host: IpAddr) -> bool {
        self.principal_type == principal.principal_type
            && (self.principal_name == WILDCARD || self.principal_name == principal.name)
            && match self.host {
                Host::Any => true,
                Host::Ip(ip) => ip == host,
                Host::Never => false,
            }
    }

    /// Kafka's operation rules: an ALLOW of DESCRIBE is implied by READ,
    /// WRITE, DELETE and ALTER, an ALLOW of DESCRIBE_CONFIGS by
    /// ALTER_CONFIGS; ALL matches everything; a DENY matches only its own
    /// operation or ALL.
    fn covers(&self, operation: Operation) -> bool {
        use Operation::*;
        if self.operation == All || self.operation == operation {
            return true;
        }
        self.permission == Permission::Allow
            && match operation {
                Describe => matches!(self.operation, Read | Write | Delete | Alter),
                DescribeConfigs => self.operation == AlterConfigs,
                _ => false,
            }
    }
}

/// The bindings of one resource type.
#[derive(Debug, Default)]
struct TypeAcls {
    literal: HashMap<String, Vec<Entry>>,
    prefixed: HashMap<String, Vec<Entry>>,
    /// Distinct lengths of the keys of `prefixed`, ascending.
    prefix_lens: Vec<usize>,
}

impl TypeAcls {
    /// Every list of entries whose pattern matches `name`.
    fn matching<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Vec<Entry>> + 'a {
        let literal = self.literal.get(name);
        let wildcard = if name == WILDCARD { None } else { self.literal.get(WILDCARD) };
        let prefixed = self
            .prefix_lens
            .iter()
            .take_while(move |&&n| n <= name.len())
            .filter_map(move |&n| name.get(..n).and_then(|p| self.prefixed.get(p)));
        literal.into_iter().chain(wildcard).chain(prefixed)
    }
}

/// Every ACL in force, indexed by resource type and name.
#[derive(Debug, Default)]
pub struct AclIndex {
    /// Indexed by resource type code.
    types: [TypeAcls; 8],
    count: usize,
}

impl AclIndex {
    /// The index of `acls`.
    pub fn new<'a>(acls: impl IntoIterator<Item = &'a AclBinding>) -> AclIndex {
        let mut index = AclIndex::default();
        for acl in acls {
            let by_type = &mut index.types[acl.resource_type.code() as usize];
            let map = match acl.pattern_type {
                PatternType::Prefixed => &mut by_type.prefixed,
                _ => &mut by_type.literal,
            };
            map.entry(acl.resource_name.clone()).or_default().push(Entry::new(acl));
            index.count += 1;
        }
        for by_type in &mut index.types {
            let mut lens: Vec<usize> = by_type.prefixed.keys().map(String::len).collect();
            lens.sort_unstable();
            lens.dedup();
            by_type.prefix_lens = lens;
        }
        index
    }

    /// How many bindings the index holds.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The decision for one action on one resource (super users are the
    /// caller's business). `allow_if_no_acl` decides when no binding at all
    /// matches the resource, whatever its principal.
    pub fn authorize(
        &self,
        principal: &Principal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
        allow_if_no_acl: bool,
    ) -> bool {
        let by_type = &self.types[resource_type.code() as usize];
        let mut any_acl = false;
        let mut allowed = false;
        for entries in by_type.matching(name) {
            any_acl |= !entries.is_empty();
            for entry in entries.iter().filter(|e| e.applies_to(principal, host) && e.covers(operation)) {
                match entry.permission {
                    Permission::Deny => return false,
                    _ => allowed = true,
                }
            }
        }
        allowed || (!any_acl && allow_if_no_acl)
    }

    /// Kafka's `authorizeByResourceType`: whether some resource of the type
    /// allows `operation` to the principal. An ALLOW counts unless a DENY on
    /// the wildcard, on the same literal name, or on a prefix of its name
    /// takes it back.
    pub fn authorize_any(
        &self,
        principal: &Principal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        allow_if_no_acl: bool,
    ) -> bool {
        let by_type = &self.types[resource_type.code() as usize];
        let applies =
            |e: &&Entry| e.applies_to(principal, host) && (e.operation == operation || e.operation == Operation::All);
        let denies = |entries: Option<&Vec<Entry>>| {
            entries.is_some_and(|es| es.iter().filter(applies).any(|e| e.permission == Permission::Deny))
        };
        if denies(by_type.literal.get(WILDCARD)) {
            return false;
        }
        let allows = |es: &Vec<Entry>| es.iter().filter(applies).any(|e| e.permission == Permission::Allow);
        let literal = by_type
            .literal
            .iter()
            .filter(|(_, es)| allows(es))
            .any(|(name, _)| !denies(by_type.literal.get(name.as_str())) && !by_type.prefix_denies(name, &denies));
        let prefixed =
            by_type.prefixed.iter().filter(|(_, es)| allows(es)).any(|(name, _)| !by_type.prefix_denies(name, &denies));
        let none_at_all = by_type.literal.is_empty() && by_type.prefixed.is_empty();
        literal || prefixed || (none_at_all && allow_if_no_acl)
    }
}

impl TypeAcls {
    /// Whether a PREFIXED DENY covers every name starting with `name`.
    fn prefix_denies(&self, name: &str, denies: &dyn Fn(Option<&Vec<Entry>>) -> bool) -> bool {
        self.prefix_lens
            .iter()
            .take_while(|&&n| n <= name.len())
            .any(|&n| denies(name.get(..n).and_then(|p| self.prefixed.get(p))))
    }
}
