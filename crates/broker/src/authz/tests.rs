//! The matching rules of Kafka's StandardAuthorizer, one test per rule:
//! literal, wildcard and prefixed patterns, DENY over ALLOW, ALL, the
//! operations that imply DESCRIBE and DESCRIBE_CONFIGS, principals and hosts,
//! super users and `allow.everyone.if.no.acl.found`.

use std::net::IpAddr;

use super::acl::{AclBinding, AclFilter, Operation, PatternType, Permission, RawAcl, ResourceType};
use super::*;
use crate::config::{BrokerConfig, Source};

fn acl(rt: ResourceType, name: &str, pattern: PatternType, who: &str, op: Operation, perm: Permission) -> AclBinding {
    AclBinding {
        resource_type: rt,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: who.into(),
        host: "*".into(),
        operation: op,
        permission: perm,
    }
}

fn allow(name: &str, pattern: PatternType, who: &str, op: Operation) -> AclBinding {
    acl(ResourceType::Topic, name, pattern, who, op, Permission::Allow)
}

fn deny(name: &str, pattern: PatternType, who: &str, op: Operation) -> AclBinding {
    acl(ResourceType::Topic, name, pattern, who, op, Permission::Deny)
}

fn authorizer(settings: &[(&str, &str)], acls: &[AclBinding]) -> Authorizer {
    let mut config = BrokerConfig::default();
    config.set("authorizer.class.name", STANDARD_AUTHORIZER, Source::Override).unwrap();
    for (k, v) in settings {
        config.set(k, v, Source::Override).unwrap();
    }
    let authorizer = Authorizer::from_config(&config);
    authorizer.set_acls(AclIndex::new(acls));
    authorizer
}

const HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn can(a: &Authorizer, user: &str, op: Operation, topic: &str) -> bool {
    a.check(&Principal::user(user.into()), HOST, op, ResourceType::Topic, topic)
}

use Operation::*;
use PatternType::{Literal, Prefixed};

#[test]
fn literal_acls_match_their_name_only() {
    let a = authorizer(&[], &[allow("orders", Literal, "User:alice", Read)]);
    assert!(can(&a, "alice", Read, "orders"));
    assert!(!can(&a, "alice", Read, "orders2"));
    assert!(!can(&a, "alice", Write, "orders"));
    assert!(!can(&a, "bob", Read, "orders"));
}

#[test]
fn wildcard_name_and_wildcard_principal_match_everything() {
    let a = authorizer(&[], &[allow("*", Literal, "User:alice", Write), allow("logs", Literal, "User:*", Read)]);
    assert!(can(&a, "alice", Write, "anything"));
    assert!(can(&a, "bob", Read, "logs"));
    assert!(!can(&a, "bob", Write, "logs"));
}

#[test]
fn prefixed_acls_match_a_family_of_names() {
    let a = authorizer(&[], &[allow("sales-", Prefixed, "User:alice", Read), allow("s", Prefixed, "User:bob", Read)]);
    assert!(can(&a, "alice", Read, "sales-eu"));
    assert!(can(&a, "alice", Read, "sales-"));
    assert!(!can(&a, "alice", Read, "sales"));
    assert!(!can(&a, "alice", Read, "marketing"));
    assert!(can(&a, "bob", Read, "sales"));
    // A prefixed `*` is a literal prefix, not a wildcard.
    let a = authorizer(&[], &[allow("*", Prefixed, "User:alice", Read)]);
    assert!(!can(&a, "alice", Read, "orders"));
}

#[test]
fn deny_wins_over_allow_from_any_pattern() {
    let acls = [
        allow("*", Literal, "User:alice", All),
        deny("secret-", Prefixed, "User:alice", Read),
        deny("payroll", Literal, "User:*", All),
    ];
    let a = authorizer(&[], &acls);
    assert!(can(&a, "alice", Read, "orders"));
    assert!(!can(&a, "alice", Read, "secret-plans"));
    // A DENY of READ does not deny DESCRIBE (only the same operation or ALL).
    assert!(can(&a, "alice", Describe, "secret-plans"));
    assert!(can(&a, "alice", Write, "secret-plans"));
    assert!(!can(&a, "alice", Describe, "payroll"));
}

