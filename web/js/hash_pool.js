// Web Workers that hash slices of one Blob: each worker reads its own
// slices (so reading, copying and hashing run on several threads) and answers
// with the digests of the blocks in them. hash_workers.rs drives it.
//
// A worker runs from a blob: URL, so the package needs no extra file to be
// served and the worker shares the page's origin (and so its secure context,
// for WebCrypto). For wasm hashing it instantiates the WebAssembly module the
// main thread already compiled, with this package's JS glue:
// * in the npm package (web/npm/entry.js gives `useWorkerSource` the text):
//   the worker's module is `workerMain` and the glue bundled together as one
//   self-contained text, so that no bundler's renaming, minifying or moving
//   of files can break it;
// * in wasm-pack's output (the wasm-bindgen tests, the benchmarks), served as
//   files: the worker is `workerMain`'s own source, and imports the glue from
//   the glue's URL, which the main thread sends.

/** The code of each worker. Messages in: {init} once, then {id, start, end}.
 * `init.engine` is "webcrypto", "wasm" (API v1's digests, `init.key` the
 * hash name), "delta" (protocol v2's block hashes, `init.key` the seed) or
 * "search" (a download's search of the blob, the old file, for the version
 * whose block hashes are `init.hashes`; then messages are {id, op, bytes}).
 * `loadGlue(init)` resolves to the glue's module. */
export function workerMain(loadGlue) {
  // Bytes asked of the file per read. Chromium hands a Blob's bytes over in
  // 64 KiB pieces; asking for more only makes it buffer them on its side.
  const READ_SIZE = 64 * 1024;
  let job = null;
  // Block-sized buffers no request is using (a worker may have several at once).
  const spare = [];
  const fail = (e) => ({ name: (e && e.name) || "Error", message: String((e && e.message) || e), code: e && e.code });

  // A BYOB reader of `blob`, or null where this browser has none.
  function byobReader(blob) {
    try {
      return blob.stream().getReader({ mode: "byob" });
    } catch {
      return null;
    }
  }

  // Without a BYOB reader: reads `blob` whole and calls `onBlock(view)` for
  // each block of it.
  async function eachBlockOfWhole(blob, blockSize, onBlock) {
    const buffer = await blob.arrayBuffer();
    for (let offset = 0; offset < buffer.byteLength; offset += blockSize) {
      onBlock(new Uint8Array(buffer, offset, Math.min(blockSize, buffer.byteLength - offset)));
    }
  }

  // Reads `blob` straight into one reused block-sized buffer and calls
  // `onBlock(view)` for each block; the view is valid only during the call.
  // A reused buffer is what makes this cheap: a fresh ArrayBuffer per read
  // page-faults on every 4 KiB of it.
  async function eachBlock(blob, blockSize, onBlock) {
    const reader = byobReader(blob);
    if (!reader) return eachBlockOfWhole(blob, blockSize, onBlock);
    let buffer = spare.pop() ?? new ArrayBuffer(blockSize);
    let filled = 0;
    try {
      for (;;) {
        const want = Math.min(READ_SIZE, blockSize - filled);
        const { done, value } = await reader.read(new Uint8Array(buffer, filled, want));
        // Each read takes the buffer over and gives it back in `value`.
        if (value) buffer = value.buffer;
        if (done) break;
        filled += value.byteLength;
        if (filled === blockSize) {
          onBlock(new Uint8Array(buffer, 0, filled));
          filled = 0;
        }
      }
      if (filled > 0) onBlock(new Uint8Array(buffer, 0, filled));
    } finally {
      if (buffer.byteLength === blockSize) spare.push(buffer);
    }
  }

  // Reads `blob` in pieces of at most READ_SIZE that never cross a block
  // boundary, through one reused buffer: `onPart(view)` for each piece (the
  // view is valid only during the call), `onEnd()` after each block's last.
  // Hashing each piece as it arrives keeps the bytes in cache.
  async function eachPart(blob, blockSize, onPart, onEnd) {
    const reader = byobReader(blob);
    if (!reader) {
      return eachBlockOfWhole(blob, blockSize, (block) => {
        onPart(block);
        onEnd();
      });
    }
    let buffer = new ArrayBuffer(READ_SIZE);
    let filled = 0;
    for (;;) {
      const want = Math.min(READ_SIZE, blockSize - filled);
      const { done, value } = await reader.read(new Uint8Array(buffer, 0, want));
      if (value) buffer = value.buffer;
      if (done) break;
      onPart(value);
      filled += value.byteLength;
      if (filled === blockSize) {
        onEnd();
        filled = 0;
      }
    }
    if (filled > 0) onEnd();
  }

  self.onmessage = async ({ data }) => {
    if (data.init) {
      try {
        job = data.init;
        if (job.engine === "wasm" || job.engine === "delta" || job.engine === "search") {
          const glue = await loadGlue(job);
          await glue.default({ module_or_path: job.module });
          job.hashBlock = glue.hashBlock;
          // A search reads the old file synchronously (FileReaderSync), so
          // it runs here and not on the page's thread.
          if (job.engine === "search") job.search = new glue.DeltaSearch(job.hashes, job.blob);
          // One hasher per request in flight: a hasher keeps a block's state
          // between reads, and a worker may be given several slices at once.
          if (job.engine === "delta") {
            job.Hasher = glue.DeltaBlockHasher;
            job.idleHashers = [];
          }
        }
        self.postMessage({ ready: true });
      } catch (e) {
        self.postMessage({ ready: false, error: fail(e) });
      }
      return;
    }
    if (data.op) {
      try {
        const answer = job.search[data.op](data.bytes);
        self.postMessage({ id: data.id, digests: answer }, [answer.buffer]);
      } catch (e) {
        self.postMessage({ id: data.id, error: fail(e) });
      }
      return;
    }
    const { id, start, end } = data;
    try {
      const { blockSize, digestLength } = job;
      const digests = new Uint8Array(Math.ceil((end - start) / blockSize) * digestLength);
      const pending = [];
      let index = 0;
      if (job.engine === "delta") {
        const hasher = job.idleHashers.pop() ?? new job.Hasher(job.key);
        await eachPart(job.blob.slice(start, end), blockSize, (part) => hasher.update(part), () => {
          digests.set(hasher.finish(), index++ * digestLength);
        });
        // Only a hasher that ended on a block's end is clean to reuse.
        job.idleHashers.push(hasher);
        self.postMessage({ id, digests }, [digests.buffer]);
        return;
      }
      // Both engines copy the block before they return, so the buffer can be reused.
      await eachBlock(job.blob.slice(start, end), blockSize, (block) => {
        const at = index++ * digestLength;
        if (job.engine !== "webcrypto") {
          digests.set(job.hashBlock(job.key, block), at);
        } else {
          pending.push(crypto.subtle.digest(job.webcryptoName, block).then((d) => digests.set(new Uint8Array(d), at)));
        }
      });
      await Promise.all(pending);
      self.postMessage({ id, digests }, [digests.buffer]);
    } catch (e) {
      self.postMessage({ id, error: fail(e) });
    }
  };
}

