//! The SCRAM-SHA-256 and SCRAM-SHA-512 mechanisms (RFC 5802, RFC 7677), as
//! Kafka serves them: no channel binding (the GS2 header is `n,,` or
//! `n,a=<user>,`, and an authorization id must name the user), no
//! delegation tokens (the `tokenauth` extension is refused).
//!
//! Two client tokens. Client-first `n,,n=<user>,r=<client nonce>` is answered
//! with server-first `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`;
//! client-final `c=biws,r=<nonce>,p=<proof>` is checked against the user's
//! StoredKey and answered with server-final `v=<server signature>`.
//!
//! Credentials are (salt, iterations, StoredKey, ServerKey) per user and
//! mechanism, never a password: they live in the metadata image and reach
//! the authenticator through [`ScramCredentials`], which the broker replaces
//! whenever they change, so a new credential works on the next connection.
//! A user without a credential for the mechanism gets a stand-in: a salt and
//! keys derived with HMAC from a per-broker secret and the user name, so the
//! same name always sees the same salt and iterations, the exchange goes on
//! with the same work, and it fails at the final step with the same answer
//! and delay as a wrong password.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use parking_lot::RwLock;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};

use super::{Continuation, Outcome};

/// The fewest PBKDF2 iterations a credential may have (Kafka's bound for
/// both mechanisms; RFC 7677 asks for at least 4096).
pub const ITERATIONS_MIN: i32 = 4096;
/// The most PBKDF2 iterations a credential may have (Kafka's bound): each
/// client login costs the client this many HMACs.
pub const ITERATIONS_MAX: i32 = 16384;
/// The longest salt a credential may have; every server-first message
/// carries it.
pub const SALT_BYTES_MAX: usize = 1024;
/// Iterations of the stand-in credential of an unknown user: what
/// `kafka-configs.sh` and `runnel user create` use unless told otherwise.
pub const STAND_IN_ITERATIONS: i32 = 4096;
/// Salt length of the stand-in credential, the length `runnel user create`
/// gives real ones.
pub const STAND_IN_SALT_BYTES: usize = 32;

/// A SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's wire number of the mechanism (`ScramMechanism` in
    /// DescribeUserScramCredentials and AlterUserScramCredentials; 0 is
    /// UNKNOWN).
    pub fn kafka_type(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_kafka_type(kafka_type: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.kafka_type() == kafka_type)
    }

    /// Bytes of the hash output: the length of every key and of a proof.
    pub fn output_bytes(self) -> usize {
        self.digest().output_len()
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// `HMAC(key, data)`.
    fn hmac_sign(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data).as_ref().to_vec()
    }

    /// `H(data)`.
    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }
}

/// What the broker keeps of a user's password for one mechanism.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    pub iterations: i32,
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys let anyone who holds them log in to a server: never logged.
        f.debug_struct("ScramCredential").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential of a SaltedPassword (`Hi(password, salt, i)`, computed
    /// by the client that sets it, as Kafka's admin client does):
    /// StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
    /// ServerKey = HMAC(SaltedPassword, "Server Key"). The salted password
    /// itself is not kept.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        iterations: i32,
        salted_password: &[u8],
    ) -> ScramCredential {
        let client_key = mechanism.hmac_sign(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac_sign(salted_password, b"Server Key"),
        }
    }
}

/// `Hi(password, salt, iterations)`: PBKDF2 with the mechanism's HMAC.
pub fn salted_password(mechanism: ScramMechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; mechanism.output_bytes()];
    let iterations = std::num::NonZeroU32::new(iterations.max(1)).expect("at least one iteration");
    pbkdf2::derive(mechanism.pbkdf2(), iterations, salt, password, &mut out);
    out
}

/// The client's side of the final step for `salted_password` and the
/// AuthMessage: the ClientProof to send and the ServerSignature the server
/// must answer with. `runnel` uses it as a SCRAM client.
pub fn client_proof(mechanism: ScramMechanism, salted_password: &[u8], auth_message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let client_key = mechanism.hmac_sign(salted_password, b"Client Key");
    let signature = mechanism.hmac_sign(&mechanism.hash(&client_key), auth_message);
    let proof = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
    let server_key = mechanism.hmac_sign(salted_password, b"Server Key");
    (proof, mechanism.hmac_sign(&server_key, auth_message))
}

/// The SCRAM credentials of the metadata image plus the secret that derives
/// stand-ins for unknown users.
pub struct ScramCredentials {
    users: RwLock<BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>>,
    secret: hmac::Key,
}

