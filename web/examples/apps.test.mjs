// Web applications that install the packed diffcopy-web tarball, as an
// application developer would, each run in headless Chromium against a real
// `diffcopy serve --cors-origin` on another origin:
//
//   node --test web/examples/apps.test.mjs
//
// scripts/browser-tests runs it after scripts/npm-pack. The tarball
// (target/npm/diffcopy-web-<version>.tgz) is installed once into
// web/examples/node_modules, beside the bundlers; one application
// (shared/main.js) is built five ways: Vite's dev server, a Vite build,
// webpack, esbuild, and no bundler (an import map). Each uploads 48 MiB,
// then the same file with 6 bytes changed, sending at most 64 KiB, hashing
// in Web Workers both times; the server's copy is compared byte for byte.
// `tsc --noEmit --strict` checks types/check.ts, which uses every exported
// type.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { createHash, randomFillSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import webpack from "webpack";
import { build as viteBuild, createServer as viteServer } from "vite";
import { chromium } from "playwright-core";
import { startServer } from "../e2e/serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const cli = process.env.DIFFCOPY_BIN ?? join(repo, "target", "debug", "diffcopy");
const MiB = 1 << 20;
const SIZE = 48 * MiB;
const run = Date.now();

let browser;
let work;
let diffcopy;
const servers = [];

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

/** A static file server on 127.0.0.1 for `root`; resolves to its origin. */
function serveStatic(root) {
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, "http://x").pathname);
    const file = normalize(join(root, path.endsWith("/") ? `${path}index.html` : path));
    if (!file.startsWith(root)) return response.writeHead(403).end();
    try {
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`)));
}

/** Starts `diffcopy serve` over `root` allowing `origins`; `url` resolves to its URL. */
function startDiffcopy(root, origins) {
  return startServer(cli, ["--root", root, ...origins.flatMap((o) => ["--cors-origin", o])]);
}

// The apps, by name: the origin each is served from.
const apps = {};

before(async () => {
  work = mkdtempSync(join(tmpdir(), "diffcopy-apps-"));
  // The tarball, installed as a user would (not saved: its hash changes with each build).
  const { version } = JSON.parse(readFileSync(join(repo, "web", "pkg", "package.json"), "utf8"));
  const tarball = join(repo, "target", "npm", `diffcopy-web-${version}.tgz`);
  execFileSync("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", tarball], { cwd: here, stdio: "inherit" });
  const installed = JSON.parse(readFileSync(join(here, "node_modules", "diffcopy-web", "package.json"), "utf8"));
  assert.equal(installed.version, version);

  const out = join(work, "built");
  // esbuild: its defaults, bundled as an ES module.
  await esbuild.build({ entryPoints: [join(here, "shared", "main.js")], bundle: true, format: "esm", outfile: join(out, "esbuild", "dist", "main.js"), logLevel: "warning" });
  writeFileSync(join(out, "esbuild", "index.html"), readFileSync(join(here, "esbuild", "index.html")));
  // webpack: production mode, its defaults.
  await new Promise((resolve, reject) => webpack({
    mode: "production",
    context: here,
    entry: "./shared/main.js",
    output: { path: join(out, "webpack", "dist"), filename: "main.js", module: true, chunkFormat: "module" },
    experiments: { outputModule: true },
    performance: { hints: false },
  }, (error, stats) => (error || stats.hasErrors() ? reject(error ?? new Error(stats.toString("errors-only"))) : resolve())));
  writeFileSync(join(out, "webpack", "index.html"), readFileSync(join(here, "webpack", "index.html")));
  // Vite: a production build, and its dev server; the root is web/examples,
  // so that vite/index.html reaches ../shared/main.js.
  await viteBuild({
    root: here,
    logLevel: "warn",
    build: { outDir: join(out, "vite"), emptyOutDir: true, rollupOptions: { input: join(here, "vite", "index.html") } },
  });
  const dev = await viteServer({
    root: here,
    logLevel: "warn",
    server: { host: "127.0.0.1", port: 0 },
    // Only this app's page: the others' need their bundles built first.
    optimizeDeps: { entries: ["vite/index.html"] },
  });
  await dev.listen();
  servers.push({ close: () => dev.close() });
  apps["Vite's dev server"] = `${dev.resolvedUrls.local[0].replace(/\/$/, "")}/vite`;
  apps["a Vite build"] = `${await serveStatic(join(out, "vite"))}/vite`;
  apps.webpack = await serveStatic(join(out, "webpack"));
  apps.esbuild = await serveStatic(join(out, "esbuild"));
  apps["no bundler"] = `${await serveStatic(here)}/plain`;

  const root = join(work, "root");
  mkdirSync(root);
  diffcopy = startDiffcopy(root, Object.values(apps).map((url) => new URL(url).origin));
  diffcopy.root = root;
  diffcopy.url = await diffcopy.url;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
  diffcopy?.child.kill();
  for (const server of servers) await server.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const data = Buffer.alloc(SIZE);
randomFillSync(data);

for (const name of ["Vite's dev server", "a Vite build", "webpack", "esbuild", "no bundler"]) {
  test(`${name}: 48 MiB uploads, then 6 changed bytes send at most 64 KiB, hashed in workers`, async () => {
    const page = await browser.newPage();
    const errors = [];
    const said = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => said.push(`${m.type()}: ${m.text()}`));
    try {
      await page.goto(`${apps[name]}/`);
      await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60_000 });
      const path = `apps/${run}/${name.replace(/\W+/g, "-")}.bin`;
      const upload = async (bytes, fileName) => {
        const dir = mkdtempSync(join(work, "file-"));
        writeFileSync(join(dir, fileName), bytes);
        await page.setInputFiles("#file", join(dir, fileName));
        return page.evaluate(([server, target]) => window.diffcopyUpload(server, target), [diffcopy.url, path]);
      };
      const first = await upload(data, "first.bin");
      assert.equal(first.protocol, "v2");
      assert.equal(first.bytesSent, SIZE, "a new file is sent whole");
      assert.ok(first.hashWorkers > 0, `hashed in ${first.hashWorkers} workers; the console: ${said.join(" | ")}`);
      assert.equal(sha256(readFileSync(join(diffcopy.root, path))), sha256(data));

      const next = Buffer.from(data);
      for (const at of [17, 5 * MiB + 3, 20 * MiB, 20 * MiB + 1, 33 * MiB + 999, SIZE - 1]) next[at] ^= 0xff;
      const second = await upload(next, "second.bin");
      assert.ok(second.bytesSent <= 64 * 1024, `6 changed bytes sent ${second.bytesSent} bytes`);
      assert.ok(second.hashWorkers > 0, `hashed in ${second.hashWorkers} workers`);
      assert.equal(sha256(readFileSync(join(diffcopy.root, path))), sha256(next), "the server's copy is the new file");
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
}

test("the package's types check strictly (tsc --noEmit --strict) where every export is used", () => {
  execFileSync(join(here, "node_modules", ".bin", "tsc"), [
    "--noEmit", "--strict", "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler",
    "--lib", "es2022,dom,dom.iterable,esnext.disposable", "--skipLibCheck", "false", join(here, "types", "check.ts"),
  ], { cwd: here, stdio: "inherit" });
});
