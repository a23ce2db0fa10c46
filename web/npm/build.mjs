// Builds the npm package diffcopy-web (scripts/npm-pack runs it):
//
//   node web/npm/build.mjs BINDGEN_DIR OUT_DIR VERSION [SUBMODULE]
//
// BINDGEN_DIR is wasm-bindgen's --target web output, its wasm already
// optimised. OUT_DIR gets the package: diffcopy_web.js (one ES module, the
// WebAssembly inlined, see entry.js), diffcopy_web.d.ts, the .wasm itself
// (for `init({ module_or_path })` and for measuring), package.json and the
// README. With SUBMODULE (`download`: the wasm built with that feature),
// only the module, its types and its wasm, in OUT_DIR/SUBMODULE, for the
// package's export `diffcopy-web/SUBMODULE`; run it after the main build.
import * as esbuild from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [bindgen, root, version, submodule] = process.argv.slice(2).map((a, i) => (i < 2 ? resolve(a) : a));
if (!bindgen || !root || !version) throw new Error("usage: build.mjs BINDGEN_DIR OUT_DIR VERSION [SUBMODULE]");
const out = submodule ? join(root, submodule) : root;

const glueFile = join(bindgen, "diffcopy_web.js");
const wasmFile = join(bindgen, "diffcopy_web_bg.wasm");
const snippets = join(bindgen, "snippets");
// wasm-bindgen puts each crate's snippets in a folder named by a hash: ours
// is the one that holds js/hash_pool.js.
const homes = readdirSync(snippets).filter((dir) => existsSync(join(snippets, dir, "js", "hash_pool.js")));
if (homes.length !== 1) throw new Error(`${homes.length} snippet folders hold js/hash_pool.js, not one`);
const hashPool = join(snippets, homes[0], "js", "hash_pool.js");

// The glue's default: the wasm beside it, by URL. Bundlers rewrite such URLs
// (or, as Vite's dev server does for dependencies, break them); here the
// module comes inlined instead, and a worker is always given its module.
const WASM_URL = "module_or_path = new URL('diffcopy_web_bg.wasm', import.meta.url);";
function patchedGlue(replacement) {
  const text = readFileSync(glueFile, "utf8");
  const found = text.split(WASM_URL).length - 1;
  if (found !== 1) throw new Error(`the glue names its wasm by URL ${found} times, not once: wasm-bindgen changed`);
  return text.replace(WASM_URL, replacement);
}

/** Resolves the `diffcopy:` names entry.js and worker.js use;
 * `diffcopy:worker-source` is `workerSource`. */
function names(workerSource) {
  return {
    name: "diffcopy-names",
    setup(build) {
      build.onResolve({ filter: /^diffcopy:/ }, ({ path }) => {
        const to = { "diffcopy:wasm": wasmFile, "diffcopy:hash-pool": hashPool, "diffcopy:glue": glueFile };
        if (to[path]) return { path: to[path] };
        return { path, namespace: "diffcopy" };
      });
      build.onLoad({ filter: /.*/, namespace: "diffcopy" }, () => ({
        contents: `export default ${JSON.stringify(workerSource)};`,
        loader: "js",
      }));
      build.onLoad({ filter: /diffcopy_web\.js$/ }, ({ path }) =>
        path === glueFile
          ? { contents: patchedGlue("throw new Error('diffcopy-web: init() needs its module');"), loader: "js", resolveDir: bindgen }
          : undefined,
      );
    },
  };
}

// 1. The workers' module (worker.js and the glue) as one self-contained text.
const worker = await esbuild.build({
  entryPoints: [join(here, "worker.js")],
  bundle: true,
  format: "esm",
  minify: true,
  write: false,
  legalComments: "none",
  plugins: [names("")],
});
const workerSource = worker.outputFiles[0].text;

// 2. The package's module.
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: [join(here, "entry.js")],
  bundle: true,
  format: "esm",
  outfile: join(out, "diffcopy_web.js"),
  loader: { ".wasm": "binary" },
  legalComments: "none",
  banner: { js: `// diffcopy-web ${version}: built by scripts/npm-pack from the diffcopy repository.` },
  plugins: [names(workerSource)],
});

// 3. Types (init and initSync take no argument here: the module is
// inlined), the wasm, the manifest, the README.
const INIT_SYNC = "export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;";
const types = readFileSync(join(bindgen, "diffcopy_web.d.ts"), "utf8");
if (!types.includes(INIT_SYNC)) throw new Error("initSync's declaration changed: wasm-bindgen changed");
// uploadFiles (files.js, plain JavaScript over uploadFile) brings its own.
writeFileSync(
  join(out, "diffcopy_web.d.ts"),
  types.replace(INIT_SYNC, "export function initSync(module?: { module: SyncInitInput } | SyncInitInput): InitOutput;") +
    readFileSync(join(here, "files.d.ts"), "utf8"),
);
copyFileSync(wasmFile, join(out, "diffcopy_web_bg.wasm"));
if (submodule) process.exit(0);
copyFileSync(join(here, "README.md"), join(out, "README.md"));
const manifest = JSON.parse(readFileSync(join(here, "manifest.json"), "utf8"));
writeFileSync(join(out, "package.json"), JSON.stringify({ ...manifest, version }, null, 2) + "\n");
