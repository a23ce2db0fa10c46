"""Uploads into an S3-compatible bucket: diffcopy over a bucket against a
plain whole-object PUT, side by side in one run.

    scripts/bench-s3 [--size MIB] [--runs N] [--out FILE] [--no-build]
                     [--patterns LIST] [--workdir DIR] [--keep]

Starts SeaweedFS (`weed mini`, from the venv) on 127.0.0.1 with ports of its
own, one bucket, and `diffcopy serve --store s3://bench/files` over it. It
makes an incompressible file (1 GiB by default) and, per pattern, a new
version of it. Per run and pattern, diffcopy first uploads the old version
(not timed) and then the new one over it (timed); boto3 then PUTs the new
version whole as one object (timed), as a client without diffcopy would.
Each result is read back from the bucket and compared.

Per row: wall time of the upload; bytes between the client and its server
(diffcopy: everything on the server's client sockets, both ways, headers
included; the PUT: the body); bytes uploaded into the store, copied inside
it (UploadPartCopy) and read from it (the server's counters); requests to
the store, and of them writes and listings (AWS's "class A"); the server's
peak RSS during the upload. Medians of --runs. Writes a Markdown table to
docs/bench-s3.md (or --out).

Patterns: new (no old version), scattered (4 KiB overwritten inside 10% of
the 1 MiB blocks), insert (100 bytes inserted at 4096), unchanged.
"""

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import json

import boto3
from botocore.config import Config

MIB = 1 << 20
BLOCK = MIB
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY, SECRET = "bench-key", "bench-secret"
PATTERNS = {
    "new": "a new file (no old version)",
    "scattered": "4 KiB overwritten inside 10% of the 1 MiB blocks",
    "insert": "100 bytes inserted at offset 4096",
    "unchanged": "the same file again",
}


def log(msg):
    print("bench-s3: " + msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("bench-s3: %s exited early" % what)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("bench-s3: %s did not listen within %d s" % (what, timeout))


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def clear_refs(pid):
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError:
        pass


def make_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MIB)
            f.write(os.urandom(n))
            left -= n


