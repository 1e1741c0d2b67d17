#!/usr/bin/env bash
# Smoke test of a frozen build: the packaged executable scans and converts the bundled sample.
set -euo pipefail
app="${1:-dist/medtl/medtl}"
out="$(mktemp -d)"
sample="$("$app" sample --path)"
"$app" scan "$sample" --json --no-catalog > "$out/scan.json"
python3 - "$out/scan.json" <<'PY'
import json, sys
found = json.load(open(sys.argv[1]))
series = [s for p in found["patients"] for st in p["studies"] for s in st["series"]]
assert len(found["patients"]) == 2 and len(series) == 13, (len(found["patients"]), len(series))
PY
"$app" convert "$sample/98892001/CT5N" -o "$out/ct.nii.gz"
test -s "$out/ct.nii.gz"
echo "smoke test passed: $app"
