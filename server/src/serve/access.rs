//! Who a request is and what it may do: the one place routes are matched
//! against a token's grant (docs/embedding.md).
//!
//! [`authorize`] runs on every API route of both stores, after routing:
//! it reads the bearer token (the administrator's `--token`, or a JWT
//! verified by [`Verifier`](crate::token::Verifier)), checks the route's
//! path or the upload session it names against the grant, and leaves the
//! [`Access`] in the request for the two handlers that open uploads, whose
//! path and size are in the body ([`Access::may_upload`]). A route this
//! table does not name is refused to a scoped token: new routes are closed
//! until they are placed here.

use std::sync::Arc;

use axum::extract::{FromRequestParts as _, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::fs::RelPath;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::served::{Served, SessionScope};
use crate::token::{Grant, Permission, TokenError};

/// Who sent a request.
#[derive(Clone, Debug)]
pub(super) enum Access {
    /// No token is configured: everyone may do everything.
    Open,
    /// The administrator's `--token`.
    Admin,
    /// A scoped token.
    Scoped(Arc<Grant>),
}

/// 403 `not_allowed`, naming what is missing (never the token's values).
fn not_allowed(message: impl Into<String>) -> AppError {
    AppError::new(ErrorKind::NotAllowed, message)
}

impl Access {
    /// Who opened an upload, as its session records it.
    pub(crate) fn owner(&self) -> Option<String> {
        match self {
            Self::Scoped(grant) => grant.sub().map(str::to_owned),
            Self::Open | Self::Admin => None,
        }
    }

    /// Who, for logs: the token's `sub`, `admin`, or nothing.
    pub(crate) fn who(&self) -> &str {
        match self {
            Self::Scoped(grant) => grant.sub().unwrap_or("-"),
            Self::Admin => "admin",
            Self::Open => "-",
        }
    }

    /// 403 unless this request may use one of `any` on `path`.
    fn check(&self, any: &[Permission], path: &str) -> AppResult<()> {
        let Self::Scoped(grant) = self else { return Ok(()) };
        if !any.iter().any(|p| grant.allows(*p)) {
            let names: Vec<&str> = any.iter().map(|p| p.name()).collect();
            return Err(not_allowed(format!("this token does not allow {}", names.join(" or "))));
        }
        if !grant.covers(path) {
            return Err(not_allowed("this token does not cover this path"));
        }
        Ok(())
    }

    /// 403 unless this request may upload `size` bytes to `path` (400
    /// for a path that is not one).
    pub(super) fn may_upload(&self, path: &str, size: u64) -> AppResult<()> {
        self.check(&[Permission::Upload], RelPath::parse(path)?.as_str())?;
        if let Self::Scoped(grant) = self
            && grant.max_size().is_some_and(|max| size > max)
        {
            return Err(not_allowed("this file is larger than this token's max_size"));
        }
        Ok(())
    }

    /// 403 unless this request may list the paths that start with `prefix`.
    pub(super) fn may_list(&self, prefix: &str) -> AppResult<()> {
        self.check(&[Permission::List], prefix)
    }

    /// Whether a listing shows this request the file at `path`: a token
    /// that may list a folder sees only the files its paths cover.
    pub(super) fn sees(&self, path: &str) -> bool {
        match self {
            Self::Scoped(grant) => grant.covers(path),
            Self::Open | Self::Admin => true,
        }
    }

    /// 403 unless this request may go on with, see or abort `session`:
    /// upload on its path, by the `sub` that opened it.
    fn may_resume(&self, session: &SessionScope) -> AppResult<()> {
        self.check(&[Permission::Upload], &session.path)?;
        if let Self::Scoped(grant) = self
            && grant.sub() != session.owner.as_deref()
        {
            return Err(not_allowed("this upload was opened by another token's sub"));
        }
        Ok(())
    }

    fn admin(&self) -> AppResult<()> {
        match self {
            Self::Open | Self::Admin => Ok(()),
            Self::Scoped(_) => Err(not_allowed("only the administrator's token may use this endpoint")),
        }
    }
}

/// What a route needs, by its pattern.
enum Needs {
    /// Any valid token.
    Anyone,
    /// The administrator's token.
    Admin,
    /// One of these on the route's `path`.
    Path(&'static [Permission]),
    /// Checked by the handler, which reads the path from the body.
    Handler,
    /// Upload on the path of the session `id` names, by its owner.
    Session,
}

const DOWNLOAD: &[Permission] = &[Permission::Download];
/// A signature serves a download, and an upload's own comparison.
const SIGNATURE: &[Permission] = &[Permission::Download, Permission::Upload];

/// What the route `pattern` needs; `None` for a route not placed here.
fn needs(pattern: &str) -> Option<Needs> {
    Some(match pattern {
        "/api/v1/health" => Needs::Anyone,
        "/api/v1/stats" | "/info" | "/hashes" | "/blocks" | "/resize" => Needs::Admin,
        "/api/v1/files/{*path}" | "/api/v2/hashes/{*path}" | "/api/v2/data/{*path}" => Needs::Path(DOWNLOAD),
        "/api/v1/signatures/{*path}" | "/api/v2/signatures/{*path}" => Needs::Path(SIGNATURE),
        "/api/v2/files/{*path}" => Needs::Path(&[Permission::Delete]),
        "/api/v1/uploads" | "/api/v2/uploads" | "/api/v2/list" | "/api/v2/batch" => Needs::Handler,
        p if p.starts_with("/api/v1/uploads/") || p.starts_with("/api/v2/uploads/") => Needs::Session,
        _ => return None,
    })
}

/// Who the request is: 401 when a token is configured and none valid is given.
fn identify(settings: &crate::serve::ServerConfig, request: &Request) -> AppResult<Access> {
    if settings.token.is_none() && settings.jwt.is_none() {
        return Ok(Access::Open);
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // An empty `--token` is refused at start; never taken as everyone's key here.
    if let Some(admin) = settings.token.as_ref().filter(|t| !t.is_empty())
        && constant_time_eq(given.as_bytes(), admin.as_bytes())
    {
        return Ok(Access::Admin);
    }
    match (&settings.jwt, given) {
        (Some(verifier), given) if !given.is_empty() => match verifier.verify(given) {
            Ok(grant) => Ok(Access::Scoped(Arc::new(grant))),
            Err(TokenError::Expired) => Err(AppError::new(ErrorKind::TokenExpired, "the token has expired")),
            Err(e) => Err(AppError::new(ErrorKind::TokenInvalid, e.to_string())),
        },
        _ => Err(AppError::new(ErrorKind::Unauthorized, "a valid bearer token is required")),
    }
}

/// 403 unless `access` may use the route `pattern` with `params`.
async fn check_route<S: Served>(
    state: &S,
    access: &Access,
    pattern: &str,
    params: Option<&RawPathParams>,
) -> AppResult<()> {
    let param =
        |name: &str| params.and_then(|p| p.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_owned()));
    match needs(pattern) {
        None => Err(not_allowed("this token may not use this endpoint")),
        Some(Needs::Anyone | Needs::Handler) => Ok(()),
        Some(Needs::Admin) => access.admin(),
        Some(Needs::Path(any)) => {
            access.check(any, RelPath::parse(&param("path").unwrap_or_default())?.as_str())
        }
        Some(Needs::Session) => {
            let id = param("id").or_else(|| param("rest")).unwrap_or_default();
            let id = id.split('/').next().unwrap_or_default();
            match state.session_scope(id).await? {
                Some(session) => access.may_resume(&session),
                None => Ok(()),
            }
        }
    }
}

/// Checks every API request against its token (401, 403) and read-only
/// mode (403), and leaves the [`Access`] for the handlers.
pub(super) async fn authorize<S: Served>(
    State(state): State<Arc<S>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let params = RawPathParams::from_request_parts(&mut parts, &()).await.ok();
    let matched = parts.extensions.get::<MatchedPath>().cloned();
    let mut request = Request::from_parts(parts, body);
    let identified = identify(state.settings(), &request);
    let read_only = state.settings().read_only && writes(request.method(), request.uri().path());
    let checked = async {
        let access = identified?;
        if !matches!(access, Access::Open) {
            let pattern = matched.as_ref().map_or("", MatchedPath::as_str);
            check_route(&*state, &access, pattern, params.as_ref()).await?;
        }
        if read_only {
            return Err(AppError::new(ErrorKind::ReadOnly, "this server is read-only"));
        }
        Ok(access)
    };
    match checked.await {
        Ok(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Err(e) => {
            // RFC 6750's challenge: a client with a way to get a new token
            // (the page's token callback) asks for one on "expired".
            let challenge = match e.kind() {
                ErrorKind::TokenExpired => {
                    Some(r#"Bearer error="invalid_token", error_description="expired""#)
                }
                ErrorKind::TokenInvalid => Some(r#"Bearer error="invalid_token""#),
                _ if e.status() == StatusCode::UNAUTHORIZED => Some("Bearer"),
                _ => None,
            };
            let mut response = e.into_response();
            if let Some(challenge) = challenge {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            response
        }
    }
}

/// Whether a request may change what the server holds: every method but
/// `GET`, `HEAD` and `OPTIONS`, except the `POST`s of a protocol v2
/// download (`/api/v2/hashes/...`, `/api/v2/data/...`), which only read.
fn writes(method: &Method, path: &str) -> bool {
    let reads_by_post = ["/api/v2/hashes/", "/api/v2/data/"].iter().any(|p| path.starts_with(p));
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => false,
        Method::POST => !reads_by_post,
        _ => true,
    }
}

/// Compares in time that depends only on the lengths, not on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::{constant_time_eq, writes};

    #[test]
    fn downloads_read_and_uploads_write() {
        for (method, path) in [
            (Method::GET, "/api/v1/files/a"),
            (Method::HEAD, "/api/v1/files/a"),
            (Method::POST, "/api/v2/hashes/a/b.bin"),
            (Method::POST, "/api/v2/data/a"),
            (Method::GET, "/hashes"),
        ] {
            assert!(!writes(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::POST, "/api/v2/uploads"),
            (Method::POST, "/api/v2/uploads/x/data"),
            (Method::POST, "/api/v1/uploads"),
            (Method::PUT, "/api/v1/uploads/x/blocks/0"),
            (Method::DELETE, "/api/v2/uploads/x"),
            (Method::POST, "/blocks"),
            (Method::POST, "/resize"),
            (Method::PATCH, "/api/v2/data/a"),
        ] {
            assert!(writes(&method, path), "{method} {path}");
        }
    }

    #[test]
    fn equal_only_when_equal() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
