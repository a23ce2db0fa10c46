// The uploader page against a real server, driven in headless Chromium.
//
//   DIFFCOPY_SERVER_URL=http://127.0.0.1:8080 node --test web/e2e/page.test.mjs
//
// The server must serve web/www at / and web/pkg at /pkg/ (a release build
// embeds them; `diffcopy serve --assets-dir web/www` reads them from disk).
// The CLI the page is compared with is $DIFFCOPY_BIN (default
// target/debug/diffcopy). $DIFFCOPY_BUCKET_SERVER_URL is a server over a
// bucket of the S3 store at $DIFFCOPY_TEST_S3_ENDPOINT (bucket "page"), whose
// keys are in the environment. $DIFFCOPY_TLS_SERVER_URL, when set, is the same
// server kind over HTTPS with a certificate for 127.0.0.1 and
// diffcopy-tls.test from the CA in $DIFFCOPY_TLS_CA (node must trust it
// too: NODE_EXTRA_CA_CERTS). Screenshots go to $DIFFCOPY_ARTIFACTS (default:
// artifacts/ at the repo root).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { createServer, connect } from "node:net";
import { createHash, randomFillSync } from "node:crypto";
import { mkdirSync, writeFileSync, readFileSync, rmSync, mkdtempSync } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer as startServerOf } from "./serve.mjs";

const server = process.env.DIFFCOPY_SERVER_URL;
const tlsServer = process.env.DIFFCOPY_TLS_SERVER_URL;
const tlsCa = process.env.DIFFCOPY_TLS_CA;
const bucketServer = process.env.DIFFCOPY_BUCKET_SERVER_URL;
const s3Endpoint = process.env.DIFFCOPY_TEST_S3_ENDPOINT;
if (!server) throw new Error("set DIFFCOPY_SERVER_URL to a running diffcopy server");
const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const artifacts = process.env.DIFFCOPY_ARTIFACTS ?? join(repo, "artifacts");
const cli = process.env.DIFFCOPY_BIN ?? join(repo, "target", "debug", "diffcopy");
const MiB = 1 << 20;
const KiB = 1 << 10;
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
      // A name that is not localhost makes a plain-http page a non-secure context.
      // A name the HTTPS server's certificate holds, for the secure page.
      `--host-resolver-rules=MAP diffcopy-insecure.test ${new URL(server).hostname}, MAP diffcopy-tls.test 127.0.0.1`,
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(server);
  await page.waitForFunction(() => document.body.dataset.state === "idle");
});

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

async function serverBytes(path, from = server) {
  const response = await fetch(`${from}/api/v1/files/${path}`);
  assert.equal(response.status, 200, `GET ${path}`);
  return Buffer.from(await response.arrayBuffer());
}

async function stats() {
  return (await fetch(`${server}/api/v1/stats`)).json();
}

/** Writes `bytes` to a new file named `name` (a new directory each time:
 * Chromium refuses to read a picked file that changed after it was picked). */
let files = 0;
function write(bytes, name) {
  const sub = join(dir, String(files++));
  mkdirSync(sub);
  const file = join(sub, name);
  writeFileSync(file, bytes);
  return file;
}

/** Gives `bytes` as `name` to the page's file input. */
async function pick(bytes, name, on = page) {
  const file = write(bytes, name);
  await on.setInputFiles("#file", file);
  return file;
}

/** Presses Upload and waits for the summary or the error. */
async function uploadAndWait(targetPath, on = page) {
  await on.fill("#path", targetPath);
  await on.click("#upload");
  await on.waitForFunction(() => document.body.dataset.state === "idle", null, { timeout: 120_000 });
  const error = await on.$eval("#error", (e) => (e.hidden ? null : { code: e.dataset.code, text: e.textContent }));
  const summary = await on.$eval("#summary", (e) => (e.hidden ? null : { ...e.dataset, text: e.textContent }));
  return { error, summary };
}

/** The CLI's arguments and options to upload `bytes` to `path` (protocol v2, its defaults). */
function cliArgs(bytes, path, to) {
  const file = write(bytes, "cli.bin");
  const trust = to === tlsServer ? ["--cacert", tlsCa] : [];
  return [cli, ["-q", ...trust, file, `${to}/${path}`], { env: { ...process.env, DIFFCOPY_STATE_DIR: join(dir, "cli-state") } }];
}

