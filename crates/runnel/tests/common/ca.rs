//! A certificate authority made by a test with `rcgen`, for TLS listeners:
//! nothing of it is stored in the repository.

use std::path::Path;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate authority made for one test.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    /// A leaf certificate for `subject_cn` valid for localhost and 127.0.0.1,
    /// as (certificate PEM, key PEM).
    pub fn issue(&self, subject_cn: &str, purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        // Subject O=Runnel Tests,CN=<cn> in certificate order: written CN=<cn>,O=Runnel Tests.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "Runnel Tests");
        params.distinguished_name.push(DnType::CommonName, subject_cn);
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub fn write_pem(&self, path: &Path) {
        std::fs::write(path, self.cert.pem()).unwrap();
    }

    /// Writes a broker keystore (chain and key in one PEM file), atomically.
    pub fn write_keystore(&self, path: &Path) {
        let (cert, key) = self.issue("runnel-broker", ExtendedKeyUsagePurpose::ServerAuth);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{cert}{key}")).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}
