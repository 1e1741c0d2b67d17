#!/usr/bin/env bash
# On macOS, after `pyinstaller --noconfirm packaging/medtl.spec` has made dist/medtl.app (see packaging/README.md):
# signs it when MEDTL_CODESIGN_IDENTITY names a Developer ID, and packs it with a link to /Applications into
# dist/medtl-VERSION-macos-ARCH.dmg (compressed, read-only). Notarize the .dmg afterwards (README: release steps).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
app="$repo/dist/medtl.app"
[ "$(uname -s)" = Darwin ] || { echo "build_dmg.sh: hdiutil and codesign exist only on macOS" >&2; exit 2; }
test -x "$app/Contents/MacOS/medtl-app" || { echo "build_dmg.sh: $app is missing: run pyinstaller packaging/medtl.spec first" >&2; exit 2; }
version="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")"
dmg="$repo/dist/medtl-$version-macos-$(uname -m).dmg"
"$app/Contents/MacOS/medtl" --self-test  # the frozen build decodes, loads its weights, trains, predicts, renders
if [ -n "${MEDTL_CODESIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp --sign "$MEDTL_CODESIGN_IDENTITY" "$app"
    codesign --verify --deep --strict "$app"
fi
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
hdiutil create -volname "medtl $version" -srcfolder "$stage" -fs HFS+ -format UDZO -imagekey zlib-level=9 -ov "$dmg"
echo "$dmg"
