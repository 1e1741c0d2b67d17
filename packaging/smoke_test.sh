#!/usr/bin/env bash
# Smoke test of a frozen build: the packaged executable scans and converts the bundled sample, lists the
# networks and installed weights (torch and MONAI load), prompts LiteMedSAM with a box, and renders the app offscreen (Qt and its plugins load).
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
"$app" models > "$out/models.txt"
test "$(grep -c '; installed$' "$out/models.txt")" = 2  # both offline pretrained weights ship with the app
"$app" prompt "$sample/98892001/CT5N" --slice 1 --box 2 2 13 13 --out "$out/prompt.nii.gz"  # LiteMedSAM's code and weights ship
test -s "$out/prompt.nii.gz"
QT_QPA_PLATFORM=offscreen "$app" app "$sample/98892001/CT5N" --screenshot "$out/app.png"
python3 -c "import sys; data = open(sys.argv[1], 'rb').read(); assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 20000, len(data)" "$out/app.png"
echo "smoke test passed: $app"
