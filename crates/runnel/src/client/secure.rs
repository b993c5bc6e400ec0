//! Client-side security for [`super::wire`]: TLS with rustls and SASL
//! (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), configured with the librdkafka
//! properties the other client commands take through `-X`.
//!
//! Properties read: `security.protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT,
//! SASL_SSL), `ssl.ca.location`, `ssl.certificate.location`,
//! `ssl.key.location`, `ssl.endpoint.identification.algorithm` (`https`,
//! the default, checks the broker's name; `none` does not),
//! `sasl.mechanism` (or `sasl.mechanisms`), `sasl.username`,
//! `sasl.password`. Anything else that librdkafka would need for a secured
//! connection (OAUTHBEARER, encrypted keys, PKCS#12 stores) is refused with
//! a message naming the property.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use base64::Engine;
use ring::{digest, hmac, pbkdf2};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A byte stream to a broker: plain TCP or TLS over it.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// How to reach a broker securely: read once from the command's properties.
#[derive(Clone, Debug, Default)]
pub struct Security {
    pub tls: Option<TlsSettings>,
    pub sasl: Option<SaslSettings>,
}

#[derive(Clone, Debug)]
pub struct TlsSettings {
    ca: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    verify_hostname: bool,
}

#[derive(Clone)]
pub struct SaslSettings {
    pub mechanism: SaslMechanism,
    username: String,
    password: String,
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings").field("mechanism", &self.mechanism).field("username", &self.username).finish()
    }
}

/// A SASL mechanism this client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl Security {
    /// Reads the security properties; `property` looks one up by name.
    pub fn from_properties<'a>(property: impl Fn(&str) -> Option<&'a str>) -> anyhow::Result<Security> {
        let protocol = property("security.protocol").unwrap_or("plaintext").to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => bail!("security.protocol {other} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        };
        for unsupported in ["ssl.key.password", "ssl.keystore.location", "ssl.certificate.pem", "ssl.key.pem"] {
            if property(unsupported).is_some() {
                bail!("{unsupported} is not supported by this command; use PEM files with ssl.certificate.location and ssl.key.location");
            }
        }
        let tls = tls
            .then(|| -> anyhow::Result<TlsSettings> {
                let client_cert = match (property("ssl.certificate.location"), property("ssl.key.location")) {
                    (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
                    (None, None) => None,
                    _ => bail!("ssl.certificate.location and ssl.key.location go together"),
                };
                let verify_hostname = match property("ssl.endpoint.identification.algorithm") {
                    None => true,
                    Some(a) if a.eq_ignore_ascii_case("https") => true,
                    Some(a) if a.eq_ignore_ascii_case("none") => false,
                    Some(a) => bail!("ssl.endpoint.identification.algorithm {a} is not https or none"),
                };
                Ok(TlsSettings { ca: property("ssl.ca.location").map(PathBuf::from), client_cert, verify_hostname })
            })
            .transpose()?;
        let sasl = sasl
            .then(|| -> anyhow::Result<SaslSettings> {
                let mechanism = property("sasl.mechanism").or_else(|| property("sasl.mechanisms")).unwrap_or("GSSAPI");
                let mechanism = match mechanism.to_ascii_uppercase().as_str() {
                    "PLAIN" => SaslMechanism::Plain,
                    "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                    "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                    other => bail!(
                        "sasl.mechanism {other} is not supported by this command (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                    ),
                };
                let username = property("sasl.username").context("sasl.username is required for SASL")?;
                let password = property("sasl.password").context("sasl.password is required for SASL")?;
                Ok(SaslSettings { mechanism, username: username.to_string(), password: password.to_string() })
            })
            .transpose()?;
        Ok(Security { tls, sasl })
    }

    /// Wraps a connected socket in TLS when the protocol says so.
    pub fn wrap(&self, host: &str, tcp: TcpStream) -> anyhow::Result<Box<dyn Stream>> {
        let Some(tls) = &self.tls else { return Ok(Box::new(tcp)) };
        let config = tls.client_config()?;
        let name =
            ServerName::try_from(host.to_string()).with_context(|| format!("{host} is not a TLS server name"))?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).context("cannot start TLS")?;
        Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
    }
}

impl TlsSettings {
    fn client_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let Some(ca) = &self.ca else {
            bail!("ssl.ca.location is required for TLS: this command trusts only the CA file it is given")
        };
        for cert in read_certs(ca)? {
            roots.add(cert).with_context(|| format!("{}: bad CA certificate", ca.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("no TLS protocol version")?;
        let builder = match self.verify_hostname {
            true => builder.with_root_certificates(roots),
            false => {
                let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .context("cannot build the certificate verifier")?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(NoHostname(inner)))
            }
        };
        match &self.client_cert {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let key_pem = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem)
                    .with_context(|| format!("{}: no PEM private key", key.display()))?;
                builder.with_client_auth_cert(read_certs(cert)?, key).context("bad client certificate or key")
            }
        }
    }
}

