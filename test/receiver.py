#!/usr/bin/python3
"""receiver.py: the webhook receiver used by retailflow's TAP tests.

Listens on 127.0.0.1:PORT, verifies Standard Webhooks signatures with the
given whsec_ secrets, and appends one JSON line per request to LOG:
{"path", "id", "ts", "sig_ok", "type", "record", "data", "status", "body_len", "at"}.
What it answers depends on the path's mode, set by POST /_control with
{"path": "/x", "mode": "ok|500|410|429|429_then_ok|stall|close|fail_then_ok|redirect", "n": N,
"retry_after": S, "stall": S, "location": URL} (default "ok"; redirect answers 302 to location).  GET /_stats returns counts.
Usage: receiver.py PORT LOG SECRET [SECRET...]   (standard library only)
"""
import base64, hashlib, hmac, json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, LOG = int(sys.argv[1]), sys.argv[2]
KEYS = [base64.b64decode(s[len("whsec_"):]) for s in sys.argv[3:]]
lock = threading.Lock()
modes = {}        # path -> dict(mode=..., n=..., ...)
seen = {}         # (path, webhook-id) -> attempts


def verify(msg_id, ts, body, header):
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = [base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode() for k in KEYS]
    given = [p.split(",", 1)[1] for p in header.split(" ") if p.startswith("v1,")]
    return any(hmac.compare_digest(g, e) for g in given for e in expected)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_stats":
            with lock:
                body = json.dumps({"modes": modes, "seen": len(seen)}).encode()
            return self.reply(200, body)
        self.reply(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_control":
            cfg = json.loads(body)
            with lock:
                modes[cfg["path"]] = cfg
            return self.reply(200, b"ok")
        with lock:
            cfg = dict(modes.get(self.path, {"mode": "ok"}))
            key = (self.path, self.headers.get("webhook-id", ""))
            seen[key] = seen.get(key, 0) + 1
            attempt = seen[key]
        mode = cfg.get("mode", "ok")
        status, extra = 200, []
        if mode == "500":
            status = 500
        elif mode == "410":
            status = 410
        elif mode == "429":
            status, extra = 429, [("Retry-After", str(cfg.get("retry_after", 1)))]
        elif mode == "fail_then_ok" and attempt <= int(cfg.get("n", 1)):
            status = 500
        elif mode == "429_then_ok" and attempt <= int(cfg.get("n", 1)):
            status, extra = 429, [("Retry-After", str(cfg.get("retry_after", 1)))]
        elif mode == "redirect":
            status, extra = 302, [("Location", cfg.get("location", "/"))]
        elif mode == "stall":
            time.sleep(float(cfg.get("stall", 5)))
        sig_ok, typ, record, data = False, None, None, None
        try:
            sig_ok = verify(self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", ""),
                            body, self.headers.get("webhook-signature", ""))
            doc = json.loads(body)
            typ, record, data = doc.get("type"), doc.get("data", {}).get("id"), doc.get("data")
        except Exception:
            pass
        rec = {"path": self.path, "id": self.headers.get("webhook-id"), "ts": self.headers.get("webhook-timestamp"),
               "sig_ok": sig_ok, "type": typ, "record": record, "data": data, "attempt": attempt,
               "status": status if mode != "close" else 0, "body_len": len(body), "at": time.time(),
               "custom": self.headers.get("X-Team"), "ctype": self.headers.get("Content-Type")}
        with lock:
            with open(LOG, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if mode == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.reply(status, b"{}", extra)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def watchdog(parent):
    """Exit when the test that started us is gone (or after an hour)."""
    start = time.time()
    while os.getppid() == parent and time.time() - start < 3600:
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    threading.Thread(target=watchdog, args=(os.getppid(),), daemon=True).start()
    Server(("127.0.0.1", PORT), Handler).serve_forever()
