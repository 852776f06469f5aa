#!/usr/bin/env bash
# The benchmarks, in a release build, on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# The export benchmark runs under GNU time and compares with the databases' own CSV dumps.
if ! command -v sqlite3 >/dev/null || [ ! -x /usr/bin/time ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sqlite3 time >/dev/null
fi
scripts/with-postgres.sh cargo bench --bench feeds --bench ingest --bench export --bench fairness --bench replicas --bench log --bench streams "$@"
