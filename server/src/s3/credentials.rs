//! Who the server is to the store, and how its requests are signed.
//!
//! AWS's credential chain comes from reqsign: the environment, the shared
//! files under a profile (keys, `credential_process`, SSO), web identity
//! (EKS IRSA), container credentials (ECS, EKS Pod Identity) and EC2's
//! IMDSv2, in that order, as the AWS SDKs try them. reqsign's signer
//! caches what the chain found and asks again once it is within two
//! minutes of expiring, so temporary credentials are renewed under a
//! running server. Its requests (IMDS, STS, the container endpoint) go
//! over the program's own HTTP client.
//!
//! The chain is assembled here, not taken whole from reqsign, for one
//! reason: when no source has credentials, the error names every source
//! and what each said, instead of "failed to load signing credential".

use std::time::Duration;

use reqsign_aws_v4::{
    AssumeRoleWithWebIdentityCredentialProvider, Credential, ECSCredentialProvider, EnvCredentialProvider,
    IMDSv2CredentialProvider, ProcessCredentialProvider, ProfileCredentialProvider, RequestSigner,
    SSOCredentialProvider, StaticCredentialProvider,
};
use reqsign_command_execute_tokio::TokioCommandExecute;
use reqsign_core::{Context, OsEnv, ProvideCredential, ProvideCredentialDyn, Signer};
use reqsign_file_read_tokio::TokioFileRead;
use reqsign_http_send_reqwest::ReqwestHttpSend;

/// Where the keys come from.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// AWS's credential chain, under `AWS_PROFILE` (default `default`).
    Chain,
    /// These keys, always (the tests' own client).
    Static {
        /// The access key id.
        access_key: String,
        /// The secret access key.
        secret_key: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Chain => f.write_str("Chain"),
            Self::Static { access_key, .. } => {
                f.debug_struct("Static").field("access_key", access_key).finish_non_exhaustive()
            }
        }
    }
}

/// One source of the chain, named for the error that lists them.
type Source = (String, Box<dyn ProvideCredentialDyn<Credential = Credential>>);

/// The sources of AWS's default chain, in its order.
#[derive(Debug)]
struct Chain {
    sources: Vec<Source>,
}

impl Chain {
    fn new(ctx: &Context) -> Self {
        let profile = ctx.env_var("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        let imds = ctx
            .env_var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| "http://169.254.169.254".to_owned());
        let sources: Vec<Source> = vec![
            (
                "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)".into(),
                Box::new(EnvCredentialProvider::new()),
            ),
            (
                format!("profile {profile:?} of the shared files (~/.aws/credentials, ~/.aws/config)"),
                Box::new(ProfileCredentialProvider::default()),
            ),
            (format!("SSO of profile {profile:?}"), Box::new(SSOCredentialProvider::default())),
            (
                "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)".into(),
                Box::new(AssumeRoleWithWebIdentityCredentialProvider::default()),
            ),
            (
                format!("credential_process of profile {profile:?}"),
                Box::new(ProcessCredentialProvider::default()),
            ),
            (
                "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI)".into(),
                Box::new(ECSCredentialProvider::default()),
            ),
            (
                format!("EC2 instance metadata (IMDSv2 at {imds})"),
                Box::new(IMDSv2CredentialProvider::default()),
            ),
        ];
        Self { sources }
    }
}

impl ProvideCredential for Chain {
    type Credential = Credential;

    async fn provide_credential(&self, ctx: &Context) -> reqsign_core::Result<Option<Credential>> {
        let mut tried = Vec::with_capacity(self.sources.len());
        for (name, source) in &self.sources {
            match source.provide_credential_dyn(ctx).await {
                Ok(Some(credential)) => {
                    tracing::debug!(source = %name, "S3 credentials found");
                    return Ok(Some(credential));
                }
                Ok(None) => tried.push(format!("{name}: none")),
                Err(e) => tried.push(format!("{name}: {}", describe(&e))),
            }
        }
        Err(reqsign_core::Error::credential_invalid(format!(
            "no S3 credentials anywhere; tried {}",
            tried.join("; ")
        )))
    }
}

/// reqsign's error whole: its message, its causes, its context.
pub(super) fn describe(e: &reqsign_core::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    for context in e.context() {
        text.push_str(&format!(" ({context})"));
    }
    text
}

/// Signs requests for the store with SigV4, with keys from `keys`; `http`
/// carries the chain's own requests (IMDS, STS, container endpoint).
pub(crate) fn signer(keys: &Credentials, region: &str, http: reqwest::Client) -> Signer<Credential> {
    let ctx = Context::new()
        .with_file_read(TokioFileRead)
        .with_command_execute(TokioCommandExecute)
        .with_http_send(ReqwestHttpSend::new(http))
        .with_env(OsEnv);
    // Custom endpoints are never S3 Express: the session token always goes
    // in `x-amz-security-token`.
    let request = RequestSigner::new("s3", region).with_standard_session_token();
    match keys {
        Credentials::Chain => Signer::new(ctx.clone(), Chain::new(&ctx), request),
        Credentials::Static { access_key, secret_key } => {
            Signer::new(ctx, StaticCredentialProvider::new(access_key, secret_key), request)
        }
    }
}

/// How long the chain's own requests may take: IMDS and the container
/// endpoint are local and answer at once when they exist.
pub(super) const CHAIN_TIMEOUT: Duration = Duration::from_secs(5);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn aws_config_file() -> Option<std::path::PathBuf> {
    env("AWS_CONFIG_FILE")
        .map(Into::into)
        .or_else(|| env("HOME").map(|home| std::path::Path::new(&home).join(".aws/config")))
}

/// `key`'s value in section `section` of an INI file's text.
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_owned());
        }
    }
    None
}

/// The region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`
/// in `~/.aws/config`, else `us-east-1`.
pub(crate) fn region_from_environment() -> String {
    if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        return region;
    }
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let section = if profile == "default" { profile } else { format!("profile {profile}") };
    aws_config_file()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| ini_value(&text, &section, "region"))
        .unwrap_or_else(|| "us-east-1".to_owned())
}

#[cfg(test)]
mod tests {
    use super::ini_value;

    #[test]
    fn reads_a_profile_from_ini_text() {
        let text = "[default]\naws_access_key_id = A\n\n[other]\naws_access_key_id=B\nregion = eu-west-1\n";
        assert_eq!(ini_value(text, "default", "aws_access_key_id").as_deref(), Some("A"));
        assert_eq!(ini_value(text, "other", "aws_access_key_id").as_deref(), Some("B"));
        assert_eq!(ini_value(text, "other", "region").as_deref(), Some("eu-west-1"));
        assert_eq!(ini_value(text, "default", "region"), None);
        assert_eq!(ini_value(text, "missing", "aws_access_key_id"), None);
    }
}
