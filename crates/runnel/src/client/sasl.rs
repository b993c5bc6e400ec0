//! SASL for [`super::wire`] connections: PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512 on a SASL_PLAINTEXT listener, with the client properties
//! librdkafka reads (`security.protocol`, `sasl.mechanism(s)`,
//! `sasl.username`, `sasl.password`), so a profile or `-X` flags that work
//! for the other commands work here too. TLS is not spoken: SSL and SASL_SSL
//! listeners are refused with a message saying so.

use std::time::Duration;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use ring::rand::{SecureRandom, SystemRandom};
use runnel_broker::sasl::scram::{self, ScramMechanism};

use super::wire::{self, Connection};
use super::ConnectArgs;

/// The SaslAuthenticate version used (KIP-152 framing, error messages).
const SASL_AUTHENTICATE_VERSION: i16 = 1;

/// Who to log in as, and how.
pub struct SaslLogin {
    mechanism: String,
    username: String,
    password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin").field("mechanism", &self.mechanism).field("username", &self.username).finish()
    }
}

impl SaslLogin {
    /// The login the connection properties ask for: `None` on PLAINTEXT.
    pub fn from_connect(connect: &ConnectArgs) -> anyhow::Result<Option<SaslLogin>> {
        let protocol = connect.property("security.protocol").unwrap_or("plaintext").to_ascii_lowercase();
        match protocol.as_str() {
            "plaintext" => return Ok(None),
            "sasl_plaintext" => {}
            other => bail!(
                "this command speaks PLAINTEXT and SASL_PLAINTEXT only (security.protocol is {other}); \
                 point --brokers at such a listener"
            ),
        }
        let property = |key: &str| connect.property(key).map(str::to_string);
        let mechanism = property("sasl.mechanism").or_else(|| property("sasl.mechanisms"));
        let Some(mechanism) = mechanism else {
            bail!("SASL_PLAINTEXT needs -X sasl.mechanism=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512")
        };
        let (Some(username), Some(password)) = (property("sasl.username"), property("sasl.password")) else {
            bail!("SASL_PLAINTEXT needs sasl.username and sasl.password");
        };
        Ok(Some(SaslLogin { mechanism: mechanism.to_ascii_uppercase(), username, password }))
    }

    /// Runs the SASL exchange on a connection that has only asked for API
    /// versions so far.
    pub fn authenticate(&self, conn: &mut Connection) -> anyhow::Result<()> {
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(self.mechanism.clone()));
        let response = conn.send(1, &handshake)?;
        if response.error_code != 0 {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            bail!(
                "broker {} refused SASL mechanism {}: {} (it offers {})",
                conn.addr(),
                self.mechanism,
                wire::error_name(response.error_code),
                offered.join(", ")
            );
        }
        match ScramMechanism::parse(&self.mechanism) {
            Some(mechanism) => self.scram(conn, mechanism),
            None if self.mechanism == "PLAIN" => {
                let token = format!("\0{}\0{}", self.username, self.password);
                step(conn, token.into_bytes()).map(|_| ())
            }
            None => bail!("SASL mechanism {} is not one this command speaks", self.mechanism),
        }
    }

    fn scram(&self, conn: &mut Connection, mechanism: ScramMechanism) -> anyhow::Result<()> {
        let mut nonce = [0u8; 24];
        SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow::anyhow!("no system random bytes"))?;
        let user = self.username.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={user},r={}", BASE64.encode(nonce));
        let server_first = step(conn, format!("n,,{client_first_bare}").into_bytes())?;
        let server_first = String::from_utf8(server_first).context("server-first is not UTF-8")?;
        let (full_nonce, salt, iterations) = parse_server_first(&server_first, &BASE64.encode(nonce))?;
        let salted = scram::salted_password(mechanism, self.password.as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={full_nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let (proof, server_signature) = scram::client_proof(mechanism, &salted, auth_message.as_bytes());
        let server_final = step(conn, format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())?;
        if server_final != format!("v={}", BASE64.encode(server_signature)).into_bytes() {
            bail!("broker {} answered SCRAM with a wrong server signature", conn.addr());
        }
        Ok(())
    }
}

/// `r=<nonce>,s=<salt>,i=<iterations>`, whose nonce must extend ours.
fn parse_server_first(message: &str, client_nonce: &str) -> anyhow::Result<(String, Vec<u8>, u32)> {
    let mut fields = message.split(',');
    let mut field = |prefix: &str| fields.next().and_then(|f| f.strip_prefix(prefix)).map(str::to_string);
    let (Some(nonce), Some(salt), Some(iterations)) = (field("r="), field("s="), field("i=")) else {
        bail!("malformed SCRAM server-first message");
    };
    if !nonce.starts_with(client_nonce) {
        bail!("the SCRAM server nonce does not extend the client's");
    }
    let salt = BASE64.decode(salt).context("SCRAM salt is not base64")?;
    let iterations: u32 = iterations.parse().context("SCRAM iteration count is not a number")?;
    if !(1..=scram::ITERATIONS_MAX as u32).contains(&iterations) {
        bail!("the broker asks for {iterations} SCRAM iterations");
    }
    Ok((nonce, salt, iterations))
}

/// One SaslAuthenticate round trip: the server's reply, or the broker's error.
fn step(conn: &mut Connection, token: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    let response = conn.send(SASL_AUTHENTICATE_VERSION, &request)?;
    if response.error_code != 0 {
        let message = response.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
        bail!(
            "broker {} refused SASL authentication: {} {message}",
            conn.addr(),
            wire::error_name(response.error_code)
        );
    }
    Ok(response.auth_bytes.to_vec())
}

/// A connection to the first bootstrap broker that answers, logged in as the
/// connection properties say.
pub fn open(connect: &ConnectArgs, timeout: Duration) -> anyhow::Result<Connection> {
    let login = SaslLogin::from_connect(connect)?;
    let mut conn = wire::open_any(&connect.brokers, timeout)?;
    if let Some(login) = &login {
        login.authenticate(&mut conn)?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_first_must_extend_our_nonce() {
        let (nonce, salt, i) = parse_server_first("r=abcXYZ,s=AQI=,i=4096", "abc").unwrap();
        assert_eq!((nonce.as_str(), salt, i), ("abcXYZ", vec![1, 2], 4096));
        assert!(parse_server_first("r=zzzXYZ,s=AQI=,i=4096", "abc").is_err());
        assert!(parse_server_first("r=abcXYZ,s=AQI=,i=999999", "abc").is_err());
        assert!(parse_server_first("r=abcXYZ,i=4096", "abc").is_err());
    }

    #[test]
    fn login_follows_librdkafka_properties() {
        let connect = |props: &[(&str, &str)]| {
            let props = props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            SaslLogin::from_connect(&ConnectArgs::new("b:1", props))
        };
        assert!(connect(&[]).unwrap().is_none());
        let login = connect(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "scram-sha-512"),
            ("sasl.username", "admin"),
            ("sasl.password", "secret"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(login.mechanism, "SCRAM-SHA-512");
        assert!(!format!("{login:?}").contains("secret"));
        assert!(connect(&[("security.protocol", "SASL_SSL")]).is_err());
        assert!(connect(&[("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism", "PLAIN")]).is_err());
    }
}
