"""A webhook receiver for the log stream tests: it verifies every delivery
with the Standard Webhooks specification's own Python library (pinned in
tests/conformance/requirements.txt), never with the gateway's code, keeps
what it received, and misbehaves on request.

    python webhook.py PORT SECRET

prints "listening PORT" once it accepts connections. Routes:
- POST /hook (any other path too): a delivery. Refused with 401 when its
  signature does not verify (counted in "invalid").
- GET /_received: {"deliveries": [webhook-id, ...], "events": [[org_id,
  log_index, id], ...] in arrival order, "invalid": n, "types": {...}}.
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
LOCK = threading.Lock()
STATE = {"deliveries": [], "events": [], "invalid": 0, "types": {}}
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
        try:
            message = HOOK.verify(payload, dict(self.headers.items()))
        except WebhookVerificationError:
            with LOCK:
                STATE["invalid"] += 1
            return self.answer(401, b"signature does not verify")
        with LOCK:
            STATE["deliveries"].append(self.headers["webhook-id"])
            kind = message.get("type", "")
            STATE["types"][kind] = STATE["types"].get(kind, 0) + 1
            for event in message.get("events", []):
                STATE["events"].append([event["org_id"], event["log_index"], event["id"]])
        self.answer(200, b"ok")


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
print(f"listening {PORT}", flush=True)
server.serve_forever()
