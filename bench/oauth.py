#!/usr/bin/env python3
"""Token benchmark for bench/oauth (standard library only; load from wrk).

  oauth.py --bin B --rate R --workdir W --pidfile P --logdir L [--connections 64]
           [--duration 15] [--raw-seconds 5]

Starts `portcullis serve` (SQLite, new data dir), generates an ECDSA P-256 and an RSA-2048
key (crypto/certificatekeypairs/generate/), creates one confidential OAuth2 provider per key
with the default `openid` and `profile` scope mappings and an application for it, then for
each key runs `wrk -t2 -c<connections>` of `POST /application/o/token/` with
`grant_type=client_credentials` (client_secret_post) for --duration seconds, twice:
`scope=profile` (the answer holds one signed JWT, the access token) and `scope=openid profile`
(two: the access token and an ID token). The raw signing rate of the same kind of key,
in-process on all cores (the jws_rate example), is measured before. The ratio compares JWTs
signed per second through the endpoint with the raw rate. Prints a table on stdout.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helper  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def api(port, token, method, path, body=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


def token_once(port, body):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/application/o/token/", body=body,
              headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def raw_rate(binary, alg, threads, seconds):
    out = subprocess.run([binary, alg, str(threads), str(seconds)], check=True,
                         capture_output=True, text=True, timeout=seconds + 120).stdout.split()
    return float(out[0]), float(out[4])


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    return 0


def run_case(args, port, p, alg, scope, jwts, raw):
    """One wrk run of client_credentials requests for `scope`; one table row."""
    body = urllib.parse.urlencode({
        "grant_type": "client_credentials", "scope": scope,
        "client_id": p["client_id"], "client_secret": p["client_secret"],
    })
    status, data = token_once(port, body)
    if status != 200:
        raise SystemExit(f"token request failed: {status} {data[:300]!r}")
    header = json.loads(urllib.parse.unquote(
        __import__("base64").urlsafe_b64decode(
            json.loads(data)["access_token"].split(".")[0] + "==").decode()))
    if header["alg"] != alg.upper():
        raise SystemExit(f"expected {alg.upper()} tokens, got {header['alg']}")
    if ("id_token" in json.loads(data)) != (jwts == 2):
        raise SystemExit(f"scope {scope!r}: unexpected answer {data[:300]!r}")
    log(f"{alg} scope={scope!r}: wrk -t2 -c{args.connections} -d{args.duration}s")
    wenv = dict(os.environ, BENCH_BODY=body)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
         "-s", os.path.join(BENCH_DIR, "oauth.lua"),
         f"http://127.0.0.1:{port}/application/o/token/"],
        env=wenv, check=True, capture_output=True, text=True,
        timeout=args.duration + 120).stdout
    with open(os.path.join(args.logdir, f"wrk-oauth-{alg}-{jwts}.txt"), "w") as f:
        f.write(out)
    stats, statuses = {}, {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "status":
            statuses[int(parts[1])] = int(parts[2])
        elif len(parts) == 2 and parts[0] in ("p50_us", "p99_us", "requests",
                                              "duration_us", "socket_errors"):
            stats[parts[0]] = int(parts[1])
    ok = statuses.get(200, 0)
    rate = ok / (stats["duration_us"] / 1e6)
    return (alg.upper(), scope, rate, jwts * rate, raw, 100 * jwts * rate / raw,
            stats["p50_us"] / 1000, stats["p99_us"] / 1000,
            sum(v for k, v in statuses.items() if k != 200), stats["socket_errors"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--rate", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--logdir", required=True)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--raw-seconds", type=float, default=5)
    args = ap.parse_args()
    token = "oauth-bench-" + os.urandom(12).hex()
    cores = os.cpu_count() or 1

    raws = {}
    for alg in ("es256", "rs256"):
        log(f"raw {alg} signing rate, {cores} threads, {args.raw_seconds:g} s")
        raws[alg] = raw_rate(args.rate, alg, cores, args.raw_seconds)

    env = dict(os.environ)
    env.pop("PORTCULLIS_DATABASE_URL", None)
    env.update(PORTCULLIS_DATA_DIR=os.path.join(args.workdir, "data"),
               PORTCULLIS_BOOTSTRAP_TOKEN=token,
               PORTCULLIS_BOOTSTRAP_PASSWORD="admin-" + os.urandom(8).hex())
    # The default log level (info: one line per request), as an installation runs.
    for name in ("HTTP", "METRICS", "HTTPS", "LDAP", "LDAPS", "RADIUS"):
        env[f"PORTCULLIS_LISTEN_{name}"] = f"127.0.0.1:{helper.free_port()}"
    port = int(env["PORTCULLIS_LISTEN_HTTP"].rsplit(":", 1)[1])
    logfile = open(os.path.join(args.logdir, "server-oauth.log"), "w")
    proc = subprocess.Popen([args.bin, "serve"], env=env, stdout=logfile, stderr=logfile,
                            stdin=subprocess.DEVNULL)
    with open(args.pidfile, "a") as f:
        f.write(f"{proc.pid}\n")
    rows = []
    try:
        helper.wait_ready(port, 30, proc)
        flows = {}
        for slug in ("default-provider-authorization-implicit-consent",
                     "default-provider-invalidation-flow"):
            flows[slug] = api(port, token, "GET", f"/api/v3/flows/instances/{slug}/")["pk"]
        mappings = [api(port, token, "GET",
                        f"/api/v3/propertymappings/provider/scope/?scope_name={name}")["results"][0]["pk"]
                    for name in ("openid", "profile")]
        for alg, kind in (("es256", "ecdsa"), ("rs256", "rsa")):
            key = api(port, token, "POST", "/api/v3/crypto/certificatekeypairs/generate/",
                      {"common_name": f"bench-{alg}", "validity_days": 30, "alg": kind})
            p = api(port, token, "POST", "/api/v3/providers/oauth2/", {
                "name": f"bench-{alg}",
                "authorization_flow": flows["default-provider-authorization-implicit-consent"],
                "invalidation_flow": flows["default-provider-invalidation-flow"],
                "redirect_uris": [], "signing_key": key["pk"], "property_mappings": mappings,
            })
            api(port, token, "POST", "/api/v3/core/applications/",
                {"name": f"bench-{alg}", "slug": f"bench-{alg}", "provider": p["pk"]})
            for scope, jwts in (("profile", 1), ("openid profile", 2)):
                rows.append(run_case(args, port, p, alg, scope, jwts, raws[alg][0]))
        rss = proc_status(proc.pid, "VmHWM")
        alive = proc.poll() is None
    finally:
        helper.stop(proc)
    print()
    print(f"  client_credentials tokens, SQLite, wrk -t2 -c{args.connections}, "
          f"{args.duration} s each (client on the same {cores}-core machine)")
    print(f"  {'key':<6} {'scope':<15} {'answers/s':>9} {'JWTs/s':>8} {'raw sign/s':>11} "
          f"{'ratio':>7} {'p50 ms':>7} {'p99 ms':>7} {'non-200':>8} {'sock err':>9}")
    for alg, scope, rate, jwts, raw, ratio, p50, p99, bad, sock in rows:
        print(f"  {alg:<6} {scope:<15} {rate:>9.0f} {jwts:>8.0f} {raw:>11.0f} {ratio:>6.1f}% "
              f"{p50:>7.2f} {p99:>7.2f} {bad:>8} {sock:>9}")
    print("  (scope profile: one JWT per answer, the access token; openid profile: two, with the"
          " ID token)")
    print(f"  target: signed tokens/s >= 70% of the raw signing rate of the same key")
    print(f"  server peak RSS: {rss} MB; alive after the load: {alive}")


if __name__ == "__main__":
    main()
