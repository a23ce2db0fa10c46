#!/usr/bin/env node
// Browser download benchmark: a local copy with scattered edits brought to
// the server's version by downloadFile, beside a whole download of the same
// file, in headless Chromium against a real `diffcopy serve`, in one run.
// Prints a Markdown table: wall seconds (median of the runs, min-max), the
// browser's CPU seconds (all its processes, from /proc), the server's, and
// the file bytes received. Not a test: the numbers depend on the machine.
//
//   (cd web/bench && npm ci)   # playwright-core
//   scripts/npm-pack           # web/pkg, the npm package as users install it
//   cargo build --release -p diffcopy
//   node web/bench/download.mjs [--size 1024] [--runs 3] [--rate 100mbit]
//
// --size is in MiB. The rows, interleaved run by run:
// * fetch → file: the whole file fetched and piped into a new file, the floor
//   of any download in a page;
// * downloadFile, no local copy: the same through downloadFile (an empty file);
// * downloadFile, edited copy: the local copy differs by 4 KiB in every tenth
//   MiB (in place) from the server's version;
// * the browser's copy alone: what Chromium does to open a writable that
//   keeps the file's data (it copies the file into a swap file), one byte
//   written, closed: the floor of any update in place through createWritable;
// * hashing only: deltaHashBlob of the local copy (what the update spends
//   hashing in the page, CPU seconds per GB).
// --rate runs everything inside a new network namespace whose loopback is
// shaped by tc's token bucket (root needed; netem is missing here).

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, rmSync, writeSync, closeSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import { chromium } from "playwright-core";
import { cpuSeconds } from "./cpu.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const sizeMiB = Number(arg("size", "1024"));
const runs = Number(arg("runs", "3"));
const rate = arg("rate", null);
const bin = arg("bin", join(repo, "target", "release", "diffcopy"));
const MiB = 1 << 20;

if (rate && !process.env.DIFFCOPY_BENCH_SHAPED) {
  // Again, inside a network namespace with a shaped loopback.
  const self = process.argv.slice(1).map((a) => `'${a}'`).join(" ");
  const script = `ip link set lo up && tc qdisc add dev lo root tbf rate ${rate} burst 1mb latency 50ms && exec node ${self}`;
  const r = spawnSync("unshare", ["-n", "sh", "-c", script], { stdio: "inherit", env: { ...process.env, DIFFCOPY_BENCH_SHAPED: "1" } });
  process.exit(r.status ?? 1);
}
if (!existsSync(bin)) throw new Error(`${bin} is missing: cargo build --release -p diffcopy`);

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The server's version (random) and the local copy: 4 KiB edited in every tenth MiB.
const root = mkdtempSync(join(tmpdir(), "diffcopy-bench-download-"));
const size = sizeMiB * MiB;
{
  const chunk = Buffer.alloc(16 * MiB);
  const next = openSync(join(root, "next.bin"), "w");
  const old = openSync(join(root, "old.bin"), "w");
  for (let at = 0; at < size; at += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, size - at));
    randomFillSync(part);
    writeSync(next, part);
    for (let mib = Math.ceil(at / MiB); mib * MiB < at + part.length; mib++) {
      if (mib % 10 === 5) part.fill(0x5a, mib * MiB - at + 1000, Math.min(part.length, mib * MiB - at + 1000 + 4096));
    }
    writeSync(old, part);
  }
  closeSync(next);
  closeSync(old);
}

