#!/usr/bin/env python3
"""Closed-loop load generator for the face capacity bench (stdlib only).

usage: load.py URL TOKEN BODY_FILE --levels 1,2,8,32,128 --seconds 10 [--timeout 10]

Each of N callers POSTs the same JSON body over its own keep-alive connection, back to back, for
`--seconds`. Per level it prints: served/s, p50/p99 of served (200) requests, shed share (503), the
slowest shed answer, and any other status or error. Python threads share one core's worth of GIL, so
at 128 callers the client itself adds latency: compare with the engine's own numbers.
"""
import argparse, http.client, json, threading, time, urllib.parse


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * p))]


def caller(url, token, body, stop, out, timeout):
    u = urllib.parse.urlsplit(url)
    conn = None
    while time.monotonic() < stop:
        if conn is None:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        t = time.perf_counter()
        try:
            conn.request("POST", u.path, body=body, headers={
                "Authorization": "Bearer " + token, "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            dt = time.perf_counter() - t
            out.append((r.status, dt, r.getheader("Retry-After"), data[:200]))
            if r.getheader("Connection", "").lower() == "close":
                conn.close(); conn = None
        except Exception as e:  # a timeout or a dropped connection is an error, counted
            out.append(("error:" + type(e).__name__, time.perf_counter() - t, None, b""))
            conn.close(); conn = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url"); ap.add_argument("token"); ap.add_argument("body")
    ap.add_argument("--levels", default="1,2,8,32,128")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    body = open(a.body, "rb").read()
    rows = []
    print("| callers | served/s | p50 served | p99 served | shed | slowest shed answer | Retry-After | other |")
    print("|---|---|---|---|---|---|---|---|")
    for n in [int(x) for x in a.levels.split(",")]:
        out = []
        stop = time.monotonic() + a.seconds
        ts = [threading.Thread(target=caller, args=(a.url, a.token, body, stop, out, a.timeout)) for _ in range(n)]
        t0 = time.monotonic()
        for t in ts: t.start()
        for t in ts: t.join()
        wall = time.monotonic() - t0
        ok = [d for s, d, _, _ in out if s == 200]
        shed = [(d, ra) for s, d, ra, _ in out if s == 503]
        other = {}
        for s, _, _, _ in out:
            if s not in (200, 503):
                other[str(s)] = other.get(str(s), 0) + 1
        ras = sorted({ra for _, ra in shed if ra})
        row = dict(callers=n, served_per_s=len(ok) / wall, p50_ms=pct(ok, .5) * 1e3, p99_ms=pct(ok, .99) * 1e3,
                   shed_share=len(shed) / max(1, len(out)), max_shed_ms=max([d for d, _ in shed], default=0) * 1e3,
                   retry_after=ras, other=other, requests=len(out))
        rows.append(row)
        print(f"| {n} | {row['served_per_s']:.1f} | {row['p50_ms']:.0f} ms | {row['p99_ms']:.0f} ms | "
              f"{row['shed_share']*100:.0f}% of {len(out)} | {row['max_shed_ms']:.0f} ms | {','.join(ras) or '-'} | {other or '-'} |",
              flush=True)
        time.sleep(1)
    if a.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
