// Reads every `stride`-th slice of a File, starting at slice `first`, and
// answers with the number of bytes read: the bench's "read only, in workers"
// rows, the ceiling for reading in workers. `stream` reads each slice as a
// stream into one reused buffer, 64 KiB at a time, as diffcopy's hashing
// workers do; otherwise slices are read whole with arrayBuffer(), `depth` in
// flight.
async function streamInto(blob, buffer) {
  const reader = blob.stream().getReader({ mode: "byob" });
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read(new Uint8Array(buffer, 0, Math.min(buffer.byteLength, 64 * 1024)));
    if (value) buffer = value.buffer;
    if (done) return { bytes, buffer };
    bytes += value.byteLength;
  }
}

self.onmessage = async ({ data }) => {
  const { file, slice, first, stride, chunks, depth, stream } = data;
  let bytes = 0;
  if (stream) {
    let buffer = new ArrayBuffer(1 << 20);
    for (let c = first; c < chunks; c += stride) {
      const read = await streamInto(file.slice(c * slice, Math.min(file.size, (c + 1) * slice)), buffer);
      bytes += read.bytes;
      buffer = read.buffer;
    }
    self.postMessage(bytes);
    return;
  }
  const queue = [];
  let next = first;
  const fill = () => {
    while (queue.length < depth && next < chunks) {
      const start = next * slice;
      queue.push(file.slice(start, Math.min(file.size, start + slice)).arrayBuffer());
      next += stride;
    }
  };
  fill();
  while (queue.length) {
    bytes += (await queue.shift()).byteLength;
    fill();
  }
  self.postMessage(bytes);
};
