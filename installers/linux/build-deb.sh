#!/usr/bin/env bash
# Build the Debian package from the onedir binary (bash build/build.sh --onedir):
#
#   bash installers/linux/build-deb.sh [DIST_DIR] [OUT_DIR]      (defaults: dist, dist)
#
# /opt/edgeoss             the onedir build
# /usr/bin/edgeoss         a link to it
# /usr/share/applications  the desktop entry (opens the tray)
# /usr/share/icons         the icon (SVG)
# /usr/share/metainfo      AppStream metadata
# Both metadata files are validated (desktop-file-validate, appstreamcli) when the tools exist.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dist=$(cd "${1:-$root/dist}" && pwd)
out=${2:-$dist}
app_id=io.github.edgeoss.edgeoss

[ -x "$dist/edgeoss/edgeoss" ] || { echo "no onedir build in $dist/edgeoss (run build/build.sh --onedir)" >&2; exit 1; }
version=$("$dist/edgeoss/edgeoss" --version | awk '{print $NF}')
arch=$(dpkg --print-architecture)
# The binary needs this glibc or newer: the highest GLIBC_ symbol version any of its libraries uses.
glibc=$(find "$dist/edgeoss" -type f \( -name '*.so*' -o -name edgeoss \) -exec objdump -T {} + 2>/dev/null \
    | grep -o 'GLIBC_[0-9.]*' | sort -u -V | tail -1 | cut -d_ -f2)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/edgeoss_${version}_${arch}"
mkdir -p "$pkg/DEBIAN" "$pkg/opt" "$pkg/usr/bin" "$pkg/usr/share/applications" "$pkg/usr/share/metainfo" \
    "$pkg/usr/share/icons/hicolor/scalable/apps" "$pkg/usr/share/doc/edgeoss"
cp -a "$dist/edgeoss" "$pkg/opt/edgeoss"
ln -s /opt/edgeoss/edgeoss "$pkg/usr/bin/edgeoss"
cp "$here/$app_id.desktop" "$pkg/usr/share/applications/"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -u +%Y-%m-%d)/" "$here/$app_id.metainfo.xml" \
    > "$pkg/usr/share/metainfo/$app_id.metainfo.xml"
cp "$root/installers/icon/edgeoss.svg" "$pkg/usr/share/icons/hicolor/scalable/apps/$app_id.svg"
printf 'edgeoss\nLicense: Apache-2.0\n' > "$pkg/usr/share/doc/edgeoss/copyright"
size=$(du -sk "$pkg/opt" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: edgeoss
Version: $version
Architecture: $arch
Maintainer: edgeoss developers <edgeoss@users.noreply.github.com>
Depends: libc6 (>= $glibc)
Installed-Size: $size
Section: utils
Priority: optional
Homepage: https://github.com/edgeoss/edgeoss
Description: run OpenAI's gpt-oss models on this computer
 edgeoss checks the machine, fetches and verifies gpt-oss-20b or gpt-oss-120b,
 and serves it locally (OpenAI and Ollama APIs, a web chat) with a tray launcher.
 Models and settings live in each user's home and are kept when the package is
 removed.
CONTROL

if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$pkg/usr/share/applications/$app_id.desktop"
fi
if command -v appstreamcli >/dev/null; then
    appstreamcli validate --no-net --pedantic "$pkg/usr/share/metainfo/$app_id.metainfo.xml"
fi
mkdir -p "$out"
dpkg-deb --root-owner-group --build "$pkg" "$out/edgeoss_${version}_${arch}.deb" >/dev/null
echo "$out/edgeoss_${version}_${arch}.deb (glibc >= $glibc)"