fn read_certs(path: &PathBuf) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: bad PEM certificate", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no CERTIFICATE block", path.display());
    }
    Ok(certs)
}

/// `ssl.endpoint.identification.algorithm=none`: the chain must still lead
/// to the CA, but the broker's name is not checked against it.
#[derive(Debug)]
struct NoHostname(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for NoHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The client's side of one SASL exchange: each call takes the broker's
/// last token (empty at the start) and gives the next one to send, or
/// `None` when the exchange is complete.
pub enum SaslClient {
    Plain { token: Option<Vec<u8>> },
    Scram(ScramClient),
}

impl SaslClient {
    pub fn new(settings: &SaslSettings) -> SaslClient {
        match settings.mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{}\0{}", settings.username, settings.password).into_bytes();
                SaslClient::Plain { token: Some(token) }
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let nonce: [u8; 24] = rand::random();
                let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
                SaslClient::Scram(ScramClient::new(settings, nonce))
            }
        }
    }

    /// The next token to send after `server` (the broker's last answer).
    pub fn step(&mut self, server: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            SaslClient::Plain { token } => Ok(token.take()),
            SaslClient::Scram(scram) => scram.step(server),
        }
    }
}

/// SCRAM (RFC 5802) as Kafka serves it: no channel binding, the user name
/// with `=` and `,` escaped.
pub struct ScramClient {
    sha512: bool,
    password: String,
    client_first_bare: String,
    nonce: String,
    state: ScramState,
}

enum ScramState {
    Start,
    SentFirst,
    /// The final message is sent; the broker must answer with this signature.
    SentFinal {
        server_signature: Vec<u8>,
    },
    Done,
}

impl ScramClient {
    fn new(settings: &SaslSettings, nonce: String) -> ScramClient {
        let user = settings.username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            sha512: settings.mechanism == SaslMechanism::ScramSha512,
            password: settings.password.clone(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce,
            state: ScramState::Start,
        }
    }

    fn step(&mut self, server: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        match std::mem::replace(&mut self.state, ScramState::Done) {
            ScramState::Start => {
                self.state = ScramState::SentFirst;
                Ok(Some(format!("n,,{}", self.client_first_bare).into_bytes()))
            }
            ScramState::SentFirst => {
                let (message, server_signature) = self.client_final(server)?;
                self.state = ScramState::SentFinal { server_signature };
                Ok(Some(message.into_bytes()))
            }
            ScramState::SentFinal { server_signature } => {
                let server = std::str::from_utf8(server).context("SCRAM: the broker's final message is not text")?;
                let signature = attribute(server, 'v').context("SCRAM: the broker's final message has no signature")?;
                let signature =
                    base64::engine::general_purpose::STANDARD.decode(signature).context("SCRAM: bad signature")?;
                if signature != server_signature {
                    bail!("SCRAM: the broker's signature is wrong; it does not know this user's credentials");
                }
                Ok(None)
            }
            ScramState::Done => Ok(None),
        }
    }

