//! The one way this program starts building an HTTP client (the sync's,
//! the S3 client's, the webhook's): reqwest is built without a crypto
//! provider of its own, so ring, which rustls already brings, is installed
//! first.

/// A reqwest client builder, with ring as the TLS crypto provider.
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    // An error only says a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