/** The CLI uploads `bytes` to `path`. */
function cliUpload(bytes, path, to = server) {
  execFileSync(...cliArgs(bytes, path, to));
}

/** The same, without blocking this process (whose proxies must keep serving). */
async function cliUploadAsync(bytes, path, to) {
  await promisify(execFile)(...cliArgs(bytes, path, to));
}

/** What the server took in during `work()`: bytes on the wire and literal data. */
async function measured(work) {
  const before = await stats();
  await work();
  const after = await stats();
  return { wire: after.wire_bytes_in - before.wire_bytes_in, literal: after.literal_bytes_received - before.literal_bytes_received };
}

/** Uploads `next` over `old` from the page and from the CLI (each to its
 * own copy of `old`) and checks both sent the same: the same literal data,
 * the same bytes on the wire but for HTTP headers. Returns the page's
 * figures and summary. */
async function sameAsTheCli(name, old, next) {
  const pagePath = `e2e/${run}/${name}-page.bin`;
  const cliPath = `e2e/${run}/${name}-cli.bin`;
  cliUpload(old, pagePath);
  cliUpload(old, cliPath);
  let summary;
  await pick(next, `${name}.bin`);
  const fromPage = await measured(async () => {
    const done = await uploadAndWait(pagePath);
    assert.equal(done.error, null, done.error?.text);
    summary = done.summary;
  });
  const fromCli = await measured(async () => cliUpload(next, cliPath));
  assert.equal(sha256(await serverBytes(pagePath)), sha256(next));
  assert.equal(sha256(await serverBytes(cliPath)), sha256(next));
  assert.equal(fromPage.literal, fromCli.literal, `${name}: the same literal data from the page and the CLI`);
  // A handful of requests each way; the browser's headers are longer.
  assert.ok(Math.abs(fromPage.wire - fromCli.wire) < 16 * KiB, `${name}: page ${fromPage.wire} B vs CLI ${fromCli.wire} B on the wire`);
  assert.equal(summary.protocol, "v2");
  return { ...fromPage, summary };
}

const data = Buffer.alloc(SIZE);
randomFillSync(data);

test("a new 64 MiB file arrives byte-identical, hashed in workers", async () => {
  const target = `e2e/${run}/new.bin`;
  await pick(data, "new.bin");
  assert.equal(await page.inputValue("#path"), "new.bin", "the path defaults to the file name");
  const { error, summary } = await uploadAndWait(target);
  assert.equal(error, null);
  assert.equal(summary.protocol, "v2");
  assert.equal(summary.bytesSent, String(SIZE));
  assert.equal(summary.similarity, "0");
  assert.equal(summary.strategy, "wasm");
  assert.ok(Number(summary.hashWorkers) >= 1, `hashed in ${summary.hashWorkers} workers`);
  assert.match(summary.text, /sent 64\.0 MiB of 64\.0 MiB \(100%\); 0% was already on the server/);
  assert.equal(sha256(await serverBytes(target)), sha256(data));
});

test("compressible data travels as LZ4 frames, a fraction of its size on the wire, and lands byte-identical", async () => {
  // Log-like lines: repetitive text with changing numbers, as LZ4 meets it.
  const lines = [];
  for (let i = 0, bytes = 0; bytes <= 16 * MiB + 5; i++) {
    const line = `2026-12-06T05:${String(i % 60).padStart(2, "0")}:00Z worker=${i % 7} request=${i * 7919} status=200 bytes=${i % 65536}\n`;
    lines.push(line);
    bytes += line.length;
  }
  const text = Buffer.from(lines.join("")).subarray(0, 16 * MiB + 5);
  const path = `e2e/${run}/text.log`;
  await pick(text, "text.log");
  let summary;
  const { wire, literal } = await measured(async () => {
    const done = await uploadAndWait(path);
    assert.equal(done.error, null, done.error?.text);
    summary = done.summary;
  });
  // bytesSent counts the file's bytes; the server's stats count them as stored.
  assert.equal(summary.bytesSent, String(text.length));
  assert.ok(literal < text.length / 3, `${literal} bytes stored for ${text.length}`);
  assert.ok(wire < text.length / 3, `${wire} bytes on the wire for ${text.length}`);
  assert.equal(sha256(await serverBytes(path)), sha256(text));
});

