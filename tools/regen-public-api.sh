#!/usr/bin/env bash
# Regenerates PublicAPI.Unshipped.txt of the shipped projects (ZImage.Kernels, ZImage.Runtime) from the code as it is:
# each file is reset to its header and Microsoft.CodeAnalysis.PublicApiAnalyzers' own code fix (RS0016, "add to
# public API") writes every public symbol back, so added, changed and removed symbols are all accounted for.
# PublicAPI.Shipped.txt is left alone (symbols listed there are not repeated). Review the diff before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."
for project in src/ZImage.Kernels src/ZImage.Runtime; do
  printf '#nullable enable\n' > "$project/PublicAPI.Unshipped.txt"
  dotnet format analyzers "$project/$(basename "$project").csproj" --diagnostics RS0016 --severity warn
  # A stable order keeps the diff readable (dotnet format appends in its own order).
  { head -n1 "$project/PublicAPI.Unshipped.txt"; tail -n +2 "$project/PublicAPI.Unshipped.txt" | LC_ALL=C sort -u; } > "$project/PublicAPI.Unshipped.txt.tmp"
  mv "$project/PublicAPI.Unshipped.txt.tmp" "$project/PublicAPI.Unshipped.txt"
done
git --no-pager diff --stat -- src/ZImage.Kernels/PublicAPI.Unshipped.txt src/ZImage.Runtime/PublicAPI.Unshipped.txt
