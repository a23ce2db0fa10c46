// The uploader page against a real server, driven in headless Chromium.
//
//   DIFFCOPY_SERVER_URL=http://127.0.0.1:8080 node --test web/e2e/page.test.mjs
//
// The server must serve web/www at / and web/pkg at /pkg/ (a release build
// embeds them; `diffcopy serve --assets-dir web/www` reads them from disk).
// Screenshots go to $DIFFCOPY_ARTIFACTS (default: artifacts/ at the repo root).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomFillSync } from "node:crypto";
import { mkdirSync, writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const server = process.env.DIFFCOPY_SERVER_URL;
if (!server) throw new Error("set DIFFCOPY_SERVER_URL to a running diffcopy server");
const artifacts = process.env.DIFFCOPY_ARTIFACTS ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "artifacts");
const MiB = 1 << 20;
const SIZE = 64 * MiB;
const run = Date.now();

let browser;
let page;
let dir;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "diffcopy-e2e-"));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run",
      // A name that is not localhost makes a plain-http page a non-secure context (no WebCrypto).
      `--host-resolver-rules=MAP diffcopy-insecure.test ${new URL(server).hostname}`,
    ],
  });
  page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(server);
  await page.waitForFunction(() => document.body.dataset.state === "idle");
});

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

async function serverBytes(path) {
  const response = await fetch(`${server}/api/v1/files/${path}`);
  assert.equal(response.status, 200, `GET ${path}`);
  return Buffer.from(await response.arrayBuffer());
}

async function stats() {
  return (await fetch(`${server}/api/v1/stats`)).json();
}

/** Writes `bytes` to a new file named `name` and gives it to the page's file
 * input. (A new directory each time: Chromium refuses to read a picked file
 * that changed on disk after it was picked.) */
let picks = 0;
async function pick(bytes, name) {
  const sub = join(dir, String(picks++));
  mkdirSync(sub);
  const file = join(sub, name);
  writeFileSync(file, bytes);
  await page.setInputFiles("#file", file);
  return file;
}

/** Presses Upload and waits for the summary or the error. */
async function uploadAndWait(targetPath) {
  await page.fill("#path", targetPath);
  await page.click("#upload");
  await page.waitForFunction(() => document.body.dataset.state === "idle", null, { timeout: 120_000 });
  const error = await page.$eval("#error", (e) => (e.hidden ? null : { code: e.dataset.code, text: e.textContent }));
  const summary = await page.$eval("#summary", (e) => (e.hidden ? null : { ...e.dataset, text: e.textContent }));
  return { error, summary };
}

const data = Buffer.alloc(SIZE);
randomFillSync(data);
const target = `e2e/${run}/big.bin`;

test("a new 64 MiB file arrives byte-identical", async () => {
  await pick(data, "big.bin");
  assert.equal(await page.inputValue("#path"), "big.bin", "the path defaults to the file name");
  const { error, summary } = await uploadAndWait(target);
  assert.equal(error, null);
  assert.equal(summary.blocksSent, "64");
  assert.equal(summary.similarity, "0");
  assert.match(summary.text, /sent 64\.0 MiB of 64\.0 MiB; 0\.0% was already on the server/);
  assert.equal(summary.strategy, "webcrypto");
  assert.ok(Number(summary.hashWorkers) >= 1, `hashed in ${summary.hashWorkers} workers`);
  assert.match(summary.text, /Hashed with WebCrypto in \d workers?\./);
  assert.equal(sha256(await serverBytes(target)), sha256(data));
});

