// Ways of reading and hashing the same File, each timed end to end.
// Served with /pkg/ (wasm-pack --target web output) and /hash-wasm/ beside it;
// run.mjs drives it. Every hashing row returns its block digests so that
// run.mjs can check that all of them agree.
import init, { DeltaBlockHasher, deltaHashBlob, hashBlob, hashBlock, hashStrategy } from "/pkg/diffcopy_web.js";
import { createSHA1 } from "/hash-wasm/index.esm.js";

const MiB = 1 << 20;
const BLOCK = MiB;

await init();

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** Reads `file` in `slice`-byte pieces, `depth` in flight, calling `each(buffer)` in order. */
async function readOrdered(file, slice, depth, each) {
  const queue = [];
  let next = 0;
  const fill = () => {
    while (queue.length < depth && next < file.size) {
      const end = Math.min(file.size, next + slice);
      queue.push(file.slice(next, end).arrayBuffer());
      next = end;
    }
  };
  fill();
  while (queue.length) {
    const buffer = await queue.shift();
    fill();
    await each(buffer);
  }
}

/** The first 64 MiB of the file in memory, read once (for the hash-only rows). */
let sample = null;
async function inMemory(file) {
  sample ??= new Uint8Array(await file.slice(0, Math.min(file.size, 64 * MiB)).arrayBuffer());
  return sample;
}

/** Runs `work(offset)` for every block of a file-sized run, `depth` at a time. */
async function eachBlock(file, depth, work) {
  const inFlight = new Set();
  for (let done = 0; done < file.size; done += BLOCK) {
    const promise = Promise.resolve(work(done)).then(() => inFlight.delete(promise));
    inFlight.add(promise);
    if (inFlight.size >= depth) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

const rows = {
  async "read only"(file, { slice, depth }) {
    let bytes = 0;
    await readOrdered(file, slice, depth, (buffer) => { bytes += buffer.byteLength; });
    if (bytes !== file.size) throw new Error("short read");
    return null;
  },
  async "read only, in workers"(file, { slice, depth, workers, stream = false }) {
    const chunks = Math.ceil(file.size / slice);
    const counts = await Promise.all(Array.from({ length: workers }, (_, first) => new Promise((resolve, reject) => {
      const worker = new Worker(new URL("read-worker.js", import.meta.url), { type: "module" });
      worker.onmessage = (e) => { worker.terminate(); resolve(e.data); };
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage({ file, slice, first, stride: workers, chunks, depth, stream });
    })));
    if (counts.reduce((a, b) => a + b, 0) !== file.size) throw new Error("short read");
    return null;
  },
  async "hash only, from memory: WebCrypto"(file, { depth }) {
    const bytes = await inMemory(file);
    await eachBlock(file, depth, (done) => {
      const offset = done % bytes.length;
      return crypto.subtle.digest("SHA-1", bytes.subarray(offset, offset + BLOCK));
    });
    return null;
  },
  async "hash only, from memory: diffcopy wasm"(file) {
    const bytes = await inMemory(file);
    await eachBlock(file, 1, (done) => {
      const offset = done % bytes.length;
      hashBlock("sha1", bytes.subarray(offset, offset + BLOCK));
    });
    return null;
  },
  async "hash only, from memory: protocol v2"(file) {
    // What a hashing worker does per block, minus the reading: 64 KiB pieces
    // copied into wasm and hashed.
    const bytes = await inMemory(file);
    const hasher = new DeltaBlockHasher(0x0123456789abcdefn);
    await eachBlock(file, 1, (done) => {
      const offset = done % bytes.length;
      for (let at = offset; at < offset + BLOCK; at += 64 * 1024) hasher.update(bytes.subarray(at, at + 64 * 1024));
      hasher.finish();
    });
    hasher.free();
    return null;
  },
  async hashBlob(file, options) {
    return hex((await hashBlob(file, options)).subarray(28));
  },
  async deltaHashBlob(file, options) {
    return hex(await deltaHashBlob(file, { seed: "0123456789abcdef", ...options }));
  },
  async "hash-wasm 4.13 SHA-1"(file, { slice, depth }) {
    const sha1 = await createSHA1();
    const out = [];
    let inBlock = 0;
    sha1.init();
    await readOrdered(file, slice, depth, (buffer) => {
      let bytes = new Uint8Array(buffer);
      while (bytes.length) {
        const take = Math.min(BLOCK - inBlock, bytes.length);
        sha1.update(bytes.subarray(0, take));
        inBlock += take;
        bytes = bytes.subarray(take);
        if (inBlock === BLOCK) { out.push(sha1.digest("hex")); sha1.init(); inBlock = 0; }
      }
    });
    if (inBlock > 0) out.push(sha1.digest("hex"));
    return out.join("");
  },
};

/** Runs row `name` once: MB/s (10^6 bytes per second) and its digests, if it hashes. */
export async function measure(name, params) {
  const file = document.getElementById("file").files[0];
  const t0 = performance.now();
  const digests = await rows[name](file, params);
  const seconds = (performance.now() - t0) / 1000;
  return { mbps: file.size / 1e6 / seconds, seconds, digests };
}

window.diffcopyBench = {
  measure,
  secure: window.isSecureContext,
  cores: navigator.hardwareConcurrency,
  autoStrategy: hashStrategy(undefined),
};

document.getElementById("run").onclick = async () => {
  const out = document.getElementById("out");
  for (const [name, params] of [["read only", { slice: 16 * MiB, depth: 4 }], ["hashBlob", {}], ["hash-wasm 4.13 SHA-1", { slice: 4 * MiB, depth: 4 }]]) {
    const { mbps } = await measure(name, params);
    out.textContent += `${name}: ${mbps.toFixed(0)} MB/s\n`;
  }
};
