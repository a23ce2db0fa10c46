#!/usr/bin/env node
// Browser hashing benchmark: gives a generated file to <input type=file> in
// headless Chromium and prints a Markdown table of MB/s (10^6 bytes/s) per
// strategy. Not a test: numbers depend on the machine.
//
//   npm install            (in web/bench: playwright-core, hash-wasm 4.13.0)
//   wasm-pack build web --release --target web --out-dir pkg
//   node web/bench/run.mjs [--size 512] [--repeat 2] [--only REGEX] [--chromium /usr/bin/chromium]
//
// --size is in MiB. The page is served from http://127.0.0.1 (a secure
// context, so WebCrypto exists) by a small static server started here.

import { createServer } from "node:http";
import { createReadStream, existsSync, openSync, writeSync, closeSync, statSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join, extname, dirname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const sizeMiB = Number(arg("size", "512"));
const repeat = Number(arg("repeat", "2"));
const executablePath = arg("chromium", "/usr/bin/chromium");
const only = new RegExp(arg("only", ""), "i");
const MiB = 1 << 20;

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
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(origin);
  await page.waitForFunction(() => window.diffcopyBench);
  await page.setInputFiles("#file", filePath);
  const info = await page.evaluate(() => ({ secure: window.diffcopyBench.secure, auto: window.diffcopyBench.autoStrategy }));

  const runs = [
    ["hash only, in memory: WebCrypto SHA-1", { slice: 1 * MiB, depth: 4 }],
    ["hash only, in memory: WebCrypto SHA-1", { slice: 1 * MiB, depth: 32 }],
    ["hash only, in memory: diffcopy wasm SHA-1", { slice: 1 * MiB, depth: 1 }],
    ["read only", { slice: 1 * MiB, depth: 1 }],
    ["read only", { slice: 1 * MiB, depth: 4 }],
    ["read only", { slice: 4 * MiB, depth: 1 }],
    ["read only", { slice: 4 * MiB, depth: 4 }],
    ["read only", { slice: 8 * MiB, depth: 4 }],
    ["read only", { slice: 16 * MiB, depth: 2 }],
    ["diffcopy hashBlob wasm, main thread", { slice: 1 * MiB, depth: 2 }],
    ["diffcopy hashBlob wasm, main thread", { slice: 4 * MiB, depth: 4 }],
    ["diffcopy wasm in 2 Web Workers", { slice: 1 * MiB, depth: 2 }],
    ["diffcopy wasm in 2 Web Workers", { slice: 4 * MiB, depth: 2 }],
    ["WebCrypto digest per block (plain JS)", { slice: 1 * MiB, depth: 4 }],
    ["diffcopy hashBlob webcrypto", { slice: 1 * MiB, depth: 16 }],
    ["diffcopy hashBlob webcrypto", { slice: 4 * MiB, depth: 4 }],
    ["diffcopy hashBlob webcrypto", { slice: 8 * MiB, depth: 4 }],
    ["diffcopy hashBlob webcrypto", { slice: 16 * MiB, depth: 2 }],
    ["hash-wasm 4.13 SHA-1", { slice: 4 * MiB, depth: 4 }],
    ["hybrid: WebCrypto + wasm on the main thread (1 block in N to wasm)", { slice: 8 * MiB, depth: 4, every: 2 }],
    ["hybrid: WebCrypto + wasm on the main thread (1 block in N to wasm)", { slice: 8 * MiB, depth: 4, every: 3 }],
    ["hybrid: WebCrypto + wasm on the main thread (1 block in N to wasm)", { slice: 8 * MiB, depth: 4, every: 5 }],
    ["diffcopy hashBlob, default options", { slice: 8 * MiB, depth: 4 }],
  ];
  const rows = [];
  let reference = null;
  for (const [name, params] of runs.filter(([name]) => only.test(name))) {
    const { mbps, result } = await page.evaluate(
      ([name, params, repeat]) => window.diffcopyBench.measure(name, params, repeat),
      [name, params, repeat],
    );
    let check = "n/a";
    if (result !== null) {
      reference ??= result;
      check = result === reference ? "same digests" : "MISMATCH";
    }
    let variant = name.includes("default") ? "(auto)" : `${params.slice / MiB} MiB x ${params.depth} in flight`;
    if (params.every) variant += `, N = ${params.every}`;
    rows.push(`| ${name} | ${variant} | ${mbps.toFixed(0)} | ${check} |`);
    console.error(rows.at(-1));
  }
  console.log(`\n${sizeMiB} MiB file, SHA-1, 1 MiB blocks, headless Chromium, best of ${repeat}; ` +
    `secure context: ${info.secure}, hashBlob auto strategy: ${info.auto}\n`);
  console.log("| strategy | slices / blocks | MB/s | signature |");
  console.log("|---|---|---:|---|");
  for (const row of rows) console.log(row);
} finally {
  await browser.close();
  server.close();
}
