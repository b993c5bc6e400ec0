//! Tests of the OAUTHBEARER client message parser and JWT validation, with
//! keys the tests make themselves: ECDSA P-256 and Ed25519 with `ring`, RSA
//! with the `openssl` command (ring cannot generate RSA keys).

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

use super::*;

/// A signing key of a test identity provider.
pub(crate) struct Signer {
    pub kid: String,
    alg: &'static str,
    key: SigningKey,
}

enum SigningKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed(Ed25519KeyPair),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    pub fn es256(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        Signer { kid: kid.into(), alg: "ES256", key: SigningKey::Ec(key) }
    }

    pub fn rs256(kid: &str) -> Signer {
        let out = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-outform", "DER"])
            .output()
            .expect("the openssl command makes RSA test keys");
        assert!(out.status.success(), "openssl genpkey failed");
        // OpenSSL 3.0 writes PKCS#1 DER here, later versions PKCS#8.
        let key = RsaKeyPair::from_der(&out.stdout).or_else(|_| RsaKeyPair::from_pkcs8(&out.stdout)).unwrap();
        Signer { kid: kid.into(), alg: "RS256", key: SigningKey::Rsa(key) }
    }

    pub fn ed25519(kid: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Signer { kid: kid.into(), alg: "EdDSA", key: SigningKey::Ed(key) }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        match &self.key {
            SigningKey::Ec(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                    "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            SigningKey::Rsa(k) => {
                let c = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "n": b64(&c.n), "e": b64(&c.e)})
            }
            SigningKey::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": b64(k.public_key().as_ref())})
            }
        }
    }

    /// A compact JWS of `claims` with `header` fields added to alg and kid.
    pub fn sign_with_header(&self, header: Value, claims: &Value) -> String {
        let mut h = json!({"alg": self.alg, "kid": self.kid, "typ": "JWT"});
        for (k, v) in header.as_object().unwrap() {
            h[k] = v.clone();
        }
        let signing_input = format!("{}.{}", b64(h.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let sig = match &self.key {
            SigningKey::Ec(k) => k.sign(&rng, signing_input.as_bytes()).unwrap().as_ref().to_vec(),
            SigningKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut sig).unwrap();
                sig
            }
            SigningKey::Ed(k) => k.sign(signing_input.as_bytes()).as_ref().to_vec(),
        };
        format!("{signing_input}.{}", b64(&sig))
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(json!({}), claims)
    }
}

/// A JWKS document of `signers`' public keys.
pub(crate) fn jwks(signers: &[&Signer]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}).to_string()
}

/// An unsigned token (alg none) of `claims`.
pub(crate) fn unsecured(claims: &Value) -> String {
    format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims.to_string().as_bytes()))
}

/// The RFC 7628 client initial response carrying `token`.
pub(crate) fn client_message(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

const NOW_MS: i64 = 1_800_000_000_000;
const NOW: i64 = NOW_MS / 1000;

/// Claims valid at `NOW`: issued a minute ago, expiring in an hour.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iat": NOW - 60, "exp": NOW + 3600, "iss": "https://idp.example", "aud": ["kafka", "other"],
        "scope": "produce consume"})
}

fn validator(settings: &[(&str, &str)]) -> Validator {
    let mut v = Validator {
        jwks: None,
        allow_unsecured: false,
        clock_skew_ms: 30_000,
        expected_audience: vec![],
        expected_issuer: None,
        sub_claim: "sub".into(),
        scope_claim: "scope".into(),
    };
    for (k, value) in settings {
        match *k {
            "audience" => v.expected_audience = crate::config::split_list(value),
            "issuer" => v.expected_issuer = Some(value.to_string()),
            "sub" => v.sub_claim = value.to_string(),
            "unsecured" => v.allow_unsecured = true,
            other => panic!("no test setting {other}"),
        }
    }
    v
}

fn keys(signers: &[&Signer]) -> Vec<Jwk> {
    parse_jwks(jwks(signers).as_bytes()).unwrap()
}

fn refused(v: &Validator, jwt: &str, keys: &[Jwk]) -> String {
    match v.validate(jwt, keys, NOW_MS) {
        Err(reason) => reason,
        Ok(token) => panic!("accepted {token:?}"),
    }
}

