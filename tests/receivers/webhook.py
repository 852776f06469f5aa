"""A webhook receiver for the log stream tests: it verifies every delivery
with the Standard Webhooks specification's own Python library (pinned in
tests/conformance/requirements.txt), never with the gateway's code, keeps
what it received, and misbehaves on request.

    python webhook.py PORT SECRET TOKEN

prints "listening PORT" once it accepts connections. Routes:
- POST /hook (any other path but the two below): a Standard Webhooks
  delivery. Refused with 401 when its signature does not verify (counted
  in "invalid").
- POST /services/collector/event: a Splunk HTTP Event Collector request, as
  Splunk documents it: `Authorization: Splunk TOKEN`, event objects
  concatenated, each with a numeric `time` and the event as `event`.
- POST /api/v2/logs: a Datadog logs intake request, as Datadog documents it:
  `DD-API-KEY: TOKEN`, a JSON array of logs with `ddsource`, `service` and
  the event as JSON text in `message`.
- GET /_received: {"deliveries": [webhook-id, ...], "events": [[org_id,
  log_index, id], ...] in arrival order, "invalid": n, "types": {...},
  "checkpoints": [[tree_size, signed note], ...]}.
- POST /_mode {"mode": "ok" | "fail" | "slow" | "drop" | "refuse",
  "seconds": s, "count": n}: "fail" answers 500 for s seconds, "slow"
  waits s seconds before each answer, "drop" closes the next n connections
  mid-request without answering, "refuse" answers 400 until set back.
"""

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PORT = int(sys.argv[1])
HOOK = Webhook(sys.argv[2])
TOKEN = sys.argv[3]
LOCK = threading.Lock()
STATE = {"deliveries": [], "events": [], "invalid": 0, "types": {}, "checkpoints": []}
MODE = {"mode": "ok", "until": 0.0, "seconds": 0.0, "count": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with LOCK:
            body = json.dumps(STATE).encode()
        self.answer(200, body, [("content-type", "application/json")])

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        if self.path == "/_mode":
            asked = json.loads(self.rfile.read(length) or b"{}")
            with LOCK:
                MODE["mode"] = asked.get("mode", "ok")
                MODE["seconds"] = float(asked.get("seconds", 0))
                MODE["until"] = time.time() + MODE["seconds"]
                MODE["count"] = int(asked.get("count", 0))
            return self.answer(204)
        with LOCK:
            mode = dict(MODE)
            if mode["mode"] == "drop" and MODE["count"] > 0:
                MODE["count"] -= 1
        if mode["mode"] == "drop" and mode["count"] > 0:
            # Read half the body, then hang up without answering.
            self.rfile.read(max(1, length // 2))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
            self.close_connection = True
            return
        payload = self.rfile.read(length)
        if mode["mode"] == "slow":
            time.sleep(mode["seconds"])
        if mode["mode"] == "fail" and time.time() < mode["until"]:
            return self.answer(500, b"failing on purpose", [("retry-after", "1")])
        if mode["mode"] == "refuse":
            return self.answer(400, b"refused on purpose")
        if self.path == "/services/collector/event":
            return self.splunk(payload)
        if self.path == "/api/v2/logs":
            return self.datadog(payload)
        try:
            message = HOOK.verify(payload, dict(self.headers.items()))
        except WebhookVerificationError:
            return self.invalid("signature does not verify")
        with LOCK:
            STATE["deliveries"].append(self.headers["webhook-id"])
            if message.get("type") == "log.checkpoint":
                STATE["checkpoints"].append([message["tree_size"], message["checkpoint"]])
            self.keep(message.get("type", ""), message.get("events", []))
        self.answer(200, b"ok")

    def invalid(self, why):
        with LOCK:
            STATE["invalid"] += 1
        return self.answer(401, why.encode())

    def keep(self, kind, events):
        STATE["types"][kind] = STATE["types"].get(kind, 0) + 1
        for event in events:
            if event.get("type") in ("activity.test", "log.checkpoint"):
                STATE["types"][event["type"]] = STATE["types"].get(event["type"], 0) + 1
                if event["type"] == "log.checkpoint":
                    STATE["checkpoints"].append([event["tree_size"], event["checkpoint"]])
                continue
            if "class_uid" in event:
                # OCSF: the ids are in its metadata; the required members must be there.
                meta = event["metadata"]
                for member in ("activity_id", "category_uid", "class_uid", "severity_id", "time",
                               "type_uid", "actor", "api", "cloud", "src_endpoint"):
                    if member not in event:
                        STATE["invalid"] += 1
                STATE["events"].append([meta["tenant_uid"], meta["sequence"], meta["uid"]])
                continue
            STATE["events"].append([event["org_id"], event["log_index"], event["id"]])

    def splunk(self, payload):
        if self.headers.get("authorization") != f"Splunk {TOKEN}":
            return self.invalid("wrong HEC token")
        decoder, text, at, events = json.JSONDecoder(), payload.decode(), 0, []
        while at < len(text):
            while at < len(text) and text[at].isspace():
                at += 1
            if at == len(text):
                break
            item, at = decoder.raw_decode(text, at)
            if not isinstance(item.get("time"), (int, float)) or item.get("sourcetype") != "_json":
                return self.answer(400, b'{"text":"Invalid data format","code":6}')
            events.append(item["event"])
        with LOCK:
            STATE["deliveries"].append(f"splunk-{len(STATE['deliveries'])}")
            self.keep("splunk", events)
        self.answer(200, b'{"text":"Success","code":0}', [("content-type", "application/json")])

    def datadog(self, payload):
        if self.headers.get("dd-api-key") != TOKEN:
            return self.invalid("wrong API key")
        logs = json.loads(payload)
        if not isinstance(logs, list) or len(logs) > 1000:
            return self.answer(400, b"{}")
        events = []
        for log in logs:
            if log.get("ddsource") != "activity-gateway" or not isinstance(log.get("message"), str):
                return self.answer(400, b"{}")
            events.append(json.loads(log["message"]))
        with LOCK:
            STATE["deliveries"].append(f"datadog-{len(STATE['deliveries'])}")
            self.keep("datadog", events)
        self.answer(202, b"{}", [("content-type", "application/json")])


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A sender that hung up (the tests kill gateways mid-request) is
        # not news.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


server = Server(("127.0.0.1", PORT), Handler)
print(f"listening {PORT}", flush=True)
server.serve_forever()
