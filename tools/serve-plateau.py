#!/usr/bin/env python3
"""Serves the same load N rounds against a running `pipeline serve` and prints the server's RSS
after each round (issue 11: memory must plateau). Usage:
  pipeline serve --model MODEL --urls http://127.0.0.1:18090 &
  python3 tools/serve-plateau.py --pid PID --url http://127.0.0.1:18090 [--rounds 3 --requests 64 --concurrency 16 --max-tokens 64]
Half the requests stream. Prints one line per round: RSS, peak RSS (VmHWM), seconds."""
import argparse, json, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

def status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    return -1

def one(url, i, max_tokens):
    body = {"model": MODEL[0], "prompt": f"Once upon a time {i % 8}", "max_tokens": max_tokens, "seed": 1000 + i, "temperature": 0.8, "stream": i % 2 == 0}
    req = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        data = r.read()
    return len(data)

MODEL = [""]

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--pid", type=int, required=True); a.add_argument("--url", required=True)
    a.add_argument("--rounds", type=int, default=3); a.add_argument("--requests", type=int, default=64)
    a.add_argument("--concurrency", type=int, default=16); a.add_argument("--max-tokens", type=int, default=64)
    o = a.parse_args()
    MODEL[0] = json.load(urllib.request.urlopen(o.url + "/v1/models"))["data"][0]["id"]
    print(f"before: RSS {status(o.pid, 'VmRSS')} MB")
    for r in range(1, o.rounds + 1):
        t = time.time()
        with ThreadPoolExecutor(o.concurrency) as pool:
            list(pool.map(lambda i: one(o.url, i, o.max_tokens), range(o.requests)))
        time.sleep(1)
        print(f"round {r}: RSS {status(o.pid, 'VmRSS')} MB, peak {status(o.pid, 'VmHWM')} MB, {time.time() - t:.0f} s", flush=True)

main()
