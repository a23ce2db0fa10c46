// Reads every `stride`-th slice of a File, starting at slice `first`, `depth`
// reads in flight, and answers with the number of bytes read (the bench's
// "read only, in workers" row: the ceiling for reading in workers).
self.onmessage = async ({ data }) => {
  const { file, slice, first, stride, chunks, depth } = data;
  let bytes = 0;
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
