"""A real SMTP server for the mail tests (aiosmtpd), scripted per test.

    python smtp_sink.py --dir DIR [--tempfail N] [--reject ADDR ...] [--hold-first-secs S]

Listens on 127.0.0.1 on a free port and prints that port on its first line of stdout.
Every accepted message is appended to DIR/messages.jsonl as
{"mail_from", "rcpt_tos", "data", "headers", "content_type", "parts": [{"content_type",
"content"}]} (data is the raw message; the rest is what Python's email package parses). Script:
  --tempfail N        the first N RCPT commands get 451 (a temporary failure)
  --reject ADDR       RCPT of ADDR gets 550 (a permanent refusal); repeatable
  --count-only        only record each accepted message's recipients (DIR/accepted.jsonl, one JSON list a line)
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
import sys

from aiosmtpd.controller import Controller


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
        append(
            os.path.join(self.dir, "messages.jsonl"),
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
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
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    port = free_port()
    controller = Controller(Handler(args), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        # Until the test closes our stdin (or kills us).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
