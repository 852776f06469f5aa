#!/usr/bin/env bash
# Refreshes the GraphiQL files served at /graphiql (assets/graphiql/), from
# the npm registry, at the pinned versions below. The binary embeds them, so
# GraphiQL never loads anything from another host.
#
# GraphiQL 3 is the last major version with a prebuilt browser (UMD) bundle;
# it runs on React 18, the last React with UMD builds. Its bundle includes the
# graphql-ws client used for subscriptions.
set -euo pipefail
cd "$(dirname "$0")/.."

GRAPHIQL=3.8.3
REACT=18.3.1

out=assets/graphiql
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() { # package@version -> unpacked under $work/<package>
  local spec="$1" name="${1%@*}"
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  mkdir -p "$work/$name"
  tar -xzf "$work/${name}-${spec##*@}.tgz" -C "$work/$name" --strip-components=1
}

fetch "graphiql@$GRAPHIQL"
fetch "react@$REACT"
fetch "react-dom@$REACT"

cp "$work/graphiql/graphiql.min.js" "$work/graphiql/graphiql.min.css" "$out/"
cp "$work/react/umd/react.production.min.js" "$out/"
cp "$work/react-dom/umd/react-dom.production.min.js" "$out/"
{
  echo "Vendored by scripts/vendor-graphiql.sh; do not edit by hand."
  echo "graphiql $GRAPHIQL (MIT): graphiql.min.js, graphiql.min.css"
  echo "react $REACT (MIT): react.production.min.js"
  echo "react-dom $REACT (MIT): react-dom.production.min.js"
  echo
  echo "== graphiql LICENSE =="
  cat "$work/graphiql/LICENSE"
  echo
  echo "== react LICENSE =="
  cat "$work/react/LICENSE"
} > "$out/VENDORED.txt"

# Nothing may come from another host: fail when a file would fetch from one.
if grep -Eq "(src|href)=[\"']https?://|@import url\\([\"']?https?://|fonts\\.googleapis" "$out"/*.css "$out"/*.js; then
  echo "a vendored file references another host" >&2
  exit 1
fi
sha256sum "$out"/*.js "$out"/*.css
