#!/usr/bin/env node
// Browser hashing benchmark: gives a generated file to <input type=file> in
// headless Chromium, times each way of reading and hashing it, and prints a
// Markdown table: MB/s (10^6 bytes/s, median of the runs, min-max), the CPU
// the browser used for it (all its processes, from /proc), and how each row
// compares with hash-wasm and with the fastest way of only reading the file.
// Not a test: the numbers depend on the machine.
//
//   (cd web/bench && npm ci)      # playwright-core, hash-wasm 4.13.0
//   scripts/npm-pack              # web/pkg, the npm package as users install it
//   node web/bench/run.mjs [--size 1024] [--runs 3] [--only REGEX] [--chromium /usr/bin/chromium] [--insecure]
//
// --size is in MiB. Rows run interleaved (every row once, then again), so a
// slow moment of the machine does not land on one row only. The page is
// served from http://127.0.0.1 (a secure context, so WebCrypto exists), or
// with --insecure from http://diffcopy-bench.test (mapped to 127.0.0.1: a
// plain-http page that is not a secure context; the WebCrypto rows fail
// there and are left out).

import { createServer } from "node:http";
import { createReadStream, existsSync, openSync, writeSync, closeSync, statSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join, extname, dirname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { cpuSeconds } from "./cpu.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const sizeMiB = Number(arg("size", "1024"));
const runs = Number(arg("runs", "3"));
const executablePath = arg("chromium", "/usr/bin/chromium");
const only = new RegExp(arg("only", ""), "i");
const insecure = args.includes("--insecure");
const MiB = 1 << 20;

// What is measured: [row in bench.js, how it is labelled, its parameters].
const READ = "read only";
const READ_WORKERS = "read only, in workers";
const HASH_WASM = "hash-wasm 4.13 SHA-1";
const DEFAULT = "diffcopy hashBlob, default options";
const MEMORY_WEBCRYPTO = "hash only, from memory: WebCrypto";
const plan = [
  [READ, "read only", "1 MiB x 4", { slice: 1 * MiB, depth: 4 }],
  [READ, "read only", "16 MiB x 4", { slice: 16 * MiB, depth: 4 }],
  [READ_WORKERS, "read only, 4 workers, whole slices", "16 MiB x 2 each", { slice: 16 * MiB, depth: 2, workers: 4 }],
  [READ_WORKERS, "read only, 4 workers, streamed into one buffer", "64 MiB slices", { slice: 64 * MiB, workers: 4, stream: true }],
  [MEMORY_WEBCRYPTO, MEMORY_WEBCRYPTO, "1 MiB blocks, 8 in flight", { depth: 8 }],
  ["hash only, from memory: diffcopy wasm", "hash only, from memory: diffcopy wasm", "1 MiB blocks", {}],
  [HASH_WASM, HASH_WASM, "4 MiB x 4", { slice: 4 * MiB, depth: 4 }],
  ["hashBlob", DEFAULT, "auto: WebCrypto, 4 workers", {}],
  ["hashBlob", "diffcopy hashBlob WebCrypto, 2 workers", "streamed slices", { strategy: "webcrypto", workers: 2 }],
  ["hashBlob", "diffcopy hashBlob WebCrypto, 3 workers", "streamed slices", { strategy: "webcrypto", workers: 3 }],
  ["hashBlob", "diffcopy hashBlob WebCrypto, page thread", "8 MiB x 4", { strategy: "webcrypto", workers: 0 }],
  ["hashBlob", "diffcopy hashBlob wasm, 4 workers", "streamed slices", { strategy: "wasm" }],
  ["hashBlob", "diffcopy hashBlob wasm, page thread", "4 MiB x 4", { strategy: "wasm", workers: 0 }],
  ["hash only, from memory: protocol v2", "hash only, from memory: protocol v2", "1 MiB blocks in 64 KiB pieces", {}],
  ["deltaHashBlob", "protocol v2 hashes (deltaHashBlob), default: 4 workers", "streamed slices", {}],
  ["deltaHashBlob", "protocol v2 hashes, 2 workers", "streamed slices", { workers: 2 }],
  ["deltaHashBlob", "protocol v2 hashes, 3 workers", "streamed slices", { workers: 3 }],
  ["deltaHashBlob", "protocol v2 hashes, page thread", "4 MiB x 4", { workers: 0 }],
]
  .filter(([, label]) => only.test(label))
  .filter(([row, , , params]) => !insecure || (!/WebCrypto/.test(row) && params.strategy !== "webcrypto" && !(row === "hashBlob" && !params.strategy)));

// --- the test file: random bytes, made once and reused -----------------------
const filePath = join(tmpdir(), `diffcopy-bench-${sizeMiB}MiB.bin`);
if (!existsSync(filePath) || statSync(filePath).size !== sizeMiB * MiB) {
  const fd = openSync(filePath, "w");
  const chunk = Buffer.alloc(16 * MiB);
  for (let left = sizeMiB * MiB; left > 0; left -= chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk, 0, Math.min(left, chunk.length));
  }
  closeSync(fd);
}

// --- static server: the bench page, the wasm package, hash-wasm -------------
const roots = [
  ["/pkg/", join(here, "..", "pkg")],
  ["/hash-wasm/", join(here, "node_modules", "hash-wasm", "dist")],
  ["/", here],
];
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };
const server = createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  const path = url.pathname === "/" ? "/index.html" : url.pathname;
  const [prefix, dir] = roots.find(([p]) => path.startsWith(p));
  const file = normalize(join(dir, path.slice(prefix.length)));
  if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
  createReadStream(file).pipe(res);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const host = insecure ? "diffcopy-bench.test" : "127.0.0.1";
