#!/usr/bin/env bash
# Pipeline against llama.cpp on the same checkpoints, in one sitting, decode-heavy work
# (docs/PERFORMANCE.md, "CPU speed"; issue 13). Writes a markdown table with ratios.
#
#   tools/side-by-side.sh LLAMA_CPP_DIR
#
# LLAMA_CPP_DIR holds llama.cpp's programs: either a `run` wrapper (./run PROGRAM ARGS, as in
# ../shared/peers/llama.cpp) or the programs themselves (bin/PROGRAM or PROGRAM). The product and
# its tests never need llama.cpp; only this script does.
#
# Settings (environment):
#   MODELS       models to compare: stories260k, 15m, 110m (llama2.c shapes, vocab 512, random
#                weights written by `pipeline bench --synthetic`)      default "stories260k 15m 110m"
#   WEIGHTS      f32 and/or q8 (llama.cpp: llama-quantize Q8_0; Pipeline: --quantize q8), q4 likewise
#                                                                     default "f32"
#   CONCURRENCY  sequences at once                                    default "1,4,16,64"
#   PROMPT, GEN  prompt and generated tokens per sequence             default 16, 128
#   REPEATS      runs per point; the median is reported               default 3
#   LLAMA_THREADS  llama.cpp thread counts tried; the best is kept    default "1 2"
#   PIPELINE     the pipeline executable      default src/Cli/bin/Release/net10.0/pipeline
#   PIPELINE_ARGS  extra arguments to `pipeline bench` (none: the product's defaults)
#   WORK         scratch folder (GGUFs, converted graphs, raw outputs) default: a new temp folder
#   OUT          where the markdown goes                              default side-by-side.md
#
# Two figures each, like for like. Generation: llama-batched-bench's S_TG for B sequences (one wave
# of B sequences of PROMPT + GEN tokens; the decode steps alone) against `pipeline bench`'s generation
# tokens/s (tokens after each request's first, from the first token to the last). End to end:
# llama.cpp's B x GEN over its whole time T (prompt processing included) against `pipeline bench --modes pipeline` tokens/s
# with B clients, max(B, 2) requests of PROMPT + exactly GEN tokens (--ignore-eos), the product's
# default threads and batch.
set -euo pipefail

LLAMA_DIR=${1:?usage: tools/side-by-side.sh LLAMA_CPP_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODELS=${MODELS:-"stories260k 15m 110m"}
WEIGHTS=${WEIGHTS:-f32}
CONCURRENCY=${CONCURRENCY:-1,4,16,64}
PROMPT=${PROMPT:-16}
GEN=${GEN:-128}
REPEATS=${REPEATS:-3}
LLAMA_THREADS=${LLAMA_THREADS:-"1 2"}
PIPELINE=${PIPELINE:-$ROOT/src/Cli/bin/Release/net10.0/pipeline}
PIPELINE_ARGS=${PIPELINE_ARGS:-}
WORK=${WORK:-$(mktemp -d -t side-by-side.XXXXXX)}
OUT=${OUT:-side-by-side.md}
mkdir -p "$WORK/raw"
export PIPELINE_CACHE_DIR="$WORK/cache/onnx"   # synthetic models land in $WORK/cache/synthetic

[[ -x "$PIPELINE" ]] || { echo "no pipeline executable at $PIPELINE: dotnet build src/Cli -c Release" >&2; exit 2; }

llama() { # llama PROGRAM ARGS...
    local prog=$1; shift
    if [[ -x "$LLAMA_DIR/run" ]]; then "$LLAMA_DIR/run" "$prog" "$@"
    elif [[ -x "$LLAMA_DIR/bin/$prog" ]]; then LD_LIBRARY_PATH="$LLAMA_DIR/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$LLAMA_DIR/bin/$prog" "$@"
    else "$LLAMA_DIR/$prog" "$@"; fi
}

spec() { # llama2.c shapes with a 512-piece vocabulary (the tokenizer the synthetic writer makes)
    case $1 in
        15m) echo "dim=288,layers=6,heads=6,kv_heads=6,hidden=768,vocab=512,seq_len=256" ;;
        110m) echo "dim=768,layers=12,heads=12,kv_heads=12,hidden=2048,vocab=512,seq_len=512" ;;
        *) echo "unknown model '$1' (stories260k, 15m, 110m)" >&2; exit 2 ;;
    esac
}

