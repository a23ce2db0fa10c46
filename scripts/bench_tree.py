"""scripts/bench-compare --tree: a directory tree, diffcopy -r beside rsync.

The tree: --tree-files small files (default 10,000) of 1 to 64 KiB in
--tree-dirs folders (default 200), and --tree-large files (default 5) of
--tree-large-mib MiB (default 100), incompressible. Patterns, in this order on
each tool's own copy:

  first      the first sync into an empty target
  unchanged  the same tree again
  edits      1% of the small files get 100 bytes overwritten; one large file
             gets 4 KiB overwritten in every tenth MiB
  adddel     100 small files added and 100 removed, synced with --delete

Tools: diffcopy (diffcopy -r to a diffcopy server, the defaults), rsync
(rsync -rt to an rsync daemon: -t keeps the times, without which rsync's
quick check never finds a file unchanged), rsync-inplace (-rt --inplace).
Each run measures the wall time, the bytes on the loopback both ways, the CPU
of client and server (their process trees), and the peak RSS of both, then
checks that the target tree is the source byte for byte. With --rate the
first row of each pattern is the link's limit: the source's bytes at that rate.
--runs N repeats the whole sequence N times on fresh copies (the median is
shown, and the spread).
"""

import filecmp
import os
import random
import shutil
import statistics
import subprocess
import time

TOOLS = ["diffcopy", "rsync", "rsync-inplace"]
PATTERNS = ["first", "unchanged", "edits", "adddel"]
PATTERN_TEXT = {
    "first": "the first sync, into an empty target",
    "unchanged": "the same tree again",
    "edits": "1% of the small files edited (100 bytes), one large file with 4 KiB in every tenth MiB",
    "adddel": "100 small files added, 100 removed (--delete)",
}
KIB = 1024
TOOLS_TEXT = (
    "Tools: `diffcopy` is `diffcopy -r` to a diffcopy server with the defaults (new small files in batches, "
    "other small files 16 at a time through `POST /api/v2/multi`, the rest by protocol v2; every file committed "
    "durably, with fsync or syncfs). `rsync` is `rsync -rt` to an rsync daemon, and `rsync-inplace` adds "
    "`--inplace`; neither fsyncs. Wire is every byte on the loopback both ways, headers included. "
    "*The link's limit* (with --rate) is the tree's bytes at the shaped rate."
)


def make_tree(root, files, dirs, large, large_mib, seed):
    rng = random.Random(seed)
    for d in range(dirs):
        os.makedirs(os.path.join(root, "d%03d" % d), exist_ok=True)
    for i in range(files):
        path = os.path.join(root, "d%03d" % (i % dirs), "f%05d.bin" % i)
        with open(path, "wb") as f:
            f.write(os.urandom(rng.randint(KIB, 64 * KIB)))
    os.makedirs(os.path.join(root, "large"), exist_ok=True)
    for i in range(large):
        with open(os.path.join(root, "large", "l%d.bin" % i), "wb") as f:
            for _ in range(large_mib):
                f.write(os.urandom(1 << 20))


def small_files(root):
    out = []
    for d in sorted(os.listdir(root)):
        if d.startswith("d"):
            out.extend(os.path.join(root, d, f) for f in sorted(os.listdir(os.path.join(root, d))))
    return out


def later(path):
    """Moves a file's mtime a few seconds on, as an edit by a person would."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def mutate(pattern, root, seed):
    rng = random.Random(seed)
    if pattern == "edits":
        files = small_files(root)
        for path in rng.sample(files, max(1, len(files) // 100)):
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.seek(rng.randrange(max(1, size - 100)))
                f.write(os.urandom(100))
            later(path)
        big = os.path.join(root, "large", "l0.bin")
        size = os.path.getsize(big)
        with open(big, "r+b") as f:
            for mib in range(0, size >> 20, 10):
                f.seek((mib << 20) + 4096)
                f.write(os.urandom(4096))
        later(big)
    elif pattern == "adddel":
        files = small_files(root)
        for path in rng.sample(files, min(100, len(files))):
            os.unlink(path)
        for i in range(100):
            d = os.path.join(root, "d%03d" % (i % 200))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "new%03d.bin" % i), "wb") as f:
                f.write(os.urandom(rng.randint(KIB, 64 * KIB)))


def same_tree(a, b):
    """Whether the trees below a and b hold the same files, byte for byte."""
    def files(root):
        out = {}
        for dirpath, _, names in os.walk(root):
            for n in names:
                p = os.path.join(dirpath, n)
                out[os.path.relpath(p, root)] = p
        return out

    fa, fb = files(a), files(b)
    if fa.keys() != fb.keys():
        missing = sorted(set(fa) ^ set(fb))[:5]
        return "the paths differ (%s)" % ", ".join(missing)
    for rel, p in fa.items():
        if not filecmp.cmp(p, fb[rel], shallow=False):
            return "%s differs" % rel
    return None


def target_of(tool):
    """The folder a tool syncs into, below its server's root."""
    return "t-" + tool


