// CPU seconds from Linux /proc, for the browser benchmarks (run.mjs,
// download.mjs).
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** CPU seconds (user and system) of every process below `root`, and of
 * `root` itself when `withRoot`; null where there is no /proc. utime and
 * stime include threads that have ended (workers). */
export function cpuSeconds(root = process.pid, withRoot = false) {
  if (!existsSync("/proc/self/stat")) return null;
  const procs = new Map();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      procs.set(Number(pid), { parent: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // The process ended meanwhile.
    }
  }
  const counted = (pid) => {
    if (withRoot && pid === root) return true;
    for (let p = procs.get(pid)?.parent ?? 0; p > 1; p = procs.get(p)?.parent ?? 0) if (p === root) return true;
    return false;
  };
  let ticks = 0;
  for (const [pid, { ticks: t }] of procs) if (counted(pid)) ticks += t;
  return ticks / 100; // USER_HZ
}
