"""A real SMTP server for crm-email's tests (aiosmtpd).

Usage: smtp_sink.py PORT DIR [--starttls CERT KEY | --tls CERT KEY] [--auth USER:PASSWORD]

Listens on 127.0.0.1:PORT and writes every accepted message to DIR as one JSON file,
parsed with Python's own email package (headers decoded, both body parts, envelope).
The file DIR/mode, if present, changes the reply to DATA: "451" (try again later) or
"550" (mailbox unavailable). --starttls requires STARTTLS before MAIL, --tls speaks TLS
from the first byte, --auth requires that login. Prints "ready" once it accepts
connections.
"""

import email
import json
import ssl
import os
import signal
import sys
import threading
import time
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    def mode(self):
        try:
            with open(os.path.join(self.directory, "mode")) as f:
                return f.read().strip()
        except FileNotFoundError:
            return "ok"

    async def handle_DATA(self, server, session, envelope):
        mode = self.mode()
        if mode == "451":
            return "451 4.3.0 Try again later"
        if mode == "550":
            return "550 5.1.1 Mailbox unavailable"
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        to = msg["to"]
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "from": str(msg["from"]),
            "to": str(to),
            "to_name": to.addresses[0].display_name if to is not None else None,
            "message_id": str(msg["message-id"]),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "header_names": [k.lower() for k in msg.keys()],
            "raw": raw.decode("utf-8", "replace"),
            "tls": bool(getattr(session, "ssl", None))
            or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(getattr(session, "authenticated", False)),
        }
        self.count += 1
        path = os.path.join(self.directory, "%020d-%06d.json" % (time.time_ns(), self.count))
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 OK"


def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    args = sys.argv[3:]
    options = {}
    controller_options = {}
    while args:
        flag = args.pop(0)
        if flag == "--starttls":
            options["tls_context"] = tls_context(args.pop(0), args.pop(0))
            options["require_starttls"] = True
        elif flag == "--tls":
            controller_options["ssl_context"] = tls_context(args.pop(0), args.pop(0))
        elif flag == "--auth":
            user, password = args.pop(0).split(":", 1)

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = (
                    auth_data.login.decode() == user
                    and auth_data.password.decode() == password
                )
                return AuthResult(success=ok, handled=False)

            options["authenticator"] = authenticator
            options["auth_required"] = True
            options["auth_require_tls"] = False
        else:
            raise SystemExit("unknown option " + flag)
    controller = Controller(
        Handler(directory),
        hostname="127.0.0.1",
        port=port,
        **controller_options,
        **options,
    )
    controller.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