def tree_argv(bc, tool, pattern, src, servers):
    delete = ["--delete"] if pattern == "adddel" else []
    if tool == "diffcopy":
        url = "http://127.0.0.1:%d/%s/" % (servers["diffcopy"].port, target_of(tool))
        return [bc.DIFFCOPY, "-r", "-q", "--json"] + delete + [src + "/", url]
    url = "rsync://127.0.0.1:%d/bench/%s/" % (servers["rsync"].port, target_of(tool))
    inplace = ["--inplace"] if tool == "rsync-inplace" else []
    return ["rsync", "-rt"] + inplace + delete + [src + "/", url]


def start(bc, work):
    dirs = {"diffcopy": os.path.join(work, "srv-diffcopy"), "rsync": os.path.join(work, "srv-rsync")}
    for d in dirs.values():
        os.makedirs(d)
    servers = {}
    port = bc.free_port()
    argv = [bc.DIFFCOPY, "serve", "--listen", "127.0.0.1:%d" % port, "--root", dirs["diffcopy"], "-q"]
    s = bc.Server("diffcopy server", argv, port, os.path.join(work, "diffcopy-serve.log"))
    servers["diffcopy"] = s
    bc.wait_listening(s.proc, port, s.name, s.logfile)
    port = bc.free_port()
    conf = os.path.join(work, "rsyncd.conf")
    with open(conf, "w") as f:
        f.write(
            "use chroot = no\nuid = 0\ngid = 0\nlog file = %s\npid file = %s\n\n[bench]\n    path = %s\n    read only = no\n"
            % (os.path.join(work, "rsyncd.log"), os.path.join(work, "rsyncd.pid"), dirs["rsync"])
        )
    argv = ["rsync", "--daemon", "--no-detach", "--address=127.0.0.1", "--port=%d" % port, "--config=" + conf]
    s = bc.Server("rsync daemon", argv, port, os.path.join(work, "rsyncd.out"))
    servers["rsync"] = s
    bc.wait_listening(s.proc, port, s.name, s.logfile)
    time.sleep(0.5)
    for s in servers.values():
        s.check_alive()
        s.baseline = bc.proc_tree(s.pid)
    return servers, dirs


def one_run(bc, tool, pattern, src, servers, dirs, work, timeout):
    server = "diffcopy" if tool == "diffcopy" else "rsync"
    srv = servers[server]
    srv.settle()
    srv.baseline = bc.proc_tree(srv.pid)
    for pid in srv.baseline:
        bc.clear_refs(pid)
    sampler = bc.HwmSampler(srv.pid, srv.baseline)
    cpu0 = bc.tree_cpu_ticks(srv.pid)
    lo0 = bc.lo_bytes()
    sampler.start()
    try:
        wall, client_cpu, client_rss, stdout = bc.run_client(tree_argv(bc, tool, pattern, src, servers), timeout, work, "%s/%s" % (tool, pattern))
        srv.settle()
    finally:
        server_rss, sampled = sampler.finish()
    r = {
        "wall": wall,
        "wire": bc.lo_bytes() - lo0,
        "client_cpu": client_cpu,
        "server_cpu": (bc.tree_cpu_ticks(srv.pid) - cpu0) / bc.CLK_TCK,
        "client_rss": client_rss,
        "server_rss": server_rss,
    }
    wrong = same_tree(src, os.path.join(dirs[server], target_of(tool)))
    if wrong:
        raise bc.BenchError("MISMATCH after %s/%s: %s" % (tool, pattern, wrong))
    if tool == "diffcopy":
        summary = [line for line in stdout.splitlines() if '"summary"' in line]
        if summary:
            r["summary"] = summary[-1]
    return r


def tree_bytes(root):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names)


def rate_bits(rate):
    """tc's rate (100mbit, 1gbit, 500kbit) in bits per second."""
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1.0}
    for unit, scale in units.items():
        if rate.endswith(unit):
            return float(rate[: -len(unit)]) * scale
    raise ValueError("unknown rate %s" % rate)


def median_spread(values):
    m = statistics.median(values)
    return m, min(values), max(values)


