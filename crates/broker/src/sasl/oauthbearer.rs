//! The OAUTHBEARER mechanism (RFC 7628, Kafka's KIP-255) with Kafka's JWT
//! validation (KIP-768): the client sends one message holding a bearer
//! token, a JWT signed by an identity provider; the broker checks the
//! signature against the provider's keys (a JWKS file), the times and the
//! expected issuer and audience, and takes the principal from a claim.
//!
//! Client message (RFC 7628 section 3.1): a GS2 header `n,[a=<authzid>],`
//! then `\x01`-separated `key=value` pairs ending in `\x01\x01`; `auth` is
//! `Bearer <token>`, other keys are SASL extensions (KIP-342), parsed and
//! ignored as Kafka's validator does. A token that does not validate is
//! answered, as RFC 7628 section 3.2.2 says, with an error challenge
//! (`{"status":"invalid_token"}`); the client replies `\x01` and the broker
//! then fails the authentication. Why a token was refused goes to the
//! broker's log only.
//!
//! Keys come from `sasl.oauthbearer.jwks.endpoint.url`, a JWKS file (a path
//! or a `file:` URL), checked for changes at most once a second when a token
//! is validated and read again when its modification time or size changed.
//! Signatures: RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA
//! (Ed25519), verified with `ring`. Unsigned tokens (`alg` `none`, Kafka's
//! "unsecured JWS") are refused unless Runnel's own
//! `sasl.oauthbearer.unsecured.validator.enable` is true.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

use crate::config::{BrokerConfig, ConfigError};

/// Largest client message (GS2 header, token and extensions) looked at; a
/// larger one is refused before any decoding. Tokens of identity providers
/// are a few KiB.
pub const CLIENT_MESSAGE_BYTES_MAX: usize = 16 * 1024;
/// Largest JWKS file read.
pub const JWKS_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Most keys taken from a JWKS file.
pub const JWKS_KEYS_MAX: usize = 100;
/// Extensions (KIP-342) accepted in one client message.
pub const EXTENSIONS_MAX: usize = 32;
/// How often, at most, the JWKS file is checked for changes.
pub const JWKS_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The error challenge sent for a token that does not validate.
pub const INVALID_TOKEN_CHALLENGE: &[u8] = br#"{"status":"invalid_token"}"#;

/// A parsed RFC 7628 client initial response.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientMessage {
    /// The authorization id of the GS2 header, when given.
    pub authzid: Option<String>,
    /// The bearer token.
    pub token: String,
    pub extensions: BTreeMap<String, String>,
}

/// Parses an RFC 7628 client initial response; the error is for the log.
pub fn parse_client_message(message: &[u8]) -> Result<ClientMessage, &'static str> {
    if message.len() > CLIENT_MESSAGE_BYTES_MAX {
        return Err("client message larger than the OAUTHBEARER bound");
    }
    let text = std::str::from_utf8(message).map_err(|_| "client message is not UTF-8")?;
    // gs2-header: channel binding flag, authzid, then the key/value pairs.
    let rest = text.strip_prefix("n,").or_else(|| text.strip_prefix("y,")).ok_or("bad GS2 header")?;
    let (authzid, rest) = rest.split_once(',').ok_or("bad GS2 header")?;
    let authzid = match authzid {
        "" => None,
        a => Some(sasl_name(a.strip_prefix("a=").ok_or("bad GS2 authzid")?)?),
    };
    let pairs = rest.strip_prefix('\x01').and_then(|r| r.strip_suffix("\x01\x01")).ok_or("bad key/value framing")?;
    let mut token = None;
    let mut extensions = BTreeMap::new();
    for pair in pairs.split('\x01') {
        let (key, value) = pair.split_once('=').ok_or("a key/value pair has no '='")?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err("bad key in a key/value pair");
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b) || b"\t\r\n".contains(&b)) {
            return Err("bad value in a key/value pair");
        }
        if key == "auth" {
            if token.is_some() {
                return Err("auth given twice");
            }
            token = Some(bearer_token(value)?);
        } else if extensions.insert(key.to_string(), value.to_string()).is_some() {
            return Err("an extension is given twice");
        } else if extensions.len() > EXTENSIONS_MAX {
            return Err("too many extensions");
        }
    }
    let token = token.ok_or("no auth key")?;
    Ok(ClientMessage { authzid, token, extensions })
}

