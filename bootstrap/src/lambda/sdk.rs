//! The SDK configuration of the Lambda functions, read from the environment
//! Lambda gives a function and from nothing else.
//!
//! On Lambda the region and the function role's credentials are environment
//! variables, always. `aws_config`'s loader looks further — profile files, web
//! identity, SSO, container and instance metadata — which costs time at every
//! cold start and links an STS client into every binary for a chain that never
//! gets past its first link here. What is read:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `AWS_REGION`, else `AWS_DEFAULT_REGION` | the region |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | the credentials, read again when they expire |
//! | `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL` | an endpoint in place of AWS's (an emulator, a stand-in) |
//!
//! Retries, timeouts and the identity cache are the SDK clients' own defaults
//! for the latest behavior version, as with the loader.
//!
//! The HTTPS client trusts the roots of Amazon Trust Services alone, compiled
//! in (`amazon_trust_services.pem`: Amazon Root CA 1–4 and Starfield Services
//! Root G2, the roots AWS documents for its endpoints). The SDK's default
//! client reads the platform's whole certificate store instead, every file of
//! it, at each cold start. An endpoint of `AWS_ENDPOINT_URL` served over HTTPS
//! by another authority is therefore not trusted; over HTTP (an emulator) it is
//! reached as before.

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_runtime::env_config::EnvConfigValue;
use aws_types::os_shim_internal::Env;
use aws_types::sdk_config::SharedCredentialsProvider;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

use crate::https;

/// The roots the HTTPS client trusts, PEM-encoded.
const AMAZON_TRUST_SERVICES: &str = include_str!("amazon_trust_services.pem");

/// The variable of every service's endpoint, and the prefix of one service's.
const ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// The SDK configuration from the process environment.
pub fn from_env() -> SdkConfig {
    let http_client = https::trusting(AMAZON_TRUST_SERVICES).unwrap_or_else(|error| {
        tracing::warn!(%error, "the SDK's HTTPS client reads the platform's roots instead");
        https::platform_roots()
    });
    from(Env::real())
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(http_client)
        .build()
}

/// The configuration of `env` but its credentials.
fn from(env: Env) -> aws_types::sdk_config::Builder {
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .into_iter()
        .find_map(|name| env.get(name).ok().filter(|value| !value.is_empty()))
        .map(Region::new);
    let endpoint_url = env.get(ENDPOINT_URL).ok().filter(|url| !url.is_empty());
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .service_config(EnvServiceConfig(env));
    builder.set_region(region);
    builder.set_endpoint_url(endpoint_url);
    builder
}

/// A service's own setting from its environment variable (e.g.
/// `AWS_ENDPOINT_URL_DYNAMODB`), else the setting for every service.
#[derive(Debug)]
struct EnvServiceConfig(Env);

impl LoadServiceConfig for EnvServiceConfig {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        EnvConfigValue::new()
            .env(key.env())
            .service_id(key.service_id())
            .load(&self.0, None)
            .map(|(value, _)| value.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    /// The service's endpoint as its client reads it from `sdk` (`service_id`
    /// as in the SDK's `Config::from(&SdkConfig)`), where one is set.
    fn endpoint(sdk: &SdkConfig, service_id: &str) -> Option<String> {
        let key = ServiceConfigKey::builder()
            .service_id(service_id)
            .env(ENDPOINT_URL)
            .profile("endpoint_url")
            .build()
            .ok()?;
        sdk.service_config()?.load_config(key)
    }

    #[test]
    fn the_region_and_endpoints_come_from_the_environment() {
        let sdk = from(Env::from_slice(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_REGION", "eu-central-1"),
            ("AWS_ENDPOINT_URL", "http://everything:1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb:2"),
        ]))
        .build();

        assert_eq!(sdk.region(), Some(&Region::new("eu-central-1")));
        assert_eq!(sdk.endpoint_url(), Some("http://everything:1"));
        assert_eq!(
            endpoint(&sdk, "DynamoDB").as_deref(),
            Some("http://dynamodb:2")
        );
        assert_eq!(
            endpoint(&sdk, "SQS").as_deref(),
            Some("http://everything:1")
        );
    }

    #[test]
    fn without_them_the_region_falls_back_and_aws_endpoints_stay() {
        let sdk = from(Env::from_slice(&[("AWS_DEFAULT_REGION", "eu-west-1")])).build();

        assert_eq!(sdk.region(), Some(&Region::new("eu-west-1")));
        assert_eq!(sdk.endpoint_url(), None);
        assert_eq!(endpoint(&sdk, "DynamoDB"), None);
        assert_eq!(from(Env::from_slice(&[])).build().region(), None);
    }

    #[test]
    fn the_credentials_are_the_environments_and_https_trusts_amazons_roots() {
        let sdk = from_env();
        assert!(sdk.credentials_provider().is_some());
        assert!(sdk.http_client().is_some());
        let roots: Vec<_> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES.as_bytes())
            .collect::<Result<_, _>>()
            .expect("every root parses, as the HTTPS client expects of them");
        assert_eq!(
            roots.len(),
            5,
            "Amazon Root CA 1–4, Starfield Services Root G2"
        );
    }
}
