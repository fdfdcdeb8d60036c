#!/usr/bin/env bash
# GPU check: publishes the self-contained linux-x64 zimage CLI (the GPU machine has no .NET), prints the exact
# `device` tool call that runs it there, and runs the whole doctor here.
#
#   tools/gpu-check.sh            publish to artifacts/gpu-check/, print the device call, run `zimage doctor` here
#   tools/gpu-check.sh --no-run   publish and print only
#
# On the GPU machine the printed command runs `kernels --ptx` (offline compile report) and `doctor --json
# --device cuda` (fails when CUDA is not usable) and leaves both JSON reports in $OUT. The tiny-checkpoint fixtures
# (24 MB) do not fit beside the binary in the 64 MiB the device tool carries, so there the parity section reports
# ran:false with that reason; the CUDA parity route is the test suite with ZIMAGE_TEST_DEVICE=cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out=artifacts/gpu-check
limit_mib=60

dotnet publish src/ZImage.Cli/ZImage.Cli.csproj -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true \
  -o "$out" >/dev/null
bin="$out/zimage"
bytes=$(stat -c %s "$bin")
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "published $bin: $bytes bytes ($mib MiB, limit $limit_mib MiB)"
if [ "$bytes" -gt $((limit_mib * 1048576)) ]; then
  echo "error: the single-file CLI is over $limit_mib MiB; the device tool carries at most 64 MiB" >&2
  exit 1
fi

cat <<CALL

device tool call (one H200; ~2 min to start, then well under the timeout):
  carry:     ["$out"]
  timeout_s: 480
  command:   chmod +x $bin && $bin kernels --ptx --json > \$OUT/kernels.json; k=\$?; $bin doctor --json --device cuda > \$OUT/doctor.json; d=\$?; tail -c 4000 \$OUT/doctor.json; echo "kernels=\$k doctor=\$d"; [ \$k -eq 0 ] && [ \$d -eq 0 ]
CALL

if [ "${1:-}" = "--no-run" ]; then
  exit 0
fi
echo
echo "running the whole doctor here ($bin doctor --json):"
"$bin" doctor --json
