#!/usr/bin/env bash
# The benchmarks, in a release build, on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/with-postgres.sh cargo bench --bench feeds --bench ingest "$@"
