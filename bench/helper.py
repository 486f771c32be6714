#!/usr/bin/env python3
"""Measuring helpers for bench/run (standard library only).

  helper.py free-port
  helper.py startup --bin B --runs N --mode fresh|restart --workdir W --pidfile P [--pg-url URL]
  helper.py wait-ready --port P [--timeout S]
  helper.py rss PID                      -> VmRSS in KiB
  helper.py seed --port P --token T --count N --prefix X
  helper.py count --port P --token T     -> pagination.count of /api/v3/core/users/
  helper.py parse-wrk FILE               -> rps p50_ms p99_ms total non2xx socket_errors codes

Every server this file spawns has its pid appended to --pidfile before anything else
happens, so bench/run's trap can kill it whatever goes wrong here; this file also stops
each one itself (SIGTERM, then SIGKILL after 10 s) in a finally block.
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

POLL_INTERVAL = 0.002  # 2 ms between readiness probes


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def probe_ready(port, timeout):
    """One GET /-/health/ready/ on a fresh connection. Returns the status code, or None
    when the connection is refused (listener not bound yet). A connection accepted by the
    kernel before the server serves simply waits here until it answers."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except (ConnectionRefusedError, ConnectionResetError):
        return None
    except OSError:
        return None
    try:
        s.sendall(b"GET /-/health/ready/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(256)
            if not chunk:
                return None
            buf += chunk
        line = buf.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) >= 2 else None
    except (socket.timeout, ConnectionResetError, OSError):
        return None
    finally:
        s.close()


def wait_ready(port, deadline_s, proc=None):
    """Polls every 2 ms until a 204. Returns the perf_counter time of that 204."""
    deadline = time.perf_counter() + deadline_s
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was ready")
        code = probe_ready(port, timeout=max(0.5, deadline - time.perf_counter()))
        if code == 204:
            return time.perf_counter()
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"not ready within {deadline_s} s")


def stop(proc):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_once(args, data_dir, log):
    port, mport = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        PORTCULLIS_DATA_DIR=data_dir,
        PORTCULLIS_LISTEN_HTTP=f"127.0.0.1:{port}",
        PORTCULLIS_LISTEN_METRICS=f"127.0.0.1:{mport}",
        # every other listener on loopback too, on ports of its own
        PORTCULLIS_LISTEN_HTTPS=f"127.0.0.1:{free_port()}",
        PORTCULLIS_LISTEN_LDAP=f"127.0.0.1:{free_port()}",
        PORTCULLIS_LISTEN_LDAPS=f"127.0.0.1:{free_port()}",
        PORTCULLIS_LISTEN_RADIUS=f"127.0.0.1:{free_port()}",
        PORTCULLIS_BOOTSTRAP_TOKEN=args.token,
        PORTCULLIS_BOOTSTRAP_PASSWORD=args.password,
    )
    if args.pg_url:
        env["PORTCULLIS_DATABASE_URL"] = args.pg_url
    else:
        env.pop("PORTCULLIS_DATABASE_URL", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([args.bin, "serve"], env=env, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    try:
        with open(args.pidfile, "a") as f:
            f.write(f"{proc.pid}\n")
        t1 = wait_ready(port, 30, proc)
        return t1 - t0
    finally:
        stop(proc)


def cmd_startup(args):
    times = []
    with open(os.path.join(args.workdir, f"startup-{args.mode}-{args.label}.log"), "ab") as log:
        if args.mode == "fresh":
            for i in range(args.runs):
                d = tempfile.mkdtemp(prefix="fresh-", dir=args.workdir)
                url = args.pg_url
                if args.pg_url:
                    url = create_pg_db(args.pg_url, f"bench_fresh_{os.getpid()}_{i}")
                a = argparse.Namespace(**vars(args))
                a.pg_url = url
                times.append(run_once(a, os.path.join(d, "data"), log))
        else:
            d = tempfile.mkdtemp(prefix="restart-", dir=args.workdir)
            a = argparse.Namespace(**vars(args))
            if args.pg_url:
                a.pg_url = create_pg_db(args.pg_url, f"bench_restart_{os.getpid()}")
            run_once(a, os.path.join(d, "data"), log)  # first start: not counted
            for _ in range(args.runs):
                times.append(run_once(a, os.path.join(d, "data"), log))
    print(f"{statistics.median(times):.4f} {min(times):.4f} " + ",".join(f"{t:.4f}" for t in times))


def create_pg_db(base_url, name):
    subprocess.run(["psql", base_url, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"],
                   check=True, stdout=subprocess.DEVNULL)
    return base_url.rsplit("/", 1)[0] + "/" + name


def cmd_wait_ready(args):
    wait_ready(args.port, args.timeout)


def cmd_rss(args):
    with open(f"/proc/{args.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                print(line.split()[1])
                return
    sys.exit("no VmRSS")


def api(port, token):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return c, h


def cmd_seed(args):
    c, h = api(args.port, args.token)
    bad = 0
    for i in range(args.count):
        body = json.dumps({"username": f"{args.prefix}-{i}", "name": f"Seed user {i}"})
        c.request("POST", "/api/v3/core/users/", body=body, headers=h)
        r = c.getresponse()
        r.read()
        if r.status != 201:
            bad += 1
            print(f"seed: POST returned {r.status}", file=sys.stderr)
    c.close()
    if bad:
        sys.exit(f"seed: {bad} of {args.count} creates failed")


def cmd_count(args):
    c, h = api(args.port, args.token)
    c.request("GET", "/api/v3/core/users/?page_size=1", headers=h)
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit(f"count: GET returned {r.status}: {data[:200]!r}")
    print(json.loads(data)["pagination"]["count"])


def to_ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return float("nan")
    x, unit = float(m.group(1)), m.group(2)
    return x * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def cmd_parse_wrk(args):
    text = open(args.file).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    codes = re.search(r"^status codes: (.*)$", text, re.M)
    print(" ".join([
        f"{float(rps.group(1)):.0f}" if rps else "?",
        f"{to_ms(p50.group(1)):.2f}" if p50 else "?",
        f"{to_ms(p99.group(1)):.2f}" if p99 else "?",
        total.group(1) if total else "?",
        non2xx.group(1) if non2xx else "0",
        str(sum(int(g) for g in sock.groups())) if sock else "0",
        (codes.group(1).strip().replace(" ", ",") or "-") if codes else "-",
    ]))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    s = sub.add_parser("startup")
    s.add_argument("--bin", required=True)
    s.add_argument("--runs", type=int, default=5)
    s.add_argument("--mode", choices=["fresh", "restart"], required=True)
    s.add_argument("--workdir", required=True)
    s.add_argument("--pidfile", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--pg-url")
    s.add_argument("--label", default="sqlite")
    s = sub.add_parser("wait-ready")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("rss")
    s.add_argument("pid", type=int)
    for name in ("seed", "count"):
        s = sub.add_parser(name)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--token", required=True)
        if name == "seed":
            s.add_argument("--count", type=int, default=100)
            s.add_argument("--prefix", default="seed")
    s = sub.add_parser("parse-wrk")
    s.add_argument("file")
    args = p.parse_args()
    if args.cmd == "free-port":
        print(free_port())
    else:
        globals()["cmd_" + args.cmd.replace("-", "_")](args)


if __name__ == "__main__":
    main()