// Goal: RFC 7628 client messages parse into authzid, token and extensions, escapes undone.
#[test]
fn parses_client_messages() {
    let m = parse_client_message(b"n,a=al=2Cice=3D,\x01auth=Bearer abc.def.ghi\x01traceId=42 x\x01\x01").unwrap();
    assert_eq!(m.authzid.as_deref(), Some("al,ice="));
    assert_eq!(m.token, "abc.def.ghi");
    assert_eq!(m.extensions.get("traceId").map(String::as_str), Some("42 x"));
    let m = parse_client_message(b"y,,\x01auth=bearer a-b_c.d~e+f/g==\x01\x01").unwrap();
    assert_eq!((m.authzid, m.token.as_str()), (None, "a-b_c.d~e+f/g=="));
}

// Goal: malformed client messages are refused with a reason, never a panic.
#[test]
fn refuses_malformed_client_messages() {
    let long = format!("n,,\x01auth=Bearer {}\x01\x01", "a".repeat(CLIENT_MESSAGE_BYTES_MAX));
    for bad in [
        &b""[..],
        b"\x01",
        b"n,\x01auth=Bearer abc\x01\x01",
        b"p=tls-unique,,\x01auth=Bearer abc\x01\x01",
        b"n,,auth=Bearer abc\x01\x01",
        b"n,,\x01auth=Bearer abc\x01",
        b"n,,\x01auth=Basic abc\x01\x01",
        b"n,,\x01auth=Bearer \x01\x01",
        b"n,,\x01auth=Bearer a b\x01\x01",
        b"n,,\x01x=1\x01\x01",
        b"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01",
        b"n,,\x01auth=Bearer a\x01k=1\x01k=2\x01\x01",
        b"n,,\x01auth=Bearer a\x01bad key=1\x01\x01",
        b"n,,\x01auth=Bearer a\x01k=\x7f\x01\x01",
        b"n,a=,\x01auth=Bearer a\x01\x01",
        b"n,a=x=2D,\x01auth=Bearer a\x01\x01",
        b"n,b=x,\x01auth=Bearer a\x01\x01",
        b"n,,\x01auth=Bearer \xff\x01\x01",
        long.as_bytes(),
    ] {
        assert!(parse_client_message(bad).is_err(), "accepted {:?}", String::from_utf8_lossy(bad));
    }
    let many: String =
        (0..=EXTENSIONS_MAX).map(|i| format!("k{}=v\x01", "x".repeat(i + 1).replace('x', "a"))).collect();
    let message = format!("n,,\x01auth=Bearer a\x01{many}\x01");
    assert_eq!(parse_client_message(message.as_bytes()), Err("too many extensions"));
}

// Goal: tokens signed with a JWKS key (ES256, RS256, EdDSA) validate, giving principal, scopes and expiry.
#[test]
fn accepts_signed_tokens() {
    let (ec, rsa, ed) = (Signer::es256("ec-1"), Signer::rs256("rsa-1"), Signer::ed25519("ed-1"));
    let keys = keys(&[&ec, &rsa, &ed]);
    let v = validator(&[("audience", "kafka"), ("issuer", "https://idp.example")]);
    for signer in [&ec, &rsa, &ed] {
        let token = v.validate(&signer.sign(&claims("alice")), &keys, NOW_MS).unwrap();
        assert_eq!(token.principal, "alice");
        assert_eq!(token.scopes, vec!["produce", "consume"]);
        assert_eq!(token.expires_at_ms, (NOW + 3600) * 1000);
    }
    // A list scope, a single audience string, a custom principal claim.
    let mut c = claims("alice");
    c["scope"] = json!(["a", "b"]);
    c["aud"] = json!("kafka");
    c["client_id"] = json!("svc-1");
    let token = validator(&[("audience", "x,kafka"), ("sub", "client_id")]).validate(&ec.sign(&c), &keys, NOW_MS);
    assert_eq!(token.map(|t| (t.principal, t.scopes)), Ok(("svc-1".into(), vec!["a".into(), "b".into()])));
}

// Goal: each time rule holds, with the clock skew: expired, not yet valid, issued in the future, missing claims.
#[test]
fn checks_times_with_clock_skew() {
    let ec = Signer::es256("k");
    let keys = keys(&[&ec]);
    let v = validator(&[]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("alice");
        f(&mut c);
        ec.sign(&c)
    };
    assert!(refused(&v, &with(&|c| c["exp"] = json!(NOW - 31)), &keys).contains("expired"));
    assert!(v.validate(&with(&|c| c["exp"] = json!(NOW - 29)), &keys, NOW_MS).is_ok(), "within the skew");
    assert!(refused(&v, &with(&|c| c["nbf"] = json!(NOW + 31)), &keys).contains("nbf"));
    assert!(v.validate(&with(&|c| c["nbf"] = json!(NOW + 29)), &keys, NOW_MS).is_ok());
    assert!(refused(&v, &with(&|c| c["iat"] = json!(NOW + 120)), &keys).contains("iat"));
    assert!(refused(&v, &with(&|c| c["exp"] = json!("soon")), &keys).contains("NumericDate"));
    assert!(refused(&v, &with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))), &keys).contains("no exp"));
    assert!(refused(&v, &with(&|c| drop(c.as_object_mut().unwrap().remove("iat"))), &keys).contains("no iat"));
    assert!(refused(&v, &with(&|c| c["sub"] = json!(" ")), &keys).contains("no sub claim"));
    // Fractional NumericDates are accepted.
    assert!(v.validate(&with(&|c| c["exp"] = json!(NOW as f64 + 0.5)), &keys, NOW_MS).is_ok());
}

