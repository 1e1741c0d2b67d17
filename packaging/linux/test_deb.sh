#!/usr/bin/env bash
# Installs the medtl .deb, checks the installed program as an ordinary user, removes the package and checks that the
# user's data stays. Run as root on a machine without medtl installed (CI: .ci/run). Usage: test_deb.sh PACKAGE.deb
#  1. dpkg -i; the command, desktop entries, MIME type and icon are in place;
#  2. as a new unprivileged user (the install folder is not writable by them): `medtl --self-test` passes and
#     `medtl app --screenshot` renders the sample study offscreen to a non-trivial PNG;
#  3. nothing was written inside /opt/medtl (the app works from a read-only install);
#  4. a file in the user's data folder; dpkg -r; /opt/medtl and the entries are gone, the user's file is not.
set -euo pipefail
deb="$(realpath "${1:?usage: test_deb.sh PACKAGE.deb}")"
[ "$(id -u)" = 0 ] || { echo "test_deb.sh: run as root: it installs and removes a package" >&2; exit 2; }
case "$(dpkg-query -W -f '${db:Status-Status}' medtl 2>/dev/null || true)" in
    installed|unpacked|half-configured) echo "test_deb.sh: medtl is already installed here; remove it first" >&2; exit 2 ;;
    config-files) dpkg --purge medtl >/dev/null ;;  # what an earlier dpkg -r left: the postrm, kept for a purge
esac
fail() { echo "test_deb.sh: FAILED: $*" >&2; exit 1; }
user="medtl-deb-test"
work="$(mktemp -d)"
cleanup() { userdel -r "$user" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
useradd --create-home --shell /bin/sh "$user"
chown "$user" "$work"  # the user writes the screenshot there
as_user() { runuser -u "$user" -- env -i HOME="/home/$user" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 "$@"; }

echo "== dpkg -i $(basename "$deb")"
start=$(date +%s)
dpkg -i "$deb" || { apt-get install -f -y -qq >/dev/null && dpkg -s medtl >/dev/null; } || fail "dpkg -i"
echo "installed in $(( $(date +%s) - start )) s: $(du -sh /opt/medtl | cut -f1) in /opt/medtl"
for path in /usr/bin/medtl /opt/medtl/medtl /usr/share/applications/medtl.desktop /usr/share/applications/medtl-folder.desktop \
        /usr/share/mime/packages/medtl.xml /usr/share/icons/hicolor/scalable/apps/medtl.svg /usr/share/icons/hicolor/256x256/apps/medtl.png; do
    test -e "$path" || fail "$path is missing"
done
if command -v desktop-file-validate >/dev/null; then desktop-file-validate /usr/share/applications/medtl.desktop /usr/share/applications/medtl-folder.desktop; fi
if command -v update-mime-database >/dev/null; then  # shared-mime-info: the postinst has (re)built the database
    test -f /usr/share/mime/application/dicom.xml || fail "application/dicom is not in the MIME database"
    echo "application/dicom is in the MIME database"
fi
test "$(as_user medtl --version)" = "medtl $(dpkg-query -W -f '${Version}' medtl)" || fail "medtl --version does not report the package's version"
touch "$work/stamp"
sleep 1

echo "== medtl --self-test (as $user)"
as_user medtl --self-test || fail "the installed medtl --self-test"
echo "== medtl app --screenshot (as $user, offscreen, the sample study)"
as_user QT_QPA_PLATFORM=offscreen medtl app --screenshot "$work/app.png" || fail "medtl app --screenshot"
python3 - "$work/app.png" <<'PY' || fail "the screenshot is not a rendered window"
import sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000, len(data)
print(f"screenshot: {len(data)} bytes")
PY
written="$(find /opt/medtl -newer "$work/stamp" | head -n 5)"
[ -z "$written" ] || fail "files were written inside the install folder: $written"
echo "nothing was written inside /opt/medtl"

echo "== dpkg -r medtl"
data_dir="/home/$user/.local/share/medtl"
test -d "$data_dir" || fail "$data_dir was not created (where does the app keep its data?)"
as_user sh -c "echo 'a project of mine' > '$data_dir/my-project.txt'"
dpkg -r medtl >/dev/null
test "$(dpkg-query -W -f '${db:Status-Status}' medtl)" = config-files || fail "dpkg -r did not remove medtl"
for path in /opt/medtl /usr/bin/medtl /usr/share/applications/medtl.desktop /usr/share/mime/packages/medtl.xml; do
    test ! -e "$path" || fail "$path is still there after dpkg -r"
done
test "$(cat "$data_dir/my-project.txt")" = "a project of mine" || fail "the user's data did not survive dpkg -r"
dpkg --purge medtl >/dev/null
test -f "$data_dir/my-project.txt" || fail "dpkg --purge removed the user's data"
echo "removed and purged; the user's data folder is kept ($(du -sh "$data_dir" | cut -f1) in $data_dir)"
echo "deb test passed: $(basename "$deb")"
