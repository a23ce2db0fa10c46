//! `GET /api/v2/list?prefix=&cursor=&limit=` (docs/api.md, "Listing"):
//! the files whose paths start with a prefix, in the byte order of their
//! paths, a page at a time. A page ends with a `cursor` when more may
//! follow; the next page is asked for with it. A scoped token needs `list`
//! on the prefix, and sees only the files its paths cover.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::{Reads, query};
use crate::fs::RelPath;
use crate::serve::access::Access;
use crate::serve::body::packed_if_taken;
use crate::serve::error::{AppError, AppResult, ErrorKind};

/// The most files one page holds, and its size when the client names none.
pub(crate) const MAX_PAGE: usize = 1000;

/// A file in a listing.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its path below the server's root.
    pub(crate) path: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Its modification time, milliseconds since the Unix epoch: the one
    /// its uploader gave (`mtime` at commit), else when it was written.
    pub(crate) mtime: i64,
    /// Its ETag, as a download sees it (quoted); empty when not asked for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) etag: String,
}

/// One page of a listing, as a store finds it.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The files, in path order.
    pub(crate) entries: Vec<Entry>,
    /// Where the next page starts (the last path this page looked at),
    /// when more may follow.
    pub(crate) next: Option<String>,
}

/// The query.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    /// What the paths start with (default: everything). Not a pattern:
    /// `photos/` lists the folder, `photos/2024-` the names in it that start so.
    #[serde(default)]
    prefix: String,
    /// The `cursor` of the page before.
    cursor: Option<String>,
    /// Files per page, 1 to [`MAX_PAGE`].
    limit: Option<usize>,
    /// Whether each file's ETag is given (default true). Without them a
    /// compressed page is a third the size: an ETag is what does not compress.
    etags: Option<bool>,
}

/// What the endpoint answers.
#[derive(Debug, Serialize)]
struct Answer {
    files: Vec<Entry>,
    /// Where the next page starts; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

fn bad_query(message: impl Into<String>) -> AppError {
    AppError::new(ErrorKind::BadQuery, message)
}

/// 400 unless `text` is what a path may start with: empty, or a path (a
/// trailing `/` allowed) whose segments are all allowed.
fn check_prefix(text: &str, what: &str) -> AppResult<()> {
    if text.is_empty() {
        return Ok(());
    }
    RelPath::parse(text.strip_suffix('/').unwrap_or(text))
        .map(drop)
        .map_err(|e| bad_query(format!("{what}: {e}")))
}

/// `GET /api/v2/list`. The answer is compressed with zstd where the
/// client takes it (`Accept-Encoding: zstd`, as `diffcopy` and browsers
/// send): a page of 1,000 files is some 117 KiB of JSON and 10 KiB of zstd.
pub(super) async fn list<S: Reads>(
    State(state): State<Arc<S>>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> AppResult<Response> {
    let q = query(q)?;
    check_prefix(&q.prefix, "prefix")?;
    if let Some(cursor) = &q.cursor {
        check_prefix(cursor, "cursor")?;
        if !cursor.starts_with(&q.prefix) {
            return Err(bad_query("the cursor is not from a listing of this prefix"));
        }
    }
    let limit = q.limit.unwrap_or(MAX_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(bad_query(format!("limit must be 1 to {MAX_PAGE}")));
    }
    access.may_list(&q.prefix)?;
    let page = state.list(q.prefix, q.cursor, limit).await?;
    let etags = q.etags.unwrap_or(true);
    let files = page
        .entries
        .into_iter()
        .filter(|e| access.sees(&e.path))
        .map(|mut e| {
            if !etags {
                e.etag.clear();
            }
            e
        })
        .collect();
    let json = serde_json::to_vec(&Answer { files, cursor: page.next })
        .map_err(|e| AppError::internal("a listing", e))?;
    packed_if_taken(&headers, "application/json", json)
}
