#!/usr/bin/env bash
# Batch invariance and speed on CUDA, on the GPU machine (issue 10). From the repository root here:
#   dotnet publish src/Cli -c Release -r linux-x64 --self-contained -p:UseCuda=true -o /tmp/gpu-app
#   dotnet publish tests/LongRun -c Release -r linux-x64 --self-contained -p:UseCuda=true -o /tmp/gpu-app
#   bash tools/gpu-pack.sh /tmp/gpu-app                  # parts of 34 MiB; its header says how to send them
# and in the last call: source .gpu-stage/unpack.sh && bash tools/gpu-invariance.sh [STEPS]
# STEPS (default all): any of probe shapeclasses p6 p1 p1graph resident residentsolo graph bench, comma-separated (bench knobs: BENCH_CONFIGS,
# BENCH_CONC, BENCH_REQUESTS, BENCH_TOKENS, BENCH_PROFILE=1, BENCH_EXTRA="--quantize f16 ..."; BENCH_SHAPE=110m|1.1b).
# PIPELINE_QUANTIZE=f16 runs the properties on float16 weights (and the float16 GroupQueryAttention decode graph). Results go to $OUT. P1 needs more
# than the 500 s it is given here today.
set -u
steps=${1:-probe,p6,p1,resident,graph,bench}
out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
# The long-run console finds the repository (Pipeline.sln) above its own folder: run a copy from here.
[ -d gpu-app ] || cp -r /tmp/gpu-app ./gpu-app
P=/tmp/gpu-app/pipeline; L=$PWD/gpu-app/Pipeline.LongRun
export PIPELINE_CACHE_DIR=/tmp/pipeline-cache/onnx
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
# The synthetic 110M shape (vocab 32000, context 512, random weights), written and converted once.
$P bench --synthetic 110m --modes serial --concurrency 1 --requests 1 --max-tokens 2 --json /tmp/warm.json > /dev/null 2>&1
M=$(ls -d /tmp/pipeline-cache/synthetic/synthetic-d768-* 2>/dev/null | head -1)
[ -n "$M" ] || { echo "no synthetic model written"; ls -R /tmp/pipeline-cache | head; exit 1; }
echo "model $M"
has() { [[ ",$steps," == *",$1,"* ]]; }
if has probe; then echo "== probe"; timeout 300 $L probe "$M" 2>&1 | tee "$out/probe.txt" | grep -E "^==|distinct|PASSED|FAILED|provider"; fi
if has shapeclasses; then echo "== which decode row counts give the 32-row call's bits (float16 resident graph)"; timeout 400 $L shapeclasses "$M" 2>&1 | tee "$out/shapeclasses.txt" | grep -E "decode=|rror|xception"; fi
if has p6; then echo "== P6 on CUDA"; timeout ${P6_TIMEOUT:-400} $L P6cuda "$M" ${SHAPES:-} 2>&1 | tee "$out/p6.txt" | tail -4; fi
if has p1; then echo "== P1 on CUDA"; timeout ${P1_TIMEOUT:-500} $L P1cuda "$M" ${SHAPES:-} 2>&1 | tee "$out/p1.txt" | tail -4; fi
if has resident; then echo "== resident vs staged on CUDA"; timeout 400 $L residentcuda "$M" ${SHAPES:-} 2>&1 | tee "$out/resident.txt" | tail -4; fi
if has p1graph; then echo "== P1 on CUDA with CUDA graphs"; timeout ${P1_TIMEOUT:-500} $L P1graph "$M" ${SHAPES:-} 2>&1 | tee "$out/p1-graph.txt" | tail -4; fi
if has residentsolo; then echo "== resident batched vs resident alone on CUDA"; timeout 400 $L residentsolo "$M" ${SHAPES:-} 2>&1 | tee "$out/resident-solo.txt" | tail -4; fi
if has graph; then echo "== resident with CUDA graphs vs staged"; timeout 400 $L residentgraph "$M" ${SHAPES:-} 2>&1 | tee "$out/resident-graph.txt" | tail -4; fi
if has bench; then
  # Configurations: batch shapes / resident pasts. cuda+on is the default; cuda+off stages the padded
  # pasts from the host every call; exact is the invariance switched off (unpadded, staged).
  # CONFIG = SHAPES:RESIDENT[:graph|:nograph] (graphs are on by default with resident pasts on CUDA);
  # exact (the invariance off) counts differing tokens instead of aborting.
  for cfg in ${BENCH_CONFIGS:-cuda:on cuda:on:nograph cuda:off exact:off}; do
    IFS=: read -r s r g <<< "$cfg"; name=$s-$r${g:+-$g}${BENCH_TAG:+-$BENCH_TAG}
    conc=${BENCH_CONC:-1,16,64}; [ "$cfg" = cuda:off ] && conc=${BENCH_CONC_SLOW:-16}
    extra=(); [ "$g" = graph ] && extra+=(--cuda-graph on); [ "$g" = nograph ] && extra+=(--cuda-graph off); [ "$s" = exact ] && extra+=(--token-check report)
    echo "== bench --cuda --batch-shapes $s --resident-kv $r ${extra[*]} --concurrency $conc"
    timeout ${BENCH_TIMEOUT:-200} $P bench --synthetic ${BENCH_SHAPE:-110m} --cuda ${BENCH_EXTRA:-} --batch-shapes $s --resident-kv $r "${extra[@]}" --modes pipeline --concurrency $conc \
      --requests ${BENCH_REQUESTS:-32} --max-tokens ${BENCH_TOKENS:-32} ${BENCH_PROFILE:+--profile /tmp/prof-$name} \
      --json "$out/bench-$name.json" 2> "$out/bench-$name.err" | tee "$out/bench-$name.md" | grep -E "^\| pipeline|identical"
    tail -2 "$out/bench-$name.err"
    for f in $(ls /tmp/prof-$name*.json 2>/dev/null); do
      python3 tools/ort-profile-summary.py "$f" --top 12 > "$out/profile-$name-$(basename "$f" .json | tr -c 'a-zA-Z0-9_\n-' _).txt"
    done
  done
fi