# model folder (llama2.c checkpoint + tokenizer.bin) for a model name
model_dir() {
    if [[ $1 == stories260k ]]; then echo "$ROOT/models/stories260k"; return; fi
    local s; s=$(spec "$1")
    # One tiny run writes the synthetic checkpoint (and converts it) on first use.
    "$PIPELINE" bench --synthetic "$s" --modes serial --concurrency 1 --requests 1 --prompt-tokens 4 --max-tokens 1 \
        --json "$WORK/raw/warm-$1.json" >/dev/null 2>"$WORK/raw/warm-$1.err"
    local name; name=$(python3 - "$s" <<'EOF'
import sys
kv = dict(p.split('=') for p in sys.argv[1].split(','))
print(f"d{kv['dim']}-l{kv['layers']}-h{kv['heads']}-kv{kv['kv_heads']}-f{kv['hidden']}-v{kv['vocab']}-s{kv['seq_len']}")
EOF
)
    echo "$WORK/cache/synthetic/synthetic-$name-seed42"
}

checkpoint() { local f; for f in "$1"/*.bin; do [[ $(basename "$f") =~ ^(tokenizer|tok[0-9]*)\.bin$ ]] || { echo "$f"; return; }; done; }
tokenizer() { local f; for f in "$1"/tokenizer.bin "$1"/tok*.bin; do [[ -f $f ]] && { echo "$f"; return; }; done; }

LLAMA_OK=1
LLAMA_NOTE=""
RESULTS="$WORK/results.tsv"   # model weights concurrency engine tokens_per_second detail
: > "$RESULTS"

for model in $MODELS; do
    dir=$(model_dir "$model")
    ckpt=$(checkpoint "$dir"); tok=$(tokenizer "$dir")
    gguf="$WORK/$model-f32.gguf"
    if [[ $LLAMA_OK == 1 && ! -f $gguf ]]; then
        llama llama-convert-llama2c-to-ggml --copy-vocab-from-model "$tok" --llama2c-model "$ckpt" \
            --llama2c-output-model "$gguf" >"$WORK/raw/convert-$model.log" 2>&1 || { LLAMA_OK=0; LLAMA_NOTE="llama-convert-llama2c-to-ggml failed (see $WORK/raw/convert-$model.log)"; }
    fi
    for weights in $WEIGHTS; do
        case $weights in
            f32) model_gguf=$gguf; quant_arg="" ;;
            q8) model_gguf="$WORK/$model-q8_0.gguf"; quant_arg="--quantize q8"
                [[ $LLAMA_OK == 1 && ! -f $model_gguf ]] && { llama llama-quantize "$gguf" "$model_gguf" Q8_0 >"$WORK/raw/quantize-$model.log" 2>&1 || LLAMA_OK=0; } ;;
            q4) model_gguf="$WORK/$model-q4_0.gguf"; quant_arg="--quantize q4"
                [[ $LLAMA_OK == 1 && ! -f $model_gguf ]] && { llama llama-quantize "$gguf" "$model_gguf" Q4_0 >"$WORK/raw/quantize-$model-q4.log" 2>&1 || LLAMA_OK=0; } ;;
            *) echo "unknown weights '$weights' (f32, q8, q4)" >&2; exit 2 ;;
        esac

        # llama.cpp: one batched-bench run per thread count and repeat, all concurrency levels at once.
        if [[ $LLAMA_OK == 1 ]]; then
            for t in $LLAMA_THREADS; do
                for r in $(seq "$REPEATS"); do
                    raw="$WORK/raw/llama-$model-$weights-t$t-r$r.txt"
                    set +e
                    llama llama-batched-bench -m "$model_gguf" -c 16384 -b 2048 -ub 512 -npp "$PROMPT" -ntg "$GEN" \
                        -npl "$CONCURRENCY" -t "$t" >"$raw" 2>"$raw.err"
                    rc=$?
                    set -e
                    if [[ $rc != 0 ]]; then
                        LLAMA_OK=0
                        if [[ $rc == 132 ]]; then LLAMA_NOTE="llama.cpp stopped with 'illegal instruction' (exit 132): this CPU lacks an instruction set the build uses ($(grep -m1 -o -w -E 'avx512f' /proc/cpuinfo >/dev/null && echo 'it has AVX-512' || echo 'no AVX-512 here'))";
                        else LLAMA_NOTE="llama-batched-bench failed (exit $rc, see $raw.err)"; fi
                        break 2
                    fi
                    python3 - "$raw" "$model" "$weights" "$t" >>"$RESULTS" <<'EOF'
import sys
path, model, weights, threads = sys.argv[1:]
for line in open(path):
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    if len(cells) >= 8 and cells[0].isdigit():
        # | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
        # Generation (S_TG: decode steps only) and end to end (B x TG generated tokens over T, the
        # prompt processing included).
        print(f"{model}\t{weights}\t{cells[2]}\tllama.cpp\tgen\t{cells[7]}\tthreads {threads}")
        print(f"{model}\t{weights}\t{cells[2]}\tllama.cpp\te2e\t{int(cells[2]) * int(cells[1]) / float(cells[8])}\tthreads {threads}")
EOF
                done
            done
        fi

        # Pipeline: one bench run per concurrency level and repeat, the product's defaults. Every
        # sequence generates exactly GEN tokens (--ignore-eos), as llama-batched-bench's do: random
        # weights end a sequence early now and then, which would leave rows idle that llama.cpp keeps.
        IFS=, read -r -a levels <<<"$CONCURRENCY"
        for c in "${levels[@]}"; do
            requests=$(( c > 2 ? c : 2 ))
            for r in $(seq "$REPEATS"); do
                json="$WORK/raw/pipeline-$model-$weights-c$c-r$r.json"
                # shellcheck disable=SC2086
                "$PIPELINE" bench --model "$dir" --modes pipeline --concurrency "$c" --requests "$requests" \
                    --prompt-tokens "$PROMPT" --max-tokens "$GEN" --ignore-eos $quant_arg $PIPELINE_ARGS --json "$json" >/dev/null 2>"$json.err"
                python3 - "$json" "$model" "$weights" "$c" >>"$RESULTS" <<'EOF'
import json, sys
path, model, weights, c = sys.argv[1:]
for row in json.load(open(path))["results"]:
    print(f"{model}\t{weights}\t{c}\tpipeline\tgen\t{row['generation_tokens_per_second']}\tdefaults")
    print(f"{model}\t{weights}\t{c}\tpipeline\te2e\t{row['tokens_per_second']}\tdefaults")
EOF
            done
        done
    done
done

python3 - "$RESULTS" "$OUT" "$LLAMA_NOTE" "$PROMPT" "$GEN" "$REPEATS" "$LLAMA_THREADS" "$PIPELINE_ARGS" "$PIPELINE" <<'EOF'
import statistics, sys, subprocess, datetime
results, out, note, prompt, gen, repeats, llama_threads, pipeline_args, pipeline = sys.argv[1:]
rows = [l.rstrip('\n').split('\t') for l in open(results) if l.strip()]
points = {}
for model, weights, c, engine, metric, tps, detail in rows:
    points.setdefault((model, weights, int(c), metric), {}).setdefault((engine, detail), []).append(float(tps))
def fmt(x): return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"
# The build's own commit (its informational version, "1.0.0+SHA"), not the checkout's: the script
# may run beside a build made elsewhere.
try:
    version = subprocess.run([pipeline, "--version"], capture_output=True, text=True).stdout.strip()
    commit = version.split("+", 1)[1][:7] if "+" in version else version or "?"
except OSError:
    commit = "?"
lines = [f"Decode-heavy work: {prompt}-token prompts, exactly {gen} generated per sequence; medians of {repeats}. "
         f"Generation = the decode phase alone: llama.cpp's `llama-batched-bench` S_TG against Pipeline's generation tokens/s "
         f"(tokens after each request's first, from the first token to the last). End to end = prompt processing included: "
         f"llama.cpp's B x TG over its T against `pipeline bench`'s tokens/s (from the first request to the last token). "
         f"llama.cpp threads {llama_threads.replace(' ', ' or ')}, the best kept per column; "
         f"Pipeline = `pipeline bench --modes pipeline --ignore-eos`{(' ' + pipeline_args) if pipeline_args else ''} with its default threads and batch. "
         f"Commit {commit}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Tokens/s:", "",
         "| model | weights | concurrency | llama.cpp generation | Pipeline generation | ratio | llama.cpp end to end | Pipeline end to end | ratio |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
def cells(model, weights, c, metric):
    engines = points.get((model, weights, c, metric), {})
    llama = [(statistics.median(v), d) for (e, d), v in engines.items() if e == "llama.cpp"]
    best = max(llama) if llama else None
    pipe = [statistics.median(v) for (e, d), v in engines.items() if e == "pipeline"]
    p = pipe[0] if pipe else None
    lc = f"{fmt(best[0])} ({best[1]})" if best else "n/a"
    ratio = f"{p / best[0]:.2f}" if best and p else "n/a"
    return f"{lc} | {fmt(p) if p else 'n/a'} | {ratio}"
for (model, weights, c) in sorted({k[:3] for k in points}, key=lambda k: (k[0], k[1], k[2])):
    lines.append(f"| {model} | {weights} | {c} | {cells(model, weights, c, 'gen')} | {cells(model, weights, c, 'e2e')} |")
if note:
    lines += ["", f"llama.cpp: {note}; its column is empty."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "raw outputs in $WORK" >&2
