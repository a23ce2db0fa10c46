// The npm package's one module (scripts/npm-pack bundles it): wasm-bindgen's
// glue with the WebAssembly module inlined, and the hashing workers' module
// (worker.js, bundled with the glue) as text. Nothing is fetched by URL, so the package works unchanged
// in any bundler (Vite dev and build, webpack, esbuild, Rollup) and with
// none. `init()` instantiates the inlined module; `init({ module_or_path })`
// still takes a URL, a Response or a WebAssembly.Module.
import wasm from "diffcopy:wasm";
import workerSource from "diffcopy:worker-source";
import { useWorkerSource } from "diffcopy:hash-pool";
import initGlue, { initSync as initSyncGlue } from "diffcopy:glue";

export * from "diffcopy:glue";
export { uploadFiles } from "./files.js";

useWorkerSource(workerSource);

/** Instantiates the WebAssembly module: the one inlined in this package
 * unless `options.module_or_path` names another. Resolves once; later calls
 * resolve at once. */
export default function init(options) {
  return initGlue(options ?? { module_or_path: wasm });
}

/** `init`, synchronously: the inlined module unless `options.module` is given. */
export function initSync(options) {
  return initSyncGlue(options ?? { module: wasm });
}
