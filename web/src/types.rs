//! TypeScript declarations for the plain objects the API takes and returns.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A block hash algorithm. */
export type HashName = "sha1" | "sha256" | "blake3";

/** How `hashBlob` hashes: WebCrypto per block (secure contexts, SHA only) or wasm. */
export type HashStrategy = "auto" | "webcrypto" | "wasm";

/** Options of `hashBlob`. */
export interface HashBlobOptions {
  /** Block hash algorithm; default "sha1". */
  hash?: HashName;
  /** Block size in bytes; default 1 MiB (1048576). */
  blockSize?: number;
  /** Default "auto": WebCrypto where available and the hash allows, else wasm. */
  strategy?: HashStrategy;
  /** Web Workers that read and hash slices, 0 to 16; 0 hashes on the calling
   * thread. Default: 4 for blobs of 8 MiB and more, falling back to the calling thread where workers cannot start;
   * asked for explicitly, a failure to start is the error "workers_unavailable". */
  workers?: number;
  /** Bytes per slice. In workers (default 16 to 64 MiB) a slice is streamed
   * through one block-sized buffer; on the calling thread it is read whole
   * (default 4 MiB for wasm, 8 MiB for webcrypto). Workers and webcrypto
   * round it down to whole blocks. */
  sliceSize?: number;
  /** Slices in flight (all workers together); default one per worker, or 4
   * on the calling thread (as many as fit in 32 MiB for webcrypto). */
  readsInFlight?: number;
  /** Called with bytes hashed and the blob's size, about 20 times a second. */
  onProgress?: (done: number, total: number) => void;
  /** Aborts hashing; the promise rejects with code "aborted". */
  signal?: AbortSignal;
}

