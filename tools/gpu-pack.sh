#!/usr/bin/env bash
# Packs the CUDA build for the GPU machine in parts small enough to travel: each device call sends
# the repository's tracked tree (~29 MiB) too, and a call carries at most 64 MiB in all, so parts
# are 34 MiB (../shared/tools/gpu-stage's 50 MB parts do not fit beside this repository).
# From the repository root:
#   dotnet publish src/Cli -c Release -r linux-x64 --self-contained -p:UseCuda=true -o /tmp/gpu-app
#   dotnet publish tests/LongRun -c Release -r linux-x64 --self-contained -p:UseCuda=true -o /tmp/gpu-app
#   bash tools/gpu-pack.sh /tmp/gpu-app
# then, back to back (the machine forgets /tmp after ~30 s idle), one call per part, carrying it:
#   mkdir -p /tmp/gpu-stage && cp .gpu-stage/PART /tmp/gpu-stage/
# and last, carrying .gpu-stage/unpack.sh too: source .gpu-stage/unpack.sh && bash tools/gpu-invariance.sh
set -euo pipefail
src=${1:?usage: gpu-pack.sh PUBLISH_DIR}
part=${GPU_PACK_PART:-34m}
top=$(git rev-parse --show-toplevel); cd "$top"
grep -qx '/.gpu-stage/' .git/info/exclude 2>/dev/null || echo '/.gpu-stage/' >> .git/info/exclude
rm -rf .gpu-stage && mkdir -p .gpu-stage
# ONNX Runtime's native libraries (parts o*), then everything else (parts a*).
(cd "$src" && tar -c libonnxruntime_providers_cuda.so libonnxruntime.so | xz -T0 -6) | split -b "$part" -d -a 1 - .gpu-stage/o
(cd "$src" && tar -c --exclude=libonnxruntime_providers_cuda.so --exclude=libonnxruntime.so \
   --exclude=libonnxruntime_providers_tensorrt.so . | xz -T0 -6) | split -b "$part" -d -a 1 - .gpu-stage/a
cat > .gpu-stage/unpack.sh <<'UNPACK'
#!/usr/bin/env bash
# On the GPU machine: joins the parts copied to /tmp/gpu-stage and unpacks into /tmp/gpu-app.
set -euo pipefail
rm -rf /tmp/gpu-app && mkdir -p /tmp/gpu-app
cat /tmp/gpu-stage/o* | xz -d | tar -x -C /tmp/gpu-app
cat /tmp/gpu-stage/a* | xz -d | tar -x -C /tmp/gpu-app
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
UNPACK
chmod +x .gpu-stage/unpack.sh
ls -l .gpu-stage
