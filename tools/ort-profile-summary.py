#!/usr/bin/env python3
"""Summarises an ONNX Runtime profile (`pipeline bench --profile PREFIX`): time per operator type
and provider, model runs, and the share of copies between host and device. Usage:
  python3 tools/ort-profile-summary.py PREFIX_*.json [--top 15]"""
import json, sys, collections
path = sys.argv[1]; top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 15
events = json.load(open(path))
ops = collections.defaultdict(lambda: [0, 0]); providers = collections.Counter(); runs = []
for e in events:
    if e.get("cat") == "Session" and e.get("name") == "model_run": runs.append(e["dur"])
    if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"): continue
    a = e.get("args", {}); key = (a.get("op_name", "?"), a.get("provider", "?"))
    ops[key][0] += e["dur"]; ops[key][1] += 1; providers[a.get("provider", "?")] += e["dur"]
total = sum(v[0] for v in ops.values()) or 1
runs.sort()
print(f"model runs: {len(runs)}, median {runs[len(runs)//2]/1000 if runs else 0:.2f} ms, total {sum(runs)/1000:.0f} ms; kernel time {total/1000:.0f} ms")
print("by provider: " + ", ".join(f"{p} {d/1000:.0f} ms ({100*d/total:.0f}%)" for p, d in providers.most_common()))
print(f"{'op':28} {'provider':24} {'ms':>9} {'%':>5} {'calls':>7}")
for (op, prov), (d, n) in sorted(ops.items(), key=lambda kv: -kv[1][0])[:top]:
    print(f"{op:28} {prov:24} {d/1000:9.1f} {100*d/total:5.1f} {n:7d}")