/// A GS2 saslname with its `=2C` and `=3D` escapes undone.
fn sasl_name(name: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escaped = match rest.get(i..i + 3) {
            Some("=2C") => ',',
            Some("=3D") => '=',
            _ => return Err("bad escape in GS2 authzid"),
        };
        out.push(escaped);
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err("empty GS2 authzid");
    }
    Ok(out)
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750 b64token).
fn bearer_token(value: &str) -> Result<String, &'static str> {
    let (scheme, token) = value.split_once(' ').ok_or("auth is not 'Bearer <token>'")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("auth scheme is not Bearer");
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let b64token = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    if body.is_empty() || !body.bytes().all(b64token) {
        return Err("bearer token has characters outside b64token");
    }
    Ok(token.to_string())
}

/// A token that validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidToken {
    pub principal: String,
    pub scopes: Vec<String>,
    /// The `exp` claim in milliseconds since the epoch: the session ends then.
    pub expires_at_ms: i64,
}

/// The settings of Kafka's OAuthBearerValidatorCallbackHandler, plus Runnel's
/// opt-in for unsecured tokens.
#[derive(Debug)]
pub struct Validator {
    jwks: Option<Arc<JwksFile>>,
    allow_unsecured: bool,
    clock_skew_ms: i64,
    expected_audience: Vec<String>,
    expected_issuer: Option<String>,
    sub_claim: String,
    scope_claim: String,
}

