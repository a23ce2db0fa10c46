// downloadFile (the npm package's `diffcopy-web/download` module) in headless
// Chromium against a real server: a local copy in the origin-private file
// system, which gives the same FileSystemFileHandle a picker gives, brought
// to the server's version.
//
//   DIFFCOPY_SERVER_URL=http://127.0.0.1:8080 node --test web/e2e/download.test.mjs
//
// The server must serve web/www at / and web/pkg at /pkg/, as for
// page.test.mjs. $DIFFCOPY_BUCKET_SERVER_URL is a server over a bucket.
// Versions are put on the server with the CLI ($DIFFCOPY_BIN).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { mkdirSync, writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const server = process.env.DIFFCOPY_SERVER_URL;
const bucketServer = process.env.DIFFCOPY_BUCKET_SERVER_URL;
if (!server) throw new Error("set DIFFCOPY_SERVER_URL to a running diffcopy server");
const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = process.env.DIFFCOPY_BIN ?? join(repo, "target", "debug", "diffcopy");
const artifacts = process.env.DIFFCOPY_ARTIFACTS ?? join(repo, "artifacts");
const MiB = 1 << 20;
const KiB = 1 << 10;
const run = Date.now();

let browser;
let page;
let dir;
let files = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "diffcopy-download-"));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
  page = await opened(server);
});

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A page of `origin` with the download module loaded as `window.dc`. */
async function opened(origin) {
  const p = await browser.newPage();
  p.on("pageerror", (e) => console.error("page error:", e.message));
  p.on("console", (m) => m.type() === "error" && console.error("console:", m.text()));
  await p.goto(origin);
  await p.evaluate(async () => {
    const dc = await import("/pkg/download/diffcopy_web.js");
    await dc.default();
    window.dc = dc;
  });
  return p;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

function random(size) {
  const bytes = Buffer.alloc(size);
  randomFillSync(bytes);
  return bytes;
}

/** The CLI puts `bytes` on the server as `path`. */
function put(bytes, path, to = server) {
  const sub = join(dir, String(files++));
  mkdirSync(sub);
  const file = join(sub, "f.bin");
  writeFileSync(file, bytes);
  execFileSync(cli, ["-q", file, `${to}/${path}`], { env: { ...process.env, DIFFCOPY_STATE_DIR: join(dir, "cli-state") } });
}

/** Makes the origin-private file `name` hold `bytes` (through the server:
 * the CLI puts them at a scratch path and the page fetches them). */
async function local(name, bytes, on = page, origin = server) {
  const scratch = `scratch/${run}/${files}-${name}`;
  put(bytes, scratch, origin);
  await on.evaluate(
    async ({ name, scratch }) => {
      const root = await navigator.storage.getDirectory();
      const handle = await root.getFileHandle(name, { create: true });
      const writable = await handle.createWritable();
      const response = await fetch(`/api/v1/files/${scratch}`);
      if (!response.ok) throw new Error(`fetching ${scratch}: ${response.status}`);
      await response.body.pipeTo(writable);
    },
    { name, scratch },
  );
}

/** The sha256 and size of the origin-private file `name`. */
function localHash(name, on = page) {
  return on.evaluate(async (name) => {
    const root = await navigator.storage.getDirectory();
    const file = await (await root.getFileHandle(name)).getFile();
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    return { sha256: hex, size: file.size, lastModified: file.lastModified };
  }, name);
}

/** downloadFile of `path` into the origin-private file `name`: its result,
 * or `{ error: { code, message } }`. `abortAt`: abort once this many bytes
 * of the "receiving" phase are done. */
function download(name, path, { on = page, abortAt, ...options } = {}) {
  return on.evaluate(
    async ({ name, path, options, abortAt }) => {
      const root = await navigator.storage.getDirectory();
      const handle = await root.getFileHandle(name, { create: true });
      const controller = new AbortController();
      const phases = new Set();
      const onProgress = (phase, done) => {
        phases.add(phase);
        if (abortAt !== undefined && phase === "receiving" && done >= abortAt) controller.abort();
      };
      try {
        const result = await window.dc.downloadFile(handle, { path, signal: controller.signal, onProgress, ...options });
        return { ...result, phases: [...phases] };
      } catch (e) {
        return { error: { code: e.code, message: e.message }, phases: [...phases] };
      }
    },
    { name, path, options, abortAt },
  );
}

/** Puts `next` on the server, `old` in the local file, downloads; checks the
 * local file is `next` afterwards. The result. */
async function update(name, old, next, options = {}) {
  const path = `download/${run}/${name}`;
  put(next, path, options.origin);
  await local(name, old, options.on, options.origin);
  const result = await download(name, path, options);
  assert.equal(result.error, undefined, JSON.stringify(result.error));
  const after = await localHash(name, options.on);
  assert.equal(after.size, next.length, `${name}: size`);
  assert.equal(after.sha256, sha256(next), `${name}: the local file is the server's version`);
  return result;
}

test("supportsInPlaceDownload is true in Chromium", async () => {
  assert.equal(await page.evaluate(() => window.dc.supportsInPlaceDownload()), true);
});

test("a 64 MiB copy with 4 KiB edits in a tenth of its blocks receives under 512 KiB", async () => {
  const next = random(64 * MiB);
  const old = Buffer.from(next);
  for (let block = 3; block < 64; block += 10) old.fill(7, block * MiB + 1000, block * MiB + 1000 + 4096);
  const result = await update("edits.bin", old, next);
  assert.ok(result.bytesReceived > 0 && result.bytesReceived <= 512 * KiB, `received ${result.bytesReceived} bytes`);
  assert.equal(result.unchanged, false);
  assert.equal(result.copiedBytes + result.bytesReceived, next.length);
  assert.ok(result.sentRanges.length >= 6, `${result.sentRanges.length} ranges`);
  assert.deepEqual(result.phases.filter((p) => ["hashing", "searching", "receiving", "saving"].includes(p)), ["hashing", "searching", "receiving", "saving"]);
  assert.match(result.etag, /.+/);
});

test("100 bytes inserted near the start receive under 64 KiB; the rest is moved in the file", async () => {
  const old = random(16 * MiB + 5);
  const next = Buffer.concat([old.subarray(0, 5000), random(100), old.subarray(5000)]);
  const result = await update("insert.bin", old, next);
  assert.ok(result.bytesReceived <= 64 * KiB, `received ${result.bytesReceived} bytes`);
  assert.ok(result.movedBytes > 15 * MiB, `moved ${result.movedBytes} bytes`);
});

test("an unchanged copy receives only hashes and is not written", async () => {
  const same = random(8 * MiB + 77);
  const path = `download/${run}/same.bin`;
  put(same, path);
  await local("same.bin", same);
  const before = await localHash("same.bin");
  const result = await download("same.bin", path);
  assert.equal(result.error, undefined, JSON.stringify(result.error));
  assert.equal(result.unchanged, true);
  assert.equal(result.bytesReceived, 0);
  assert.ok(result.payloadBytes < 4 * KiB, `${result.payloadBytes} bytes of hashes`);
  assert.deepEqual(await localHash("same.bin"), before, "not rewritten");
});

test("copies longer, shorter and empty, at the edges of a block, become the server's version", async () => {
  const block = MiB;
  const base = random(3 * block + 10);
  const pairs = [
    [0, 1], [1, 0], [0, block], [block, 0],
    [block - 1, block], [block, block + 1], [block + 1, block - 1],
    [3 * block + 10, block], [block, 3 * block + 10], [2 * block, 2 * block + 1], [2 * block + 1, 2 * block],
  ];
  for (const [oldLen, newLen] of pairs) {
    const name = `edge-${oldLen}-${newLen}.bin`;
    const next = Buffer.from(base.subarray(0, newLen));
    if (newLen > 10) next[newLen - 7] ^= 0xff;
    await update(name, base.subarray(0, oldLen), next);
  }
});

test("an abort mid-download leaves the local file as it was", async () => {
  const old = random(32 * MiB);
  const next = random(32 * MiB);
  const path = `download/${run}/abort.bin`;
  put(next, path);
  await local("abort.bin", old);
  const before = await localHash("abort.bin");
  const result = await download("abort.bin", path, { abortAt: 4 * MiB, concurrency: 1 });
  assert.equal(result.error?.code, "aborted", JSON.stringify(result));
  assert.ok(result.phases.includes("receiving"));
  const after = await localHash("abort.bin");
  assert.equal(after.sha256, before.sha256, "the local file is as it was");
  assert.equal(after.size, before.size);
});

test("a server version that changes mid-download is detected and the download starts over, never mixing", async () => {
  const path = `download/${run}/moving.bin`;
  const first = random(8 * MiB);
  const second = Buffer.from(first);
  second.fill(1, 2 * MiB, 2 * MiB + 4096);
  const old = Buffer.from(first);
  old.fill(2, 5 * MiB, 5 * MiB + 4096);
  put(first, path);
  await local("moving.bin", old);
  let signatures = 0;
  let changed = false;
  await page.route("**/api/v2/signatures/**", (route) => {
    signatures++;
    return route.continue();
  });
  // The first literal data request finds a new version on the server.
  await page.route("**/api/v2/data/**", async (route) => {
    if (!changed) {
      changed = true;
      put(second, path);
    }
    await route.continue();
  });
  const warnings = [];
  page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
  try {
    const result = await download("moving.bin", path);
    assert.equal(result.error, undefined, JSON.stringify(result.error));
  } finally {
    await page.unrouteAll();
  }
  assert.ok(changed);
  assert.equal(signatures, 2, "the block hashes were fetched again");
  assert.ok(warnings.some((w) => w.includes("changed during the download")), warnings.join("\n"));
  assert.equal((await localHash("moving.bin")).sha256, sha256(second), "the newest version, whole");
});

test("a path the server does not have fails with not_found and leaves the file alone", async () => {
  const old = random(1000);
  await local("missing.bin", old);
  const result = await download("missing.bin", `download/${run}/nothing-here.bin`);
  assert.equal(result.error?.code, "not_found");
  assert.equal((await localHash("missing.bin")).sha256, sha256(old));
});

test("the page's second mode updates a local copy in place and maps what was received", async () => {
  const next = random(24 * MiB);
  const old = Buffer.from(next);
  for (const at of [2 * MiB + 9, 17 * MiB]) old.fill(3, at, at + 4096);
  const path = `download/${run}/page.bin`;
  put(next, path);
  // Its own browser context, so its own origin-private file system.
  const p = await opened(server);
  try {
    await local("page.bin", old, p);
    await p.waitForFunction(() => document.body.dataset.state === "idle");
    // The picker is a native dialog: here it hands over the origin-private file.
    await p.evaluate(() => {
      window.showSaveFilePicker = async () => (await navigator.storage.getDirectory()).getFileHandle("page.bin");
    });
    await p.click("#mode-update");
    assert.equal(await p.textContent("#upload"), "Update");
    await p.fill("#path", path);
    await p.click("#local");
    await p.waitForFunction(() => !document.getElementById("upload").disabled);
    await p.click("#upload");
    await p.waitForFunction(() => document.body.dataset.state === "idle", null, { timeout: 120_000 });
    const error = await p.$eval("#error", (e) => (e.hidden ? null : e.textContent));
    assert.equal(error, null, error);
    const summary = await p.$eval("#summary", (e) => ({ ...e.dataset, text: e.textContent, map: !document.getElementById("map").hidden }));
    assert.ok(Number(summary.bytesReceived) > 0 && Number(summary.bytesReceived) <= 64 * KiB, summary.text);
    assert.match(summary.text, /received/);
    assert.ok(summary.map, "the map is shown");
    const rows = await p.$$eval("#progress .phase.done", (rows) => rows.map((r) => r.id));
    assert.deepEqual(rows.sort(), ["phase-committing", "phase-comparing", "phase-hashing", "phase-uploading"]);
    assert.equal((await localHash("page.bin", p)).sha256, sha256(next));
    mkdirSync(artifacts, { recursive: true });
    await p.screenshot({ path: join(artifacts, "page-update.png"), fullPage: true });
  } finally {
    await p.close();
  }
});

test("over a server that keeps its files in an S3 bucket the page updates its copy", async () => {
  assert.ok(bucketServer, "set DIFFCOPY_BUCKET_SERVER_URL (scripts/browser-tests does)");
  const other = await opened(bucketServer);
  try {
    const next = random(20 * MiB + 3);
    const old = Buffer.from(next);
    for (const at of [MiB + 5, 12 * MiB]) old.fill(9, at, at + 4096);
    const result = await update("bucket.bin", old, next, { on: other, origin: bucketServer });
    assert.ok(result.bytesReceived <= 64 * KiB, `received ${result.bytesReceived} bytes`);
  } finally {
    await other.close();
  }
});