impl std::fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentials").field("users", &self.users.read().len()).finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// No credentials; `secret` derives the stand-ins.
    pub fn new(secret: &[u8]) -> ScramCredentials {
        ScramCredentials { users: RwLock::new(BTreeMap::new()), secret: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// No credentials and a random secret, for a listener not tied to a
    /// broker (configuration checks).
    pub fn empty() -> Arc<ScramCredentials> {
        let mut secret = [0u8; 32];
        SystemRandom::new().fill(&mut secret).expect("the system random source works");
        Arc::new(ScramCredentials::new(&secret))
    }

    /// Replaces every credential with those of the metadata image.
    pub fn replace(&self, users: crate::meta::ScramUsers) {
        *self.users.write() = users;
    }

    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.users.read().get(user).and_then(|m| m.get(&mechanism)).cloned()
    }

    /// A credential for `user` that nobody can log in with, the same each
    /// time for the same user, mechanism and secret.
    fn stand_in(&self, user: &str, mechanism: ScramMechanism) -> ScramCredential {
        let derive = |purpose: &str| {
            let mut ctx = hmac::Context::with_key(&self.secret);
            for part in [purpose.as_bytes(), b"\0", mechanism.name().as_bytes(), b"\0", user.as_bytes()] {
                ctx.update(part);
            }
            ctx.sign().as_ref().to_vec()
        };
        let mut salt = derive("salt");
        salt.truncate(STAND_IN_SALT_BYTES);
        ScramCredential {
            salt,
            iterations: STAND_IN_ITERATIONS,
            stored_key: mechanism.hash(&derive("stored key")),
            server_key: mechanism.hash(&derive("server key")),
        }
    }
}

/// The file in the metadata directory that holds the broker's stand-in
/// secret.
pub const SECRET_FILE: &str = "scram-stand-in.secret";

