//! Scoped bearer tokens: JWTs (RFC 7519) that a web application's backend
//! mints for one user's folder or one file, verified by `diffcopy serve`
//! and minted by `diffcopy token` (docs/embedding.md).
//!
//! The claims are fixed ([`Claims`]): `exp` (required), `nbf` and `iat`
//! (optional), `sub`, `paths`, `allow` and `max_size`. HS256 is verified
//! with a shared secret; EdDSA (Ed25519) and ES256 (P-256) with a public
//! key, so that the backend keeps the signing key to itself. Signatures and
//! time claims are checked by `jsonwebtoken` with [`LEEWAY`]; what the
//! claims grant is [`Grant`], checked against each request by the server.

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::fs::RelPath;

/// Seconds a token is still taken after its `exp`, and before its `nbf`,
/// for clocks that disagree, unless `--jwt-leeway` says otherwise.
pub const LEEWAY: u64 = 60;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Upload (create or replace) files: both protocols' upload sessions.
    Upload,
    /// Download files and their hashes.
    Download,
    /// List directories (for the listings of docs/embedding.md).
    List,
    /// Delete files (for the deletions of docs/embedding.md).
    Delete,
}

impl Permission {
    /// Its name in the `allow` claim.
    pub fn name(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Download => "download",
            Self::List => "list",
            Self::Delete => "delete",
        }
    }
}

impl std::str::FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Upload, Self::Download, Self::List, Self::Delete]
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown permission {s:?}: upload, download, list or delete"))
    }
}

/// A token's claims, as minted and as verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// Not valid before (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Who: in logs, stats and hooks, and the owner of the uploads it opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Where: an entry ending in `/` is a folder and everything below it
    /// (`/` alone is the whole root), any other entry one file.
    pub paths: Vec<String>,
    /// What.
    pub allow: Vec<Permission>,
    /// The largest file, in bytes, this token may upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

/// One entry of `paths`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scope {
    /// A folder: every path that starts with this (ends with `/`; empty for the root).
    Folder(String),
    /// One file.
    File(String),
}

impl Scope {
    fn parse(entry: &str) -> Result<Self, TokenError> {
        let bad = || TokenError::Invalid("a paths entry is not a valid path");
        let entry = entry.strip_prefix('/').unwrap_or(entry);
        if entry.is_empty() {
            return Ok(Self::Folder(String::new()));
        }
        match entry.strip_suffix('/') {
            Some(folder) => {
                RelPath::parse(folder).map_err(|_| bad())?;
                Ok(Self::Folder(entry.to_owned()))
            }
            None => Ok(Self::File(RelPath::parse(entry).map_err(|_| bad())?.as_str().to_owned())),
        }
    }

    fn covers(&self, path: &str) -> bool {
        match self {
            Self::Folder(prefix) => path.starts_with(prefix.as_str()),
            Self::File(file) => path == file,
        }
    }
}

/// What a verified token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    sub: Option<String>,
    scopes: Vec<Scope>,
    allow: Vec<Permission>,
    max_size: Option<u64>,
}

impl Grant {
    fn from_claims(claims: Claims) -> Result<Self, TokenError> {
        let scopes = claims.paths.iter().map(|p| Scope::parse(p)).collect::<Result<_, _>>()?;
        Ok(Self { sub: claims.sub, scopes, allow: claims.allow, max_size: claims.max_size })
    }

    /// Who the token names, if anyone.
    pub fn sub(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// The largest file this token may upload, if it says.
    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// Whether the token allows `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.allow.contains(&permission)
    }

    /// Whether `path` (a checked relative path) lies within the token's paths.
    pub fn covers(&self, path: &str) -> bool {
        self.scopes.iter().any(|s| s.covers(path))
    }
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Past its `exp` (and the leeway).
    Expired,
    /// Anything else: what, without the token's values.
    Invalid(&'static str),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired => f.write_str("the token has expired"),
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for TokenError {}

/// A key could not be read.
#[derive(Debug)]
pub struct KeyError(String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// The HS256 secret in `file` (RFC 7518: at least as long as the hash).
fn read_secret(file: &Path) -> Result<Vec<u8>, KeyError> {
    crate::secret::read(file, "JWT secret", 32).map_err(KeyError)
}

/// Checks tokens: HS256 with a secret, EdDSA or ES256 with a public key, or both.
pub struct Verifier {
    secret: Option<DecodingKey>,
    public: Option<(Algorithm, DecodingKey)>,
    leeway: u64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.secret.is_some())
            .field("public", &self.public.as_ref().map(|(alg, _)| alg))
            .finish()
    }
}

impl Verifier {
    /// From `--jwt-secret-file` and `--jwt-public-key`, either or both,
    /// with `leeway` seconds for clocks; `None` when neither is given.
    pub fn load(
        secret_file: Option<&Path>,
        public_key: Option<&Path>,
        leeway: u64,
    ) -> Result<Option<Self>, KeyError> {
        if secret_file.is_none() && public_key.is_none() {
            return Ok(None);
        }
        let secret = secret_file
            .map(|file| {
                DecodingKey::from_secret(&read_secret(file)?)
                    .map_err(|e| KeyError(format!("the JWT secret in {}: {e}", file.display())))
            })
            .transpose()?;
        let public = public_key
            .map(|file| {
                let pem = std::fs::read(file)
                    .map_err(|e| KeyError(format!("reading the JWT public key {}: {e}", file.display())))?;
                // jsonwebtoken takes any EC key here; only P-256 verifies ES256.
                let p256 = || DecodingKey::from_ec_pem(&pem).ok().filter(|_| names_p256(&pem));
                DecodingKey::from_ed_pem(&pem)
                    .map(|k| (Algorithm::EdDSA, k))
                    .or_else(|_| p256().map(|k| (Algorithm::ES256, k)).ok_or(()))
                    .map_err(|()| {
                        KeyError(format!(
                            "{} is not an Ed25519 or P-256 public key in PEM (SubjectPublicKeyInfo)",
                            file.display()
                        ))
                    })
            })
            .transpose()?;
        Ok(Some(Self { secret, public, leeway }))
    }