test("100 bytes inserted near the start: under 64 KiB on the wire, as from the CLI", async () => {
  // Random like the rest: compressible literal data would differ by the
  // compressors (the CLI's zstd, the page's LZ4), not by the protocol.
  const next = Buffer.concat([data.subarray(0, MiB + 5), randomFillSync(Buffer.alloc(100)), data.subarray(MiB + 5)]);
  const { wire, literal, summary } = await sameAsTheCli("insert", data, next);
  assert.ok(wire < 64 * KiB, `${wire} bytes on the wire`);
  assert.ok(literal <= 1024, `${literal} literal bytes`);
  assert.ok(Number(summary.movedBytes) > 60 * MiB, "the shifted data is found moved");
});

test("4 KiB edits in 10% of the blocks: under 1/16 of the whole blocks, as from the CLI", async () => {
  const next = Buffer.from(data);
  const edited = [];
  for (let block = 3; block < 64; block += 10) {
    randomFillSync(next, block * MiB + 1000, 4 * KiB);
    edited.push(block);
  }
  const { wire, summary } = await sameAsTheCli("scattered", data, next);
  const whole = edited.length * MiB;
  assert.ok(wire < whole / 16, `${wire} bytes on the wire, whole blocks ${whole}`);
  assert.match(summary.text, /\(0\.0\d%\); 99\.9\d% was already on the server/, "shares that do not round to 0 or 100");
  // The map: every edit shows. Screenshots of the finished page, wide and narrow.
  await page.screenshot({ path: join(artifacts, "uploader-1280.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 900 });
  await page.evaluate(() => window.dispatchEvent(new Event("resize")));
  await page.screenshot({ path: join(artifacts, "uploader-390.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  const painted = await page.$eval("#map", (canvas) => {
    const ctx = canvas.getContext("2d");
    const row = ctx.getImageData(0, canvas.height >> 1, canvas.width, 1).data;
    const sent = getComputedStyle(document.documentElement).getPropertyValue("--sent").trim();
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(sent.slice(i, i + 2), 16));
    let runs = 0;
    let inside = false;
    for (let x = 0; x < canvas.width; x++) {
      const hit = row[4 * x] === r && row[4 * x + 1] === g && row[4 * x + 2] === b;
      if (hit && !inside) runs++;
      inside = hit;
    }
    return runs;
  });
  assert.equal(painted, edited.length, "one mark per edit on the map");
});

test("an unchanged file sends only its block hashes, as from the CLI", async () => {
  const { wire, literal, summary } = await sameAsTheCli("unchanged", data, data);
  assert.equal(literal, 0);
  assert.ok(wire < 8 * KiB, `${wire} bytes on the wire`);
  assert.equal(summary.bytesSent, "0");
  assert.equal(summary.commit, "none");
});

test("cancel midway, reload the page, pick the same file: it resumes with the missing data", async () => {
  const target = `e2e/${run}/resume.bin`;
  cliUpload(data, target);
  const next = Buffer.from(data);
  randomFillSync(next.subarray(0, 48 * MiB)); // 48 MiB of new data
  const picked = await pick(next, "resume.bin");
  // Slow literal data down so that Cancel lands in the middle.
  await page.route("**/api/v2/uploads/*/data", async (route) => {
    await new Promise((r) => setTimeout(r, 80));
    await route.continue().catch(() => {}); // cancelled meanwhile
  });
  const before = await stats();
  await page.fill("#path", target);
  await page.click("#upload");
  for (let i = 0; i < 1200; i++) {
    if ((await stats()).literal_bytes_received - before.literal_bytes_received >= 8 * MiB) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.click("#cancel");
  await page.waitForFunction(() => document.body.dataset.state === "idle");
  assert.equal(await page.$eval("#error", (e) => e.dataset.code), "aborted");
  await page.unroute("**/api/v2/uploads/*/data");

  // The session is remembered across a reload (localStorage): the same file
  // (same name, size and modification time) continues where it stopped.
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.state === "idle");
  await page.setInputFiles("#file", picked);
  const { error, summary } = await uploadAndWait(target);
  assert.equal(error, null);
  const resumed = Number(summary.bytesResumed);
  assert.ok(resumed >= 8 * MiB, `resumed ${resumed} bytes`);
  assert.equal(Number(summary.bytesSent) + resumed, 48 * MiB);
  assert.match(summary.text, /Continued an interrupted upload/);
  assert.equal(sha256(await serverBytes(target)), sha256(next));
});

test("data corrupted on the way: the server answers a file hash mismatch and the page sends the whole file", async () => {
  const target = `e2e/${run}/mismatch.bin`;
  cliUpload(data, target);
  const next = Buffer.from(data);
  randomFillSync(next, 10 * MiB, 64 * KiB);
  await pick(next, "mismatch.bin");
  let corrupted = 0;
  await page.route("**/api/v2/uploads/*/data", async (route) => {
    const body = route.request().postDataBuffer();
    if (corrupted++ === 0 && body) {
      // The last byte is the last raw frame's: the frames still parse.
      body[body.length - 1] ^= 0xff;
      await route.continue({ postData: body });
    } else {
      await route.continue();
    }
  });
  const before = await stats();
  const { error, summary } = await uploadAndWait(target);
  await page.unroute("**/api/v2/uploads/*/data");
  assert.equal(error, null, error?.text);
  const after = await stats();
  assert.equal(after.delta_uploads_created - before.delta_uploads_created, 2, "a second, whole upload");
  assert.equal(summary.bytesSent, String(SIZE));
  assert.equal(sha256(await serverBytes(target)), sha256(next));
});

test("API v1 still works from the page: 2 changed blocks send 2 blocks", async () => {
  const target = `e2e/${run}/v1.bin`;
  cliUpload(data, target);
  const next = Buffer.from(data);
  next[5 * MiB + 17] ^= 0xff;
  next[40 * MiB] ^= 0xff;
  await page.$eval("details", (d) => { d.open = true; });
  await page.selectOption("#protocol", "v1");
  await pick(next, "v1.bin");
  const before = await stats();
  const { error, summary } = await uploadAndWait(target);
  await page.selectOption("#protocol", "auto");
  assert.equal(error, null);
  const after = await stats();
  assert.equal(summary.protocol, "v1");
  assert.equal(summary.blocksSent, "2");
  assert.equal(after.blocks_received - before.blocks_received, 2, "the server's counter agrees");
  assert.equal(sha256(await serverBytes(target)), sha256(next));
});

test("a non-secure page (plain http, not localhost) uploads over v2 with wasm in workers", async () => {
  const insecure = new URL(server);
  insecure.hostname = "diffcopy-insecure.test";
  const other = await browser.newPage();
  try {
    await other.goto(insecure.href);
    await other.waitForFunction(() => document.body.dataset.state === "idle");
    assert.equal(await other.evaluate(() => window.isSecureContext), false);
    const path = `e2e/${run}/insecure.bin`;
    const old = Buffer.alloc(9 * MiB + 5); // over 8 MiB: hashed in workers
    randomFillSync(old);
    cliUpload(old, path);
    const next = Buffer.concat([Buffer.alloc(10, 1), old]);
    await pick(next, "small.bin", other);
    const { error, summary } = await uploadAndWait(path, other);
    assert.equal(error, null, error?.text);
    assert.equal(summary.protocol, "v2");
    assert.equal(summary.strategy, "wasm");
    assert.ok(Number(summary.bytesSent) <= 1024, `sent ${summary.bytesSent} bytes`);
    assert.ok(Number(summary.hashWorkers) >= 1, `hashed in ${summary.hashWorkers} workers`);
    assert.equal(sha256(await serverBytes(path)), sha256(next));
  } finally {
    await other.close();
  }
});

test("over HTTPS the page is a secure context on HTTP/2 and uploads over v2", async () => {
  assert.ok(tlsServer && tlsCa, "set DIFFCOPY_TLS_SERVER_URL and DIFFCOPY_TLS_CA (scripts/browser-tests does)");
  const secure = new URL(tlsServer);
  secure.hostname = "diffcopy-tls.test"; // not localhost: only https makes the context secure
  // The test CA is not in Chromium's store: this context ignores certificate
  // errors (the CLI and node verify the same certificate against the CA).
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const other = await context.newPage();
  try {
    await other.goto(secure.href);
    await other.waitForFunction(() => document.body.dataset.state === "idle");
    assert.equal(await other.evaluate(() => window.isSecureContext), true);
    const protocol = await other.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    assert.equal(protocol, "h2");
    const path = `e2e/${run}/secure.bin`;
    const old = Buffer.alloc(9 * MiB + 5);
    randomFillSync(old);
    cliUpload(old, path, tlsServer);
    const next = Buffer.concat([old.subarray(0, 5 * MiB), Buffer.alloc(100, 7), old.subarray(5 * MiB)]);
    await pick(next, "secure.bin", other);
    const { error, summary } = await uploadAndWait(path, other);
    assert.equal(error, null, error?.text);
    assert.equal(summary.protocol, "v2");
    assert.ok(Number(summary.bytesSent) <= 64 * KiB, `sent ${summary.bytesSent} bytes`);
    assert.equal(sha256(await serverBytes(path, tlsServer)), sha256(next));
    const apiProtocols = await other.evaluate(() =>
      [...new Set(performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/")).map((e) => e.nextHopProtocol))]);
    assert.deepEqual(apiProtocols, ["h2"], "the API calls went over HTTP/2");
  } finally {
    await context.close();
  }
});

test("over a server that keeps its files in an S3 bucket the page uploads a delta", async () => {
  assert.ok(bucketServer, "set DIFFCOPY_BUCKET_SERVER_URL (scripts/browser-tests does)");
  const other = await browser.newPage();
  try {
    await other.goto(bucketServer);
    await other.waitForFunction(() => document.body.dataset.state === "idle");
    const path = `e2e/${run}/bucket.bin`;
    const old = Buffer.alloc(20 * MiB + 3);
    randomFillSync(old);
    cliUpload(old, path, bucketServer);
    const next = Buffer.from(old);
    for (const at of [MiB + 5, 12 * MiB]) next.fill(9, at, at + 4096);
    await pick(next, "bucket.bin", other);
    const statsOf = async () => (await fetch(`${bucketServer}/api/v1/stats`)).json();
    const before = await statsOf();
    const { error, summary } = await uploadAndWait(path, other);
    const after = await statsOf();
    assert.equal(error, null, error?.text);
    assert.equal(summary.protocol, "v2");
    assert.ok(Number(summary.bytesSent) <= 64 * KiB, `sent ${summary.bytesSent} bytes`);
    assert.equal(sha256(await serverBytes(path, bucketServer)), sha256(next));
    assert.ok(after.store_bytes_copied > before.store_bytes_copied, "unchanged stretches were copied inside the store");
    // The two edited runs of 4 KiB of one byte travel as LZ4 frames of a few dozen bytes.
    const stored = after.literal_bytes_received - before.literal_bytes_received;
    assert.ok(Number(summary.bytesSent) >= 8 * KiB, `sent ${summary.bytesSent} bytes`);
    assert.ok(stored < Number(summary.bytesSent) / 4, `${stored} bytes stored for ${summary.bytesSent}`);
  } finally {
    await other.close();
  }
});

/** A TCP proxy to `target` (http://HOST:PORT) on 127.0.0.1; `setDown(true)`
 * closes every connection, open or new, until `setDown(false)`. */
async function switchableProxy(target) {
  const { hostname, port } = new URL(target);
  const open = new Set();
  let down = false;
  const proxy = createServer((client) => {
    if (down) return client.destroy();
    const upstream = connect(Number(port), hostname);
    const end = () => { client.destroy(); upstream.destroy(); open.delete(client); };
    open.add(client);
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    setDown(value) {
      down = value;
      if (down) for (const client of open) client.destroy();
    },
    close: () => proxy.close(),
  };
}

/** Starts `diffcopy serve ARGS` serving this page, on a port of its own
 * (with `env` added); `url` resolves to its URL. */
function startServer(args, env = {}) {
  return startServerOf(cli, ["--assets-dir", join(repo, "web", "www"), ...args], env);
}

test("the page waits out an object store that is down, resuming, and lands the upload once it is back", async () => {
  assert.ok(s3Endpoint, "set DIFFCOPY_TEST_S3_ENDPOINT (scripts/browser-tests does)");
  const store = await switchableProxy(s3Endpoint);
  const server = startServer(["--store", "s3://page/e2e-down", "--s3-endpoint", store.url]);
  const other = await browser.newPage();
  try {
    const url = await server.url;
    const warned = [];
    other.on("console", (message) => { if (message.type() === "warning") warned.push(message.text()); });
    await other.goto(url);
    await other.waitForFunction(() => document.body.dataset.state === "idle");
    const path = `e2e/${run}/down.bin`;
    const old = Buffer.alloc(8 * MiB + 5);
    randomFillSync(old);
    await cliUploadAsync(old, path, url);
    const next = Buffer.from(old);
    next.fill(7, 3 * MiB, 3 * MiB + 4096);
    await pick(next, "down.bin", other);
    store.setDown(true);
    await other.fill("#path", path);
    await other.click("#upload");
    // The server retries the store, then answers 503 with Retry-After;
    // the page says it will try again. Then the store comes back.
    // Looked at again after each console message and at least every 5 s
    // (a message that came between two looks is in `warned` all the same);
    // a page that stopped (an error, or done without meeting the store
    // down) fails at once, saying what it showed.
    const deadline = Date.now() + 60_000;
    while (!warned.some((w) => w.includes("store_unavailable"))) {
      assert.ok(Date.now() < deadline, `the page never met the store down: ${warned}`);
      const shown = await other.evaluate(() => document.body.dataset.state === "idle"
        && (document.getElementById("error").hidden ? "done" : document.getElementById("error").textContent));
      assert.ok(!shown, `the page stopped before it met the store down (${shown}); console: ${warned}`);
      await other.waitForEvent("console", { timeout: 5_000 }).catch(() => {});
    }
    store.setDown(false);
    await other.waitForFunction(() => document.body.dataset.state === "idle", null, { timeout: 120_000 });
    const error = await other.$eval("#error", (e) => (e.hidden ? null : e.textContent));
    assert.equal(error, null, error);
    assert.equal(sha256(await serverBytes(path, url)), sha256(next), "the upload landed once the store was back");
  } finally {
    await other.close();
    server.child.kill();
    store.close();
  }
});

/** A scoped token from `diffcopy token` (docs/embedding.md). */
function mint(secret, ...args) {
  return execFileSync(cli, ["token", "--jwt-secret-file", secret, ...args]).toString().trim();
}

test("a page opened with #token=...&path=... uploads there, the token kept out of the page's address and form", async () => {
  const root = mkdtempSync(join(tmpdir(), "diffcopy-linked-"));
  const secret = join(root, "..", `jwt-secret-${run}`);
  writeFileSync(secret, "a secret of at least thirty-two bytes, for the page\n");
  const server = startServer(["--root", root, "--jwt-secret-file", secret]);
  const other = await browser.newPage();
  try {
    const url = await server.url;
    const path = "users/7/report.bin";
    const token = mint(secret, "--path", path, "--allow", "upload", "--sub", "user-7");
    await other.goto(`${url}/#token=${encodeURIComponent(token)}&path=${encodeURIComponent(path)}`);
    await other.waitForFunction(() => document.body.dataset.state === "idle");
    assert.equal(await other.evaluate(() => location.hash), "", "the fragment left the address bar");
    assert.equal(await other.$eval("#token-field", (e) => e.hidden), true, "no token field");
    assert.equal(await other.$eval("#path", (e) => [e.value, e.readOnly].join()), `${path},true`, "the path is fixed");
    const bytes = Buffer.alloc(3 * MiB + 3);
    randomFillSync(bytes);
    await pick(bytes, "picked-name.bin", other);
    assert.equal(await other.$eval("#path", (e) => e.value), path, "picking a file keeps the fixed path");
    await other.click("#upload");
    await other.waitForFunction(() => document.body.dataset.state === "idle", null, { timeout: 120_000 });
    const error = await other.$eval("#error", (e) => (e.hidden ? null : e.textContent));
    assert.equal(error, null, error);
    assert.equal(sha256(readFileSync(join(root, path))), sha256(bytes), "the file landed at the linked path");
  } finally {
    await other.close();
    server.child.kill();
    rmSync(root, { recursive: true, force: true });
    rmSync(secret, { force: true });
  }
});

test("a token that expires mid-upload is renewed through the token callback and the upload goes on", async () => {
  const root = mkdtempSync(join(tmpdir(), "diffcopy-renew-"));
  const secret = join(root, "..", `jwt-secret-renew-${run}`);
  writeFileSync(secret, "another secret of at least thirty-two bytes\n");
  // The server stops the upload's data at its write until this test says
  // (DIFFCOPY_FAULT, server/src/serve/faults.rs), so the first token
  // expires between the data and the commit, with no leeway.
  const fifo = join(root, "..", `pause-${run}`);
  execFileSync("mkfifo", [fifo]);
  const admin = `admin-${run}`;
  const server = startServer(
    ["--root", root, "--jwt-secret-file", secret, "--jwt-leeway", "0", "--token", admin],
    { DIFFCOPY_FAULT: `pause-at:data-write@${fifo}` },
  );
  const other = await browser.newPage();
  try {
    const url = await server.url;
    await other.goto(url);
    await other.waitForFunction(() => document.body.dataset.state === "idle");
    const path = "users/8/renewed.bin";
    const lifetime = 3;
    const minted = Date.now();
    const short = mint(secret, "--path", "users/8/", "--allow", "upload", "--sub", "user-8", "--expires", `${lifetime}s`);
    const long = mint(secret, "--path", "users/8/", "--allow", "upload", "--sub", "user-8", "--expires", "15m");
    const bytes = Buffer.alloc(200 * KiB + 1); // one literal range: one data write
    randomFillSync(bytes);
    await pick(bytes, "renewed.bin", other);
    await other.evaluate(async ({ path, short, long }) => {
      // The module the page loaded (and initialised).
      const { uploadFile } = await import("/pkg/download/diffcopy_web.js");
      window.tokenCalls = 0;
      const token = async () => (++window.tokenCalls === 1 ? short : long);
      uploadFile(document.getElementById("file").files[0], { path, protocol: "v2", token, resume: false })
        .then((result) => { window.outcome = { result: { protocol: result.protocol } }; },
          (e) => { window.outcome = { error: `${e.code}: ${e.message}` }; });
    }, { path, short, long });
    // The data request has reached the server's write: hold it there until
    // the first token is past its exp, then let it go.
    const writer = await openFile(fifo, "w");
    while (Date.now() < minted + (lifetime + 1.5) * 1000) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await writer.write(Buffer.from([1]));
    await writer.close();
    await other.waitForFunction(() => window.outcome, null, { timeout: 60_000 });
    const outcome = await other.evaluate(() => window.outcome);
    assert.equal(outcome.error, undefined, outcome.error);
    assert.equal(await other.evaluate(() => window.tokenCalls), 2, "asked once at the start and once on expiry");
    assert.equal(sha256(readFileSync(join(root, path))), sha256(bytes));
    const counters = await (await fetch(`${url}/api/v1/stats`, { headers: { authorization: `Bearer ${admin}` } })).json();
    assert.equal(counters.delta_uploads_created, 1, "the upload went on: it did not start over");
  } finally {
    await other.close();
    server.child.kill();
    rmSync(root, { recursive: true, force: true });
    rmSync(secret, { force: true });
    rmSync(fifo, { force: true });
  }
});

/** A folder `name` in a new directory, holding `files` (path -> bytes); its path. */
let foldersMade = 0;
function folderOf(name, files) {
  const root = join(dir, `folder-${foldersMade++}`, name);
  for (const [path, bytes] of files) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), bytes);
  }
  return root;
}

/** Picks the folder at `root` in the page's folder input and uploads it into `prefix`. */
async function uploadFolder(root, prefix, on = page) {
  await on.setInputFiles("#folder", root);
  await on.fill("#path", prefix);
  await on.click("#upload");
  await on.waitForFunction(() => document.body.dataset.state === "idle", null, { timeout: 120_000 });
  const error = await on.$eval("#error", (e) => (e.hidden ? null : { code: e.dataset.code, text: e.textContent }));
  const summary = await on.$eval("#summary", (e) => (e.hidden ? null : { ...e.dataset, text: e.textContent }));
  const rows = await on.$$eval("#file-rows li", (items) => items.map((li) => li.dataset.status));
  return { error, summary, rows };
}

test("a folder goes up from the page; its rerun sends nothing, then only the edited file, and the CLI agrees", async () => {
  const sizes = [0, 1, 4 * KiB - 1, 4 * KiB, 4 * KiB + 1, 300 * KiB, 2 * MiB + 3];
  const files = new Map();
  sizes.forEach((size, i) => {
    const bytes = Buffer.alloc(size);
    randomFillSync(bytes);
    files.set(`${i % 2 ? "sub/deeper/" : ""}f${i} é.bin`, bytes);
  });
  const root = folderOf("album", files);
  const prefix = `e2e/${run}/folders/`;

  const first = await uploadFolder(root, prefix);
  assert.equal(first.error, null, first.error?.text);
  assert.equal(first.summary.sent, String(files.size), first.summary.text);
  assert.deepEqual(first.rows, Array(files.size).fill("sent"));
  for (const [path, bytes] of files) {
    assert.equal(sha256(await serverBytes(`${prefix}album/${path.split("/").map(encodeURIComponent).join("/")}`)), sha256(bytes), path);
  }

  // The same folder again: the listing says every file is there, with its size and time.
  const again = await measured(async () => {
    const done = await uploadFolder(root, prefix);
    assert.equal(done.error, null, done.error?.text);
    assert.equal(done.summary.unchanged, String(files.size), done.summary.text);
    assert.equal(done.summary.bytesSent, "0");
  });
  assert.equal(again.literal, 0);
  assert.ok(again.wire < 4 * KiB, `${again.wire} bytes on the wire for an unchanged folder`);

  // The CLI finds the page's upload unchanged too: the page gave the server each file's time.
  const cliRun = execFileSync(cli, ["-r", "--json", root, `${server}/${prefix}`], { env: { ...process.env, DIFFCOPY_STATE_DIR: join(dir, "cli-state") } });
  const summary = JSON.parse(cliRun.toString().trim().split("\n").pop());
  assert.equal(summary.files_unchanged, files.size, JSON.stringify(summary));

  // One file edited, in a copy of the folder that keeps the others' times
  // (Chromium will not read a picked file that changed after the pick).
  const big = [...files.keys()].pop();
  const bytes = Buffer.from(files.get(big));
  bytes[MiB] ^= 1;
  const copyParent = join(dir, `folder-${foldersMade++}`);
  mkdirSync(copyParent);
  execFileSync("cp", ["-a", root, copyParent]);
  const copy = join(copyParent, "album");
  writeFileSync(join(copy, big), bytes);
  const third = await measured(async () => {
    const done = await uploadFolder(copy, prefix);
    assert.equal(done.error, null, done.error?.text);
    assert.equal(done.summary.sent, "1", done.summary.text);
    assert.equal(done.summary.unchanged, String(files.size - 1));
  });
  assert.ok(third.literal < 64 * KiB, `${third.literal} literal bytes for one edited byte`);
  assert.equal(sha256(await serverBytes(`${prefix}album/${big.split("/").map(encodeURIComponent).join("/")}`)), sha256(bytes));
});

test("uploadFiles reports a file the server refuses and lands the others", async () => {
  const prefix = `e2e/${run}/files-api/`;
  const result = await page.evaluate(async (prefix) => {
    const { uploadFiles } = await import("/pkg/download/diffcopy_web.js");
    const made = (text) => new File([text], "x", { lastModified: 1_600_000_000_000 });
    const seen = [];
    const result = await uploadFiles(
      [{ file: made("a"), path: "a.txt" }, { file: made("bad"), path: ".diffcopy-no" }, { file: made("c"), path: "d/c.txt" }],
      { prefix, onFile: (r) => seen.push(r.path) },
    );
    return { ...result, seen };
  }, prefix);
  assert.deepEqual(result.files.map((f) => f.status), ["sent", "failed", "sent"]);
  assert.equal(result.files[1].code, "bad_path");
  assert.equal(result.seen.length, 3);
  const listed = await (await fetch(`${server}/api/v2/list?prefix=${prefix}`)).json();
  assert.deepEqual(listed.files.map((f) => [f.path, f.mtime]), [[`${prefix}a.txt`, 1_600_000_000_000], [`${prefix}d/c.txt`, 1_600_000_000_000]]);
});
