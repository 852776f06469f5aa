#!/usr/bin/env bash
# The gateway beside its peer (PostGraphile 4) and its floor (pgbench on the
# gateway's own statements), over one throwaway PostgreSQL with 1,000,000
# events: req/s, p50/p99, CPU per request, ratios, and the goals met or not.
#
# Installs, when missing: wrk (Debian, --no-install-recommends), PostGraphile
# (npm, pinned by benches/peers/package-lock.json, under target/bench-peers).
# BENCH_BASELINE_REF (default: ed38465, the credential cache, the last commit
# before planned reads; `none` to skip) is built in target/bench-baseline and
# timed beside the current build, on a database of its own that it seeds
# itself (a build refuses a schema with migrations it does not know, and
# later builds add some). BENCH_EVENTS, BENCH_SECONDS (per run, 5) and BENCH_ROUNDS (3) size it;
# BENCH_RECORDING_ROUNDS (20) and BENCH_RECORDING_SECONDS (3) size recording on against off.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --release --bin activity-gateway

peers=target/bench-peers
mkdir -p "$peers"
cp benches/peers/package.json benches/peers/package-lock.json "$peers/"
if [ ! -x "$peers/node_modules/.bin/postgraphile" ]; then
  (cd "$peers" && npm ci --no-audit --no-fund --silent)
fi

baseline_ref="${BENCH_BASELINE_REF:-ed38465}"
if [ "$baseline_ref" != none ]; then
  source_dir=target/bench-baseline-src
  if [ "$(git -C "$source_dir" rev-parse HEAD 2>/dev/null)" != "$(git rev-parse "$baseline_ref^{commit}")" ]; then
    rm -rf "$source_dir"
    git worktree prune
    git worktree add --detach "$source_dir" "$baseline_ref" >/dev/null
  fi
  echo "building the baseline ($baseline_ref) in target/bench-baseline" >&2
  CARGO_TARGET_DIR="$PWD/target/bench-baseline" cargo build --release --bin activity-gateway \
    --manifest-path "$source_dir/Cargo.toml"
  export BENCH_BASELINE_BIN="$PWD/target/bench-baseline/release/activity-gateway"
fi

# pg_stat_statements counts the statements and plans of each request.
export WITH_POSTGRES_OPTIONS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"
scripts/with-postgres.sh python3 benches/peers/run.py
