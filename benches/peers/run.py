#!/usr/bin/env python3
"""The gateway beside its peer and its floor, on one PostgreSQL.

Started by scripts/bench-peers.sh, which installs what this needs and points
TEST_DATABASE_URL at a PostgreSQL server. This seeds a database of
BENCH_EVENTS events (1,000,000 by default; an existing one of that size is
reused), starts the gateway (recording off, and a second one with recording
on), an older build of it when BENCH_BASELINE_BIN is set, and PostGraphile 4
with virtual foreign keys, then drives the same logical queries over HTTP with
wrk at 1 and 8 connections, in interleaved rounds. pgbench runs the
gateway's own statements for (a) as the floor. It prints req/s, p50/p99, the
CPU each server and the database spent per request, the ratios, and the
issue's goals as met or not met.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import json
import math

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_URL = os.environ["TEST_DATABASE_URL"]
DB_NAME = "ag_peers"
DB_URL = SERVER_URL.rsplit("/", 1)[0] + "/" + DB_NAME
# The baseline's own database, seeded by the baseline itself: a build never
# starts on a schema with migrations it does not know, and every release
# since the baseline added some.
BASELINE_DB_NAME = DB_NAME + "_baseline"
BASELINE_DB_URL = SERVER_URL.rsplit("/", 1)[0] + "/" + BASELINE_DB_NAME
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# Recording on against off: more, shorter rounds, each server first in
# every other round, so that the ratio of each round's pair is taken over
# the same stretch of this shared machine's weather.
RECORDING_ROUNDS = int(os.environ.get("BENCH_RECORDING_ROUNDS", "20"))
RECORDING_SECONDS = int(os.environ.get("BENCH_RECORDING_SECONDS", "3"))
CONNECTIONS = [1, 8]
GATEWAY = os.environ.get("BENCH_GATEWAY_BIN", os.path.join(ROOT, "target/release/activity-gateway"))
BASELINE = os.environ.get("BENCH_BASELINE_BIN") or None
POSTGRAPHILE = os.path.join(ROOT, "target/bench-peers/node_modules/.bin/postgraphile")
PG_BIN = sorted(
    (os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")),
    key=lambda p: int(p.split("/")[-2]),
)[-1]
TICK = os.sysconf("SC_CLK_TCK")

# The 26 scalar fields of an event, in each server's spelling.
GATEWAY_FIELDS = (
    "id timestamp traceId userId workspaceId appId endpointId augmentationId principalType "
    "principalId tokenId tokenType method path resourceType resourceId action statusCode success "
    "errorCode durationMs executionId stagesCompleted totalStages tokenUsage tokensTotal metadata"
)
PEER_FIELDS = GATEWAY_FIELDS.replace("timestamp", "ts")
GATEWAY_RELATIONS = "user { email } workspace { name } endpoint { name }"
PEER_RELATIONS = (
    "userByUserId { email } workspaceByWorkspaceId { name } endpointByEndpointId { name }"
)


def gateway_feed(extra=""):
    return (
        '{ org(id: "org_acme") { activity(first: 50) { %s nodes { %s } } } }'
        % ("totalCount" if extra == "count" else "", GATEWAY_FIELDS + (" " + GATEWAY_RELATIONS if extra == "relations" else ""))
    )


def peer_feed(extra=""):
    return (
        '{ allActivityEvents(condition: {orgId: "org_acme"}, orderBy: [TS_DESC, ID_DESC], first: 50) '
        "{ %s nodes { %s } } }"
        % ("totalCount" if extra == "count" else "", PEER_FIELDS + (" " + PEER_RELATIONS if extra == "relations" else ""))
    )


SUMMARY = (
    '{ org(id: "org_acme") { activitySummary(hours: 168) { totalRequests successfulRequests '
    "failedRequests avgDurationMs totalTokensUsed errorRate byAction { key count } "
    "byResource { key count } startTime endTime } } }"
)

# The cheapest authenticated call, to time what recording one costs.
BARE_CALL = "{ viewer { principalId } }"

# (id, what it is, {server kind: request}); a request is ("POST", path, body) or ("GET", path, None).
SCENARIOS = [
    ("a", "page of 50, 26 scalars", {
        "gateway": ("POST", "/graphql", gateway_feed()),
        "peer": ("POST", "/graphql", peer_feed()),
    }),
    ("b", "(a) + totalCount", {
        "gateway": ("POST", "/graphql", gateway_feed("count")),
        "peer": ("POST", "/graphql", peer_feed("count")),
    }),
    ("c", "(a) + user, workspace, endpoint", {
        "gateway": ("POST", "/graphql", gateway_feed("relations")),
        "peer": ("POST", "/graphql", peer_feed("relations")),
    }),
    ("d", "REST ?limit=50", {
        "gateway": ("GET", "/v1/orgs/org_acme/activity?limit=50", None),
    }),
    ("e", "168-hour activitySummary", {
        "gateway": ("POST", "/graphql", SUMMARY),
    }),
]

# The gateway's own statement for (a), as it sends it (prepared): with the
# key kept (see the README's revocation window) and the org the caller's
# own, a planned page is this one statement.
FLOOR_SCRIPT = """SELECT "activity_events"."ts", "activity_events"."id", "activity_events"."trace_id", "activity_events"."user_id", "activity_events"."workspace_id", "activity_events"."app_id", "activity_events"."endpoint_id", "activity_events"."augmentation_id", "activity_events"."principal_type", "activity_events"."principal_id", "activity_events"."token_id", "activity_events"."token_type", "activity_events"."method", "activity_events"."path", "activity_events"."resource_type", "activity_events"."resource_id", "activity_events"."action", "activity_events"."status_code", "activity_events"."success", "activity_events"."error_code", "activity_events"."duration_ms", "activity_events"."execution_id", "activity_events"."stages_completed", "activity_events"."total_stages", "activity_events"."token_usage", "activity_events"."tokens_total", "activity_events"."metadata" FROM "activity_events" WHERE "activity_events"."org_id" = :org AND "activity_events"."ts" >= COALESCE((SELECT CASE WHEN r.days IS NULL OR r.purged_before > CAST(:now AS BIGINT) - r.days * 86400000000 THEN r.purged_before ELSE CAST(:now AS BIGINT) - r.days * 86400000000 END FROM org_retention r WHERE r.org_id = :org), 0) ORDER BY "activity_events"."ts" DESC, "activity_events"."id" DESC LIMIT 51;
"""


def psql(sql, url=DB_URL):
    out = subprocess.run(
        [os.path.join(PG_BIN, "psql"), url, "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def prepare_database(binary=GATEWAY, name=DB_NAME, url=DB_URL):
    exists = psql("SELECT count(*) FROM pg_database WHERE datname = '%s'" % name, SERVER_URL)
    if exists == "1":
        try:
            seeded = int(psql("SELECT count(*) FROM activity_events", url)) >= EVENTS
            # The recording runs write to org_globex only; org_acme's feed,
            # which every other query reads, must hold seeded events alone.
            recorded = int(psql(
                "SELECT count(*) FROM activity_events WHERE org_id = 'org_acme' AND token_id IN "
                "(SELECT id FROM api_keys WHERE name = 'bench-peers')",
                url,
            ))
            if seeded and recorded == 0:
                print(f"reusing database {name} ({EVENTS} events or more)")
                return
        except subprocess.CalledProcessError:
            pass
        psql(f"DROP DATABASE {name} WITH (FORCE)", SERVER_URL)
    psql(f"CREATE DATABASE {name}", SERVER_URL)
    print(f"seeding {EVENTS} events into {name} (about a minute per million)...", flush=True)
    subprocess.run(
        [binary, "seed", "--database-url", url, "--events", str(EVENTS)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    psql("VACUUM ANALYZE", url)


def create_key(org, binary=GATEWAY, url=DB_URL):
    out = subprocess.run(
        [binary, "keys", "create", "--database-url", url, "--org", org,
         "--role", "admin", "--name", "bench-peers"],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, kind, argv, port, env=None, log_dir=None):
        self.name, self.kind, self.port = name, kind, port
        self.log = open(os.path.join(log_dir, name + ".log"), "w")
        self.process = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        try:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=10)
        except Exception:
            pass


def gateway(name, binary, record, log_dir, url=DB_URL):
    port = free_port()
    argv = [binary, "serve", "--database-url", url, "--bind", f"127.0.0.1:{port}",
            "--record-requests", "true" if record else "false"]
    return Server(name, "gateway", argv, port, log_dir=log_dir)


def postgraphile(log_dir):
    port = free_port()
    workers = os.cpu_count() or 1
    # Every core for the peer as for the gateway: Node runs one thread per worker.
    argv = ["node", POSTGRAPHILE, "-c", DB_URL, "-s", "public", "-n", "127.0.0.1", "-p", str(port),
            "--disable-query-log", "--disable-graphiql", "--cluster-workers", str(workers)]
    return Server("postgraphile", "peer", argv, port, env={"NODE_ENV": "production"}, log_dir=log_dir)


def call(server, request, key):
    method, path, query = request
    body = json.dumps({"query": query}).encode() if query else None
    req = urllib.request.Request(server.base + path, data=body, method=method)
    req.add_header("Content-Type", "application/json")
    if server.kind == "gateway":
        req.add_header("Authorization", "Bearer " + key)
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status, json.loads(response.read())


def wait_ready(server, key, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.process.poll() is not None:
            sys.exit(f"{server.name} exited; see its log")
        try:
            call(server, ("POST", "/graphql", "{ __typename }"), key)
            return
        except Exception:
            time.sleep(0.3)
    sys.exit(f"{server.name} did not answer within {timeout} s")


def check_answer(scenario, server, request, key):
    """Each server must answer each query with 50 events (and no error) before it is timed."""
    status, body = call(server, request, key)
    if status != 200 or body.get("errors"):
        sys.exit(f"({scenario}) {server.name} answered {status}: {json.dumps(body)[:300]}")
    text = json.dumps(body)
    if scenario in "abcd":
        count = text.count('"action"')
        if count != 50:
            sys.exit(f"({scenario}) {server.name} answered {count} events, not 50")
    if scenario == "c" and text.count('"email"') < 40:
        sys.exit(f"({scenario}) {server.name} answered without relations")


def lua_script(directory, name, request, key, authenticated):
    method, _, query = request
    lines = [f'wrk.method = "{method}"']
    if authenticated:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {key}"')
    if query:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append("wrk.body = [==[%s]==]" % json.dumps({"query": query}))
    path = os.path.join(directory, name + ".lua")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def process_tree(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root, reaped=False):
    """CPU time of a process and its live descendants (and, with `reaped`, of
    its children that already exited: PostgreSQL's closed backends)."""
    total = 0
    for i, pid in enumerate(process_tree(root)):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if reaped and i == 0:
            total += int(fields[13]) + int(fields[14])
    return total / TICK


def postmaster_pid():
    directory = psql("SHOW data_directory")
    with open(os.path.join(directory, "postmaster.pid")) as f:
        return int(f.readline())


def parse_duration_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url, script, connections, seconds, server_pid, db_pid):
    threads = min(2, connections)
    before = (cpu_seconds(server_pid), cpu_seconds(db_pid, reaped=True))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
        check=True, capture_output=True, text=True,
    ).stdout
    after = (cpu_seconds(server_pid), cpu_seconds(db_pid, reaped=True))
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw failed requests against {url}:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": parse_duration_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": parse_duration_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "cpu_server": (after[0] - before[0]) * 1000 / max(requests, 1),
        "cpu_db": (after[1] - before[1]) * 1000 / max(requests, 1),
    }


