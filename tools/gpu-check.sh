#!/usr/bin/env bash
# Checks the CUDA build on a GPU machine. From the repository root here:
#   dotnet publish src/Cli -c Release -r linux-x64 --self-contained -p:UseCuda=true -p:InvariantGlobalization=true -o /tmp/gpu-app
#   ../shared/tools/gpu-stage /tmp/gpu-app pipeline      # prints the device calls that carry it over
# then, in the last call, carry this script too and run: source .gpu-stage/unpack.sh && bash tools/gpu-check.sh
# Runs on the GPU machine after unpack.sh: does the CUDA provider start, do greedy ids match the
# llama2.c reference, and are batched answers identical to one-at-a-time answers on CUDA?
set -u
P=/tmp/gpu-app/pipeline
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== greedy, CUDA"
$P generate --cuda --prompt "Once upon a time" --max-tokens 40 --format json
echo "== 16 requests batched vs one at a time (CUDA), and CPU"
python3 - <<'PY' > /tmp/req.jsonl
import json
prompts=["Once upon a time","Lily","Tom and his dog","","The sun","A cat","Ben wanted to fly","One day"]
for i in range(16):
    r={"id":i,"prompt":prompts[i%8],"max_tokens":8+(i*7)%50,"seed":1000+i,"temperature":0 if i%3==0 else 0.8}
    print(json.dumps(r))
PY
strip() { python3 -c 'import sys,json
for l in sys.stdin:
  o=json.loads(l); o.pop("timings_ms",None); print(json.dumps(o,sort_keys=True))'; }
$P generate - --cuda < /tmp/req.jsonl 2>/tmp/err1 | strip > /tmp/batched.txt; cat /tmp/err1
$P generate - --cuda < /tmp/req.jsonl 2>/dev/null | strip > /tmp/batched2.txt
$P generate - --cuda --concurrency 1 < /tmp/req.jsonl 2>/dev/null | strip > /tmp/solo.txt
$P generate - < /tmp/req.jsonl 2>/dev/null | strip > /tmp/cpu.txt
echo "batched run twice on CUDA: $(diff /tmp/batched.txt /tmp/batched2.txt > /dev/null && echo identical || echo DIFFERENT)"
echo "batched vs solo on CUDA: $(diff /tmp/batched.txt /tmp/solo.txt > /dev/null && echo identical || echo DIFFERENT)"
echo "CUDA vs CPU: $(diff /tmp/batched.txt /tmp/cpu.txt > /dev/null && echo identical || echo "different in $(diff /tmp/batched.txt /tmp/cpu.txt | grep -c '^<') of 16")"
diff /tmp/batched.txt /tmp/solo.txt | head -6
cp /tmp/batched.txt /tmp/solo.txt /tmp/cpu.txt $OUT/ 2>/dev/null
