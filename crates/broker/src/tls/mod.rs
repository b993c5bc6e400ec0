//! TLS for SSL listeners, with rustls and the ring provider (no OpenSSL).
//!
//! Certificates are PEM files under Kafka's names: `ssl.keystore.location`
//! holds the certificate chain (leaf first) and the unencrypted private key
//! in one file; `ssl.truststore.location` holds the CA certificates client
//! certificates must chain to. `ssl.client.auth` is `required`, `requested`
//! or `none`. Every `ssl.*` key may be set per listener with Kafka's prefix
//! `listener.name.<name in lower case>.`.
//!
//! The files are checked every [`RELOAD_CHECK_INTERVAL`]; when their
//! modification time or size changed they are read again and new
//! connections get the new certificates. A file that cannot be used keeps
//! the previous certificates in service and logs an error.
//!
//! A handshake must finish within [`HANDSHAKE_TIMEOUT`]. A client that
//! speaks Kafka in plaintext to a TLS listener is recognised by its first
//! byte (a TLS record starts with 0x16, a Kafka frame with a length prefix)
//! and refused with one log line.

pub mod principal;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;

use crate::config::{BrokerConfig, ConfigError};
use crate::listener::ListenerSpec;
use crate::session::Principal;
use principal::PrincipalMapper;

/// How long a client has to complete the TLS handshake (Kafka bounds it only
/// by the idle timeout; Runnel names a shorter bound so a slow or silent
/// client cannot hold a connection slot for long).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the keystore and truststore files are checked for changes.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    Required,
    Requested,
    None,
}

/// A TLS listener's settings, each from its `listener.name.<name>.` override
/// or the broker-wide key.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub listener: String,
    pub keystore: PathBuf,
    pub truststore: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub versions: Vec<&'static SupportedProtocolVersion>,
    pub mapper: PrincipalMapper,
}

impl TlsSettings {
    /// Reads listener `name`'s TLS settings; errors name the key.
    pub fn from_config(config: &BrokerConfig, name: &str) -> Result<TlsSettings, ConfigError> {
        let value = |key: &str| config.listener_str(name, key).trim().to_string();
        let invalid = |key: &str, reason: &str| ConfigError::InvalidValue {
            key: config.listener_key_name(name, key),
            value: value(key),
            reason: reason.to_string(),
        };
        let keystore = value("ssl.keystore.location");
        if keystore.is_empty() {
            return Err(invalid("ssl.keystore.location", &format!("TLS listener {name} needs a PEM keystore")));
        }
        let client_auth = match value("ssl.client.auth").as_str() {
            "required" => ClientAuth::Required,
            "requested" => ClientAuth::Requested,
            _ => ClientAuth::None,
        };
        let truststore = Some(value("ssl.truststore.location")).filter(|t| !t.is_empty()).map(PathBuf::from);
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(invalid(
                "ssl.truststore.location",
                &format!("ssl.client.auth={} on listener {name} needs a PEM truststore", value("ssl.client.auth")),
            ));
        }
        let versions = crate::config::split_list(&value("ssl.enabled.protocols"))
            .iter()
            .map(|v| if v.eq_ignore_ascii_case("TLSv1.3") { &rustls::version::TLS13 } else { &rustls::version::TLS12 })
            .collect();
        let mapper = PrincipalMapper::parse(&value("ssl.principal.mapping.rules"))
            .map_err(|reason| invalid("ssl.principal.mapping.rules", &reason))?;
        Ok(TlsSettings {
            listener: name.to_string(),
            keystore: keystore.into(),
            truststore,
            client_auth,
            versions,
            mapper,
        })
    }
}

/// Checks the TLS settings of every TLS listener (not the files: those are
/// read when the listener is bound).
pub fn check_settings(config: &BrokerConfig, listeners: &[ListenerSpec]) -> Result<(), ConfigError> {
    for spec in listeners.iter().filter(|s| s.security_protocol.uses_tls()) {
        TlsSettings::from_config(config, &spec.name)?;
    }
    Ok(())
}

