#!/usr/bin/env bash
# Builds the DocC documentation of the libraries: scripts/docs.sh [OUTPUT]   (default .build/docs)
# Symbol graphs come from the debug build's modules (swift-symbolgraph-extract), so no docc plugin is
# needed; each module's catalog is Sources/<Module>/<Module>.docc. Prints one line per module and
# exits non-zero if docc reports a warning (an unresolved symbol link in a catalog, …).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
OUT=${1:-.build/docs}
swift build --product transformer > /tmp/docs-build.log 2>&1 || { tail -20 /tmp/docs-build.log; exit 1; }
MODULES_DIR=$(swift build --show-bin-path)/Modules
TRIPLE=$(swift -print-target-info | python3 -c 'import json,sys; print(json.load(sys.stdin)["target"]["triple"])')
status=0
for m in TensorKit ModelFiles Tokenizers TransformerKit; do
  sg=$(mktemp -d)
  # TensorKit imports the C modules CPUFeatures and CKernels: their generated module maps and headers
  swift-symbolgraph-extract -module-name "$m" -I "$MODULES_DIR" -target "$TRIPLE" -output-dir "$sg" -minimum-access-level public \
    -Xcc -fmodule-map-file="$(dirname "$MODULES_DIR")/CPUFeatures.build/module.modulemap" -Xcc -ISources/CPUFeatures/include \
    -Xcc -fmodule-map-file="$(dirname "$MODULES_DIR")/CKernels.build/module.modulemap" -Xcc -ISources/CKernels/include
  rm -rf "$OUT/$m"; mkdir -p "$OUT"
  if docc convert "Sources/$m/$m.docc" --additional-symbol-graph-dir "$sg" --output-path "$OUT/$m" \
       --fallback-display-name "$m" --fallback-bundle-identifier "transformer.$m" > "$sg/docc.log" 2>&1; then
    warnings=$(grep -c "warning:" "$sg/docc.log" || true)
    echo "docs $m: $(find "$OUT/$m/data/documentation" -name '*.json' | wc -l) pages, $warnings warnings ($OUT/$m)"
    [ "$warnings" = 0 ] || { grep -A1 "warning:" "$sg/docc.log" | grep -E "warning:|-->" | paste - - | head -60; status=1; }
  else
    tail -20 "$sg/docc.log"; status=1
  fi
  rm -rf "$sg"
done
exit $status
