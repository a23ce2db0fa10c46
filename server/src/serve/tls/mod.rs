//! HTTPS: `--tls-cert FILE --tls-key FILE` (PEM), served with rustls (its
//! `ring` provider: no OpenSSL, no C toolchain beyond ring's own), HTTP/2
//! and HTTP/1.1 offered by ALPN.
//!
//! The pair is checked at start: both files readable, a certificate chain
//! and a private key in them, the key the certificate's, and the
//! certificate inside its validity period; any of these failing stops the
//! server with a message naming the file. On SIGHUP the files are read and
//! checked again: new connections get the new pair, connections already
//! open keep theirs, and a bad new pair is logged while the old one stays.

mod validity;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The certificate and key files `--tls-cert` and `--tls-key` name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM: the server's certificate first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate and key cannot be served.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the pair `files` names (at `now`, seconds since the epoch).
fn load(files: &TlsFiles, now: i64) -> Result<Arc<CertifiedKey>, TlsError> {
    let (cert, key) = (files.cert.display(), files.key.display());
    let unreadable =
        |path: &Path, e: &dyn fmt::Display| TlsError(format!("cannot read {}: {e}", path.display()));
    std::fs::metadata(&files.cert).map_err(|e| unreadable(&files.cert, &e))?;
    std::fs::metadata(&files.key).map_err(|e| unreadable(&files.key, &e))?;
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| unreadable(&files.cert, &e))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError(format!("{cert} holds no PEM certificate")));
    };
    let private_key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| TlsError(format!("{key} holds no usable PEM private key: {e}")))?;
    let (not_before, not_after) = validity::validity(leaf)
        .ok_or_else(|| TlsError(format!("{cert}: the first certificate does not parse")))?;
    if now >= not_after {
        return Err(TlsError(format!("{cert}: the certificate expired {}", when(not_after))));
    }
    if now < not_before {
        return Err(TlsError(format!("{cert}: the certificate is not valid before {}", when(not_before))));
    }
    let certified = CertifiedKey::from_der(chain, private_key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            TlsError(format!("{key} is not the key of the certificate in {cert}"))
        }
        other => TlsError(format!("{key}: {other}")),
    })?;
    Ok(Arc::new(certified))
}

/// A moment as a person reads it: `2026-12-01 21:00:00 UTC`.
fn when(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil from days (the inverse of validity's days_from_civil).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest / 60 % 60, rest % 60)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The pair being served, replaced on reload.
#[derive(Debug)]
struct Current {
    files: TlsFiles,
    pair: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pair.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// What the server needs to speak TLS: the acceptor, and the pair to reload.
#[derive(Clone)]
pub(crate) struct Tls {
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("files", &self.current.files).finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks `files`; the error says what is wrong with them.
    pub(crate) fn new(files: &TlsFiles) -> Result<Self, TlsError> {
        let current = Arc::new(Current { files: files.clone(), pair: RwLock::new(load(files, now())?) });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self { current, acceptor: TlsAcceptor::from(Arc::new(config)) })
    }

    /// The handshake side of new connections.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again; keeps the old pair if the new one is bad.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let pair = load(&self.current.files, now())?;
        *self.current.pair.write().unwrap_or_else(PoisonError::into_inner) = pair;
        Ok(())
    }

    /// Reloads on every SIGHUP, for as long as the server runs.
    pub(crate) async fn reload_on_sighup(self) {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the certificate will not be reloaded");
            return;
        };
        while hangups.recv().await.is_some() {
            match self.reload() {
                Ok(()) => tracing::info!("SIGHUP: reloaded {}", self.current.files.cert.display()),
                Err(e) => tracing::error!("SIGHUP: keeping the certificate served so far: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_read_back() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_796_158_800), "2026-12-01 21:00:00 UTC");
        assert_eq!(when(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn missing_files_are_named() {
        let files = TlsFiles { cert: "/nonexistent/cert.pem".into(), key: "/nonexistent/key.pem".into() };
        let error = Tls::new(&files).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/cert.pem"), "{error}");
    }
}
