#!/usr/bin/env bash
# Smoke test of a frozen build: `medtl --self-test` (every decoder on a compressed file of each transfer syntax,
# every bundled weight file, a few training steps and a prediction through the engine, the app offscreen), then the
# commands a user starts with: scan and convert the bundled PACS export, list the networks and weights, prompt
# LiteMedSAM with a box, and render the app offscreen on the sample study (built on first use in the user's folder).
set -euo pipefail
app="${1:-dist/medtl/medtl}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$app" --self-test
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
grep -A1 '^  efficientnet-lite0  efficientnet-lite0 ' "$out/models.txt" | grep -q '; installed$' || { cat "$out/models.txt"; echo "the EfficientNet-Lite0 weights are not bundled" >&2; exit 1; }
"$app" prompt "$sample/98892001/CT5N" --slice 1 --box 2 2 13 13 --out "$out/prompt.nii.gz"  # LiteMedSAM's code and weights ship
test -s "$out/prompt.nii.gz"
QT_QPA_PLATFORM=offscreen "$app" app --screenshot "$out/app.png"  # no PATH: the sample study
python3 -c "import sys; data = open(sys.argv[1], 'rb').read(); assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 20000, len(data)" "$out/app.png"
echo "smoke test passed: $app"