const port = await freePort();
const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--root", root, "--assets-dir", join(repo, "web", "www")], { stdio: ["ignore", "ignore", "inherit"] });
// Never left behind, whatever ends this script (an error included).
process.on("exit", () => server.kill("SIGKILL"));
const origin = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${origin}/api/v1/health`)).ok) break;
  } catch {
    if (i > 200) throw new Error("the server did not start");
  }
  await new Promise((r) => setTimeout(r, 50));
}

// A profile on disk: a fresh context's origin-private file system lives in
// memory, with a quota far below a GiB.
const profile = mkdtempSync(join(tmpdir(), "diffcopy-bench-profile-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: arg("chromium", "/usr/bin/chromium"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
const page = browser.pages()[0] ?? (await browser.newPage());
await page.goto(origin);
await page.evaluate(async () => {
  window.dc = await import("/pkg/download/diffcopy_web.js");
  await window.dc.default();
});

/** Makes the origin-private file `name` a copy of the server's `from`, or empty. */
function prepare(name, from) {
  return page.evaluate(
    async ({ name, from }) => {
      const dir = await navigator.storage.getDirectory();
      // One file at a time in the origin's storage.
      for await (const old of dir.keys()) await dir.removeEntry(old);
      const writable = await (await dir.getFileHandle(name, { create: true })).createWritable();
      if (from) await (await fetch(`/api/v1/files/${from}`)).body.pipeTo(writable);
      else await writable.close();
    },
    { name, from },
  );
}

const ROWS = [
  {
    what: "fetch → file (whole download)",
    prepare: () => prepare("whole.bin", null),
    run: () =>
      page.evaluate(async () => {
        const dir = await navigator.storage.getDirectory();
        const writable = await (await dir.getFileHandle("whole.bin")).createWritable();
        const response = await fetch("/api/v1/files/next.bin");
        await response.body.pipeTo(writable);
        return { received: Number(response.headers.get("content-length")) };
      }),
  },
  {
    what: "downloadFile, no local copy",
    prepare: () => prepare("empty.bin", null),
    run: () =>
      page.evaluate(async () => {
        const handle = await (await navigator.storage.getDirectory()).getFileHandle("empty.bin");
        const r = await window.dc.downloadFile(handle, { path: "next.bin" });
        return { received: r.bytesReceived };
      }),
  },
  {
    what: "downloadFile, copy with 4 KiB edited in every tenth MiB",
    prepare: () => prepare("copy.bin", "old.bin"),
    run: () =>
      page.evaluate(async () => {
        const handle = await (await navigator.storage.getDirectory()).getFileHandle("copy.bin");
        const r = await window.dc.downloadFile(handle, { path: "next.bin" });
        return { received: r.bytesReceived };
      }),
  },
  {
    what: "the browser's copy alone: createWritable({ keepExistingData }), close",
    prepare: () => prepare("copy.bin", "old.bin"),
    run: () =>
      page.evaluate(async () => {
        const handle = await (await navigator.storage.getDirectory()).getFileHandle("copy.bin");
        const writable = await handle.createWritable({ keepExistingData: true });
        await writable.write({ type: "write", position: 0, data: new Uint8Array(1) });
        await writable.close();
        return { received: 0 };
      }),
  },
  {
    what: "hashing only (deltaHashBlob of the copy, 4 workers)",
    prepare: () => prepare("copy.bin", "old.bin"),
    run: () =>
      page.evaluate(async () => {
        const file = await (await (await navigator.storage.getDirectory()).getFileHandle("copy.bin")).getFile();
        await window.dc.deltaHashBlob(file, { seed: "0123456789abcdef" });
        return { received: 0 };
      }),
  },
];

const results = ROWS.map(() => ({ seconds: [], browserCpu: [], serverCpu: [], received: 0 }));
for (let i = 0; i < runs; i++) {
  for (const [k, row] of ROWS.entries()) {
    await row.prepare();
    const [b0, s0, t0] = [cpuSeconds(), cpuSeconds(server.pid, true), performance.now()];
    const { received } = await row.run();
    const [b1, s1, t1] = [cpuSeconds(), cpuSeconds(server.pid, true), performance.now()];
    results[k].seconds.push((t1 - t0) / 1000);
    // The server is this process's child too: its share is taken out.
    results[k].browserCpu.push(b1 - b0 - (s1 - s0));
    results[k].serverCpu.push(s1 - s0);
    results[k].received = received;
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const span = (xs) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
const gb = size / 1e9;
console.log(`\n${sizeMiB} MiB, ${runs} runs, ${rate ? `loopback shaped to ${rate}` : "loopback"}; Chromium ${browser.browser()?.version() ?? ""}\n`);
console.log("| what | wall s (min–max) | browser CPU s | browser CPU s per GB | server CPU s | file bytes received |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const [k, row] of ROWS.entries()) {
  const r = results[k];
  console.log(
    `| ${row.what} | ${median(r.seconds).toFixed(2)} (${span(r.seconds)}) | ${median(r.browserCpu).toFixed(2)} | ` +
      `${(median(r.browserCpu) / gb).toFixed(2)} | ${median(r.serverCpu).toFixed(2)} | ${r.received.toLocaleString("en")} |`,
  );
}
await browser.close();
server.kill("SIGKILL");
rmSync(root, { recursive: true, force: true });
rmSync(profile, { recursive: true, force: true });