// Goal: a wrong signature, an unknown kid, a key of another type and unaccepted algorithms are refused.
#[test]
fn refuses_bad_signatures_and_keys() {
    let (trusted, forger) = (Signer::es256("k1"), Signer::es256("k1"));
    let keys = keys(&[&trusted]);
    let v = validator(&[]);
    assert_eq!(refused(&v, &forger.sign(&claims("alice")), &keys), "signature does not verify");
    let other_kid = Signer::es256("k2");
    assert!(refused(&v, &other_kid.sign(&claims("alice")), &keys).contains("no key with kid \"k2\""));
    // Tampered claims under a valid signature.
    let token = trusted.sign(&claims("alice"));
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(claims("admin").to_string().as_bytes()), parts[2]);
    assert_eq!(refused(&v, &tampered, &keys), "signature does not verify");
    // A JWK without kid serves tokens naming any kid.
    let mut anonymous = other_kid.jwk();
    anonymous.as_object_mut().unwrap().remove("kid");
    let keys_anonymous = parse_jwks(json!({"keys": [anonymous]}).to_string().as_bytes()).unwrap();
    assert!(v.validate(&other_kid.sign(&claims("alice")), &keys_anonymous, NOW_MS).is_ok());
    // A token without kid is checked against every key.
    let no_kid = trusted.sign_with_header(json!({"kid": null}), &claims("alice"));
    assert!(v.validate(&no_kid, &keys, NOW_MS).is_ok());
    // RS256 claimed with an EC key, HS256 (shared secrets), crit headers.
    let rs = trusted.sign_with_header(json!({"alg": "RS256"}), &claims("alice"));
    assert!(refused(&v, &rs, &keys).contains("no key in the JWKS fits algorithm RS256"));
    let hs = trusted.sign_with_header(json!({"alg": "HS256"}), &claims("alice"));
    assert!(refused(&v, &hs, &keys).contains("not accepted"));
    let crit = trusted.sign_with_header(json!({"crit": ["exp"]}), &claims("alice"));
    assert!(refused(&v, &crit, &keys).contains("critical"));
    // A JWK whose alg names another algorithm is not used.
    let mut jwk = trusted.jwk();
    jwk["alg"] = json!("ES384");
    let keys_es384 = parse_jwks(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
    assert!(refused(&v, &trusted.sign(&claims("alice")), &keys_es384).contains("no key in the JWKS fits"));
}

// Goal: the expected issuer and audience are enforced when configured.
#[test]
fn checks_issuer_and_audience() {
    let ec = Signer::es256("k");
    let keys = keys(&[&ec]);
    let token = ec.sign(&claims("alice"));
    assert!(refused(&validator(&[("issuer", "https://evil.example")]), &token, &keys).contains("issuer"));
    assert!(refused(&validator(&[("audience", "billing")]), &token, &keys).contains("audience"));
    assert!(validator(&[("audience", "billing,other")]).validate(&token, &keys, NOW_MS).is_ok());
    let mut c = claims("alice");
    c.as_object_mut().unwrap().remove("aud");
    c.as_object_mut().unwrap().remove("iss");
    assert!(refused(&validator(&[("audience", "kafka")]), &ec.sign(&c), &keys).contains("audience"));
    assert!(refused(&validator(&[("issuer", "https://idp.example")]), &ec.sign(&c), &keys).contains("issuer"));
}

// Goal: unsigned tokens (alg none) are refused unless the unsecured validator is enabled; then they still need valid claims.
#[test]
fn unsigned_tokens_need_the_opt_in() {
    let token = unsecured(&claims("alice"));
    assert!(refused(&validator(&[]), &token, &[]).contains("alg none"));
    let v = validator(&[("unsecured", "")]);
    assert_eq!(v.validate(&token, &[], NOW_MS).map(|t| t.principal), Ok("alice".into()));
    let mut expired = claims("alice");
    expired["exp"] = json!(NOW - 3600);
    assert!(refused(&v, &unsecured(&expired), &[]).contains("expired"));
    let signed_none = format!("{}{}", token, b64(b"sig"));
    assert!(refused(&v, &signed_none, &[]).contains("with a signature"));
}

