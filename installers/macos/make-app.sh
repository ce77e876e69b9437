#!/usr/bin/env bash
# macOS: wrap the onedir build (made on a Mac with build/build.sh --onedir) as edgeoss.app,
# then a .pkg (pkgbuild) and a .dmg (hdiutil). Not buildable on Linux; documented here.
#
#   bash installers/macos/make-app.sh [DIST_DIR]        (default: dist)
#
# edgeoss.app/Contents/MacOS/edgeoss starts the tray (LSUIElement: no Dock icon, like Ollama).
# Sign and notarize the app before shipping it (codesign --deep --options runtime, notarytool).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dist=$(cd "${1:-$here/../../dist}" && pwd)
version=$("$dist/edgeoss/edgeoss" --version | awk '{print $NF}')
app="$dist/edgeoss.app"
rm -rf "$app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources"
cp -R "$dist/edgeoss/." "$app/Contents/Resources/edgeoss"
cat > "$app/Contents/MacOS/edgeoss" <<'LAUNCH'
#!/bin/sh
exec "$(dirname "$0")/../Resources/edgeoss/edgeoss" tray
LAUNCH
chmod +x "$app/Contents/MacOS/edgeoss"
iconset=$(mktemp -d)/edgeoss.iconset
mkdir -p "$iconset"
for size in 16 32 128 256 512; do
    sips -s format png -z $size $size "$here/../icon/edgeoss.svg" --out "$iconset/icon_${size}x${size}.png" >/dev/null
done
iconutil -c icns "$iconset" -o "$app/Contents/Resources/edgeoss.icns"
cat > "$app/Contents/Info.plist" <<PLIST
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
  <key>CFBundleName</key><string>edgeoss</string>
  <key>CFBundleIdentifier</key><string>io.github.edgeoss.edgeoss</string>
  <key>CFBundleVersion</key><string>$version</string>
  <key>CFBundleShortVersionString</key><string>$version</string>
  <key>CFBundleExecutable</key><string>edgeoss</string>
  <key>CFBundleIconFile</key><string>edgeoss</string>
  <key>CFBundlePackageType</key><string>APPL</string>
  <key>LSMinimumSystemVersion</key><string>13.0</string>
  <key>LSUIElement</key><true/>
</dict></plist>
PLIST
pkgbuild --component "$app" --install-location /Applications --identifier io.github.edgeoss.edgeoss \
    --version "$version" "$dist/edgeoss-$version.pkg"
hdiutil create -volname edgeoss -srcfolder "$app" -ov -format UDZO "$dist/edgeoss-$version.dmg"
echo "$app, $dist/edgeoss-$version.pkg, $dist/edgeoss-$version.dmg"