def run_pgbench(key, connections, seconds, db_pid, directory):
    script = os.path.join(directory, "floor.sql")
    with open(script, "w") as f:
        f.write(FLOOR_SCRIPT)
    before = cpu_seconds(db_pid, reaped=True)
    out = subprocess.run(
        [os.path.join(PG_BIN, "pgbench"), "-n", "-M", "prepared", "-c", str(connections),
         "-j", str(min(2, connections)), "-T", str(seconds), "-f", script,
         "-D", "org=org_acme", "-D", f"now={int(time.time() * 1_000_000)}", DB_URL],
        check=True, capture_output=True, text=True,
    ).stdout
    after = cpu_seconds(db_pid, reaped=True)
    transactions = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    return {
        "rps": float(re.search(r"tps = ([\d.]+)", out).group(1)),
        "p50": float(re.search(r"latency average = ([\d.]+) ms", out).group(1)),
        "p99": float("nan"),
        "cpu_server": 0.0,
        "cpu_db": (after - before) * 1000 / max(transactions, 1),
    }


def statement_counts(server, request, key, requests=300):
    """Statements and plans PostgreSQL ran per request (pg_stat_statements,
    `track_planning` on), over `requests` sent one at a time; None when the
    server lacks the extension. Whatever the servers run beside requests in
    that time (folds, deliverers' checks) counts too: a few hundredths."""
    try:
        psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        psql("SELECT pg_stat_statements_reset()")
    except subprocess.CalledProcessError:
        return None
    for _ in range(requests):
        call(server, request, key)
    calls, plans = psql(
        "SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(plans), 0) FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND query NOT LIKE '%pg_stat_statements%'"
    ).split("|")
    return int(calls) / requests, int(plans) / requests


