"""A webhook receiver for the tests: a real HTTP server process on loopback.

Usage: receiver.py SECRET [--tls CERT KEY]

Prints {"port": N} once listening, then one JSON line per request received:
{"path", "headers" (name -> value, names lowercased), "body" (UTF-8 text), "status",
"verified"}: "verified" is what `verify` below (the recipe in crm-webhook's docs for
receivers in other languages) says of the request with SECRET.
What it answers depends on the path:

  /ok            200
  /gone          410
  /throttle      429
  /flaky/N       500 to the first N requests on this path, then 200
  /hang-once/S   sleeps S seconds before answering the first request, then 200 at once
"""

import hashlib
import hmac
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}
lock = threading.Lock()
secret = b""


def verify(secret: bytes, headers, body: bytes, tolerance=300) -> bool:
    ts = headers.get("X-CRM-Timestamp", "")
    signatures = headers.get("X-CRM-Signature", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance:
        return False
    mac = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(mac, s.strip()[3:])
               for s in signatures.split(",")
               if s.strip().startswith("v1="))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with lock:
            n = counts.get(self.path, 0) + 1
            counts[self.path] = n
        parts = self.path.strip("/").split("/")
        status = 404
        if parts[0] == "ok":
            status = 200
        elif parts[0] == "gone":
            status = 410
        elif parts[0] == "throttle":
            status = 429
        elif parts[0] == "flaky":
            status = 500 if n <= int(parts[1]) else 200
        elif parts[0] == "hang-once":
            if n == 1:
                time.sleep(float(parts[1]))
            status = 200
        record = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8"),
            "status": status,
            "verified": verify(secret, self.headers, body),
        }
        with lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        try:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up waiting (a timeout test)


def main():
    global secret
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    secret = sys.argv[1].encode()
    args = sys.argv[2:]
    if args[:1] == ["--tls"]:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args[1], args[2])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    sys.stdout.write(json.dumps({"port": server.server_address[1]}) + "\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
