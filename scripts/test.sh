#!/usr/bin/env bash
# The test command: every test on SQLite and on PostgreSQL (see with-postgres.sh
# for where the PostgreSQL server comes from). Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

# The GraphiQL test drives Debian's Chromium through chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "Chromium not found: installing Debian's chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

# The GraphQL over HTTP audit suite runs under Node.js (its packages are
# pinned in tests/conformance and installed by the test with npm ci).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "Node.js not found: installing Debian's nodejs and npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# The log's proofs are checked by Go's own golang.org/x/mod/sumdb/note and
# sumdb/tlog (tests/verifier), built from Debian's packages.
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; then
  echo "Go or golang.org/x/mod not found: installing Debian's golang-go and golang-golang-x-mod-dev" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends golang-go golang-golang-x-mod-dev >/dev/null
fi

# The log stream tests deliver to Debian's rsyslog, in plain TCP and in TLS
# (its GnuTLS driver), with certificates made by the openssl command.
if ! command -v rsyslogd >/dev/null || ! dpkg -s rsyslog-gnutls >/dev/null 2>&1 \
  || ! command -v openssl >/dev/null; then
  echo "rsyslog, rsyslog-gnutls or openssl not found: installing Debian's" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends rsyslog rsyslog-gnutls openssl >/dev/null
fi

# The tree stays formatted (rustfmt's defaults), where rustfmt is installed.
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all --check
else
  echo "rustfmt not installed: format check skipped" >&2
fi

# Every PostgreSQL test must really run: a missing server is a failure, not a skip.
export REQUIRE_POSTGRES=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
scripts/with-postgres.sh cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo's last line is the doc-test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
