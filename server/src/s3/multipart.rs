//! Multipart uploads: parts uploaded, or copied from a range of another
//! object inside the store, then completed into one object.

use std::ops::Range;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use reqwest::Method;

use super::bucket::{Bucket, etag_of};
use super::error::S3Error;
use super::sigv4::uri_encode;
use super::xml;

/// A multipart upload in progress.
#[derive(Debug)]
pub(crate) struct Multipart {
    bucket: Bucket,
    key: String,
    id: String,
}

impl Bucket {
    /// Starts a multipart upload of `key`.
    pub(crate) async fn create_multipart(&self, key: &str) -> Result<Multipart, S3Error> {
        let response = self.send(Method::POST, Some(key), &[("uploads", "")], &[], None).await?;
        let text = String::from_utf8_lossy(&self.body(response).await?).into_owned();
        let id = xml::text(&text, "UploadId")
            .ok_or_else(|| S3Error::Protocol("CreateMultipartUpload answered no UploadId".into()))?;
        Ok(Multipart { bucket: self.clone(), key: key.to_owned(), id })
    }
}

/// S3 answers some errors of a copy or a completion with 200 and an
/// `<Error>` body.
fn error_in_body(text: &str) -> Result<(), S3Error> {
    if text.contains("<Error>") {
        return Err(S3Error::Status {
            status: 500,
            code: xml::text(text, "Code").unwrap_or_else(|| "InternalError".into()),
            message: xml::text(text, "Message").unwrap_or_default(),
        });
    }
    Ok(())
}

impl Multipart {
    /// Uploads part `number` (from 1); its ETag.
    pub(crate) async fn upload_part(&self, number: u32, body: Bytes) -> Result<String, S3Error> {
        let number = number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", self.id.as_str())];
        let response = self.bucket.send(Method::PUT, Some(&self.key), &query, &[], Some(body)).await?;
        etag_of(&response)
    }

    /// Makes part `number` a copy of `range` of object `source`, inside
    /// the store; its ETag.
    pub(crate) async fn copy_part(
        &self,
        number: u32,
        source: &str,
        range: Range<u64>,
    ) -> Result<String, S3Error> {
        let number = number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", self.id.as_str())];
        let copy_source = format!("/{}/{}", uri_encode(self.bucket.name(), false), uri_encode(source, true));
        let copy_range = format!("bytes={}-{}", range.start, range.end - 1);
        let headers =
            [("x-amz-copy-source", copy_source.as_str()), ("x-amz-copy-source-range", copy_range.as_str())];
        let response = self.bucket.send(Method::PUT, Some(&self.key), &query, &headers, None).await?;
        let text = String::from_utf8_lossy(&response.bytes().await?).into_owned();
        error_in_body(&text)?;
        self.bucket.counters.copied.fetch_add(range.end - range.start, Ordering::Relaxed);
        xml::text(&text, "ETag").ok_or_else(|| S3Error::Protocol("UploadPartCopy answered no ETag".into()))
    }

    /// Joins the parts (number, ETag; in order) into the object.
    pub(crate) async fn complete(self, parts: &[(u32, String)]) -> Result<(), S3Error> {
        let mut body = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            body.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
                xml::escape(etag)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let query = [("uploadId", self.id.as_str())];
        let response =
            self.bucket.send(Method::POST, Some(&self.key), &query, &[], Some(Bytes::from(body))).await?;
        let text = String::from_utf8_lossy(&response.bytes().await?).into_owned();
        error_in_body(&text)
    }

    /// Gives the upload up; the store drops its parts.
    pub(crate) async fn abort(self) -> Result<(), S3Error> {
        let query = [("uploadId", self.id.as_str())];
        match self.bucket.send(Method::DELETE, Some(&self.key), &query, &[], None).await {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }
}
