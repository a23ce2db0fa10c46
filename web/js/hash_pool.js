// Web Workers that hash slices of one Blob: each worker reads its own
// slices (so reading, copying and hashing run on several threads) and answers
// with the digests of the whole blocks in them. hash_workers.rs drives it.
//
// The worker runs from a blob: URL made of `workerMain` below, so the package
// needs no extra file to be served and the worker shares the page's origin
// (and so its secure context, for WebCrypto). For wasm hashing the worker
// imports this package's own JS glue (its URL comes from the main thread) and
// instantiates the WebAssembly module the main thread already compiled.

/** The code of each worker. Messages in: {init} once, then {id, start, end}. */
function workerMain() {
  let job = null;
  const fail = (e) => ({ name: (e && e.name) || "Error", message: String((e && e.message) || e) });
  self.onmessage = async ({ data }) => {
    if (data.init) {
      try {
        job = data.init;
        if (job.engine === "wasm") {
          const glue = await import(job.glue);
          await glue.default({ module_or_path: job.module });
          job.hashBlock = glue.hashBlock;
        }
        self.postMessage({ ready: true });
      } catch (e) {
        self.postMessage({ ready: false, error: fail(e) });
      }
      return;
    }
    const { id, start, end } = data;
    try {
      const buffer = await job.blob.slice(start, end).arrayBuffer();
      const { blockSize, digestLength } = job;
      const count = Math.ceil(buffer.byteLength / blockSize);
      const digests = new Uint8Array(count * digestLength);
      const block = (i) =>
        new Uint8Array(buffer, i * blockSize, Math.min(blockSize, buffer.byteLength - i * blockSize));
      if (job.engine === "wasm") {
        for (let i = 0; i < count; i++) digests.set(job.hashBlock(job.hash, block(i)), i * digestLength);
      } else {
        // Every digest is started before the first is awaited.
        const pending = Array.from({ length: count }, (_, i) => crypto.subtle.digest(job.webcryptoName, block(i)));
        for (let i = 0; i < count; i++) digests.set(new Uint8Array(await pending[i]), i * digestLength);
      }
      self.postMessage({ id, digests }, [digests.buffer]);
    } catch (e) {
      self.postMessage({ id, error: fail(e) });
    }
  };
}

/** An error from a worker, as a real `Error` keeping the original name. */
function toError(description) {
  const error = new Error(description.message);
  error.name = description.name;
  return error;
}

/** A pool of hashing workers over one Blob. */
export class HashPool {
  /**
   * Starts `count` workers hashing `blob` as `init` says:
   * {engine: "webcrypto" | "wasm", hash, webcryptoName, blockSize, digestLength, glue?, module?}.
   * Throws where workers cannot be made (no Worker, or a CSP that forbids blob: workers).
   */
  constructor(blob, count, init) {
    const source = `(${workerMain.toString()})();`;
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