def settle():
    """Writes out what seeding (and warming up) left in memory before
    anything is timed: PostgreSQL's dirty buffers (a checkpoint) and the
    kernel's dirty pages (sync). Seeding two databases of a million events
    leaves gigabytes to write; while the disk took them in, over minutes,
    even pgbench's floor at one connection had a p99 of 2 to 8 ms."""
    psql("CHECKPOINT")
    os.sync()


def median(runs, field):
    return statistics.median(r[field] for r in runs)


def main():
    for tool in ("wrk", "node"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run scripts/bench-peers.sh, which installs it")
    prepare_database()
    key = create_key("org_acme")
    globex_key = create_key("org_globex")
    baseline_key = None
    if BASELINE:
        prepare_database(BASELINE, BASELINE_DB_NAME, BASELINE_DB_URL)
        baseline_key = create_key("org_acme", BASELINE, BASELINE_DB_URL)

    def key_of(server):
        if server.name == "baseline":
            return baseline_key
        # What the recording gateway is asked is recorded: org_globex's.
        return globex_key if server.name == "gateway+recording" else key
    work = tempfile.mkdtemp(prefix="ag-peers.")
    servers = []
    try:
        servers.append(gateway("gateway", GATEWAY, False, work))
        servers.append(gateway("gateway+recording", GATEWAY, True, work))
        if BASELINE:
            servers.append(gateway("baseline", BASELINE, False, work, BASELINE_DB_URL))
        # Virtual foreign keys, so PostGraphile serves the same relations
        # (the gateway's schema does not declare them).
        psql(
            "COMMENT ON TABLE activity_events IS E'"
            "@foreignKey (user_id) references users (id)\\n"
            "@foreignKey (workspace_id) references workspaces (id)\\n"
            "@foreignKey (endpoint_id) references endpoints (id)'"
        )
        servers.append(postgraphile(work))
        for server in servers:
            wait_ready(server, key_of(server))
        db_pid = postmaster_pid()

        # What is timed: (scenario, server, script).
        plan = []
        for scenario, _, requests in SCENARIOS:
            for server in servers:
                if server.kind not in requests or server.name == "gateway+recording":
                    continue
                request = requests[server.kind]
                check_answer(scenario, server, request, key_of(server))
                script = lua_script(work, f"{scenario}-{server.name}", request, key_of(server), server.kind == "gateway")
                plan.append((scenario, server, script, server.base + request[1]))
        # Recording on against off, on org_globex's feed: what is recorded
        # lands on top of that feed, never on org_acme's, which the rest read.
        recording_plan = []
        globex_page = ("POST", "/graphql", gateway_feed().replace("org_acme", "org_globex"))
        # And what a recorded call costs by itself: the cheapest query there
        # is, recorded or not, at 8 connections (CPU per request).
        bare_plan = []
        for server in servers:
            if server.name in ("gateway", "gateway+recording"):
                check_answer("a", server, globex_page, globex_key)
                script = lua_script(work, f"recording-{server.name}", globex_page, globex_key, True)
                recording_plan.append(("r", server, script, server.base + "/graphql"))
                script = lua_script(work, f"bare-{server.name}", ("POST", "/graphql", BARE_CALL), globex_key, True)
                bare_plan.append(("t", server, script, server.base + "/graphql"))

        print(f"warming up {len(plan)} query/server pairs...", flush=True)
        for _, server, script, url in plan + recording_plan:
            run_wrk(url, script, 8, 2, server.process.pid, db_pid)
        # The warm-up's recorded requests are enough new rows for
        # autovacuum to take up the events table; vacuumed now, it does not
        # do so inside a timed round.
        psql("VACUUM ANALYZE activity_events")
        settle()
        counts = {}
        for scenario, _, requests in SCENARIOS:
            for server in servers:
                if scenario in "acd" and server.kind in requests and server.name in ("gateway", "postgraphile"):
                    counts[(scenario, server.name)] = statement_counts(server, requests[server.kind], key_of(server))

        results = {}

        def measure(plan, connections, seconds=SECONDS):
            for scenario, server, script, url in plan:
                run = run_wrk(url, script, connections, seconds, server.process.pid, db_pid)
                results.setdefault((scenario, server.name, connections), []).append(run)

        for round_number in range(1, ROUNDS + 1):
            print(f"round {round_number} of {ROUNDS}...", flush=True)
            for connections in CONNECTIONS:
                measure(plan, connections)
                run = run_pgbench(key, connections, SECONDS, db_pid, work)
                results.setdefault(("a", "pgbench floor", connections), []).append(run)
        for round_number in range(1, RECORDING_ROUNDS + 1):
            print(f"recording on and off, round {round_number} of {RECORDING_ROUNDS}...", flush=True)
            for connections in CONNECTIONS:
                order = recording_plan if round_number % 2 else recording_plan[::-1]
                measure(order, connections, RECORDING_SECONDS)
        # The bare call's rounds come after every page round: at over
        # 20,000 recorded calls a second, each round of them stores some
        # 60,000 events, and the fold, autovacuum and the writer's backlog
        # they leave behind ran on into the page rounds that followed.
        for round_number in range(1, RECORDING_ROUNDS + 1):
            measure(bare_plan if round_number % 2 else bare_plan[::-1], 8, RECORDING_SECONDS)
        report(results, counts)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def median_interval(values, confidence=0.95):
    """A distribution-free interval for the median of what `values` sample:
    their k-th smallest and k-th largest, with k the largest whose two tails
    of Binomial(n, 1/2) stay within 1 - confidence together (for 20 values,
    the 6th and the 15th, 95.9%). None when there are too few values."""
    xs, n = sorted(values), len(values)
    k, tails = 0, 0.0
    while k < n // 2:
        tails += 2 * math.comb(n, k) / 2 ** n
        if tails > 1 - confidence:
            break
        k += 1
    return (xs[k - 1], xs[n - k]) if k > 0 else None


def recording_cost(summary, scenario, connections):
    """What recording added to a request of `scenario`: CPU of the gateway and of the database."""
    on, off = summary[(scenario, "gateway+recording", connections)], summary[(scenario, "gateway", connections)]
    return (f"{(on['cpu_server'] - off['cpu_server']) * 1000:.1f} us of the gateway's CPU and "
            f"{(on['cpu_db'] - off['cpu_db']) * 1000:.1f} us of the database's")


def recording_pairs(results, connections):
    """Recording on / off req/s of each round's pair."""
    on = results[("r", "gateway+recording", connections)]
    off = results[("r", "gateway", connections)]
    return [a["rps"] / b["rps"] for a, b in zip(on, off)]


def report(results, counts):
    summary = {
        k: {f: median(v, f) for f in ("rps", "p50", "p99", "cpu_server", "cpu_db")}
        for k, v in results.items()
    }
    names = {s: what for s, what, _ in SCENARIOS}
    names["r"] = "(a) on org_globex, recorded or not"
    names["t"] = "a bare call, recorded or not"
    print()
    print(f"{'query':<36} {'conns':>5} {'server':<18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10} {'db ms/req':>9}")
    for (scenario, server, connections), m in sorted(summary.items()):
        p99 = "-" if m["p99"] != m["p99"] else f"{m['p99']:.2f}"
        p50_label = f"{m['p50']:.2f}" + ("*" if server == "pgbench floor" else "")
        print(f"({scenario}) {names[scenario]:<32} {connections:>5} {server:<18} {m['rps']:>9.0f} "
              f"{p50_label:>8} {p99:>8} {m['cpu_server']:>10.2f} {m['cpu_db']:>9.2f}")
    print("  * pgbench reports the average latency, not the median")
    print()
    print("statements and plans PostgreSQL ran per request (300 requests, one at a time):")
    for (scenario, server), count in sorted(counts.items()):
        if count is None:
            print(f"  ({scenario}) {server}: not counted (no pg_stat_statements on this server)")
        else:
            print(f"  ({scenario}) {server}: {count[0]:.2f} statements, {count[1]:.2f} plans")

    def ratio(scenario, a, b, connections):
        x, y = summary.get((scenario, a, connections)), summary.get((scenario, b, connections))
        return None if not x or not y else x["rps"] / y["rps"]

    print()
    print("ratios of req/s (median of the rounds):")
    for connections in CONNECTIONS:
        for scenario in "abc":
            r = ratio(scenario, "gateway", "postgraphile", connections)
            print(f"  ({scenario}) gateway / PostGraphile at {connections} conn: {r:.2f}x")
        print(f"  (a) gateway / pgbench floor at {connections} conn: "
              f"{ratio('a', 'gateway', 'pgbench floor', connections):.2f}x")
        print(f"  (a) recording on / off at {connections} conn: "
              f"{ratio('r', 'gateway+recording', 'gateway', connections):.2f}x")
        if BASELINE:
            for scenario in "abcde":
                print(f"  ({scenario}) gateway / baseline at {connections} conn: "
                      f"{ratio(scenario, 'gateway', 'baseline', connections):.2f}x")

    goals = []
    for scenario in "ac":
        # The figure is at 8 connections (the 1-connection ratio is printed above).
        at8 = ratio(scenario, "gateway", "postgraphile", 8)
        goals.append((f"({scenario}) gateway >= 4x PostGraphile req/s at 8 conns", f"{at8:.2f}x", at8 >= 4))
    floor = ratio("a", "gateway", "pgbench floor", 8)
    goals.append(("(a) gateway >= 0.25x the pgbench floor of its statements (8 conns)", f"{floor:.2f}x", floor >= 0.25))
    rest = min(summary[("d", "gateway", c)]["rps"] / summary[("a", "gateway", c)]["rps"] for c in CONNECTIONS)
    goals.append(("(d) REST page >= 0.8x the GraphQL page (a) req/s at 1 and 8 conns", f"{rest:.2f}x", rest >= 0.8))
    p99 = summary[("a", "gateway", 1)]["p99"]
    goals.append(("(a) p99 at 1 conn < 2 ms, warm cache", f"{p99:.2f} ms", p99 < 2))
    if BASELINE:
        for scenario in "be":
            worst = min(ratio(scenario, "gateway", "baseline", c) for c in CONNECTIONS)
            # Rounds on a shared 2-core machine differ by a few percent.
            goals.append((f"({scenario}) unchanged or better than the baseline (>= 0.95x)", f"{worst:.2f}x", worst >= 0.95))
    else:
        goals.append(("(b), (e) unchanged or better than the baseline", "not measured: no BENCH_BASELINE_BIN", False))
    paired = {c: recording_pairs(results, c) for c in CONNECTIONS}
    print()
    print(f"recording on / off, the ratio of each round's pair ({RECORDING_ROUNDS} rounds of {RECORDING_SECONDS} s):")
    for c in CONNECTIONS:
        q1, q2, q3 = statistics.quantiles(paired[c], n=4) if len(paired[c]) > 1 else [paired[c][0]] * 3
        interval = median_interval(paired[c])
        stable = "" if interval is None else f", 95% interval of the median {interval[0]:.3f}x to {interval[1]:.3f}x"
        print(f"  {c} conn: median {q2:.3f}x, quartiles {q1:.3f}x to {q3:.3f}x{stable}, "
              f"rounds {', '.join(f'{r:.2f}' for r in paired[c])}")
        page = summary[("r", "gateway", c)]
        print(f"    recording's cost per page request at {c} conn: {recording_cost(summary, 'r', c)}, "
              f"beside the page's {page['cpu_server'] * 1000:.0f} us and {page['cpu_db'] * 1000:.0f} us")
    print(f"  a recorded call by itself ({BARE_CALL}, 8 conns): {recording_cost(summary, 't', 8)} "
          f"(page (a) on org_globex, recording off: {summary[('r', 'gateway', 8)]['cpu_server'] * 1000:.0f} us "
          f"and {summary[('r', 'gateway', 8)]['cpu_db'] * 1000:.0f} us)")
    recording = min(statistics.median(paired[c]) for c in CONNECTIONS)
    goals.append(("recording on costs at most 5% (a), median of the rounds' pairs", f"{recording:.2f}x", recording >= 0.95))
    print()
    print("goals:")
    for what, figure, met in goals:
        print(f"  {'met    ' if met else 'NOT met'}  {what}: {figure}")


if __name__ == "__main__":
    main()