const origin = `http://${host}:${server.address().port}`;

const browser = await chromium.launch({
  executablePath,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--host-resolver-rules=MAP diffcopy-bench.test 127.0.0.1",
  ],
});
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(origin);
  await page.waitForFunction(() => window.diffcopyBench);
  await page.setInputFiles("#file", filePath);
  const info = await page.evaluate(() => ({ ...window.diffcopyBench, measure: undefined }));

  // One untimed pass warms the page cache, the JIT and the allocators.
  for (const [row, params] of [[READ, { slice: 16 * MiB, depth: 4 }], ["hashBlob", { strategy: "wasm" }], ["deltaHashBlob", {}]]) {
    await page.evaluate(([row, params]) => window.diffcopyBench.measure(row, params), [row, params]);
  }
  const results = plan.map(() => ({ mbps: [], cpu: [], seconds: [], digests: null, agree: true }));
  for (let run = 0; run < runs; run++) {
    for (const [i, [row, label, , params]] of plan.entries()) {
      const before = cpuSeconds();
      const { mbps, seconds, digests } = await page.evaluate(
        ([row, params]) => window.diffcopyBench.measure(row, params),
        [row, params],
      );
      const after = cpuSeconds();
      const r = results[i];
      r.mbps.push(mbps);
      r.seconds.push(seconds);
      if (before !== null) r.cpu.push(after - before);
      if (digests !== null) {
        r.agree &&= r.digests === null || r.digests === digests;
        r.digests = digests;
      }
      console.error(`run ${run + 1}/${runs}: ${label}: ${mbps.toFixed(0)} MB/s`);
    }
  }

  // Every hashing row must give the same block digests as the others of its kind.
  const reference = (i) => results.find((r, k) => r.digests !== null && plan[k][0] === plan[i][0])?.digests;
  const gb = (sizeMiB * MiB) / 1e9;
  const summary = results.map((r, i) => ({
    label: plan[i][1],
    row: plan[i][0],
    how: plan[i][2],
    mbps: median(r.mbps),
    min: Math.min(...r.mbps),
    max: Math.max(...r.mbps),
    cores: r.cpu.length ? median(r.cpu.map((c, k) => c / r.seconds[k])) : null,
    cpuPerGb: r.cpu.length ? median(r.cpu) / gb : null,
    check: r.digests === null ? "" : r.agree && r.digests === reference(i) ? "same" : "MISMATCH",
  }));
  const reads = summary.filter((s) => s.row.startsWith(READ));
  const ceiling = reads.reduce((best, s) => (s.mbps > best.mbps ? s : best), reads[0] ?? { mbps: NaN });
  const hashWasm = summary.find((s) => s.label === HASH_WASM);

  console.log(`\n${sizeMiB} MiB file, SHA-1, 1 MiB blocks, headless Chromium ${browser.version()}, ` +
    `${info.cores} cores; secure context: ${info.secure}; hashBlob's auto strategy: ${info.autoStrategy}; ` +
    `median of ${runs} interleaved runs (min-max)\n`);
  console.log("| what | slices x in flight | MB/s | CPU cores busy | CPU s per GB | x hash-wasm | % of read ceiling | digests |");
  console.log("|---|---|---:|---:|---:|---:|---:|---|");
  const fixed = (x, digits) => (x === null || x === undefined || Number.isNaN(x) ? "" : x.toFixed(digits));
  for (const s of summary) {
    const hashing = s.check !== "";
    console.log(`| ${s.label} | ${s.how} | ${s.mbps.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)}) | ` +
      `${fixed(s.cores, 2)} | ${fixed(s.cpuPerGb, 2)} | ` +
      `${hashing && hashWasm ? fixed(s.mbps / hashWasm.mbps, 2) : ""} | ` +
      `${hashing ? fixed((100 * s.mbps) / ceiling.mbps, 0) : ""} | ${s.check} |`);
  }
  // What the CPU allows: reading the file and hashing it each cost CPU time
  // per byte; with every core busy, no way of hashing can beat this. The
  // cheapest way of reading and WebCrypto's cost from memory make it generous.
  const memory = summary.find((s) => s.label === MEMORY_WEBCRYPTO) ?? summary.find((s) => s.label === "hash only, from memory: diffcopy wasm");
  const cheapestRead = Math.min(...reads.map((s) => s.cpuPerGb ?? Infinity));
  if (Number.isFinite(cheapestRead) && memory?.cpuPerGb) {
    const bound = (1000 * info.cores) / (cheapestRead + memory.cpuPerGb);
    console.log(`\nRead ceiling: ${ceiling.mbps.toFixed(0)} MB/s (${ceiling.label}, ${ceiling.how}). ` +
      `Reading costs at least ${cheapestRead.toFixed(2)} CPU s per GB, WebCrypto SHA-1 ${memory.cpuPerGb.toFixed(2)} ` +
      `from memory: with all ${info.cores} cores busy, reading plus hashing can reach at most ` +
      `${bound.toFixed(0)} MB/s = ${((100 * bound) / ceiling.mbps).toFixed(0)}% of the read ceiling` +
      (hashWasm ? ` and ${(bound / hashWasm.mbps).toFixed(2)}x hash-wasm.` : "."));
  }
  if (summary.some((s) => s.check === "MISMATCH")) process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
