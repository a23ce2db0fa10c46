// A hashing worker of the npm package: `workerMain` with the glue bundled
// in (scripts/npm-pack makes this one self-contained text, entry.js hands it
// to the pool). The main thread sends the compiled WebAssembly module.
import * as glue from "diffcopy:glue";
import { workerMain } from "diffcopy:hash-pool";

workerMain(async () => glue);
