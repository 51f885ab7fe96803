"""A real SMTP server for the mail tests (aiosmtpd), scripted per test.

    python smtp_sink.py --dir DIR [--tempfail N] [--reject ADDR ...] [--hold-first-secs S]

Listens on 127.0.0.1 on a free port and prints that port on its first line of stdout.
Every accepted message is appended to DIR/messages.jsonl as
{"mail_from", "rcpt_tos", "tls", "login", "data", "headers", "content_type", "parts": [{"content_type",
"content"}]} (data is the raw message; the rest is what Python's email package parses). Script:
  --tempfail N        the first N RCPT commands get 451 (a temporary failure)
  --reject ADDR       RCPT of ADDR gets 550 (a permanent refusal); repeatable
  --count-only        only record each accepted message's recipients (DIR/accepted.jsonl, one JSON list a line)
  --tls MODE          starttls (STARTTLS required before MAIL) or implicit (TLS from the first
                      byte, as smtps:// on 465), with a certificate for "localhost" issued by a
                      fresh test CA whose PEM is written to DIR/ca.pem
  --auth USER:PASS    require AUTH (PLAIN or LOGIN) with these credentials (only over TLS)
  --hold-first-secs S the first message's DATA is answered only after S seconds, and kept
                      only if the client is still connected then (a client killed meanwhile
                      never got its 250, so the message was not delivered)
Each event is also appended to DIR/events.jsonl ({"event": "rcpt"|"tempfail"|"reject"|
"data-held"|"data-dropped"|"accepted", ...}), so a test can wait for a step.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def append(path, record):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


class Handler:
    def __init__(self, args):
        self.dir = args.dir
        self.tempfail = args.tempfail
        self.reject = set(a.lower() for a in args.reject)
        self.hold = args.hold_first_secs
        self.held_once = False
        self.count_only = args.count_only
        self.out = None

    def event(self, name, **fields):
        append(os.path.join(self.dir, "events.jsonl"), {"event": name, **fields})

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            self.event("reject", rcpt=address)
            return "550 5.1.1 No such user here"
        if self.tempfail > 0:
            self.tempfail -= 1
            self.event("tempfail", rcpt=address)
            return "451 4.3.0 Try again later"
        self.event("rcpt", rcpt=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.hold > 0 and not self.held_once:
            self.held_once = True
            self.event("data-held", rcpt_tos=envelope.rcpt_tos)
            try:
                await asyncio.sleep(self.hold)
            except asyncio.CancelledError:
                # aiosmtpd cancels the session when the client goes away.
                self.event("data-dropped", rcpt_tos=envelope.rcpt_tos)
                raise
            transport = server.transport
            if transport is None or transport.is_closing():
                self.event("data-dropped", rcpt_tos=envelope.rcpt_tos)
                return "421 4.3.0 Gone"
        if self.count_only:
            if self.out is None:
                self.out = open(os.path.join(self.dir, "accepted.jsonl"), "a", encoding="utf-8")
            self.out.write(json.dumps(envelope.rcpt_tos) + "\n")
            self.out.flush()
            return "250 Message accepted"
        data = envelope.original_content or envelope.content
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        transport = server.transport
        login = getattr(session, "auth_data", None)
        append(
            os.path.join(self.dir, "messages.jsonl"),
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "tls": transport is not None and transport.get_extra_info("ssl_object") is not None,
                "login": login.login.decode() if login is not None else None,
                "data": data,
                **parsed(data),
            },
        )
        self.event("accepted", rcpt_tos=envelope.rcpt_tos)
        return "250 Message accepted"


def parsed(data):
    """The message as Python's email package reads it: headers (decoded), its content type,
    and the text of its text/plain and text/html parts."""
    msg = email.message_from_string(data, policy=email.policy.default)
    out = {
        "headers": {k: str(v) for k, v in msg.items()},
        "content_type": msg.get_content_type(),
        "parts": [],
    }
    for part in msg.walk():
        if part.is_multipart():
            continue
        out["parts"].append({"content_type": part.get_content_type(), "content": part.get_content()})
    return out


def tls_context(directory):
    """A server context with a "localhost" certificate from a new test CA (DIR/ca.pem)."""
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(os.path.join(directory, "ca.pem"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


class Authenticator:
    def __init__(self, user, password, on_event):
        self.user = user.encode()
        self.password = password.encode()
        self.on_event = on_event

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == self.user and auth_data.password == self.password
        self.on_event("auth" if ok else "auth-refused", mechanism=mechanism)
        return AuthResult(success=ok, auth_data=auth_data if ok else None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--tempfail", type=int, default=0)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--hold-first-secs", type=float, default=0)
    # For the benchmark: only append each accepted message's recipients to
    # DIR/accepted.jsonl (no parsing, no events, no fsync).
    p.add_argument("--count-only", action="store_true")
    p.add_argument("--tls", choices=["starttls", "implicit"])
    p.add_argument("--auth")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    port = free_port()
    handler = Handler(args)
    kwargs = {}
    if args.tls:
        ctx = tls_context(args.dir)
        if args.tls == "implicit":
            kwargs["ssl_context"] = ctx
        else:
            kwargs["tls_context"] = ctx
            kwargs["require_starttls"] = True
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs["authenticator"] = Authenticator(user, password, handler.event)
        # With implicit TLS the whole connection is TLS, which aiosmtpd does not see (it only
        # tracks STARTTLS): it would hide AUTH.
        kwargs["auth_require_tls"] = args.tls != "implicit"
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print(port, flush=True)
    try:
        # Until the test closes our stdin (or kills us).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