    /// The grant of `token`, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid("the token is not a JWT"))?;
        let key = match header.alg {
            Algorithm::HS256 => self.secret.as_ref(),
            alg => self.public.as_ref().filter(|(want, _)| *want == alg).map(|(_, key)| key),
        }
        .ok_or(TokenError::Invalid("the token is signed with an algorithm this server does not take"))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e.kind() {
            JwtErrorKind::ExpiredSignature => TokenError::Expired,
            JwtErrorKind::ImmatureSignature => TokenError::Invalid("the token is not valid yet"),
            JwtErrorKind::InvalidSignature => TokenError::Invalid("the token's signature is not valid"),
            JwtErrorKind::InvalidAlgorithm | JwtErrorKind::InvalidAlgorithmName => {
                TokenError::Invalid("the token is signed with an algorithm this server does not take")
            }
            JwtErrorKind::MissingRequiredClaim(_) => TokenError::Invalid("the token has no exp"),
            JwtErrorKind::InvalidAudience => TokenError::Invalid(
                "the token has an aud claim, which this server does not take: leave it out",
            ),
            JwtErrorKind::Json(_) => TokenError::Invalid("the token's claims are not diffcopy's claims"),
            _ => TokenError::Invalid("the token is not valid"),
        })?;
        Grant::from_claims(data.claims)
    }
}

/// Whether a PEM public key names the P-256 curve: its
/// SubjectPublicKeyInfo holds the OID 1.2.840.10045.3.1.7 (`prime256v1`).
fn names_p256(pem: &[u8]) -> bool {
    const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let text = String::from_utf8_lossy(pem);
    let body: String = text.lines().filter(|line| !line.starts_with("-----")).map(str::trim).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .is_ok_and(|der| der.windows(P256.len()).any(|w| w == P256))
}

/// A token's lifetime in seconds from `90s`, `15m`, `2h` or `7d` (or bare seconds).
pub fn parse_lifetime(text: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 =
        digits.parse().map_err(|_| format!("{text:?} is not a duration (try 90s, 15m, 2h, 7d)"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    match number.checked_mul(unit) {
        Some(0) => Err("a token must last at least a second".to_owned()),
        Some(secs) => Ok(secs),
        None => Err(format!("{text:?} is too long")),
    }
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A token with `claims`, signed HS256 with the secret in `secret_file`
/// (as `diffcopy serve --jwt-secret-file` reads it).
pub fn mint(secret_file: &Path, claims: &Claims) -> Result<String, KeyError> {
    let secret = read_secret(secret_file)?;
    for path in &claims.paths {
        Scope::parse(path).map_err(|_| KeyError(format!("{path:?} is not a valid path")))?;
    }
    let key = EncodingKey::from_secret(&secret).map_err(|e| KeyError(format!("the JWT secret: {e}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
        .map_err(|e| KeyError(format!("signing the token: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{Scope, TokenError, parse_lifetime};

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90s"), Ok(90));
        assert_eq!(parse_lifetime("15m"), Ok(900));
        assert_eq!(parse_lifetime("2h"), Ok(7200));
        assert_eq!(parse_lifetime("7d"), Ok(604_800));
        assert_eq!(parse_lifetime("30"), Ok(30));
        for bad in ["", "m", "0s", "15 m", "1w", "-5m", "99999999999999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn folders_cover_what_lies_below_and_files_only_themselves() {
        let folder = Scope::parse("users/42/").unwrap();
        assert!(folder.covers("users/42/a.bin"));
        assert!(folder.covers("users/42/deep/er/a.bin"));
        assert!(!folder.covers("users/420/a.bin"));
        assert!(!folder.covers("users/42"));
        let file = Scope::parse("/users/42/a.bin").unwrap();
        assert!(file.covers("users/42/a.bin"));
        assert!(!file.covers("users/42/a.bin2"));
        assert!(!file.covers("users/42/a.bi"));
        assert!(Scope::parse("/").unwrap().covers("anything/at/all"));
    }

    #[test]
    fn paths_that_leave_their_folder_are_refused() {
        for entry in ["users/../", "users/42/../../", "../x", "a//b/", "./a", "a/./b", ".diffcopy-sessions/"]
        {
            assert_eq!(
                Scope::parse(entry),
                Err(TokenError::Invalid("a paths entry is not a valid path")),
                "{entry}"
            );
        }
    }
}