impl Validator {
    /// Reads the OAUTHBEARER settings and the JWKS file; errors name the key.
    pub fn from_config(config: &BrokerConfig) -> Result<Validator, ConfigError> {
        let str_of = |key: &str| config.get(key).map(|(v, _)| v.trim().to_string()).unwrap_or_default();
        let url = str_of("sasl.oauthbearer.jwks.endpoint.url");
        let allow_unsecured = str_of("sasl.oauthbearer.unsecured.validator.enable") == "true";
        let invalid = |key: &str, value: &str, reason: String| ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        };
        let jwks = match url.as_str() {
            "" if allow_unsecured => None,
            "" => {
                return Err(invalid(
                    "sasl.oauthbearer.jwks.endpoint.url",
                    "",
                    "OAUTHBEARER needs a JWKS file to verify tokens (or sasl.oauthbearer.unsecured.validator.enable=true for unsigned test tokens)".into(),
                ))
            }
            url => {
                let path = jwks_path(url)
                    .map_err(|reason| invalid("sasl.oauthbearer.jwks.endpoint.url", url, reason.into()))?;
                let file = JwksFile::load(path)
                    .map_err(|reason| invalid("sasl.oauthbearer.jwks.endpoint.url", url, reason))?;
                Some(Arc::new(file))
            }
        };
        let skew = str_of("sasl.oauthbearer.clock.skew.seconds").parse::<i64>().unwrap_or(30);
        let or_default =
            |key: &str, default: &str| Some(str_of(key)).filter(|s| !s.is_empty()).unwrap_or(default.into());
        Ok(Validator {
            jwks,
            allow_unsecured,
            clock_skew_ms: skew.saturating_mul(1000),
            expected_audience: crate::config::split_list(&str_of("sasl.oauthbearer.expected.audience")),
            expected_issuer: Some(str_of("sasl.oauthbearer.expected.issuer")).filter(|s| !s.is_empty()),
            sub_claim: or_default("sasl.oauthbearer.sub.claim.name", "sub"),
            scope_claim: or_default("sasl.oauthbearer.scope.claim.name", "scope"),
        })
    }

    /// Checks one client message: the principal and expiry of its token, or
    /// why it is refused (for the log).
    pub async fn check(&self, message: &[u8]) -> Result<ValidToken, String> {
        let message = parse_client_message(message).map_err(|e| format!("malformed client message: {e}"))?;
        let keys = match &self.jwks {
            Some(jwks) => jwks.clone().current().await,
            None => Arc::new(Vec::new()),
        };
        let token = self.validate(&message.token, &keys, now_ms())?;
        if let Some(authzid) = &message.authzid {
            if *authzid != token.principal {
                return Err(format!("authorization id {authzid} differs from the token's principal"));
            }
        }
        Ok(token)
    }

    /// Validates a compact JWS at time `now_ms` against `keys`.
    pub fn validate(&self, jwt: &str, keys: &[Jwk], now_ms: i64) -> Result<ValidToken, String> {
        if jwt.len() > CLIENT_MESSAGE_BYTES_MAX {
            return Err("token larger than the OAUTHBEARER bound".into());
        }
        let mut parts = jwt.split('.');
        let (Some(header64), Some(payload64), Some(signature64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("token is not a compact JWS (three dot-separated parts)".into());
        };
        let header = json_part(header64, "header")?;
        let alg = header.get("alg").and_then(Value::as_str).ok_or("JWS header has no alg")?;
        if header.get("crit").is_some() {
            return Err("JWS header has critical extensions".into());
        }
        let signature = URL_SAFE_NO_PAD.decode(signature64).map_err(|_| "JWS signature is not base64url")?;
        let signed = &jwt.as_bytes()[..header64.len() + 1 + payload64.len()];
        if alg == "none" {
            if !self.allow_unsecured {
                return Err("unsigned token (alg none) refused".into());
            }
            if !signature.is_empty() {
                return Err("unsigned token (alg none) with a signature".into());
            }
        } else {
            let kid = header.get("kid").and_then(Value::as_str);
            verify_signature(alg, kid, keys, signed, &signature)?;
        }
        let claims = json_part(payload64, "payload")?;
        self.check_claims(&claims, alg != "none", now_ms)
    }

    /// Kafka's claim checks: `exp` (and, for signed tokens, `iat`) present,
    /// times within the clock skew, issuer and audience as configured, a
    /// non-empty subject.
    fn check_claims(&self, claims: &Value, iat_required: bool, now_ms: i64) -> Result<ValidToken, String> {
        let skew = self.clock_skew_ms;
        let exp = time_claim(claims, "exp")?.ok_or("token has no exp claim")?;
        if now_ms > exp.saturating_add(skew) {
            return Err(format!("token expired {} ms ago", now_ms - exp));
        }
        if let Some(nbf) = time_claim(claims, "nbf")? {
            if now_ms.saturating_add(skew) < nbf {
                return Err(format!("token not valid for another {} ms (nbf)", nbf - now_ms));
            }
        }
        match time_claim(claims, "iat")? {
            Some(iat) if now_ms.saturating_add(skew) < iat => {
                return Err(format!("token issued {} ms in the future (iat)", iat - now_ms));
            }
            Some(iat) if iat > exp => return Err("token's iat is after its exp".into()),
            None if iat_required => return Err("token has no iat claim".into()),
            _ => {}
        }
        if let Some(issuer) = &self.expected_issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(format!("token's issuer is not {issuer}"));
            }
        }
        if !self.expected_audience.is_empty() {
            let audience: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !audience.iter().any(|a| self.expected_audience.iter().any(|e| e == a)) {
                return Err("token's audience is not an expected one".into());
            }
        }
        let principal = claims.get(self.sub_claim.as_str()).and_then(Value::as_str).map(str::trim).unwrap_or("");
        if principal.is_empty() {
            return Err(format!("token has no {} claim", self.sub_claim));
        }
        let scopes = match claims.get(self.scope_claim.as_str()) {
            Some(Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect(),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => vec![],
        };
        Ok(ValidToken { principal: principal.to_string(), scopes, expires_at_ms: exp })
    }
}

fn now_ms() -> i64 {
    crate::handler::now_ms()
}

/// A JSON object from a base64url part of a JWS.
fn json_part(part: &str, what: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| format!("JWS {what} is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(format!("JWS {what} is not a JSON object")),
    }
}

/// A NumericDate claim (seconds since the epoch, maybe fractional) in milliseconds.
fn time_claim(claims: &Value, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(seconds) if (0.0..1e14).contains(&seconds) => Ok(Some((seconds * 1000.0) as i64)),
            _ => Err(format!("token's {name} claim is not a NumericDate")),
        },
    }
}

