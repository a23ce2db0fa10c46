//! Protocol v2's download endpoints (docs/api.md#protocol-v2), as the page
//! calls them: the version's block hashes and ETag, the piece hashes a need
//! refines, the literal ranges. The last two name the version in
//! `If-Match`, so a file that changed meanwhile answers 412, never bytes of
//! another version.

use diffcopy_core::delta::{BlockHashes, DeltaParams, Need};
use gloo_net::http::{Request, Response};
use js_sys::Uint8Array;

use crate::api::{Api, check, encode_path};
use crate::error::{ErrorCode, WebError};

/// The codecs the page reads besides raw.
const CODECS: &str = "lz4";

async fn bytes_of(response: Response, what: &str) -> Result<Vec<u8>, WebError> {
    response.binary().await.map_err(|e| WebError::new(ErrorCode::NetworkError, format!("{what}: {e}")))
}

impl Api {
    fn download(&self, rest: &str, path: &str, query: &str) -> String {
        self.endpoint(&format!("api/v2/{rest}/{}?{query}", encode_path(path)))
    }

    /// `GET /api/v2/signatures/{path}`: the current version's block hashes
    /// and ETag (404 `not_found` when there is none).
    pub(crate) async fn delta_signature(
        &self,
        path: &str,
        block_size: u32,
    ) -> Result<(BlockHashes, String), WebError> {
        let url = self.download("signatures", path, &format!("block_size={block_size}"));
        let what = "fetching the server's block hashes";
        let response = check(self.send(|| self.prepare(Request::get(&url)).build(), what).await?).await?;
        let etag = response
            .headers()
            .get("ETag")
            .ok_or_else(|| WebError::new(ErrorCode::BadResponse, "the block hashes came without an ETag"))?;
        let hashes = BlockHashes::decode(&bytes_of(response, what).await?)
            .map_err(|e| WebError::new(ErrorCode::BadResponse, format!("bad block hashes: {e}")))?;
        Ok((hashes, etag))
    }

    async fn post_need(&self, url: &str, etag: &str, need: &Need, what: &str) -> Result<Vec<u8>, WebError> {
        let body = need.encode();
        let request = || {
            self.prepare(Request::post(url))
                .header("Content-Type", "application/vnd.diffcopy.delta")
                .header("If-Match", etag)
                .body(Uint8Array::from(body.as_slice()))
        };
        bytes_of(check(self.send(request, what).await?).await?, what).await
    }

    /// `POST /api/v2/hashes/{path}`: the piece hashes of the ranges `need`
    /// refines, of version `etag` (`DCP2`, as the server sent them).
    pub(crate) async fn delta_pieces(
        &self,
        path: &str,
        etag: &str,
        params: &DeltaParams,
        need: &Need,
    ) -> Result<Vec<u8>, WebError> {
        let query = format!("block_size={}&seed={:016x}", params.levels.block_size(), params.seed);
        let url = self.download("hashes", path, &query);
        self.post_need(&url, etag, need, "fetching finer hashes").await
    }

    /// `POST /api/v2/data/{path}`: the literal ranges `need` names, of
    /// version `etag`, as frames (LZ4 where smaller).
    pub(crate) async fn delta_fetch(&self, path: &str, etag: &str, need: &Need) -> Result<Vec<u8>, WebError> {
        let url = self.download("data", path, &format!("codecs={CODECS}"));
        self.post_need(&url, etag, need, "fetching literal data").await
    }
}