def make_new(pattern, base, work, size):
    """(old path or None, new path)."""
    rng = random.Random(pattern)
    new = os.path.join(work, "new-" + pattern)
    if pattern == "new":
        return None, base
    if pattern == "unchanged":
        return base, base
    shutil.copyfile(base, new)
    if pattern == "scattered":
        nblocks = size // BLOCK
        with open(new, "r+b") as f:
            for b in sorted(rng.sample(range(nblocks), max(1, nblocks // 10))):
                f.seek(b * BLOCK + rng.randrange(0, BLOCK - 4096 + 1))
                f.write(os.urandom(4096))
    elif pattern == "insert":
        with open(base, "rb") as src, open(new, "wb") as dst:
            dst.write(src.read(4096))
            dst.write(os.urandom(100))
            shutil.copyfileobj(src, dst, 8 * MIB)
    return base, new


def same(path, body_iter):
    with open(path, "rb") as f:
        for chunk in body_iter:
            if f.read(len(chunk)) != chunk:
                return False
        return f.read(1) == b""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="file size in MiB (default 1024)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "bench-s3.md"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--patterns", default=",".join(PATTERNS))
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    patterns = [p for p in args.patterns.split(",") if p]
    for p in patterns:
        if p not in PATTERNS:
            sys.exit("bench-s3: unknown pattern %s" % p)
    if not args.no_build:
        log("building the release binary")
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "diffcopy"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "diffcopy")
    work = args.workdir or tempfile.mkdtemp(prefix="bench-s3-")
    os.makedirs(work, exist_ok=True)
    size = args.size * MIB
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, NO_COLOR="1")
    env["DIFFCOPY_STATE_DIR"] = os.path.join(work, "state")
    procs = []
    try:
        s3_port = free_port()
        weed_args = [os.path.join(ROOT, ".venv", "bin", "weed"), "mini", "-dir=" + os.path.join(work, "weed"),
                     "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false", "-webdav=false",
                     "-s3.port=%d" % s3_port]
        for flag in ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                     "filer.port.grpc", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance", "admin.port",
                     "admin.port.grpc"]:
            weed_args.append("-%s=%d" % (flag, free_port()))
        os.makedirs(os.path.join(work, "weed"), exist_ok=True)
        weed = subprocess.Popen(weed_args, env=env, stdout=open(os.path.join(work, "weed.log"), "w"),
                                stderr=subprocess.STDOUT)
        procs.append(weed)
        wait_port(s3_port, "weed mini", weed)
        endpoint = "http://127.0.0.1:%d" % s3_port
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET,
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                        request_checksum_calculation="when_required",
                                        response_checksum_validation="when_required"))
        deadline = time.time() + 60
        while True:
            try:
                s3.create_bucket(Bucket="bench")
                break
            except Exception as e:  # the filer may still be starting
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        dc_port = free_port()
        server = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:%d" % dc_port, "--store",
                                   "s3://bench/files", "--s3-endpoint", endpoint], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
        procs.append(server)
        wait_port(dc_port, "diffcopy serve", server)
        url = "http://127.0.0.1:%d" % dc_port

        def stats():
            with urllib.request.urlopen(url + "/api/v1/stats") as r:
                return json.load(r)

        log("making a %d MiB file and its patterns in %s" % (args.size, work))
        base = os.path.join(work, "base")
        make_file(base, size)
        cases = {p: make_new(p, base, work, size) for p in patterns}
        rows = {}
        for run in range(args.runs):
            for p in patterns:
                old, new = cases[p]
                path = "%s-%d" % (p, run)
                if old:
                    subprocess.run([binary, old, "%s/%s" % (url, path)], env=env, check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                before = stats()
                clear_refs(server.pid)
                t = time.monotonic()
                subprocess.run([binary, new, "%s/%s" % (url, path)], env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                wall = time.monotonic() - t
                after = stats()
                d = {k: after[k] - before[k] for k in after if isinstance(after[k], int)}
                obj = s3.get_object(Bucket="bench", Key="files/heads/" + path)
                version = json.load(obj["Body"])["version"]
                body = s3.get_object(Bucket="bench", Key="files/versions/" + version)["Body"]
                if not same(new, body.iter_chunks(8 * MIB)):
                    sys.exit("bench-s3: diffcopy's %s is not the new file" % path)
                rows.setdefault((p, "diffcopy"), []).append({
                    "wall": wall,
                    "client": d["wire_bytes_in"] + d["wire_bytes_out"],
                    "uploaded": d["store_bytes_uploaded"],
                    "copied": d["store_bytes_copied"],
                    "downloaded": d["store_bytes_downloaded"],
                    "requests": d["store_requests"],
                    "writes": d["store_write_requests"],
                    "rss": vm_hwm_kib(server.pid) / 1024,
                })
                key = "plain/%s" % path
                t = time.monotonic()
                with open(new, "rb") as f:
                    s3.put_object(Bucket="bench", Key=key, Body=f)
                wall = time.monotonic() - t
                if not same(new, s3.get_object(Bucket="bench", Key=key)["Body"].iter_chunks(8 * MIB)):
                    sys.exit("bench-s3: the PUT of %s is not the new file" % path)
                s3.delete_object(Bucket="bench", Key=key)
                n = os.path.getsize(new)
                rows.setdefault((p, "PUT"), []).append({"wall": wall, "client": n, "uploaded": n, "copied": 0,
                                                         "downloaded": 0, "requests": 1, "writes": 1, "rss": None})
                log("run %d %s: diffcopy %.2f s, PUT %.2f s" % (run + 1, p, rows[(p, "diffcopy")][-1]["wall"], wall))
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait()
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    def mib(n):
        return "%.1f MiB" % (n / MIB) if n >= MIB else "%.1f KiB" % (n / 1024)

    def med(runs, k):
        return statistics.median(r[k] for r in runs)

    lines = [
        "# Uploads into an S3-compatible bucket",
        "",
        "`scripts/bench-s3 --size %d --runs %d`: a %d MiB file, SeaweedFS `weed mini` %s on 127.0.0.1, "
        "one `diffcopy serve --store s3://...` (release build) in front of it; medians of %d runs."
        % (args.size, args.runs, args.size, subprocess.run([weed_args[0], "version"], capture_output=True,
                                                           text=True).stdout.split()[2], args.runs),
        "diffcopy: the CLI uploads the new version over the old one (protocol v2); PUT: boto3 `put_object` "
        "of the new version, whole.",
        "",
        "| pattern | tool | wall s | client <-> server | uploaded into the store | copied inside it "
        "| read from it | store requests (writes) | server peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in patterns:
        for tool in ("diffcopy", "PUT"):
            runs = rows[(p, tool)]
            rss = "%.0f MiB" % med(runs, "rss") if runs[0]["rss"] is not None else "-"
            lines.append("| %s | %s | %.2f | %s | %s | %s | %s | %d (%d) | %s |" % (
                p, tool, med(runs, "wall"), mib(med(runs, "client")), mib(med(runs, "uploaded")),
                mib(med(runs, "copied")), mib(med(runs, "downloaded")), med(runs, "requests"),
                med(runs, "writes"), rss))
    lines += ["", "Patterns: " + "; ".join("%s: %s" % (p, PATTERNS[p]) for p in patterns) + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    log("wrote " + args.out)


if __name__ == "__main__":
    main()