def render(bc, results, args, sizes):
    lines = []
    rate = args.rate
    lines.append("| pattern | tool | wall s | wire both ways | client CPU s | server CPU s | client RSS MiB | server RSS MiB |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for pattern in PATTERNS:
        if rate and pattern in sizes:
            limit = sizes[pattern] * 8 / rate_bits(rate)
            lines.append("| %s | *the link's limit* | %.2f | %s | | | | |" % (pattern, limit, bc.human_bytes(sizes[pattern])))
        for tool in TOOLS:
            rs = results.get((tool, pattern))
            if not rs:
                continue
            wall, lo, hi = median_spread([r["wall"] for r in rs])
            spread = " (%.2f–%.2f)" % (lo, hi) if len(rs) > 1 else ""
            med = lambda k: statistics.median([r[k] for r in rs])
            lines.append(
                "| %s | %s | %.2f%s | %s | %.2f | %.2f | %.0f | %.0f |"
                % (pattern, tool, wall, spread, bc.human_bytes(med("wire")), med("client_cpu"), med("server_cpu"), med("client_rss"), med("server_rss"))
            )
    return "\n".join(lines) + "\n"


def run(bc, args):
    """The --tree benchmark; bc is the bench-compare module (its helpers)."""
    bc.prepare(args)
    work = __import__("tempfile").mkdtemp(prefix="bench-tree-", dir=args.workdir)
    servers = {}
    results = {}
    sizes = {}
    try:
        servers, dirs = start(bc, work)
        pristine = os.path.join(work, "pristine")
        t = time.perf_counter()
        make_tree(pristine, args.tree_files, args.tree_dirs, args.tree_large, args.tree_large_mib, 1)
        bc.log("generated the tree (%s) in %.1f s" % (bc.human_bytes(tree_bytes(pristine)), time.perf_counter() - t))
        timeout = args.timeout or 3600
        src = os.path.join(work, "src")
        for run_no in range(args.runs):
            if os.path.exists(src):
                shutil.rmtree(src)
            subprocess.run(["cp", "-a", pristine, src], check=True)
            for tool in TOOLS:
                target = os.path.join(dirs["diffcopy" if tool == "diffcopy" else "rsync"], target_of(tool))
                shutil.rmtree(target, ignore_errors=True)
                os.makedirs(target)
            tools = TOOLS[run_no % len(TOOLS) :] + TOOLS[: run_no % len(TOOLS)]
            for pattern in PATTERNS:
                mutate(pattern, src, 100 + run_no)
                if pattern == "first":
                    sizes[pattern] = tree_bytes(src)
                for tool in tools:
                    r = one_run(bc, tool, pattern, src, servers, dirs, work, timeout)
                    results.setdefault((tool, pattern), []).append(r)
                    bc.log(
                        "%-9s run %d/%d %-13s %7.2f s  wire %-10s client cpu %.2f s  server cpu %.2f s  rss %.0f/%.0f MiB"
                        % (pattern, run_no + 1, args.runs, tool, r["wall"], bc.human_bytes(r["wire"]), r["client_cpu"], r["server_cpu"], r["client_rss"], r["server_rss"])
                    )
    finally:
        for s in servers.values():
            s.stop()
        if args.keep:
            bc.log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    table = render(bc, results, args, sizes)
    print(table)
    info = bc.machine_info()
    doc = ["# diffcopy -r beside rsync: a directory tree", ""]
    doc.append("Made by `scripts/bench-compare --tree%s` on %s." % ((" --rate " + args.rate) if args.rate else "", time.strftime("%Y-%m-%d")))
    doc.append("")
    doc.append(
        "The tree: %d files of 1 to 64 KiB in %d folders, and %d files of %d MiB (%s), incompressible. "
        "Runs: %d per tool and pattern, on fresh copies, tools in rotating order; the median is shown (with the spread when there are several)."
        % (args.tree_files, args.tree_dirs, args.tree_large, args.tree_large_mib, bc.human_bytes(sizes.get("first", 0)), args.runs)
    )
    doc.append("")
    for p in PATTERNS:
        doc.append("* `%s`: %s" % (p, PATTERN_TEXT[p]))
    doc.append("")
    doc.append(TOOLS_TEXT)
    doc.append("")
    doc.append("Machine: %d cores, %s, Linux %s, %s." % (info["nproc"], info["memory"], info["kernel"], info["cpu"]))
    doc.append("")
    doc.append(table)
    out = args.out
    with open(out, "w") as f:
        f.write("\n".join(doc))
    bc.log("wrote %s" % out)
    return 0
