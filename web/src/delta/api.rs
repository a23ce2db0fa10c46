//! Protocol v2's upload endpoints (docs/api.md#protocol-v2), as the page
//! calls them.

use std::ops::Range;

use diffcopy_core::delta::{DeltaParams, Levels, Need};
use gloo_net::http::Request;
use js_sys::{Array, JSON, Object, Reflect, Uint8Array};
use wasm_bindgen::JsValue;

use crate::api::{Api, check, encode, json_body};
use crate::diff::set;
use crate::error::{ErrorCode, WebError};

/// A protocol v2 upload session: its id and the parameters the server chose.
#[derive(Clone, Debug)]
pub(crate) struct DeltaSession {
    pub(crate) id: String,
    pub(crate) params: DeltaParams,
    /// Literal bytes per data request: the server's `data_batch` (a
    /// server over a bucket asks for 8 MiB), else `LITERAL_BATCH`.
    pub(crate) data_batch: u32,
    /// Whether the server reads LZ4 frames.
    pub(crate) lz4: bool,
}

/// What `GET /api/v2/uploads/{id}` says of a session.
#[derive(Clone, Debug)]
pub(crate) struct DeltaStatus {
    pub(crate) size: u64,
    /// `searching`, `receiving` or `committing`.
    pub(crate) phase: String,
    /// The literal ranges not received yet.
    pub(crate) missing: Vec<Range<u64>>,
    /// Whether the server reads LZ4 frames.
    pub(crate) lz4: bool,
}

/// Whether a session's status names `lz4` among its `codecs` (a server
/// that predates them reads raw frames).
fn reads_lz4(status: &JsValue) -> bool {
    let codecs = get(status, "codecs");
    Array::is_array(&codecs) && Array::from(&codecs).includes(&"lz4".into(), 0)
}

fn bad(what: &str) -> WebError {
    WebError::new(ErrorCode::BadResponse, format!("the server's upload answer has no valid `{what}`"))
}

