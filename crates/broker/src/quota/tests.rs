//! Entities, validation and Kafka's precedence for (user, client id).

use std::collections::BTreeMap;

use super::*;

fn n(s: &str) -> EntityName {
    EntityName::Name(s.to_string())
}

const D: EntityName = EntityName::Default;

// Goal: each step of Kafka's eight-step precedence wins over every later one. Method: set all eight entities
// with distinct values, then remove them one at a time from the most specific and check the next one answers.
#[test]
fn precedence_is_kafkas() {
    let order = [
        QuotaEntity::user_client(n("alice"), n("app")),
        QuotaEntity::user_client(n("alice"), D),
        QuotaEntity::user(n("alice")),
        QuotaEntity::user_client(D, n("app")),
        QuotaEntity::user_client(D, D),
        QuotaEntity::user(D),
        QuotaEntity::client(n("app")),
        QuotaEntity::client(D),
    ];
    let mut map: BTreeMap<QuotaEntity, BTreeMap<String, f64>> = BTreeMap::new();
    for (i, entity) in order.iter().enumerate() {
        map.entry(entity.clone()).or_default().insert("producer_byte_rate".into(), (i + 1) as f64);
    }
    for (i, entity) in order.iter().enumerate() {
        let configs = QuotaConfigs::from_entities(map.clone());
        let found = configs.lookup(QuotaKey::ProducerByteRate, "alice", "app").unwrap();
        assert_eq!(found.bound, (i + 1) as f64, "{entity}");
        map.remove(entity);
    }
    assert!(QuotaConfigs::from_entities(map).lookup(QuotaKey::ProducerByteRate, "alice", "app").is_none());
}

// Goal: the share says which clients are measured together: a user quota ignores the client id, a client
// quota ignores the user, defaults are filled with the client's own names.
#[test]
fn shares_follow_the_matched_entity() {
    let mut map: BTreeMap<QuotaEntity, BTreeMap<String, f64>> = BTreeMap::new();
    map.entry(QuotaEntity::user(n("alice"))).or_default().insert("consumer_byte_rate".into(), 5.0);
    map.entry(QuotaEntity::client(D)).or_default().insert("consumer_byte_rate".into(), 7.0);
    let configs = QuotaConfigs::from_entities(map);
    let alice = configs.lookup(QuotaKey::ConsumerByteRate, "alice", "x").unwrap();
    assert_eq!(alice.share, (Some("alice".to_string()), None));
    let bob = configs.lookup(QuotaKey::ConsumerByteRate, "bob", "x").unwrap();
    assert_eq!((bob.bound, bob.share), (7.0, (None, Some("x".to_string()))));
    // Another key is looked up on its own.
    assert!(configs.lookup(QuotaKey::ProducerByteRate, "alice", "x").is_none());
}

// Goal: the IP connection rate comes from the IP's own entity, else the default IP.
#[test]
fn ip_quotas_fall_back_to_the_default() {
    let mut map: BTreeMap<QuotaEntity, BTreeMap<String, f64>> = BTreeMap::new();
    map.entry(QuotaEntity::ip(n("127.0.0.1"))).or_default().insert("connection_creation_rate".into(), 3.0);
    let configs = QuotaConfigs::from_entities(map.clone());
    assert_eq!(configs.ip_connection_rate("127.0.0.1".parse().unwrap()), Some(3.0));
    assert_eq!(configs.ip_connection_rate("127.0.0.2".parse().unwrap()), None);
    assert_eq!(configs.ip_connection_rate("::ffff:127.0.0.1".parse().unwrap()), Some(3.0), "a mapped peer address");
    map.entry(QuotaEntity::ip(D)).or_default().insert("connection_creation_rate".into(), 9.0);
    let configs = QuotaConfigs::from_entities(map);
    assert_eq!(configs.ip_connection_rate("127.0.0.2".parse().unwrap()), Some(9.0));
}

// Goal: entities are checked as Kafka's controller checks them.
#[test]
fn entities_are_validated() {
    let ok = QuotaEntity::from_components([(USER, Some("a")), (CLIENT_ID, None)]).unwrap();
    assert_eq!(ok, QuotaEntity::user_client(n("a"), D));
    assert_eq!(QuotaEntity::from_components([]), Err(QuotaError::EmptyEntity));
    assert_eq!(
        QuotaEntity::from_components([("group", Some("g"))]),
        Err(QuotaError::UnknownEntityType("group".into()))
    );
    assert_eq!(
        QuotaEntity::from_components([(USER, Some("a")), (USER, Some("b"))]),
        Err(QuotaError::DuplicateEntityType(USER.into()))
    );
    assert_eq!(QuotaEntity::from_components([(USER, Some(""))]), Err(QuotaError::EmptyName(USER.into())));
    assert_eq!(QuotaEntity::from_components([(IP, Some("1.2.3.4")), (USER, None)]), Err(QuotaError::IpCombined));
    assert_eq!(QuotaEntity::from_components([(IP, Some("nope"))]), Err(QuotaError::BadIp("nope".into())));
    assert!(QuotaEntity::from_components([(IP, None)]).is_ok());
    let v6 = QuotaEntity::from_components([(IP, Some("0:0:0:0:0:0:0:1"))]).unwrap();
    assert_eq!(v6, QuotaEntity::ip(n("::1")), "addresses are canonical");
    let mapped = QuotaEntity::from_components([(IP, Some("::ffff:10.0.0.1"))]).unwrap();
    assert_eq!(mapped, QuotaEntity::ip(n("10.0.0.1")));
}

// Goal: keys belong to their entity kinds, whole-number keys refuse fractions, values are positive.
#[test]
fn values_are_validated() {
    let user = QuotaEntity::user(n("a"));
    let ip = QuotaEntity::ip(D);
    assert_eq!(validate_value(&user, "producer_byte_rate", 1024.0), Ok(QuotaKey::ProducerByteRate));
    assert_eq!(validate_value(&user, "request_percentage", 12.5), Ok(QuotaKey::RequestPercentage));
    assert_eq!(validate_value(&user, "controller_mutation_rate", 0.5), Ok(QuotaKey::ControllerMutationRate));
    assert_eq!(
        validate_value(&user, "producer_byte_rate", 1.5),
        Err(QuotaError::NotWhole("producer_byte_rate".into()))
    );
    assert_eq!(validate_value(&user, "bogus", 1.0), Err(QuotaError::UnknownKey("bogus".into())));
    assert_eq!(
        validate_value(&user, "connection_creation_rate", 1.0),
        Err(QuotaError::UnknownKey("connection_creation_rate".into()))
    );
    assert_eq!(validate_value(&ip, "connection_creation_rate", 5.0), Ok(QuotaKey::ConnectionCreationRate));
    assert_eq!(
        validate_value(&ip, "producer_byte_rate", 5.0),
        Err(QuotaError::UnknownKey("producer_byte_rate".into()))
    );
    assert_eq!(
        validate_value(&user, "consumer_byte_rate", 0.0),
        Err(QuotaError::NotPositive("consumer_byte_rate".into()))
    );
    assert_eq!(
        validate_value(&user, "request_percentage", f64::NAN),
        Err(QuotaError::NotPositive("request_percentage".into()))
    );
}