#[test]
fn read_write_delete_alter_imply_describe_and_alter_configs_implies_describe_configs() {
    for op in [Read, Write, Delete, Alter] {
        let a = authorizer(&[], &[allow("t", Literal, "User:alice", op)]);
        assert!(can(&a, "alice", Describe, "t"), "{op:?}");
        assert!(!can(&a, "alice", DescribeConfigs, "t"), "{op:?}");
    }
    for op in [Create, DescribeConfigs, AlterConfigs, ClusterAction] {
        let a = authorizer(&[], &[allow("t", Literal, "User:alice", op)]);
        assert!(!can(&a, "alice", Describe, "t"), "{op:?}");
    }
    let a = authorizer(&[], &[allow("t", Literal, "User:alice", AlterConfigs)]);
    assert!(can(&a, "alice", DescribeConfigs, "t"));
    assert!(!can(&a, "alice", Read, "t"));
    let a = authorizer(&[], &[allow("t", Literal, "User:alice", All)]);
    assert!([Read, Write, Describe, DescribeConfigs, Delete].iter().all(|op| can(&a, "alice", *op, "t")));
}

#[test]
fn hosts_restrict_where_an_acl_applies() {
    let mut only_other = allow("t", Literal, "User:alice", Read);
    only_other.host = "10.1.2.3".into();
    let a = authorizer(&[], &[only_other.clone()]);
    assert!(!can(&a, "alice", Read, "t"));
    assert!(a.check(&Principal::user("alice".into()), "10.1.2.3".parse().unwrap(), Read, ResourceType::Topic, "t"));
    // A host name is accepted, as by Kafka, and matches no client.
    let mut by_name = allow("t", Literal, "User:alice", Read);
    by_name.host = "localhost".into();
    let a = authorizer(&[], &[by_name]);
    assert!(!can(&a, "alice", Read, "t"));
}

#[test]
fn super_users_bypass_every_check() {
    let a = authorizer(&[("super.users", "User:admin; User:ops")], &[deny("*", Literal, "User:*", All)]);
    assert!(can(&a, "admin", Write, "t"));
    assert!(can(&a, "ops", Delete, "t"));
    assert!(!can(&a, "alice", Read, "t"));
}

#[test]
fn no_acl_on_a_resource_denies_unless_allow_everyone_if_no_acl_found() {
    let acls = [allow("t", Literal, "User:alice", Read)];
    let strict = authorizer(&[], &acls);
    assert!(!can(&strict, "bob", Read, "other"));
    let open = authorizer(&[("allow.everyone.if.no.acl.found", "true")], &acls);
    assert!(can(&open, "bob", Read, "other"));
    // The resource has an ACL (for alice), so bob is denied even then.
    assert!(!can(&open, "bob", Read, "t"));
}

#[test]
fn without_an_authorizer_everything_is_allowed() {
    let a = Authorizer::from_config(&BrokerConfig::default());
    assert!(!a.enabled());
    assert!(can(&a, "anyone", Delete, "t"));
}

#[test]
fn resource_types_are_kept_apart() {
    let a = authorizer(&[], &[acl(ResourceType::Group, "g", Literal, "User:alice", Read, Permission::Allow)]);
    assert!(!can(&a, "alice", Read, "g"));
    assert!(a.check(&Principal::user("alice".into()), HOST, Read, ResourceType::Group, "g"));
}

#[test]
fn authorize_by_resource_type_sees_allows_not_taken_back() {
    let alice = Principal::user("alice".into());
    let any_write = |acls: &[AclBinding]| authorizer(&[], acls).check_any(&alice, HOST, Write, ResourceType::Topic);
    assert!(!any_write(&[]));
    assert!(any_write(&[allow("t", Literal, "User:alice", Write)]));
    assert!(any_write(&[allow("t-", Prefixed, "User:alice", All)]));
    assert!(!any_write(&[allow("t", Literal, "User:alice", Read)]));
    assert!(!any_write(&[allow("t", Literal, "User:alice", Write), deny("t", Literal, "User:alice", Write)]));
    assert!(!any_write(&[allow("t-a", Literal, "User:alice", Write), deny("t-", Prefixed, "User:alice", Write)]));
    assert!(!any_write(&[allow("t", Literal, "User:alice", Write), deny("*", Literal, "User:*", Write)]));
}