fn get(body: &JsValue, name: &str) -> JsValue {
    Reflect::get(body, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

/// `[[start, end], ...]` as ranges.
pub(crate) fn ranges(value: &JsValue, what: &str) -> Result<Vec<Range<u64>>, WebError> {
    if value.is_undefined() {
        return Ok(Vec::new());
    }
    if !Array::is_array(value) {
        return Err(bad(what));
    }
    let mut out = Vec::new();
    for run in Array::from(value).iter() {
        let run = Array::from(&run);
        match (run.get(0).as_f64(), run.get(1).as_f64()) {
            (Some(start), Some(end)) if start <= end => out.push(start as u64..end as u64),
            _ => return Err(bad(what)),
        }
    }
    Ok(out)
}

impl Api {
    fn v2(&self, rest: &str) -> String {
        self.endpoint(&format!("api/v2/{rest}"))
    }

    /// `POST /api/v2/uploads`: opens a session for `path`; `whole` searches
    /// against nothing.
    pub(crate) async fn delta_create(
        &self,
        path: &str,
        size: u64,
        block_size: u32,
        whole: bool,
    ) -> Result<DeltaSession, WebError> {
        let body = Object::new();
        set(&body, "path", path.into());
        set(&body, "size", (size as f64).into());
        set(&body, "block_size", block_size.into());
        set(&body, "whole", whole.into());
        let json = JSON::stringify(&body).map(String::from).unwrap_or_default();
        let request = || {
            self.prepare(Request::post(&self.v2("uploads")))
                .header("Content-Type", "application/json")
                .body(json.clone())
        };
        let created = json_body(check(self.send(request, "opening the upload").await?).await?).await?;
        let id = get(&created, "id").as_string().ok_or_else(|| bad("id"))?;
        let seed = get(&created, "seed")
            .as_string()
            .and_then(|s| u64::from_str_radix(&s, 16).ok())
            .ok_or_else(|| bad("seed"))?;
        let levels = get(&created, "levels");
        if !Array::is_array(&levels) {
            return Err(bad("levels"));
        }
        let sizes: Option<Vec<u32>> = Array::from(&levels)
            .iter()
            .map(|v| v.as_f64().filter(|n| n.fract() == 0.0).map(|n| n as u32))
            .collect();
        let levels = Levels::new(&sizes.ok_or_else(|| bad("levels"))?).map_err(|_| bad("levels"))?;
        let data_batch =
            get(&created, "data_batch").as_f64().map_or(diffcopy_core::delta::LITERAL_BATCH, |n| {
                n.clamp(f64::from(64u32 << 10), f64::from(32u32 << 20)) as u32
            });
        let lz4 = reads_lz4(&get(&created, "status"));
        Ok(DeltaSession { id, params: DeltaParams { file_size: size, seed, levels }, data_batch, lz4 })
    }

    /// `POST /api/v2/uploads/{id}/hashes`: one round of the search.
    pub(crate) async fn delta_hashes(&self, id: &str, hashes: &[u8], size: u64) -> Result<Need, WebError> {
        let url = self.v2(&format!("uploads/{}/hashes", encode(id)));
        let request = || {
            self.prepare(Request::post(&url))
                .header("Content-Type", "application/octet-stream")
                .body(Uint8Array::from(hashes))
        };
        let response = check(self.send(request, "sending hashes").await?).await?;
        let bytes = response
            .binary()
            .await
            .map_err(|e| WebError::new(ErrorCode::NetworkError, format!("reading the server's need: {e}")))?;
        Need::decode(&bytes, size)
            .map_err(|e| WebError::new(ErrorCode::BadResponse, format!("the server sent a bad need: {e}")))
    }

    /// `POST /api/v2/uploads/{id}/data`: literal frames.
    pub(crate) async fn delta_data(&self, id: &str, frames: &[u8]) -> Result<(), WebError> {
        let url = self.v2(&format!("uploads/{}/data", encode(id)));
        let request = || {
            self.prepare(Request::post(&url))
                .header("Content-Type", "application/vnd.diffcopy.delta")
                .body(Uint8Array::from(frames))
        };
        check(self.send(request, "uploading literal data").await?).await.map(drop)
    }

    /// `GET /api/v2/uploads/{id}`: the session's state, `None` when it is gone.
    pub(crate) async fn delta_status(&self, id: &str) -> Result<Option<DeltaStatus>, WebError> {
        let url = self.v2(&format!("uploads/{}", encode(id)));
        let response =
            self.send(|| self.prepare(Request::get(&url)).build(), "checking the upload to resume").await?;
        if response.status() == 404 {
            return Ok(None);
        }
        let body = json_body(check(response).await?).await?;
        let size = get(&body, "size").as_f64().ok_or_else(|| bad("size"))? as u64;
        let phase = get(&body, "phase").as_string().ok_or_else(|| bad("phase"))?;
        let missing = ranges(&get(&body, "missing"), "missing")?;
        Ok(Some(DeltaStatus { size, phase, missing, lz4: reads_lz4(&body) }))
    }

    /// `POST /api/v2/uploads/{id}/commit`, giving the file's modification
    /// time (ms since the epoch) when known: the server's JSON answer.
    pub(crate) async fn delta_commit(&self, id: &str, mtime: Option<f64>) -> Result<JsValue, WebError> {
        let url = self.v2(&format!("uploads/{}/commit", encode(id)));
        let build = || match mtime {
            Some(ms) => self
                .prepare(Request::post(&url))
                .header("Content-Type", "application/json")
                // An integer: formatting an f64 would bring float printing into the wasm.
                .body(format!("{{\"mtime\":{}}}", ms as i64)),
            None => self.prepare(Request::post(&url)).build(),
        };
        json_body(check(self.send(build, "committing the upload").await?).await?).await
    }

    /// `DELETE /api/v2/uploads/{id}`, best effort, even after an abort.
    pub(crate) async fn delta_abort(&self, id: &str) {
        let url = self.v2(&format!("uploads/{}", encode(id)));
        let _ = self.send(|| self.authorize(Request::delete(&url)).build(), "abandoning the upload").await;
    }
}
