#!/usr/bin/env bash
# Builds dist/medtl_VERSION_ARCH.deb from the one-folder bundle (dist/medtl/, `make package`):
#   /opt/medtl/                      the bundle (read-only at run time: user data goes to the user's own folders)
#   /usr/bin/medtl                   a wrapper that runs /opt/medtl/medtl
#   /usr/share/applications/         medtl.desktop (the app, DICOM files) and medtl-folder.desktop ("Open with" on folders)
#   /usr/share/mime/packages/        medtl.xml: application/dicom, for systems whose shared-mime-info lacks it
#   /usr/share/icons/hicolor/        the app icon (scalable SVG and 256 px PNG)
# The version is pyproject.toml's; Depends lists the Debian packages of the system libraries the bundle links to
# but does not carry (found with objdump and dpkg -S on this machine). Usage: build_deb.sh [BUNDLE] [OUT_DIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
bundle="$(cd "${1:-$repo/dist/medtl}" && pwd)"
out="${2:-$repo/dist}"
test -x "$bundle/medtl" || { echo "build_deb.sh: $bundle/medtl is missing: run 'make package' first" >&2; exit 2; }
version="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")"
arch="$(dpkg --print-architecture)"
here="$repo/packaging/linux"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"

mkdir -p "$root/opt" "$root/usr/bin" "$root/usr/share/applications" "$root/usr/share/mime/packages" \
    "$root/usr/share/icons/hicolor/scalable/apps" "$root/usr/share/icons/hicolor/256x256/apps" "$root/usr/share/doc/medtl" "$root/DEBIAN"
# Hard links where the staging folder is on the same file system as the bundle (no 700 MB copy), a copy otherwise.
cp -al "$bundle" "$root/opt/medtl" 2>/dev/null || cp -a "$bundle" "$root/opt/medtl"
chmod -R u=rwX,go=rX "$root/opt/medtl"
cat > "$root/usr/bin/medtl" <<'SH'
#!/bin/sh
exec /opt/medtl/medtl "$@"
SH
chmod 755 "$root/usr/bin/medtl"
install -m 644 "$here/medtl.desktop" "$here/medtl-folder.desktop" "$root/usr/share/applications/"
install -m 644 "$here/medtl-mime.xml" "$root/usr/share/mime/packages/medtl.xml"
install -m 644 "$repo/resources/icons/app.svg" "$root/usr/share/icons/hicolor/scalable/apps/medtl.svg"
install -m 644 "$repo/resources/icons/app-256.png" "$root/usr/share/icons/hicolor/256x256/apps/medtl.png"
install -m 644 "$repo/resources/LICENSES.md" "$root/usr/share/doc/medtl/LICENSES.md"
install -m 755 "$here/postinst" "$here/postrm" "$root/DEBIAN/"

# Depends: every soname an ELF file of the bundle needs that the bundle does not carry, mapped to its Debian package.
{ find "$bundle" -type f \( -name '*.so*' -o -perm -u+x \) -print0 | xargs -0 -r -n 50 objdump -p 2>/dev/null || true; } \
    | awk '$1 == "NEEDED" {print $2}' | sort -u > "$stage/needed"
find "$bundle" \( -type f -o -type l \) -name '*.so*' -printf '%f\n' | sort -u > "$stage/carried"
depends=()
while read -r soname; do
    package="$(dpkg -S "*/$soname" 2>/dev/null | grep -v -e '^diversion' | head -n 1 | cut -d: -f1 || true)"
    if [ -z "$package" ]; then
        case "$soname" in  # not installed here: the package that provides it on Debian and Ubuntu
            libxcb-icccm.so.4) package=libxcb-icccm4 ;;  # Qt's xcb platform plugin (X11)
            libxcb-image.so.0) package=libxcb-image0 ;;
            libxcb-keysyms.so.1) package=libxcb-keysyms1 ;;
            libxcb-render-util.so.0) package=libxcb-render-util0 ;;
            libxcb-cursor.so.0) package=libxcb-cursor0 ;;
            libxkbcommon-x11.so.0) package=libxkbcommon-x11-0 ;;
            libwayland-cursor.so.0) package=libwayland-cursor0 ;;  # Qt's Wayland platform plugin
            libwayland-egl.so.1) package=libwayland-egl1 ;;
            *) echo "build_deb.sh: warning: no installed package provides $soname (needed by the bundle); it is not in Depends" >&2; continue ;;
        esac
    fi
    if [ "$package" = libc6 ]; then  # the bundled libraries were built against this machine's C library
        package="libc6 (>= $(dpkg-query -W -f '${Version}' libc6 | cut -d- -f1))"
    fi
    depends+=("$package")
done < <(comm -23 "$stage/needed" "$stage/carried")
depends_line="$(printf '%s\n' "${depends[@]}" | sort -u | paste -sd, | sed 's/,/, /g')"

cat > "$root/DEBIAN/control" <<EOF
Package: medtl
Version: $version
Architecture: $arch
Maintainer: medtl developers <medtl@users.noreply.github.com>
Installed-Size: $(du -sk --apparent-size "$root" | cut -f1)
Depends: $depends_line
Section: science
Priority: optional
Homepage: https://github.com/medtl/medtl
Description: transfer learning on medical images (desktop app and CLI)
 Open DICOM studies, label them, fine-tune pretrained MONAI networks on the
 local CPU or GPU and see the predictions overlaid on the images, offline.
 Self-contained: Python, PyTorch, MONAI, Qt and the bundled pretrained weights
 are installed under /opt/medtl. Users' projects, runs and settings live in
 their own folders and are kept when the package is removed.
EOF
mkdir -p "$out"
deb="$out/medtl_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zzstd -z3 --build "$root" "$deb" >/dev/null
echo "$deb"
