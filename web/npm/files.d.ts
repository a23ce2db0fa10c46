
/** One file for `uploadFiles`: a File (or Blob) and its path below `prefix`. */
export interface FileEntry {
  file: Blob;
  path: string;
}

export interface FilesOptions extends Omit<UploadOptions, "path" | "onProgress"> {
  /** The folder on the server the files go below, e.g. "users/42/photos/"; default: the root. */
  prefix?: string;
  /** Files uploaded at once; default 4. */
  filesInFlight?: number;
  /** "size-mtime" (default): a file whose size and lastModified equal the server's copy is not sent; "content": every file goes through uploadFile, which sends only what differs. */
  compare?: "size-mtime" | "content";
  /** Called as each file finishes. */
  onFile?: (result: FileResult) => void;
  /** The whole folder's progress. */
  onProgress?: (progress: { filesDone: number; filesTotal: number; bytesDone: number; bytesTotal: number }) => void;
}

export interface FileResult {
  /** Its path on the server. */
  path: string;
  status: "sent" | "unchanged" | "failed";
  /** Bytes of it sent (protocol v2: literal bytes, before compression). */
  bytesSent: number;
  totalBytes: number;
  etag?: string;
  /** For "failed": the error's code and message; the other files went on. */
  code?: string;
  message?: string;
}

export interface FilesResult {
  /** One per file, in the order given. */
  files: FileResult[];
  sent: number;
  unchanged: number;
  failed: number;
  bytesSent: number;
  totalBytes: number;
  seconds: number;
}

/**
 * Uploads a folder's files below `options.prefix`: Files from a
 * `webkitdirectory` input (their `webkitRelativePath`), or `{ file, path }`
 * entries. The server's listing is read first; a file with the same size and
 * modification time there is not sent. The others go through `uploadFile`, a
 * few at a time. Rejects only on an abort, a refused listing or bad options.
 */
export function uploadFiles(files: Iterable<Blob | FileEntry>, options?: FilesOptions): Promise<FilesResult>;
