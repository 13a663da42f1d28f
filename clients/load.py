#!/usr/bin/env python3
"""load.py: load generator for rosa-server.  For each concurrency level it runs that many
streaming clients for a fixed time and reports requests/s, time to first token and
per-token latency (p50/p99), plus from /metrics: the mean engine step time, the HTTP loop
thread's CPU time per generated token (all of HTTP + JSON + SSE work: the server's overhead),
that cost as a share of the engine step ("ovh/step": the issue's "< 5%" target), and how busy
the loop thread was (share of one core).

usage: clients/load.py --url http://127.0.0.1:8080 [--conc 1,8,64] [--seconds 10]
                       [--prompt-tokens 64] [--max-tokens 64]
Standard library only."""
import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def metrics(host, port):
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def worker(host, port, args, stop_at, stats, lock, seed):
    rnd = random.Random(seed)
    c = http.client.HTTPConnection(host, port, timeout=120)
    while time.time() < stop_at:
        prompt = [rnd.randrange(32, 127) for _ in range(args.prompt_tokens)]
        body = json.dumps({"prompt": prompt, "max_tokens": args.max_tokens, "stream": True,
                           "ignore_eos": True, "temperature": 0, "logprobs": 0})
        t0 = time.time()
        c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        first, last, gaps, n, buf = None, None, [], 0, b""
        while True:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                if ev == b"data: [DONE]":
                    continue
                now = time.time()
                n += 1
                if first is None:
                    first = now - t0
                else:
                    gaps.append(now - last)
                last = now
        with lock:
            stats["req"] += 1
            stats["tok"] += n
            if first is not None:
                stats["ttft"].append(first)
            stats["gap"].extend(gaps)
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--conc", default="1,8,64")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port or 80
    print(f"{'conc':>5} {'req/s':>8} {'tok/s':>9} {'ttft p50':>9} {'ttft p99':>9} "
          f"{'itl p50':>8} {'itl p99':>8} {'step ms':>8} {'loop us/tok':>11} {'ovh/step':>8} "
          f"{'loop busy':>9}")
    for conc in [int(x) for x in args.conc.split(",")]:
        m0 = metrics(host, port)
        stats = {"req": 0, "tok": 0, "ttft": [], "gap": []}
        lock = threading.Lock()
        stop_at = time.time() + args.seconds
        t0 = time.time()
        ts = [threading.Thread(target=worker, args=(host, port, args, stop_at, stats, lock, i))
              for i in range(conc)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.time() - t0
        m1 = metrics(host, port)
        steps = m1["rosa_engine_step_seconds_count"] - m0["rosa_engine_step_seconds_count"]
        step_s = (m1["rosa_engine_step_seconds_sum"] - m0["rosa_engine_step_seconds_sum"]) / max(steps, 1)
        gen = m1["rosa_generation_tokens_total"] - m0["rosa_generation_tokens_total"]
        loop_cpu = m1["rosa_loop_thread_cpu_seconds_total"] - m0["rosa_loop_thread_cpu_seconds_total"]
        loop_tok = loop_cpu / max(gen, 1)
        print(f"{conc:>5} {stats['req'] / dt:>8.1f} {stats['tok'] / dt:>9.0f} "
              f"{pct(stats['ttft'], 50) * 1e3:>8.1f}ms {pct(stats['ttft'], 99) * 1e3:>8.1f}ms "
              f"{pct(stats['gap'], 50) * 1e3:>7.2f}ms {pct(stats['gap'], 99) * 1e3:>7.2f}ms "
              f"{step_s * 1e3:>7.2f}ms {loop_tok * 1e6:>9.1f}us {loop_tok / max(step_s, 1e-9) * 100:>7.2f}% "
              f"{loop_cpu / dt * 100:>8.1f}%")


if __name__ == "__main__":
    main()