/// Certificates or keys that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS set-up of listener {listener}: {reason}")]
    Setup { listener: String, reason: String },
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |reason: String| TlsError::Pem { path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Builds the rustls configuration from the files `settings` name.
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let setup = |reason: String| TlsError::Setup { listener: settings.listener.clone(), reason };
    let keystore = read_file(&settings.keystore)?;
    let chain = certificates(&settings.keystore, &keystore)?;
    let key = PrivateKeyDer::from_pem_slice(&keystore).map_err(|e| TlsError::Pem {
        path: settings.keystore.clone(),
        reason: format!("no usable unencrypted PRIVATE KEY block: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&settings.versions)
        .map_err(|e| setup(e.to_string()))?;
    let builder = match (&settings.truststore, settings.client_auth) {
        (Some(path), auth) if auth != ClientAuth::None => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path, &read_file(path)?)? {
                roots.add(cert).map_err(|e| TlsError::Pem { path: path.clone(), reason: e.to_string() })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| setup(e.to_string()))?)
        }
        _ => builder.with_no_client_auth(),
    };
    builder.with_single_cert(chain, key).map_err(|e| setup(format!("keystore {}: {e}", settings.keystore.display())))
}

/// What identifies a version of the certificate files: modification time
/// and size of each.
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(settings: &TlsSettings) -> Stamp {
    std::iter::once(&settings.keystore)
        .chain(settings.truststore.as_ref())
        .map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
        .collect()
}

/// A TLS listener's certificates in service, replaced when the files change.
pub struct TlsListener {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    stamp: parking_lot::Mutex<Stamp>,
}

impl TlsListener {
    /// Reads the certificate files; an error here stops the broker from starting.
    pub fn load(settings: TlsSettings) -> Result<Arc<TlsListener>, TlsError> {
        let stamp_now = stamp(&settings);
        let config = server_config(&settings)?;
        Ok(Arc::new(TlsListener {
            settings,
            current: RwLock::new(Arc::new(config)),
            stamp: parking_lot::Mutex::new(stamp_now),
        }))
    }

    /// Reloads the files when they changed. Runs on a blocking thread.
    fn reload_if_changed(&self) {
        let now = stamp(&self.settings);
        if *self.stamp.lock() == now {
            return;
        }
        // Remembered even on failure: a bad file is reported once, not every check.
        *self.stamp.lock() = now;
        match server_config(&self.settings) {
            Ok(config) => {
                *self.current.write() = Arc::new(config);
                metrics::counter!(crate::metrics::TLS_RELOADS, "result" => "ok").increment(1);
                tracing::info!(listener = %self.settings.listener, "TLS certificates reloaded");
            }
            Err(e) => {
                metrics::counter!(crate::metrics::TLS_RELOADS, "result" => "error").increment(1);
                tracing::error!(listener = %self.settings.listener, error = %e,
                    "TLS certificate files changed but cannot be used; keeping the previous certificates");
            }
        }
    }