/// A signing algorithm's key family and `ring` verification.
fn verify_with(alg: &str, key: &JwkKey, signed: &[u8], sig: &[u8]) -> Option<bool> {
    let rsa = |params: &'static signature::RsaParameters| match key {
        JwkKey::Rsa { n, e } => Some(RsaPublicKeyComponents { n, e }.verify(params, signed, sig).is_ok()),
        _ => None,
    };
    let ec = |curve: Curve, params: &'static signature::EcdsaVerificationAlgorithm| match key {
        JwkKey::Ec { curve: c, point } if *c == curve => {
            Some(UnparsedPublicKey::new(params, point).verify(signed, sig).is_ok())
        }
        _ => None,
    };
    match alg {
        "RS256" => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        "PS256" => rsa(&signature::RSA_PSS_2048_8192_SHA256),
        "PS384" => rsa(&signature::RSA_PSS_2048_8192_SHA384),
        "PS512" => rsa(&signature::RSA_PSS_2048_8192_SHA512),
        "ES256" => ec(Curve::P256, &signature::ECDSA_P256_SHA256_FIXED),
        "ES384" => ec(Curve::P384, &signature::ECDSA_P384_SHA384_FIXED),
        "EdDSA" => match key {
            JwkKey::Ed25519 { x } => Some(UnparsedPublicKey::new(&signature::ED25519, x).verify(signed, sig).is_ok()),
            _ => None,
        },
        _ => None,
    }
}

/// Checks the signature with the key named by `kid` or a key without a
/// `kid` (as jose4j, Kafka's JWT library, selects them), or, for a token
/// without `kid`, with any key of the right type.
fn verify_signature(alg: &str, kid: Option<&str>, keys: &[Jwk], signed: &[u8], sig: &[u8]) -> Result<(), String> {
    const ALGS: &[&str] = &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
    if !ALGS.contains(&alg) {
        return Err(format!("JWS algorithm {alg:?} is not accepted"));
    }
    let candidates: Vec<&Jwk> = match kid {
        Some(kid) => keys.iter().filter(|k| k.kid.as_deref().is_none_or(|k| k == kid)).collect(),
        None => keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(match kid {
            Some(kid) => format!("no key with kid {kid:?} in the JWKS"),
            None => "the JWKS has no keys".into(),
        });
    }
    let mut usable = false;
    for key in candidates.into_iter().filter(|k| k.alg.as_deref().is_none_or(|a| a == alg)) {
        match verify_with(alg, &key.key, signed, sig) {
            Some(true) => return Ok(()),
            Some(false) => usable = true,
            None => {}
        }
    }
    Err(match usable {
        true => "signature does not verify".into(),
        false => format!("no key in the JWKS fits algorithm {alg}"),
    })
}

/// An elliptic curve of an EC key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// Public key material of a JWK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwkKey {
    /// Modulus and exponent, big-endian.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point `04 || x || y`.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

/// One verification key of a JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The algorithm the key is for, when the JWK says.
    pub alg: Option<String>,
    pub key: JwkKey,
}

/// Parses a JWKS document (RFC 7517) into its signature verification keys;
/// keys of other types or uses are skipped. An error says what is wrong.
pub fn parse_jwks(text: &[u8]) -> Result<Vec<Jwk>, String> {
    let doc: Value = serde_json::from_slice(text).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let keys = doc.get("keys").and_then(Value::as_array).ok_or("JWKS has no \"keys\" array")?;
    let mut out = Vec::new();
    for key in keys.iter().take(JWKS_KEYS_MAX) {
        if key.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        let field = |name: &str| key.get(name).and_then(Value::as_str).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        let material = match (key.get("kty").and_then(Value::as_str), key.get("crv").and_then(Value::as_str)) {
            (Some("RSA"), _) => field("n").zip(field("e")).map(|(n, e)| JwkKey::Rsa { n, e }),
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                let (curve, len) = if crv == "P-256" { (Curve::P256, 32) } else { (Curve::P384, 48) };
                field("x").zip(field("y")).filter(|(x, y)| x.len() == len && y.len() == len).map(|(x, y)| {
                    let point = [&[4u8][..], &x, &y].concat();
                    JwkKey::Ec { curve, point }
                })
            }
            (Some("OKP"), Some("Ed25519")) => field("x").filter(|x| x.len() == 32).map(|x| JwkKey::Ed25519 { x }),
            _ => continue,
        };
        let Some(material) = material else {
            let kid = key.get("kid").and_then(Value::as_str).unwrap_or("(none)");
            return Err(format!("JWKS key {kid} has missing or bad key fields"));
        };
        let text_of = |name: &str| key.get(name).and_then(Value::as_str).map(str::to_string);
        out.push(Jwk { kid: text_of("kid"), alg: text_of("alg"), key: material });
    }
    if out.is_empty() {
        return Err("JWKS has no usable signature keys (RSA, EC P-256/P-384, Ed25519)".into());
    }
    Ok(out)
}

