//! The in-process harness of the router tests: a server on a scratch root,
//! requests sent through the router without a socket.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use diffcopy::{AppState, ServerConfig, StatsSnapshot, app};
use diffcopy_core::{HashAlgorithm, Signature, SignatureBuilder, hash_block};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const BLOCK: u32 = 4096;

/// A scratch directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("diffcopy-router-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn root(&self) -> PathBuf {
        self.0.join("root")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Server {
    pub app: Router,
    pub state: Arc<AppState>,
    pub scratch: Scratch,
}

pub fn server(name: &str, tweak: impl FnOnce(&mut ServerConfig)) -> Server {
    let scratch = Scratch::new(name);
    let mut config = ServerConfig { root: scratch.root(), ..ServerConfig::default() };
    tweak(&mut config);
    let state = AppState::new(config).unwrap();
    Server { app: app(state.clone()), state, scratch }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }
    pub fn code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

impl Server {
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = self.app.clone().oneshot(request.body(body.into()).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, headers, body }
    }
    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }
    pub async fn post_json(&self, uri: &str, value: Value) -> Reply {
        self.send(Method::POST, uri, &[("content-type", "application/json")], value.to_string()).await
    }
    pub fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.scratch.root().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.scratch.root().join(name)).unwrap()
    }
    pub fn stats(&self) -> StatsSnapshot {
        self.state.stats()
    }
    pub async fn put_block(&self, id: &str, index: u64, bytes: &[u8], digest: &str) -> Reply {
        let uri = format!("/api/v1/uploads/{id}/blocks/{index}");
        self.send(Method::PUT, &uri, &[("x-block-digest", digest)], bytes.to_vec()).await
    }
}

pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed).collect()
}

pub fn sign(bytes: &[u8], block: u32) -> Signature {
    let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, block).unwrap();
    builder.update(bytes);
    builder.finish()
}

pub fn digest_hex(bytes: &[u8]) -> String {
    hash_block(HashAlgorithm::Sha1, bytes).to_string()
}

pub fn staging_files(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".diffcopy-") {
            names.push(name);
        }
    }
    names
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