/** The worker's whole module as text, set by the npm package's module;
 * `null` in wasm-pack's output. */
let workerSource = null;

/** Called once by the npm package's module with its worker's text. */
export function useWorkerSource(text) {
  workerSource = text;
}

/** An error from a worker, as a real `Error` keeping the original name. */
function toError(description) {
  const error = new Error(description.message);
  error.name = description.name;
  if (description.code) error.code = description.code;
  return error;
}

/** A pool of hashing workers over one Blob. */
export class HashPool {
  /**
   * Starts `count` workers hashing `blob` as `init` says:
   * {engine: "webcrypto" | "wasm" | "delta", key, webcryptoName?, blockSize, digestLength, glue?, module?}.
   * Throws where workers cannot be made (no Worker, or a CSP that forbids blob: workers).
   */
  constructor(blob, count, init) {
    const source = workerSource ?? `(${workerMain.toString()})((job) => import(job.glue));`;
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    this.workers = [];
    this.pending = new Map();
    this.nextId = 0;
    try {
      for (let i = 0; i < count; i++) {
        const worker = new Worker(url, { type: "module", name: `diffcopy-hash-${i}` });
        worker.load = 0;
        this.workers.push(worker);
      }
    } catch (e) {
      this.close();
      throw e;
    } finally {
      URL.revokeObjectURL(url);
    }
    this.ready = Promise.all(
      this.workers.map(
        (worker) =>
          new Promise((resolve, reject) => {
            worker.onerror = (event) => {
              event.preventDefault();
              const error = new Error(event.message || "a hashing worker failed to start");
              reject(error);
              this.failAll(error);
            };
            worker.onmessage = ({ data }) => {
              if (data.ready === false) {
                reject(toError(data.error));
              } else if (data.ready) {
                resolve();
              } else {
                this.settle(worker, data);
              }
            };
            worker.postMessage({ init: { ...init, blob } });
          }),
      ),
    );
  }

  /** Resolves once every worker can hash; rejects if one cannot. */
  whenReady() {
    return this.ready;
  }

  /** The digests of the blocks in bytes `start..end` (whole blocks but the last), concatenated. */
  digest(start, end) {
    const worker = this.workers.reduce((a, b) => (b.load < a.load ? b : a));
    const id = this.nextId++;
    worker.load++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, start, end });
    });
  }

  /** A search worker's answer to `op` on `bytes` (see workerMain). */
  request(op, bytes) {
    const worker = this.workers[0];
    const id = this.nextId++;
    worker.load++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, op, bytes }, [bytes.buffer]);
    });
  }

  /** Settles the request a worker answered. */
  settle(worker, { id, digests, error }) {
    const request = this.pending.get(id);
    if (!request) return;
    this.pending.delete(id);
    worker.load--;
    if (error) request.reject(toError(error));
    else request.resolve(digests);
  }

  /** Rejects every request in flight. */
  failAll(error) {
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }

  /** Stops every worker at once; requests in flight never settle. */
  close() {
    for (const worker of this.workers) worker.terminate();
    this.workers = [];
    this.pending.clear();
  }
}
