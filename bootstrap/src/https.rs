//! The HTTP client of every SDK client these programs build: hyper and rustls
//! on `ring`'s cryptography.
//!
//! The workspace builds the SDK crates without their `default-https-client`
//! feature, which links aws-lc (a C library: 0.65 MB of each zipped Lambda
//! function, BENCHMARKS.md, "Lean functions") whether or not a client is
//! given. So each [`SdkConfig`](aws_config::SdkConfig) a program builds takes
//! its client from here; an SDK client without one refuses its first call
//! ("No HTTP client was available to send this request"), it never falls
//! back in silence.

use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_types::sdk_config::SharedHttpClient;

/// The TLS settings were refused.
pub use aws_smithy_http_client::HttpClientError;

/// An HTTPS (and plain HTTP) client trusting the platform's certificate store,
/// read once per process, on the first connection.
pub fn platform_roots() -> SharedHttpClient {
    with(TlsContext::default())
}

/// An HTTPS (and plain HTTP) client trusting the PEM-encoded `roots` alone.
///
/// # Errors
/// [`HttpClientError`] when the TLS settings are refused. The roots themselves
/// are parsed on the first connection, and one that does not parse panics
/// there: compiled-in roots need a test that parses them, as
/// [`lambda::sdk`](crate::lambda::sdk) has.
pub fn trusting(roots: &str) -> Result<SharedHttpClient, HttpClientError> {
    let tls = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(roots))
        .build()?;
    Ok(with(tls))
}

fn with(tls: TlsContext) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https()
}
