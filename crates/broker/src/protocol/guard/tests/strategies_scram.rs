//! Strategies for the SCRAM credential requests, in the style of
//! `strategies.rs`; both are flexible from their only version, 0.

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    AlterUserScramCredentialsRequest, ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::{
    DescribeUserScramCredentialsRequest, UserName,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{list, text, unknown_tags};

fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..70).prop_map(Bytes::from)
}

pub(in super::super) fn describe_user_scram_credentials() -> impl Strategy<Value = DescribeUserScramCredentialsRequest>
{
    let user = (text(), unknown_tags(true))
        .prop_map(|(name, tags)| UserName::default().with_name(name).with_unknown_tagged_fields(tags));
    (option::of(list(user)), unknown_tags(true)).prop_map(|(users, tags)| {
        DescribeUserScramCredentialsRequest::default().with_users(users).with_unknown_tagged_fields(tags)
    })
}

pub(in super::super) fn alter_user_scram_credentials() -> impl Strategy<Value = AlterUserScramCredentialsRequest> {
    let deletion = (text(), any::<i8>(), unknown_tags(true)).prop_map(|(name, mechanism, tags)| {
        ScramCredentialDeletion::default().with_name(name).with_mechanism(mechanism).with_unknown_tagged_fields(tags)
    });
    let upsertion = (text(), any::<i8>(), any::<i32>(), bytes(), bytes(), unknown_tags(true)).prop_map(
        |(name, mechanism, iterations, salt, salted_password, tags)| {
            ScramCredentialUpsertion::default()
                .with_name(name)
                .with_mechanism(mechanism)
                .with_iterations(iterations)
                .with_salt(salt)
                .with_salted_password(salted_password)
                .with_unknown_tagged_fields(tags)
        },
    );
    (list(deletion), list(upsertion), unknown_tags(true)).prop_map(|(deletions, upsertions, tags)| {
        AlterUserScramCredentialsRequest::default()
            .with_deletions(deletions)
            .with_upsertions(upsertions)
            .with_unknown_tagged_fields(tags)
    })
}
