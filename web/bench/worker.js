// Hashes every `stride`-th chunk of a File (a chunk is `chunk` bytes, whole
// blocks), starting at chunk `first`, with the diffcopy core in wasm. Each
// worker reads its own slices. Answers with the hex digests per chunk.
import init, { hashBlock } from "/pkg/diffcopy_web.js";

const ready = init();

self.onmessage = async (e) => {
  await ready;
  const { file, blockSize, chunk, first, stride, depth } = e.data;
  const chunks = Math.ceil(file.size / chunk);
  const mine = [];
  for (let c = first; c < chunks; c += stride) mine.push(c);
  const out = [];
  const queue = [];
  let next = 0;
  const fill = () => {
    while (queue.length < depth && next < mine.length) {
      const start = mine[next++] * chunk;
      queue.push(file.slice(start, Math.min(file.size, start + chunk)).arrayBuffer());
    }
  };
  fill();
  while (queue.length) {
    const bytes = new Uint8Array(await queue.shift());
    fill();
    const digests = [];
    for (let off = 0; off < bytes.length; off += blockSize) {
      const digest = hashBlock("sha1", bytes.subarray(off, off + blockSize));
      digests.push(Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
    }
    out.push(digests.join(""));
  }
  self.postMessage(out);
};
