//! Runnel's broker: a Kafka-wire-compatible server over the `runnel-log`
//! storage engine.
//!
//! Layers, top down: [`server`] accepts connections on each [`listener`]
//! (TLS ones through [`tls`]), each with a [`session`] naming its client;
//! [`connection`] frames,
//! guards and orders requests; [`handler`] holds one module per Kafka API;
//! [`broker`] and [`partition`] hold the state the handlers share; [`meta`] is
//! the metadata state machine; [`group`] and [`txn`] are the group and
//! transaction coordinators; [`config`] names every setting and bound;
//! [`quota`] holds client quotas and their enforcement;
//! [`retention`] removes old segments and [`cleaner`] compacts logs in the
//! background.
//! [`authz`] holds the ACLs and decides what each principal may do.
//! Kafka error codes appear only in handlers, through [`error`].

pub mod authz;
pub mod broker;
pub mod cleaner;
pub mod config;
pub mod connection;
pub mod error;
pub mod group;
pub mod handler;
pub mod http;
pub mod listener;
pub mod meta;
pub mod metrics;
pub mod partition;
pub mod protocol;
pub mod quota;
pub mod retention;
pub mod sasl;
pub mod server;
pub mod session;
pub mod tls;
pub mod txn;

pub use broker::Broker;
pub use config::{BrokerConfig, Source};
pub use server::Server;