#[test]
fn create_validation_follows_kafka() {
    let raw = RawAcl {
        resource_type: 2,
        resource_name: "t",
        pattern_type: 3,
        principal: "User:alice",
        host: "*",
        operation: 3,
        permission: 3,
    };
    assert!(AclBinding::from_raw(&raw).is_ok());
    for bad in [
        RawAcl { resource_type: 1, ..raw.clone() },
        RawAcl { resource_type: 0, ..raw.clone() },
        RawAcl { pattern_type: 2, ..raw.clone() },
        RawAcl { pattern_type: 1, ..raw.clone() },
        RawAcl { operation: 1, ..raw.clone() },
        RawAcl { permission: 1, ..raw.clone() },
        RawAcl { principal: "alice", ..raw.clone() },
        RawAcl { resource_name: "", ..raw.clone() },
        RawAcl { host: "", ..raw.clone() },
        RawAcl { resource_type: 4, resource_name: "other", ..raw.clone() },
    ] {
        assert!(AclBinding::from_raw(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn filters_match_like_kafka() {
    let literal = allow("orders", Literal, "User:alice", Read);
    let wildcard = allow("*", Literal, "User:bob", Write);
    let prefixed = allow("ord", Prefixed, "User:carol", Read);
    let filter = |pattern: PatternType, name: Option<&str>| AclFilter {
        resource_name: name.map(str::to_string),
        pattern_type: pattern,
        ..AclFilter::any()
    };
    let matched = |f: &AclFilter| [&literal, &wildcard, &prefixed].iter().filter(|a| f.matches(a)).count();
    assert_eq!(matched(&AclFilter::any()), 3);
    assert_eq!(matched(&filter(PatternType::Any, Some("orders"))), 1);
    assert_eq!(matched(&filter(PatternType::Match, Some("orders"))), 3);
    assert_eq!(matched(&filter(PatternType::Match, Some("x"))), 1);
    assert_eq!(matched(&filter(Prefixed, None)), 1);
    assert_eq!(matched(&AclFilter { principal: Some("User:bob".into()), ..AclFilter::any() }), 1);
    assert_eq!(matched(&AclFilter { operation: Write, ..AclFilter::any() }), 1);
    assert!(AclFilter::from_raw(0, None, 1, None, None, 1, 1).is_err());
    assert!(AclFilter::from_raw(1, None, 0, None, None, 1, 1).is_err());
}

#[test]
fn authorized_operations_bits_follow_the_acls() {
    let a = authorizer(&[], &[allow("t", Literal, "User:alice", Read)]);
    let session = crate::session::Session::for_tests(Principal::user("alice".into()));
    let bits = a.authorized_operations(&session, ResourceType::Topic, "t");
    assert_eq!(bits, (1 << Read.code()) | (1 << Describe.code()));
}

// Goal: a check on the request path allocates nothing, however many ACLs
// there are. Method: many literal and prefixed bindings, then count heap
// allocations of allowed, denied and prefix-matched checks.
#[test]
fn checks_allocate_nothing() {
    let mut acls: Vec<AclBinding> =
        (0..500).map(|i| allow(&format!("topic-{i}"), Literal, "User:alice", Write)).collect();
    acls.extend((0..50).map(|i| allow(&format!("family-{i}-"), Prefixed, "User:alice", Read)));
    acls.push(deny("topic-7", Literal, "User:*", Write));
    let a = authorizer(&[("super.users", "User:admin")], &acls);
    let alice = Principal::user("alice".into());
    let check = |op, name: &str| a.check(&alice, HOST, op, ResourceType::Topic, name);
    let (results, allocations) = crate::protocol::guard::tests::alloc::counting(|| {
        [
            check(Write, "topic-42"),
            check(Describe, "topic-42"),
            check(Write, "topic-7"),
            check(Read, "family-3-orders"),
            check(Read, "unrelated"),
        ]
    });
    assert_eq!(results, [true, true, false, true, false]);
    assert_eq!(allocations, 0);
}
