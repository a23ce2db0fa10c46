// uploadFiles: a folder's files up to a server, a few at a time, each with
// uploadFile (protocol v2: only what changed travels, committed atomically).
// Before anything is sent, the server's listing of the folder
// (GET /api/v2/list) is read once: a file whose size and modification time
// equal the server's copy is unchanged and costs nothing, as rsync's quick
// check. uploadFile gives the server each file's time at commit, so a
// folder's second upload sends almost nothing, and one cut short (a closed
// tab, an abort) goes on from where it stopped: what was committed is
// unchanged, and a file halfway through resumes its own upload.
import { uploadFile } from "diffcopy:glue";

/** The relative path of one entry: `{ file, path }`, or a File from a
 * `webkitdirectory` input (`webkitRelativePath`), or a bare File (its name). */
function entryOf(item) {
  if (item && typeof item === "object" && "file" in item) {
    return { file: item.file, path: String(item.path ?? item.file.name ?? "") };
  }
  return { file: item, path: item.webkitRelativePath || item.name || "" };
}

function failure(code, message) {
  const error = new Error(message);
  error.code = code;
  return error;
}

async function bearer(token) {
  if (typeof token === "function") return await token();
  return token ?? null;
}

/** Every file the server has below `prefix`: path -> { size, mtime }. */
async function listing(serverUrl, prefix, token, signal) {
  const known = new Map();
  let cursor = null;
  for (let pages = 0; pages < 100000; pages++) {
    const query = new URLSearchParams({ prefix, etags: "false" });
    if (cursor) query.set("cursor", cursor);
    const headers = {};
    const current = await bearer(token);
    if (current) headers.Authorization = `Bearer ${current}`;
    const response = await fetch(`${serverUrl}/api/v2/list?${query}`, { headers, signal });
    if (!response.ok) {
      let body = {};
      try { body = await response.json(); } catch { /* not JSON */ }
      const error = failure(body.error ?? "http_error", body.message ?? `listing ${prefix}: HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    const page = await response.json();
    for (const f of page.files) known.set(f.path, { size: f.size, mtime: f.mtime });
    if (!page.cursor || page.cursor === cursor) return known;
    cursor = page.cursor;
  }
  return known;
}

/**
 * Uploads `files` below `options.prefix` on the server: each as `prefix +
 * its relative path`, skipping those the server already has with the same
 * size and modification time. Resolves to a `FilesResult`; rejects only
 * for an abort, a refused listing or bad options (a file that fails is
 * reported in the result and the others go on).
 */
export async function uploadFiles(files, options = {}) {
  const started = performance.now();
  const entries = Array.from(files ?? [], entryOf);
  if (entries.some((e) => !(e.file instanceof Blob) || !e.path)) {
    throw failure("invalid_option", "uploadFiles takes Files with a relative path, or { file, path } objects");
  }
  let prefix = String(options.prefix ?? "").replace(/^\/+/, "");
  if (prefix && !prefix.endsWith("/")) prefix += "/";
  const serverUrl = String(options.serverUrl ?? "").replace(/\/+$/, "");
  const inFlight = Math.max(1, Math.min(16, options.filesInFlight ?? 4));
  const signal = options.signal;
  const known = options.compare === "content" ? new Map() : await listing(serverUrl, prefix, options.token, signal);

  const totalBytes = entries.reduce((sum, e) => sum + e.file.size, 0);
  const done = { files: 0, bytes: 0 };
  const partial = new Map();
  const report = () => {
    let bytes = done.bytes;
    for (const b of partial.values()) bytes += b;
    options.onProgress?.({ filesDone: done.files, filesTotal: entries.length, bytesDone: bytes, bytesTotal: totalBytes });
  };
  const results = new Array(entries.length);
  const finish = (i, result) => {
    results[i] = result;
    partial.delete(i);
    done.files += 1;
    done.bytes += entries[i].file.size;
    options.onFile?.(result);
    report();
  };
  report();

  // What each file's uploadFile takes: the options, less this call's own.
  const { prefix: _p, filesInFlight: _f, compare: _c, onFile: _o, onProgress: _g, ...single } = options;
  let next = 0;
  let aborted = null;
  const worker = async () => {
    while (next < entries.length && !aborted) {
      const i = next++;
      const { file, path } = entries[i];
      const target = prefix + path.replace(/^\/+/, "");
      const there = known.get(target);
      const lastModified = typeof file.lastModified === "number" ? file.lastModified : null;
      if (there && there.size === file.size && lastModified !== null && there.mtime === lastModified) {
        finish(i, { path: target, status: "unchanged", bytesSent: 0, totalBytes: file.size });
        continue;
      }
      try {
        const result = await uploadFile(file, {
          ...single,
          path: target,
          // The file's share of the bar: as much of it as its upload has sent.
          onProgress: (phase, sent, total) => {
            if (phase === "uploading" && total > 0) partial.set(i, (file.size * Math.min(sent, total)) / total);
            report();
          },
        });
        finish(i, { path: target, status: "sent", bytesSent: result.bytesSent, totalBytes: file.size, etag: result.etag });
      } catch (error) {
        if (error?.code === "aborted" || signal?.aborted) {
          aborted = error;
          return;
        }
        finish(i, { path: target, status: "failed", bytesSent: 0, totalBytes: file.size, code: error?.code ?? "error", message: String(error?.message ?? error) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, entries.length) }, worker));
  if (aborted) throw aborted;
  const count = (status) => results.filter((r) => r.status === status).length;
  return {
    files: results,
    sent: count("sent"),
    unchanged: count("unchanged"),
    failed: count("failed"),
    bytesSent: results.reduce((sum, r) => sum + r.bytesSent, 0),
    totalBytes,
    seconds: (performance.now() - started) / 1000,
  };
}