/// The file a `sasl.oauthbearer.jwks.endpoint.url` names: a `file:` URL or
/// a path. HTTP(S) endpoints are not fetched.
fn jwks_path(url: &str) -> Result<PathBuf, &'static str> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(
            "HTTP(S) JWKS endpoints are not fetched; use a file: URL or a path kept up to date by another tool",
        );
    }
    let path = match url.strip_prefix("file://") {
        Some(rest) => rest,
        None => url.strip_prefix("file:").unwrap_or(url),
    };
    if path.is_empty() {
        return Err("no file named");
    }
    Ok(PathBuf::from(path))
}

/// What identifies a version of the JWKS file: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
}

fn read_jwks(path: &std::path::Path) -> Result<Vec<Jwk>, String> {
    let len = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    if len > JWKS_FILE_BYTES_MAX {
        return Err(format!("{}: larger than {JWKS_FILE_BYTES_MAX} bytes", path.display()));
    }
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_jwks(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A JWKS file's keys in service, replaced when the file changes.
#[derive(Debug)]
pub struct JwksFile {
    path: PathBuf,
    state: parking_lot::Mutex<JwksState>,
}

#[derive(Debug)]
struct JwksState {
    keys: Arc<Vec<Jwk>>,
    stamp: Stamp,
    checked_at: std::time::Instant,
}

impl JwksFile {
    /// Reads the file; an error here stops the broker from starting.
    pub fn load(path: PathBuf) -> Result<JwksFile, String> {
        let stamp_now = stamp(&path);
        let keys = Arc::new(read_jwks(&path)?);
        let state = JwksState { keys, stamp: stamp_now, checked_at: std::time::Instant::now() };
        Ok(JwksFile { path, state: parking_lot::Mutex::new(state) })
    }

    /// The keys in service, after reading the file again (on a blocking
    /// thread) if it changed since the last check, at most once per
    /// [`JWKS_CHECK_INTERVAL`]. A file that cannot be used is logged and the
    /// previous keys stay in service.
    pub async fn current(self: Arc<Self>) -> Arc<Vec<Jwk>> {
        {
            let mut state = self.state.lock();
            if state.checked_at.elapsed() < JWKS_CHECK_INTERVAL {
                return state.keys.clone();
            }
            state.checked_at = std::time::Instant::now();
        }
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.reload_if_changed()).await {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(error = %e, "JWKS reload check ended abnormally");
                self.state.lock().keys.clone()
            }
        }
    }

    fn reload_if_changed(&self) -> Arc<Vec<Jwk>> {
        let now = stamp(&self.path);
        if self.state.lock().stamp == now {
            return self.state.lock().keys.clone();
        }
        let loaded = read_jwks(&self.path);
        let mut state = self.state.lock();
        // Remembered even on failure: a bad file is reported once, not every check.
        state.stamp = now;
        match loaded {
            Ok(keys) => {
                tracing::info!(path = %self.path.display(), keys = keys.len(), "JWKS file reloaded");
                metrics::counter!(crate::metrics::JWKS_RELOADS, "result" => "ok").increment(1);
                state.keys = Arc::new(keys);
            }
            Err(e) => {
                metrics::counter!(crate::metrics::JWKS_RELOADS, "result" => "error").increment(1);
                tracing::error!(error = %e, "JWKS file changed but cannot be used; keeping the previous keys");
            }
        }
        state.keys.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests;