/// Reads the broker's stand-in secret from `dir`, creating 32 random bytes
/// on first start (written whole, fsynced and renamed into place, readable
/// by the owner only). Kept across restarts so an unknown user's salt does
/// not change when the broker restarts while a real user's stays.
pub fn load_or_create_secret(dir: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let path = dir.join(SECRET_FILE);
    match std::fs::read(&path) {
        Ok(secret) if secret.len() == 32 => return Ok(secret),
        Ok(_) => tracing::warn!(path = %path.display(), "SCRAM stand-in secret has the wrong length; making a new one"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut secret = vec![0u8; 32];
    SystemRandom::new().fill(&mut secret).map_err(|_| std::io::Error::other("no system random bytes"))?;
    let tmp = dir.join(format!("{SECRET_FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(&secret)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(secret)
}

/// A failed step: the claimed user when known, and the reason for the log.
type Failure = (Option<String>, &'static str);

fn failed((user, reason): Failure) -> Outcome {
    Outcome::Failed { user, reason }
}

/// The first step: reads client-first, answers server-first.
pub fn first(credentials: &ScramCredentials, mechanism: ScramMechanism, token: &[u8]) -> Outcome {
    let mut server_nonce = [0u8; 24];
    if SystemRandom::new().fill(&mut server_nonce).is_err() {
        return Outcome::Failed { user: None, reason: "no random bytes for a nonce" };
    }
    match start(credentials, mechanism, token, &BASE64.encode(server_nonce)) {
        Ok((reply, exchange)) => Outcome::Challenge { reply, next: Continuation::Scram(Box::new(exchange)) },
        Err(failure) => failed(failure),
    }
}

/// An exchange after server-first: what the final step checks.
pub struct Exchange {
    mechanism: ScramMechanism,
    user: String,
    /// Whether `credential` is the user's own rather than a stand-in.
    known: bool,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange").field("mechanism", &self.mechanism).field("user", &self.user).finish_non_exhaustive()
    }
}

/// Parses client-first and builds server-first with a fresh server nonce.
fn start(
    credentials: &ScramCredentials,
    mechanism: ScramMechanism,
    token: &[u8],
    server_nonce: &str,
) -> Result<(Vec<u8>, Exchange), Failure> {
    let client_first = ClientFirst::parse(token)?;
    // The stand-in is derived for every user, so a known user costs the same work as an unknown one.
    let stand_in = credentials.stand_in(&client_first.user, mechanism);
    let (credential, known) = match credentials.get(&client_first.user, mechanism) {
        Some(credential) => (credential, true),
        None => (stand_in, false),
    };
    let nonce = format!("{}{server_nonce}", client_first.nonce);
    let server_first = format!("r={nonce},s={},i={}", BASE64.encode(&credential.salt), credential.iterations);
    let exchange = Exchange {
        mechanism,
        user: client_first.user,
        known,
        credential,
        gs2_header: client_first.gs2_header,
        client_first_bare: client_first.bare,
        server_first: server_first.clone(),
        nonce,
    };
    Ok((server_first.into_bytes(), exchange))
}

impl Exchange {
    /// The final step: checks client-final's channel binding, nonce and
    /// proof; on success answers server-final.
    pub fn finish(self, token: &[u8]) -> Outcome {
        match self.verify(token) {
            Ok(reply) => Outcome::Authenticated { user: self.user, reply },
            Err(reason) => Outcome::Failed { user: Some(self.user), reason },
        }
    }

    fn verify(&self, token: &[u8]) -> Result<Vec<u8>, &'static str> {
        let text = std::str::from_utf8(token).map_err(|_| "client-final is not UTF-8")?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or("client-final has no proof")?;
        let mut fields = without_proof.split(',');
        let binding = fields.next().and_then(|f| f.strip_prefix("c=")).ok_or("client-final has no channel binding")?;
        if BASE64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err("channel binding differs from the GS2 header");
        }
        let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).ok_or("client-final has no nonce")?;
        // Kafka accepts a nonce that ends with the server's: librdkafka up to
        // 2.0 (kcat on Debian 12) sends its own nonce in front of the whole
        // server nonce, which already starts with it.
        if !nonce.ends_with(&self.nonce) {
            return Err("nonce differs from the server's");
        }
        let proof = BASE64.decode(proof).map_err(|_| "proof is not base64")?;
        if proof.len() != self.mechanism.output_bytes() {
            return Err("proof has the wrong length");
        }
        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let m = self.mechanism;
        // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey.
        let signature = m.hmac_sign(&self.credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let matches = super::plain::constant_time_eq(&self.credential.stored_key, &m.hash(&client_key));
        let server_signature = m.hmac_sign(&self.credential.server_key, auth_message.as_bytes());
        match (self.known, matches) {
            (true, true) => Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes()),
            (true, false) => Err("wrong password"),
            (false, _) => Err("unknown user"),
        }
    }
}

/// A parsed client-first message.
#[derive(Debug, PartialEq)]
struct ClientFirst {
    /// `n,,` or `n,a=<authzid>,`, as sent: client-final's `c=` repeats it.
    gs2_header: String,
    /// The message after the GS2 header, part of the AuthMessage.
    bare: String,
    user: String,
    nonce: String,
}

impl ClientFirst {
    fn parse(token: &[u8]) -> Result<ClientFirst, Failure> {
        let text = std::str::from_utf8(token).map_err(|_| (None, "client-first is not UTF-8"))?;
        let rest = match text.strip_prefix("n,") {
            Some(rest) => rest,
            None if text.starts_with("y,") || text.starts_with("p=") => {
                return Err((None, "channel binding is not supported"))
            }
            None => return Err((None, "client-first has no GS2 header")),
        };
        let (authzid, bare) = rest.split_once(',').ok_or((None, "client-first has no GS2 header"))?;
        let authzid = match authzid {
            "" => None,
            a => Some(a.strip_prefix("a=").and_then(decode_name).ok_or((None, "malformed authorization id"))?),
        };
        let mut fields = bare.split(',');
        let user = fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .and_then(decode_name)
            .filter(|u| !u.is_empty())
            .ok_or((None, "client-first has no user name"))?;
        let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).unwrap_or("");
        if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
            return Err((Some(user), "client-first has no valid nonce"));
        }
        for extension in fields {
            if extension.starts_with("tokenauth=") {
                return Err((Some(user), "delegation tokens are not served"));
            }
            if extension.starts_with("m=") {
                return Err((Some(user), "a mandatory extension is not supported"));
            }
        }
        if authzid.as_ref().is_some_and(|a| *a != user) {
            return Err((Some(user), "authorization id differs from the user name"));
        }
        let gs2_header = format!("n,{authzid_field},", authzid_field = &rest[..rest.len() - bare.len() - 1]);
        Ok(ClientFirst { gs2_header, bare: bare.to_string(), nonce: nonce.to_string(), user })
    }
}