/** Options of `deltaHashBlob`. */
export interface DeltaHashOptions {
  /** The session's seed, 16 hex digits (as `POST /api/v2/uploads` answers); default 0. */
  seed?: string;
  /** Block size in bytes; default 1 MiB. */
  blockSize?: number;
  /** As in `HashBlobOptions`. */
  workers?: number;
  sliceSize?: number;
  readsInFlight?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** What `diffSignatures` finds. */
export interface SignatureDiff {
  /** Indexes of the source blocks the target lacks, ascending. */
  blocks: number[];
  blocksToSend: number;
  /** Real lengths: the short last block counts as what it is. */
  bytesToSend: number;
  totalBlocks: number;
  /** The source's size. */
  totalBytes: number;
  /** Share of the source's bytes already in place in the target, in percent. */
  similarity: number;
}

/** The header of a binary signature. */
export interface SignatureInfo {
  hash: HashName;
  blockSize: number;
  fileSize: number;
  blockCount: number;
}

/** The phases `uploadFile` reports. Protocol v2: "hashing" (bytes), then
 * "searching" (the server's search, in rounds: done and total count rounds,
 * one per level), "uploading" (literal bytes), "committing". API v1:
 * "comparing" (fetching the server's signature), "hashing" and "uploading"
 * overlap; "committing" comes last. */
export type UploadPhase = "comparing" | "searching" | "hashing" | "uploading" | "committing";

/** Which protocol `uploadFile` speaks: "auto" (v2 where the server has it,
 * else API v1), "v2" (else the error "no_protocol_v2") or "v1". */
export type UploadProtocol = "auto" | "v2" | "v1";

/** Options of `uploadFile`. */
export interface UploadOptions {
  /** The server's origin, e.g. "http://127.0.0.1:8080"; default: this page's origin. */
  serverUrl?: string;
  /** Target path under the server's root; default: the file's name. */
  path?: string;
  /** Default "auto". */
  protocol?: UploadProtocol;
  /** Default 1 MiB; the server accepts 4 KiB to 64 MiB. */
  blockSize?: number;
  /** API v1's block hash; default "sha1". (Protocol v2 hashes with seeded XXH3.) */
  hash?: HashName;
  /** API v1's hashing strategy; default "auto". (Protocol v2 hashes in wasm.) */
  strategy?: HashStrategy;
  /** Hashing workers, as in `HashBlobOptions`. */
  workers?: number;
  /** Requests with data (blocks, literal frames) in flight; default 4. */
  concurrency?: number;
  /** Sent as `Authorization: Bearer <token>`: a string, or a function
   * returning one (or a promise of one). A function is called before the
   * first request and again whenever the server answers that the token
   * expired (401 `token_expired`); the upload then goes on where it was. */
  token?: string | (() => string | Promise<string>);
  /** Remember the session in localStorage and continue it next time; default true. */
  resume?: boolean;
  /** Seconds to keep trying, resuming, while the server answers 503 with
   * Retry-After (its object store down or throttling); default 120, 0: never. */
  retryFor?: number;
  /** Bytes done and total per phase; totals of "uploading" grow while hashing. */
  onProgress?: (phase: UploadPhase, done: number, total: number) => void;
  /** Aborts the upload (code "aborted"); the session stays resumable. */
  signal?: AbortSignal;
}

/** What `uploadFile` did. */
export interface UploadResult {
  path: string;
  /** The protocol spoken. */
  protocol: "v2" | "v1";
  /** Bytes of the file sent by this call (v2: literal bytes, before compression). */
  bytesSent: number;
  /** Blocks with bytes sent by this call. */
  blocksSent: number;
  /** v1: changed blocks an earlier, interrupted call had sent already (v2: 0). */
  blocksResumed: number;
  totalBlocks: number;
  totalBytes: number;
  /** Share of the file's bytes that were already on the server (anywhere in
   * its old version, for v2), in percent. */
  similarity: number;
  /** v2: every request body this call sent (hashes, frames), in bytes. */
  payloadBytes?: number;
  /** v2: the file's bytes that came as literal data, this call or an earlier one. */
  literalBytes?: number;
  /** v2: literal bytes an earlier, interrupted call had sent. */
  bytesResumed?: number;
  /** v2: bytes the server took from its old version, and of those, how many
   * from elsewhere than their own offset. */
  copiedBytes?: number;
  movedBytes?: number;
  /** v2: where the sent and the moved bytes are in the file, as [start, end)
   * ranges (at most 1024 each; neighbours joined beyond that). */
  sentRanges?: [number, number][];
  movedRanges?: [number, number][];
  /** v2: how the server installed the new version: "reflink", "journal", "replace" or "none". */
  commit?: string;
  seconds: number;
  /** The new file version's ETag on the server. */
  etag: string;
  /** The hashing strategy used. */
  strategy: "webcrypto" | "wasm";
  /** Web Workers that hashed the file; 0 when the calling thread did. */
  hashWorkers: number;
}

/** Codes of errors raised in the browser. Errors answered by the server carry
 * the server's code instead (e.g. "target_changed", "missing_blocks",
 * "unauthorized", "bad_path") and its HTTP `status`. */
export type LocalErrorCode =
  | "invalid_option" | "unknown_hash" | "bad_signature" | "signature_mismatch"
  | "hasher_finished" | "read_failed" | "aborted" | "webcrypto_unavailable" | "workers_unavailable"
  | "network_error" | "http_error" | "bad_response" | "no_protocol_v2" | "token_unavailable"
  | "write_failed" | "file_hash_mismatch" | "unsupported";

/** Every error this package throws or rejects with. */
export interface DiffcopyError extends Error {
  name: "DiffcopyError";
  code: LocalErrorCode | (string & {});
  /** The HTTP status, for errors answered by the server. */
  status?: number;
  /** For "missing_blocks": runs of block indexes, end exclusive. */
  missing?: [number, number][];
}
"#;

/// The types of `downloadFile`, in the `diffcopy-web/download` module only.
#[cfg(feature = "download")]
#[wasm_bindgen(typescript_custom_section)]
const DOWNLOAD_TYPES: &'static str = r#"
/** A phase of `downloadFile`, as `onProgress` names it. */
export type DownloadPhase = "comparing" | "hashing" | "searching" | "receiving" | "saving";

/** Options of `downloadFile`. */
export interface DownloadOptions {
  /** The server's file (relative path). Required. */
  path: string;
  /** The server's base URL; default: this page's origin. */
  serverUrl?: string;
  /** As in `UploadOptions`: a string, or a function called again when the token expires. */
  token?: string | (() => string | Promise<string>);
  /** Literal data requests in flight; default 4. */
  concurrency?: number;
  /** Block size the server hashes its version with; default 1 MiB. */
  blockSize?: number;
  /** Workers hashing the local file, as in `HashBlobOptions`. */
  workers?: number;
  /** Seconds to keep trying while the server answers 503 with Retry-After; default 120. */
  retryFor?: number;
  /** Bytes (or, for "searching", rounds) done and total per phase; "receiving"
   * counts the new version's bytes put in place. */
  onProgress?: (phase: DownloadPhase, done: number, total: number) => void;
  /** Aborts the download (code "aborted"); the local file stays as it was. */
  signal?: AbortSignal;
}

/** What `downloadFile` did. */
export interface DownloadResult {
  path: string;
  /** Bytes of the file that came from the server (literal data, before compression). */
  bytesReceived: number;
  /** Every body both ways: block and piece hashes, needs, frames. */
  payloadBytes: number;
  /** Bytes of the new version taken from the local file, and of those, how
   * many were written at another offset than they had. */
  copiedBytes: number;
  movedBytes: number;
  totalBytes: number;
  /** The local file was the server's version already, and was not written. */
  unchanged: boolean;
  /** Where the received bytes are in the file, as [start, end) ranges (at most 1024). */
  sentRanges: [number, number][];
  seconds: number;
  /** The server version's ETag. */
  etag: string;
}
"#;
