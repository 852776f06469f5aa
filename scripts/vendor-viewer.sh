#!/usr/bin/env bash
# Refreshes the charting library of the activity viewer served at /viewer
# (assets/viewer/), from the npm registry, at the pinned version below. The
# binary embeds it, so the viewer never loads anything from another host.
# The viewer's own files (index.html, viewer.js, viewer.css) are ours.
set -euo pipefail
cd "$(dirname "$0")/.."

UPLOT=1.6.32

out=assets/viewer
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "uplot@$UPLOT" >/dev/null)
mkdir -p "$work/uplot"
tar -xzf "$work/uplot-$UPLOT.tgz" -C "$work/uplot" --strip-components=1

cp "$work/uplot/dist/uPlot.iife.min.js" "$out/uplot.min.js"
cp "$work/uplot/dist/uPlot.min.css" "$out/uplot.min.css"
{
  echo "Vendored by scripts/vendor-viewer.sh; do not edit by hand."
  echo "uplot $UPLOT (MIT): uplot.min.js, uplot.min.css"
  echo
  echo "== uplot LICENSE =="
  cat "$work/uplot/LICENSE"
} > "$out/VENDORED.txt"

# Nothing may come from another host: fail when a file would fetch from one.
if grep -Eq "(src|href)=[\"']https?://|@import url\\([\"']?https?://" "$out"/*.css "$out"/*.js; then
  echo "a vendored file references another host" >&2
  exit 1
fi
sha256sum "$out"/uplot.min.js "$out"/uplot.min.css