/// A SCRAM `saslname`: `=2C` stands for `,` and `=3D` for `=`; any other
/// `=` is malformed.
fn decode_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Bytes as standard base64 text in the metadata log.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC_CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_credentials() -> ScramCredentials {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096);
        let credential = ScramCredential::from_salted_password(ScramMechanism::Sha256, &salt, 4096, &salted);
        let store = ScramCredentials::new(b"secret");
        store.replace(BTreeMap::from([("user".into(), BTreeMap::from([(ScramMechanism::Sha256, credential)]))]));
        store
    }

    /// The server nonce of the RFC's example.
    const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

    fn rfc_exchange(store: &ScramCredentials, client_first: &str) -> Result<Exchange, Failure> {
        Ok(start(store, ScramMechanism::Sha256, client_first.as_bytes(), RFC_SERVER_NONCE)?.1)
    }

    // Goal: the key derivation and the whole exchange match RFC 7677's
    // SCRAM-SHA-256 test vector, and the server's first message has the
    // stored salt and iterations after the client's nonce.
    #[test]
    fn rfc7677_test_vector() {
        let store = rfc_credentials();
        let (reply, exchange) =
            start(&store, ScramMechanism::Sha256, RFC_CLIENT_FIRST.as_bytes(), RFC_SERVER_NONCE).unwrap();
        assert_eq!(String::from_utf8(reply).unwrap(), RFC_SERVER_FIRST);
        match exchange.finish(RFC_CLIENT_FINAL.as_bytes()) {
            Outcome::Authenticated { user, reply } => {
                assert_eq!(user, "user");
                assert_eq!(String::from_utf8(reply).unwrap(), RFC_SERVER_FINAL);
            }
            other => panic!("{other:?}"),
        }
    }

    // Goal: the client's side computes the RFC's proof and expected server signature.
    #[test]
    fn client_proof_matches_rfc7677() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096);
        let without_proof = RFC_CLIENT_FINAL.rsplit_once(",p=").unwrap().0;
        let auth = format!("{},{RFC_SERVER_FIRST},{without_proof}", &RFC_CLIENT_FIRST[3..]);
        let (proof, server_signature) = client_proof(ScramMechanism::Sha256, &salted, auth.as_bytes());
        assert_eq!(format!("{without_proof},p={}", BASE64.encode(proof)), RFC_CLIENT_FINAL);
        assert_eq!(format!("v={}", BASE64.encode(server_signature)), RFC_SERVER_FINAL);
    }

    // Goal: librdkafka 2.0's client-final, whose nonce repeats the client's nonce in front of the server's,
    // authenticates as Kafka lets it.
    #[test]
    fn a_nonce_ending_with_the_servers_is_accepted() {
        let store = rfc_credentials();
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(ScramMechanism::Sha256, b"pencil", &salt, 4096);
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{},{RFC_SERVER_FIRST},{without_proof}", &RFC_CLIENT_FIRST[3..]);
        let (proof, _) = client_proof(ScramMechanism::Sha256, &salted, auth.as_bytes());
        let client_final = format!("{without_proof},p={}", BASE64.encode(proof));
        let exchange = rfc_exchange(&store, RFC_CLIENT_FIRST).unwrap();
        assert!(matches!(exchange.finish(client_final.as_bytes()), Outcome::Authenticated { .. }));
    }

    fn final_failure(store: &ScramCredentials, client_first: &str, client_final: &str) -> &'static str {
        match rfc_exchange(store, client_first).unwrap().finish(client_final.as_bytes()) {
            Outcome::Failed { reason, .. } => reason,
            other => panic!("{client_final} gave {other:?}"),
        }
    }

    // Goal: a wrong proof, nonce or channel binding, or an unknown user, fails at the final step.
    #[test]
    fn final_step_refuses_bad_messages() {
        let store = rfc_credentials();
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let bad_proof = format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=");
        assert_eq!(final_failure(&store, RFC_CLIENT_FIRST, &bad_proof), "wrong password");
        let bad_nonce = RFC_CLIENT_FINAL.replace("k0,p=", "k1,p=");
        assert_eq!(final_failure(&store, RFC_CLIENT_FIRST, &bad_nonce), "nonce differs from the server's");
        let client_nonce_only = "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(final_failure(&store, RFC_CLIENT_FIRST, client_nonce_only), "nonce differs from the server's");
        let bad_binding = RFC_CLIENT_FINAL.replace("c=biws", "c=eSws");
        assert_eq!(
            final_failure(&store, RFC_CLIENT_FIRST, &bad_binding),
            "channel binding differs from the GS2 header"
        );
        let short = format!("c=biws,r={nonce},p=AAAA");
        assert_eq!(final_failure(&store, RFC_CLIENT_FIRST, &short), "proof has the wrong length");
        assert_eq!(final_failure(&store, RFC_CLIENT_FIRST, "c=biws"), "client-final has no proof");
        // The RFC's proof for "user", presented as someone unknown, fails as unknown.
        let mallory_first = "n,,n=mallory,r=rOprNGfwEbeRWgbNEkqO";
        assert_eq!(final_failure(&store, mallory_first, RFC_CLIENT_FINAL), "unknown user");
        // With an authorization id, c= must repeat that header.
        let with_authzid = "n,a=user,n=user,r=rOprNGfwEbeRWgbNEkqO";
        assert_eq!(
            final_failure(&store, with_authzid, RFC_CLIENT_FINAL),
            "channel binding differs from the GS2 header"
        );
    }

    // Goal: client-first messages Kafka refuses are refused at the first step, and names are decoded.
    #[test]
    fn first_step_refuses_bad_messages() {
        let reason = |token: &str| ClientFirst::parse(token.as_bytes()).unwrap_err().1;
        assert_eq!(reason("y,,n=user,r=abc"), "channel binding is not supported");
        assert_eq!(reason("p=tls-unique,,n=user,r=abc"), "channel binding is not supported");
        assert_eq!(reason("n=user,r=abc"), "client-first has no GS2 header");
        assert_eq!(reason("n,,r=abc"), "client-first has no user name");
        assert_eq!(reason("n,,n=,r=abc"), "client-first has no user name");
        assert_eq!(reason("n,,n=a=2Db,r=abc"), "client-first has no user name");
        assert_eq!(reason("n,,n=user"), "client-first has no valid nonce");
        assert_eq!(reason("n,,n=user,r="), "client-first has no valid nonce");
        assert_eq!(reason("n,,n=user,r=a\u{7f}b"), "client-first has no valid nonce");
        assert_eq!(reason("n,,n=user,r=abc,tokenauth=true"), "delegation tokens are not served");
        assert_eq!(reason("n,,n=user,r=abc,m=x"), "a mandatory extension is not supported");
        assert_eq!(reason("n,a=other,n=user,r=abc"), "authorization id differs from the user name");
        assert_eq!(reason("n,x=user,n=user,r=abc"), "malformed authorization id");
        let ok = ClientFirst::parse(b"n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=abc,ext=1").unwrap();
        assert_eq!(ok.user, "a,b=c");
        assert_eq!(ok.gs2_header, "n,a=a=2Cb=3Dc,");
        assert_eq!(ok.bare, "n=a=2Cb=3Dc,r=abc,ext=1");
    }

    // Goal: an unknown user gets a stand-in that is stable per name and mechanism, looks like a real one, and
    // differs between names and between secrets.
    #[test]
    fn unknown_users_get_stable_stand_ins() {
        let store = ScramCredentials::new(b"secret");
        let a = store.stand_in("alice", ScramMechanism::Sha512);
        assert_eq!(a, store.stand_in("alice", ScramMechanism::Sha512));
        assert_eq!((a.salt.len(), a.iterations, a.stored_key.len()), (STAND_IN_SALT_BYTES, STAND_IN_ITERATIONS, 64));
        assert_ne!(a.salt, store.stand_in("bob", ScramMechanism::Sha512).salt);
        assert_ne!(a.salt, store.stand_in("alice", ScramMechanism::Sha256).salt);
        assert_ne!(a.salt, ScramCredentials::new(b"other").stand_in("alice", ScramMechanism::Sha512).salt);
        // The exchange goes on for an unknown user just as for a known one.
        assert!(matches!(first(&store, ScramMechanism::Sha512, b"n,,n=ghost,r=abc"), Outcome::Challenge { .. }));
    }

    #[test]
    fn credentials_serialize_as_base64_and_debug_hides_keys() {
        let c = ScramCredential { salt: vec![1, 2], iterations: 4096, stored_key: vec![3], server_key: vec![4] };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"salt":"AQI=","iterations":4096,"stored_key":"Aw==","server_key":"BA=="}"#);
        assert_eq!(serde_json::from_str::<ScramCredential>(&json).unwrap(), c);
        assert!(!format!("{c:?}").contains("Aw"));
        assert_eq!(ScramMechanism::from_kafka_type(2), Some(ScramMechanism::Sha512));
        assert_eq!(ScramMechanism::from_kafka_type(0), None);
        assert_eq!(ScramMechanism::parse("SCRAM-SHA-256"), Some(ScramMechanism::Sha256));
    }
}
