// Hashing strategies on the same File, timed end to end (read + hash).
// Served with /pkg/ (wasm-pack --target web output) and /hash-wasm/ beside it.
import init, { hashBlob, hashBlock, hashStrategy } from "/pkg/diffcopy_web.js";
import { createSHA1 } from "/hash-wasm/index.esm.js";

const MiB = 1 << 20;
const BLOCK = MiB;

await init();

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads `file` in `slice`-byte pieces, `depth` in flight, calling `each(buf, start)` in order. */
async function readOrdered(file, slice, depth, each) {
  const queue = [];
  let next = 0;
  const fill = () => {
    while (queue.length < depth && next < file.size) {
      const end = Math.min(file.size, next + slice);
      queue.push({ start: next, read: file.slice(next, end).arrayBuffer() });
      next = end;
    }
  };
  fill();
  while (queue.length) {
    const { start, read } = queue.shift();
    const buf = await read;
    fill();
    await each(buf, start);
  }
}

/** The digests of a binary signature, as one hex string (for comparing strategies). */
function digestsOf(signature) {
  return hex(signature.subarray(28));
}

/** The first 64 MiB of the file in memory, read once (for the hash-only rows). */
let sample = null;
async function inMemory(file) {
  sample ??= new Uint8Array(await file.slice(0, Math.min(file.size, 64 * MiB)).arrayBuffer());
  return sample;
}

const strategies = {
  async "hash only, in memory: WebCrypto SHA-1"(file, { depth }) {
    const bytes = await inMemory(file);
    let pending = [];
    for (let done = 0; done < file.size; done += BLOCK) {
      const off = done % bytes.length;
      pending.push(crypto.subtle.digest("SHA-1", bytes.subarray(off, off + BLOCK)));
      if (pending.length >= depth) { await Promise.all(pending); pending = []; }
    }
    await Promise.all(pending);
    return null;
  },
  async "hash only, in memory: diffcopy wasm SHA-1"(file) {
    const bytes = await inMemory(file);
    for (let done = 0; done < file.size; done += BLOCK) {
      const off = done % bytes.length;
      hashBlock("sha1", bytes.subarray(off, off + BLOCK));
    }
    return null;
  },
  async "read only"(file, { slice, depth }) {
    let n = 0;
    await readOrdered(file, slice, depth, (buf) => { n += buf.byteLength; });
    if (n !== file.size) throw new Error("short read");
    return null;
  },
  async "diffcopy hashBlob wasm, main thread"(file, { slice, depth }) {
    return digestsOf(await hashBlob(file, { strategy: "wasm", sliceSize: slice, readsInFlight: depth }));
  },
  async "diffcopy hashBlob, default options"(file) {
    return digestsOf(await hashBlob(file));
  },
  async "diffcopy hashBlob webcrypto"(file, { slice, depth }) {
    return digestsOf(await hashBlob(file, { strategy: "webcrypto", sliceSize: slice, readsInFlight: depth }));
  },
  async "WebCrypto digest per block (plain JS)"(file, { depth }) {
    const parts = [];
    await readOrdered(file, BLOCK, depth, async (buf) => {
      parts.push(crypto.subtle.digest("SHA-1", buf));
    });
    const digests = await Promise.all(parts);
    return digests.map((d) => hex(new Uint8Array(d))).join("");
  },
  async "diffcopy wasm in 2 Web Workers"(file, { slice, depth }) {
    const workers = 2;
    const chunk = Math.max(1, Math.floor(slice / BLOCK)) * BLOCK;
    const chunks = Math.ceil(file.size / chunk);
    const results = await Promise.all(Array.from({ length: workers }, (_, w) => new Promise((resolve, reject) => {
      const worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
      worker.onmessage = (e) => { worker.terminate(); resolve(e.data); };
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage({ file, blockSize: BLOCK, chunk, first: w, stride: workers, depth });
    })));
    const out = [];
    for (let c = 0; c < chunks; c++) out.push(results[c % workers][Math.floor(c / workers)]);
    return out.join("");
  },
  async "hybrid: WebCrypto + wasm on the main thread (1 block in N to wasm)"(file, { slice, depth, every = 3 }) {
    const parts = [];
    let index = 0;
    await readOrdered(file, slice, depth, async (buf) => {
      for (let off = 0; off < buf.byteLength; off += BLOCK) {
        const view = new Uint8Array(buf, off, Math.min(BLOCK, buf.byteLength - off));
        parts.push(index++ % every === every - 1 ? Promise.resolve(hashBlock("sha1", view)) : crypto.subtle.digest("SHA-1", view));
      }
    });
    const digests = await Promise.all(parts);
    return digests.map((d) => hex(new Uint8Array(d))).join("");
  },
  async "hash-wasm 4.13 SHA-1"(file, { slice, depth }) {
    const sha1 = await createSHA1();
    const out = [];
    let inBlock = 0;
    sha1.init();
    await readOrdered(file, slice, depth, (buf) => {
      let bytes = new Uint8Array(buf);
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

/** Runs one strategy `repeat` times; the best MB/s (10^6 bytes per second). */
export async function measure(name, params, repeat = 2) {
  const file = document.getElementById("file").files[0];
  let best = 0;
  let result = null;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    result = await strategies[name](file, params);
    const seconds = (performance.now() - t0) / 1000;
    best = Math.max(best, file.size / 1e6 / seconds);
  }
  return { mbps: best, result };
}

window.diffcopyBench = {
  measure,
  names: Object.keys(strategies),
  secure: window.isSecureContext,
  autoStrategy: hashStrategy(undefined),
};

document.getElementById("run").onclick = async () => {
  const out = document.getElementById("out");
  for (const name of Object.keys(strategies)) {
    const { mbps } = await measure(name, { slice: 4 * MiB, depth: 4 }, 1);
    out.textContent += `${name}: ${mbps.toFixed(0)} MB/s\n`;
  }
};
