// `diffcopy serve` for the browser tests (page.test.mjs here, and
// web/examples/apps.test.mjs): one process on a port of its own.
import { spawn } from "node:child_process";

/** Starts `CLI serve --listen 127.0.0.1:0 ARGS` with `env` added to the
 * environment. `url` resolves to the address its start-up line names, or
 * rejects if it exits first; `child` is the process, for the test to kill. */
export function startServer(cli, args, env = {}) {
  const child = spawn(cli, ["serve", "--listen", "127.0.0.1:0", ...args],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  const url = new Promise((resolve, reject) => {
    let said = "";
    child.stderr.on("data", (chunk) => {
      said += chunk;
      const at = said.match(/ at (https?:\/\/[^\s/]+)/);
      if (at) resolve(at[1]);
    });
    child.on("exit", (code) => reject(new Error(`the server exited (${code}) before listening: ${said}`)));
  });
  return { child, url };
}
