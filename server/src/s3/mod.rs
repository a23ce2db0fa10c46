//! A small S3 client, just what a bucket-backed server needs: objects
//! read by range, written whole or conditionally (`If-Match`,
//! `If-None-Match: *`), listed and deleted, and multipart uploads whose
//! parts are uploaded or copied from a range of another object
//! (`UploadPartCopy`). Requests go over the program's one HTTP stack
//! (reqwest, rustls with ring), signed with SigV4 by reqsign, with keys
//! from AWS's credential chain (`credentials.rs`); bodies carry their
//! `Content-MD5`; failures are retried as AWS's standard mode does
//! (`retry.rs`). Path-style addressing for custom endpoints (every
//! S3-compatible store takes it), virtual-hosted for AWS (`address.rs`).

mod address;
mod bucket;
mod credentials;
mod error;
mod multipart;
mod retry;
mod xml;

pub use address::Addressing;
pub(crate) use bucket::{Bucket, BucketConfig, Condition};
pub(crate) use credentials::{Credentials, region_from_environment};
pub(crate) use error::S3Error;

/// The smallest part of a multipart upload, but for the last.
pub(crate) const MIN_PART: u64 = 5 << 20;
/// The largest part.
pub(crate) const MAX_PART: u64 = 5 << 30;
/// The most parts one upload may have.
pub(crate) const MAX_PARTS: u64 = 10_000;
