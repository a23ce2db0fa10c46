//! Certificates for the HTTPS tests, made fresh by each test with rcgen: a
//! private CA and the server certificates it signs (good, expired, another
//! host's), written as PEM files the way an operator would have them.

use std::path::{Path, PathBuf};

use diffcopy::TlsFiles;
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, date_time_ymd};

/// A private certificate authority.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
    /// Its certificate as a PEM file, for `--cacert`.
    pub pem: PathBuf,
}

/// What a server certificate is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Issue {
    /// 127.0.0.1 and localhost, valid from yesterday on for a year.
    Good,
    /// 127.0.0.1 and localhost, but valid only in 2020.
    Expired,
    /// Another host's name only (`elsewhere.invalid`).
    WrongHost,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `dir/name-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, format!("diffcopy test CA {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, cert.pem()).expect("write the CA certificate");
        Self { cert, key, pem }
    }

    /// A server certificate of `kind` and its key, written to
    /// `dir/name.pem` and `dir/name.key`.
    pub fn issue(&self, dir: &Path, name: &str, kind: Issue) -> TlsFiles {
        let names = match kind {
            Issue::Good | Issue::Expired => vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            Issue::WrongHost => vec!["elsewhere.invalid".to_owned()],
        };
        let mut params = CertificateParams::new(names).expect("server params");
        params.distinguished_name.push(DnType::CommonName, name);
        if kind == Issue::Expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2020, 12, 31);
        } else {
            let now = date_time_ymd(1970, 1, 1) + std::time::SystemTime::UNIX_EPOCH.elapsed().expect("clock");
            params.not_before = now - std::time::Duration::from_secs(86_400);
            params.not_after = now + std::time::Duration::from_secs(365 * 86_400);
        }
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("signed server certificate");
        let files = TlsFiles { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")) };
        std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
        files
    }
}

/// A `reqwest` blocking client that trusts `ca` (and nothing else), with
/// the ring provider the diffcopy client uses.
pub fn client_trusting(ca: &TestCa) -> reqwest::blocking::Client {
    builder_trusting(ca).build().expect("HTTPS client")
}

/// The builder behind [`client_trusting`], for clients with more settings.
pub fn builder_trusting(ca: &TestCa) -> reqwest::blocking::ClientBuilder {
    let pem = std::fs::read(&ca.pem).expect("read the CA certificate");
    let certs = reqwest::Certificate::from_pem_bundle(&pem).expect("PEM CA");
    crate::http_builder().tls_certs_only(certs)
}
