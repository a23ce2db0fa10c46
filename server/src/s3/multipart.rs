//! Multipart uploads: parts uploaded, or copied from a range of another
//! object inside the store, then completed into one object.
//!
//! Every step may be sent again (`retry.rs`): a part sent twice is the
//! same part, and a completion whose answer was lost is recognised by the
//! object's ETag, which S3 derives from the parts' own.

use std::ops::Range;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use md5::{Digest as _, Md5};
use reqwest::Method;

use super::address::uri_encode;
use super::bucket::{Bucket, Failed, Request, etag_of};
use super::error::S3Error;
use super::xml;

/// A multipart upload in progress.
#[derive(Debug)]
pub(crate) struct Multipart {
    bucket: Bucket,
    key: String,
    id: String,
}

impl Bucket {
    /// Starts a multipart upload of `key`. (One whose answer was lost is
    /// left to the bucket's lifecycle rule for incomplete uploads.)
    pub(crate) async fn create_multipart(&self, key: &str) -> Result<Multipart, S3Error> {
        let request = Request::new(Method::POST, Some(key)).query(&[("uploads", "")]);
        let text = self.call(&request, |response| self.text(response)).await?;
        let id = xml::text(&text, "UploadId")
            .ok_or_else(|| S3Error::Protocol("CreateMultipartUpload answered no UploadId".into()))?;
        Ok(Multipart { bucket: self.clone(), key: key.to_owned(), id })
    }
}

/// S3 answers some errors of a copy or a completion with 200 and an
/// `<Error>` body; they are retried like the same errors with their status.
fn error_in_body(text: &str) -> Result<(), S3Error> {
    if text.contains("<Error>") {
        return Err(S3Error::Status {
            status: 200,
            code: xml::text(text, "Code").unwrap_or_else(|| "InternalError".into()),
            message: xml::text(text, "Message").unwrap_or_default(),
        });
    }
    Ok(())
}

/// The ETag S3 gives an object completed from parts with these ETags: the
/// MD5 of their MD5s, a dash, their count.
fn multipart_etag(parts: &[(u32, String)]) -> Option<String> {
    let mut md5 = Md5::new();
    for (_, etag) in parts {
        let mut digest = [0u8; 16];
        diffcopy_core::hex::decode_to_slice(etag.trim_matches('"').as_bytes(), &mut digest).ok()?;
        md5.update(digest);
    }
    Some(format!("\"{}-{}\"", diffcopy_core::hex::encode(&md5.finalize()), parts.len()))
}

impl Multipart {
    /// Uploads part `number` (from 1); its ETag.
    pub(crate) async fn upload_part(&self, number: u32, body: Bytes) -> Result<String, S3Error> {
        let number = number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", self.id.as_str())];
        let request = Request::new(Method::PUT, Some(&self.key)).query(&query).body(body);
        Ok(self.bucket.call(&request, |response| async move { etag_of(&response) }).await?)
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
        let request = Request::new(Method::PUT, Some(&self.key)).query(&query).headers(&headers);
        let bucket = &self.bucket;
        let text = bucket
            .call(&request, |response| async move {
                let text = bucket.text(response).await?;
                error_in_body(&text)?;
                Ok(text)
            })
            .await?;
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
        let request = Request::new(Method::POST, Some(&self.key)).query(&query).body(Bytes::from(body));
        let bucket = &self.bucket;
        let completed = bucket
            .call(&request, |response| async move { error_in_body(&bucket.text(response).await?) })
            .await;
        match completed {
            Ok(()) => Ok(()),
            // Completed by an attempt whose answer was lost: the upload is
            // gone and the object is there, with the parts' ETag.
            Err(Failed { error, retried: true }) if matches!(&error, S3Error::Status { code, .. } if code == "NoSuchUpload") =>
            {
                let expected = multipart_etag(parts);
                match self.bucket.etag(&self.key).await? {
                    Some(etag) if Some(&etag) == expected.as_ref() => Ok(()),
                    _ => Err(error),
                }
            }
            Err(failed) => Err(failed.error),
        }
    }

    /// Gives the upload up; the store drops its parts.
    pub(crate) async fn abort(self) -> Result<(), S3Error> {
        let query = [("uploadId", self.id.as_str())];
        let request = Request::new(Method::DELETE, Some(&self.key)).query(&query);
        match self.bucket.call(&request, |_| async { Ok(()) }).await {
            Err(failed) if !failed.error.is_not_found() => Err(failed.error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::multipart_etag;

    #[test]
    fn the_etag_of_a_completed_upload() {
        // Two parts, MD5s of "a" and "b"; S3's ETag is MD5(md5(a) || md5(b)) "-2".
        let parts = [
            (1, "\"0cc175b9c0f1b6a831c399e269772661\"".to_owned()),
            (2, "\"92eb5ffee6ae2fec3ad71c777531578f\"".to_owned()),
        ];
        assert_eq!(multipart_etag(&parts).as_deref(), Some("\"96e024ba2074fe77e8e965ba43a704be-2\""));
        assert_eq!(multipart_etag(&[(1, "\"not-hex\"".into())]), None);
    }
}
