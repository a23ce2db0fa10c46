//! The uploader page and the wasm package: embedded at build time, or read
//! from `--assets-dir` during development.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::fs::RelPath;
use crate::serve::error::{AppError, ErrorKind};
use crate::serve::served::Served;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Shown when the binary was built before the page and package existed.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>diffcopy</title>\
<h1>diffcopy</h1><p>The server is running, but this build has no uploader page. \
Build the wasm package and the page (<code>scripts/serve</code> does) and rebuild.</p>\
<p>API: <a href=\"/api/v1/health\">/api/v1/health</a></p>";

/// `GET /` and `GET /{asset}`.
pub(super) fn routes<S: Served>() -> Router<Arc<S>> {
    Router::new().route("/", get(index::<S>)).route("/{*path}", get(asset::<S>))
}

async fn index<S: Served>(State(state): State<Arc<S>>) -> Response {
    match load(state.settings(), "index.html").await {
        Some(bytes) => serve("index.html", bytes),
        None => Html(NOT_BUILT).into_response(),
    }
}

async fn asset<S: Served>(State(state): State<Arc<S>>, Path(path): Path<String>) -> Response {
    let valid = RelPath::parse(&path).map(|p| p.as_str().to_owned());
    match valid {
        Ok(path) => match load(state.settings(), &path).await {
            Some(bytes) => serve(&path, bytes),
            None => {
                AppError::new(ErrorKind::NoRoute, format!("nothing is served at /{path}")).into_response()
            }
        },
        Err(e) => AppError::from(e).into_response(),
    }
}

async fn load(config: &crate::serve::config::ServerConfig, path: &str) -> Option<Vec<u8>> {
    match &config.assets_dir {
        Some(dir) => {
            // Development only: the validated path cannot climb out of `dir`.
            let file = if let Some(rest) = path.strip_prefix("pkg/") {
                dir.join("..").join("pkg").join(rest)
            } else {
                dir.join(path)
            };
            tokio::fs::read(file).await.ok()
        }
        None => EMBEDDED.iter().find(|(name, _)| *name == path).map(|(_, bytes)| bytes.to_vec()),
    }
}

fn serve(path: &str, bytes: Vec<u8>) -> Response {
    let content_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}
