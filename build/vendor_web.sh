#!/usr/bin/env bash
# The web chat's third-party scripts, from the npm registry at pinned versions:
# marked (markdown to HTML) and DOMPurify (the HTML sanitizer). They are shipped in
# the package (edgeoss/server/web/vendor/), never loaded from a CDN; SOURCES.json
# records where each file came from and its sha256, which tests/unit/test_web_vendor.py checks.
#
#     bash build/vendor_web.sh      (needs npm; rewrites edgeoss/server/web/vendor/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=edgeoss/server/web/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# package@version  file-in-package  name-in-vendor  license-file
entries=(
    "marked@18.2.1 package/lib/marked.umd.js marked.umd.js package/LICENSE"
    "dompurify@3.5.0 package/dist/purify.min.js purify.min.js package/LICENSE"
)
mkdir -p "$out"
echo "[" > "$work/sources.json"
first=1
for entry in "${entries[@]}"; do
    read -r spec file name license <<<"$entry"
    (cd "$work" && npm pack --silent "$spec" >/dev/null)
    tarball=$(ls "$work"/*.tgz)
    integrity=$(cd "$work" && npm view "$spec" dist.integrity)
    mkdir -p "$work/x" && tar xzf "$tarball" -C "$work/x"
    cp "$work/x/$file" "$out/$name"
    cp "$work/x/$license" "$out/${name%%.*}.LICENSE"
    sha=$(sha256sum "$out/$name" | cut -d' ' -f1)
    [ $first = 1 ] || echo "," >> "$work/sources.json"
    first=0
    printf '  {"package": "%s", "file": "%s", "vendored": "%s", "npm_integrity": "%s", "sha256": "%s"}' \
        "$spec" "$file" "$name" "$integrity" "$sha" >> "$work/sources.json"
    rm -rf "$work/x" "$tarball"
done
printf '\n]\n' >> "$work/sources.json"
cp "$work/sources.json" "$out/SOURCES.json"
echo "vendored into $out:"
cat "$out/SOURCES.json"