// Goal: oversized and malformed tokens are refused before any signature work.
#[test]
fn refuses_oversized_and_malformed_tokens() {
    let ec = Signer::es256("k");
    let keys = keys(&[&ec]);
    let v = validator(&[]);
    let mut c = claims("alice");
    c["pad"] = json!("x".repeat(CLIENT_MESSAGE_BYTES_MAX));
    assert!(refused(&v, &ec.sign(&c), &keys).contains("larger"));
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.!!", "W10.e30.", "e30.W10."] {
        assert!(v.validate(bad, &keys, NOW_MS).is_err(), "accepted {bad}");
    }
}

// Goal: a JWKS keeps signature keys of known types, skips encryption keys and unknown types, and errors say why.
#[test]
fn parses_jwks() {
    let ec = Signer::es256("ec");
    let enc = json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"});
    let unknown = json!({"kty": "oct", "k": "c2VjcmV0"});
    let doc = json!({"keys": [enc, unknown, ec.jwk()]}).to_string();
    let keys = parse_jwks(doc.as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid.as_deref(), Some("ec"));
    for bad in [&b"nope"[..], b"{}", br#"{"keys":[]}"#, br#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#] {
        assert!(parse_jwks(bad).is_err(), "accepted {}", String::from_utf8_lossy(bad));
    }
    assert_eq!(jwks_path("file:///etc/jwks.json").unwrap(), PathBuf::from("/etc/jwks.json"));
    assert_eq!(jwks_path("file:/etc/jwks.json").unwrap(), PathBuf::from("/etc/jwks.json"));
    assert_eq!(jwks_path("/etc/jwks.json").unwrap(), PathBuf::from("/etc/jwks.json"));
    assert!(jwks_path("https://idp.example/jwks").is_err());
}

// Goal: a changed JWKS file is read again at the next check (a new key then validates), and an unusable
// replacement keeps the previous keys. Method: a temporary file, the check interval moved back by hand.
#[tokio::test]
async fn reloads_a_changed_jwks_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (old, new) = (Signer::es256("old"), Signer::es256("new"));
    std::fs::write(&path, jwks(&[&old])).unwrap();
    let file = Arc::new(JwksFile::load(path.clone()).unwrap());
    let kids = |keys: &[Jwk]| keys.iter().map(|k| k.kid.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(kids(&file.clone().current().await), ["old"]);
    let age = |file: &JwksFile| file.state.lock().checked_at -= JWKS_CHECK_INTERVAL * 2;

    std::fs::write(&path, jwks(&[&old, &new])).unwrap();
    assert_eq!(kids(&file.clone().current().await), ["old"], "checked at most once per interval");
    age(&file);
    assert_eq!(kids(&file.clone().current().await), ["old", "new"]);

    std::fs::write(&path, "{ not json").unwrap();
    age(&file);
    assert_eq!(kids(&file.clone().current().await), ["old", "new"], "a bad file keeps the previous keys");
    std::fs::remove_file(&path).unwrap();
    assert!(JwksFile::load(path).is_err(), "a missing file stops the broker at start");
}

// Goal: Validator::check ties parsing and validation together and holds an authzid to the principal.
#[tokio::test]
async fn checks_client_messages() {
    let dir = tempfile::tempdir().unwrap();
    let ec = Signer::es256("k");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[&ec])).unwrap();
    let mut v = validator(&[]);
    v.jwks = Some(Arc::new(JwksFile::load(path).unwrap()));
    let mut c = claims("alice");
    let now = crate::handler::now_ms() / 1000;
    (c["iat"], c["exp"]) = (json!(now), json!(now + 60));
    let token = ec.sign(&c);
    assert_eq!(v.check(&client_message(&token)).await.map(|t| t.principal), Ok("alice".into()));
    let with_authzid = format!("n,a=alice,\x01auth=Bearer {token}\x01\x01");
    assert!(v.check(with_authzid.as_bytes()).await.is_ok());
    let other = format!("n,a=bob,\x01auth=Bearer {token}\x01\x01");
    assert!(v.check(other.as_bytes()).await.unwrap_err().contains("authorization id"));
    assert!(v.check(b"garbage").await.unwrap_err().contains("malformed"));
}