    /// Answers the server-first message with the proof; also gives the
    /// server signature the broker's final message must carry.
    fn client_final(&self, server_first: &[u8]) -> anyhow::Result<(String, Vec<u8>)> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let server_first = std::str::from_utf8(server_first).context("SCRAM: the broker's message is not text")?;
        let nonce = attribute(server_first, 'r').context("SCRAM: no nonce from the broker")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            bail!("SCRAM: the broker's nonce does not extend ours");
        }
        let salt = b64.decode(attribute(server_first, 's').context("SCRAM: no salt")?).context("SCRAM: bad salt")?;
        let iterations: u32 = attribute(server_first, 'i').context("SCRAM: no iteration count")?.parse()?;
        let iterations = std::num::NonZeroU32::new(iterations).context("SCRAM: zero iterations")?;
        let (pbkdf, hmac_alg, digest_alg, len) = match self.sha512 {
            true => (pbkdf2::PBKDF2_HMAC_SHA512, hmac::HMAC_SHA512, &digest::SHA512, 64),
            false => (pbkdf2::PBKDF2_HMAC_SHA256, hmac::HMAC_SHA256, &digest::SHA256, 32),
        };
        let mut salted = vec![0u8; len];
        pbkdf2::derive(pbkdf, iterations, &salt, self.password.as_bytes(), &mut salted);
        let salted = hmac::Key::new(hmac_alg, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(digest_alg, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::sign(&hmac::Key::new(hmac_alg, stored_key.as_ref()), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(k, s)| k ^ s).collect();
        let server_key = hmac::sign(&salted, b"Server Key");
        let server_signature = hmac::sign(&hmac::Key::new(hmac_alg, server_key.as_ref()), auth_message.as_bytes());
        Ok((format!("{without_proof},p={}", b64.encode(proof)), server_signature.as_ref().to_vec()))
    }
}

/// The value of attribute `name` in a SCRAM message (`a=value,b=...`).
fn attribute(message: &str, name: char) -> Option<&str> {
    message.split(',').find_map(|part| part.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the SCRAM-SHA-256 client produces RFC 7677's example messages and accepts its server signature.
    #[test]
    fn scram_sha256_matches_the_rfc_7677_example() {
        let settings =
            SaslSettings { mechanism: SaslMechanism::ScramSha256, username: "user".into(), password: "pencil".into() };
        let mut client = ScramClient::new(&settings, "rOprNGfwEbeRWgbNEkqO".into());
        let first = client.step(b"").unwrap().unwrap();
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let last = client.step(server_first).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(client.step(b"v=wrong+signature+AAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_err());
        assert_eq!(client.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap(), None);
    }

    // Goal: a server nonce that does not extend the client's is refused.
    #[test]
    fn scram_refuses_a_foreign_nonce() {
        let settings =
            SaslSettings { mechanism: SaslMechanism::ScramSha512, username: "a,b=c".into(), password: "pw".into() };
        let mut client = ScramClient::new(&settings, "abc".into());
        assert_eq!(client.step(b"").unwrap().unwrap(), b"n,,n=a=2Cb=3Dc,r=abc");
        assert!(client.step(b"r=xyz123,s=AAAA,i=4096").is_err());
    }

    // Goal: the properties select TLS and SASL as librdkafka's names say, and refuse what this client cannot do.
    #[test]
    fn properties_select_the_protocol() {
        let props = |pairs: &'static [(&'static str, &'static str)]| {
            Security::from_properties(move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v))
        };
        let plain = props(&[]).unwrap();
        assert!(plain.tls.is_none() && plain.sasl.is_none());
        let s = props(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
            ("ssl.ca.location", "/ca.pem"),
        ])
        .unwrap();
        assert!(s.tls.is_some());
        assert_eq!(s.sasl.unwrap().mechanism, SaslMechanism::ScramSha512);
        assert!(props(&[("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism", "GSSAPI")]).is_err());
        assert!(props(&[("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism", "PLAIN")]).is_err());
        assert!(props(&[("security.protocol", "SSL"), ("ssl.key.password", "x")]).is_err());
        assert!(props(&[("security.protocol", "QUIC")]).is_err());
    }
}