    /// Checks the files every [`RELOAD_CHECK_INTERVAL`] until `stop`.
    pub async fn watch_files(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(RELOAD_CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => {
                    let this = self.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || this.reload_if_changed()).await {
                        tracing::warn!(error = %e, "TLS reload check ended abnormally");
                    }
                }
            }
        }
    }

    /// Runs the server side of the handshake within [`HANDSHAKE_TIMEOUT`]
    /// and works out the client's principal. The error is the reason to log.
    pub async fn accept(&self, stream: TcpStream) -> Result<(TlsStream<TcpStream>, Principal), String> {
        let config = self.current.read().clone();
        let handshake = async {
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await {
                Ok(0) => return Err("closed before the TLS handshake".to_string()),
                Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => {
                    return Err(format!(
                        "not a TLS handshake (a plaintext client?) on TLS listener {}",
                        self.settings.listener
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(format!("read failed before the TLS handshake: {e}")),
            }
            tokio_rustls::TlsAcceptor::from(config)
                .accept(stream)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))
        };
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| format!("TLS handshake not finished within {} s", HANDSHAKE_TIMEOUT.as_secs()))??;
        let principal = match stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            None => Principal::anonymous(),
            Some(cert) => {
                let subject = principal::subject_name(cert).map_err(|e| e.to_string())?;
                let name = self.settings.mapper.map(&subject).ok_or_else(|| {
                    format!("no ssl.principal.mapping.rules rule matches the client certificate subject '{subject}'")
                })?;
                Principal::user(name)
            }
        };
        Ok((stream, principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn config(settings: &[(&str, &str)]) -> BrokerConfig {
        let mut config = BrokerConfig::default();
        for (k, v) in settings {
            config.set(k, v, Source::Override).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
        config
    }

    // Goal: TLS settings come from the listener's own prefixed keys first, and every error names the key.
    #[test]
    fn settings_are_per_listener_and_errors_name_the_key() {
        let listeners = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,MTLS://127.0.0.1:0";
        let map = "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL";
        let base = [("listeners", listeners), ("listener.security.protocol.map", map)];
        let err = config(&base).validate().unwrap_err().to_string();
        assert!(err.contains("ssl.keystore.location"), "{err}");

        let mut settings = base.to_vec();
        settings.extend([
            ("ssl.keystore.location", "/k.pem"),
            ("listener.name.mtls.ssl.client.auth", "required"),
            ("listener.name.mtls.ssl.principal.mapping.rules", "RULE:^CN=(.*?),.*$/$1/L"),
        ]);
        let err = config(&settings).validate().unwrap_err().to_string();
        assert!(err.contains("ssl.truststore.location") && err.contains("MTLS"), "{err}");
        settings.push(("listener.name.mtls.ssl.truststore.location", "/ca.pem"));
        let config = config(&settings);
        config.validate().unwrap();
        let ssl = TlsSettings::from_config(&config, "SSL").unwrap();
        let mtls = TlsSettings::from_config(&config, "MTLS").unwrap();
        assert_eq!((ssl.client_auth, ssl.truststore), (ClientAuth::None, None));
        assert_eq!(mtls.client_auth, ClientAuth::Required);
        assert_eq!(mtls.keystore, PathBuf::from("/k.pem"));
        assert_eq!(mtls.mapper.map("CN=Bob,O=X").as_deref(), Some("bob"));
        assert_eq!(ssl.mapper.map("CN=Bob,O=X").as_deref(), Some("CN=Bob,O=X"));
        assert!(config.entries().any(|(k, v, _)| k == "listener.name.mtls.ssl.client.auth" && v == "required"));

        let mut bad = BrokerConfig::default();
        let err = bad.set("listener.name.mtls.ssl.client.auth", "always", Source::Override).unwrap_err();
        assert!(err.to_string().contains("listener.name.mtls.ssl.client.auth"), "{err}");
        assert!(bad.set("listener.name.MTLS.ssl.client.auth", "none", Source::Override).is_err());
        assert!(bad.set("listener.name.mtls.num.partitions", "1", Source::Override).is_err());
        let err = bad.set("listener.name.mtls.ssl.principal.mapping.rules", "RULE:x", Source::Override);
        assert!(err.is_ok(), "syntax is checked by validate, with the listener");
        bad.set("listeners", "MTLS://127.0.0.1:0", Source::Override).unwrap();
        bad.set("listener.security.protocol.map", "MTLS:SSL", Source::Override).unwrap();
        bad.set("ssl.keystore.location", "/k.pem", Source::Override).unwrap();
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("listener.name.mtls.ssl.principal.mapping.rules"), "{err}");
    }

    // Goal: a keystore without a key, or a missing file, is an error naming the file; the listener does not start.
    #[test]
    fn unusable_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let only_cert = dir.path().join("cert.pem");
        std::fs::write(&only_cert, cert.pem()).unwrap();
        let both = dir.path().join("both.pem");
        std::fs::write(&both, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
        let config =
            config(&[("listeners", "SSL://127.0.0.1:0"), ("ssl.keystore.location", only_cert.to_str().unwrap())]);
        let mut settings = TlsSettings::from_config(&config, "SSL").unwrap();
        let err = server_config(&settings).unwrap_err().to_string();
        assert!(err.contains("cert.pem") && err.contains("PRIVATE KEY"), "{err}");
        settings.keystore = dir.path().join("missing.pem");
        assert!(server_config(&settings).unwrap_err().to_string().contains("missing.pem"));
        settings.keystore = both;
        server_config(&settings).unwrap();
    }
}