test("changing 2 blocks sends about 2 blocks", async () => {
  data[5 * MiB + 17] ^= 0xff;
  data[40 * MiB] ^= 0xff;
  await pick(data, "big.bin");
  const before = await stats();
  const { error, summary } = await uploadAndWait(target);
  assert.equal(error, null);
  const after = await stats();
  assert.equal(summary.blocksSent, "2");
  assert.equal(after.blocks_received - before.blocks_received, 2, "the server's counter agrees");
  assert.match(summary.text, /sent 2\.00 MiB of 64\.0 MiB; 96\.9% was already on the server/);
  assert.equal(sha256(await serverBytes(target)), sha256(data));
  await page.screenshot({ path: join(artifacts, "uploader-done.png"), fullPage: true });
  await page.setViewportSize({ width: 375, height: 900 });
  await page.screenshot({ path: join(artifacts, "uploader-narrow.png"), fullPage: true });
  await page.setViewportSize({ width: 900, height: 900 });
});

test("cancel midway, reload the page, pick the same file: it resumes with the missing blocks", async () => {
  randomFillSync(data.subarray(0, 48 * MiB)); // 48 of 64 blocks change
  const picked = await pick(data, "big.bin");
  // Slow block uploads down so that Cancel lands in the middle.
  await page.route("**/blocks/*", async (route) => {
    await new Promise((r) => setTimeout(r, 40));
    await route.continue().catch(() => {}); // cancelled meanwhile
  });
  const before = await stats();
  await page.fill("#path", target);
  await page.click("#upload");
  for (let i = 0; i < 600; i++) {
    if ((await stats()).blocks_received - before.blocks_received >= 8) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.click("#cancel");
  await page.waitForFunction(() => document.body.dataset.state === "idle");
  assert.equal(await page.$eval("#error", (e) => e.dataset.code), "aborted");
  await page.unroute("**/blocks/*");
  await page.screenshot({ path: join(artifacts, "uploader-cancelled.png"), fullPage: true });

  // The session is remembered across a reload (localStorage): the same file
  // (same name, size and modification time) continues where it stopped.
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.state === "idle");
  await page.setInputFiles("#file", picked);
  const { error, summary } = await uploadAndWait(target);
  assert.equal(error, null);
  const resumed = Number(summary.blocksResumed);
  assert.ok(resumed >= 8, `resumed ${resumed} blocks`);
  assert.equal(Number(summary.blocksSent) + resumed, 48);
  assert.equal(sha256(await serverBytes(target)), sha256(data));
});

test("a file whose every block changed replaces the existing one", async () => {
  randomFillSync(data);
  await pick(data, "big.bin");
  const { error, summary } = await uploadAndWait(target);
  assert.equal(error, null);
  assert.equal(summary.blocksSent, "64");
  assert.equal(sha256(await serverBytes(target)), sha256(data));
});

test("a non-secure page (plain http, not localhost) hashes with wasm in workers", async () => {
  const insecure = new URL(server);
  insecure.hostname = "diffcopy-insecure.test";
  const other = await browser.newPage();
  try {
    await other.goto(insecure.href);
    await other.waitForFunction(() => document.body.dataset.state === "idle");
    assert.equal(await other.evaluate(() => window.isSecureContext), false);
    assert.match(await other.textContent("#footer"), /hashing with WebAssembly/);
    const bytes = Buffer.alloc(9 * MiB + 5); // over 8 MiB: hashed in workers
    randomFillSync(bytes);
    const sub = join(dir, "insecure");
    mkdirSync(sub);
    writeFileSync(join(sub, "small.bin"), bytes);
    await other.setInputFiles("#file", join(sub, "small.bin"));
    const path = `e2e/${run}/insecure.bin`;
    await other.fill("#path", path);
    await other.click("#upload");
    await other.waitForFunction(() => document.body.dataset.state === "idle");
    assert.equal(await other.$eval("#error", (e) => e.hidden), true, await other.textContent("#error"));
    const summary = await other.$eval("#summary", (e) => ({ ...e.dataset }));
    assert.equal(summary.blocksSent, "10");
    assert.equal(summary.strategy, "wasm");
    assert.ok(Number(summary.hashWorkers) >= 1, `hashed in ${summary.hashWorkers} workers`);
    assert.equal(sha256(await serverBytes(path)), sha256(bytes));
  } finally {
    await other.close();
  }
});
