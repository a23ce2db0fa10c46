//! Where the S3 keys and region come from: the usual AWS environment
//! variables, then the shared files (`~/.aws/credentials`, `~/.aws/config`)
//! under `AWS_PROFILE` (default `default`). Instance roles, SSO and
//! `credential_process` are not read: export keys for them
//! (`aws configure export-credentials --format env`).

use std::path::PathBuf;

/// An access key pair, and a session token for temporary ones.
#[derive(Clone)]
pub(crate) struct Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub(crate) access_key: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub(crate) secret_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub(crate) session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key", &self.access_key).finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn profile() -> String {
    env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned())
}

fn aws_file(variable: &str, name: &str) -> Option<PathBuf> {
    env(variable)
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".aws").join(name)))
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

impl Credentials {
    /// The keys from the environment, else from the shared credentials
    /// file; an error says where it looked.
    pub(crate) fn from_environment() -> Result<Self, String> {
        if let (Some(access_key), Some(secret_key)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Self { access_key, secret_key, session_token: env("AWS_SESSION_TOKEN") });
        }
        let profile = profile();
        let file = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let text = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default();
        match (
            ini_value(&text, &profile, "aws_access_key_id"),
            ini_value(&text, &profile, "aws_secret_access_key"),
        ) {
            (Some(access_key), Some(secret_key)) => Ok(Self {
                access_key,
                secret_key,
                session_token: ini_value(&text, &profile, "aws_session_token"),
            }),
            _ => Err(format!(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile [{profile}] \
                 keys in {}",
                file.map_or_else(|| "~/.aws/credentials".to_owned(), |f| f.display().to_string())
            )),
        }
    }
}

/// The region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`
/// in `~/.aws/config`, else `us-east-1`.
pub(crate) fn region_from_environment() -> String {
    if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        return region;
    }
    let profile = profile();
    let section = if profile == "default" { profile } else { format!("profile {profile}") };
    aws_file("AWS_CONFIG_FILE", "config")
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
