"""A webhook receiver for Lendo's events: checks each delivery's signature, prints the event.

    LENDO_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 9000

Listens on http://127.0.0.1:<port>/ (any path). A delivery whose Standard Webhooks
signature holds for the secret is printed and answered 204; any other is answered
400 and not printed. Lendo delivers at least once, so an event can come twice: a
receiver deduplicates on ``webhook-id`` (here in memory; a real one in its database).
Walkthrough: docs/api.md, "Webhooks: deliveries".
"""

import argparse
import contextlib
import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver(ThreadingHTTPServer):
    """The server: the secret's verifier and the event ids already handled."""

    def __init__(self, port: int, secret: str) -> None:
        super().__init__(("127.0.0.1", port), DeliveryHandler)
        self.verifier = Webhook(secret)
        self.seen: set[str] = set()
        self.seen_lock = Lock()


class DeliveryHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            # Checks the signature (any of them, during a secret's rotation) and the timestamp.
            event = self.server.verifier.verify(body.decode(), dict(self.headers.items()))
        except (WebhookVerificationError, ValueError) as error:
            # ValueError: a body not UTF-8, or a signature header the library cannot split.
            print(f"rejected: {error}", file=sys.stderr, flush=True)
            self.send_response(HTTPStatus.BAD_REQUEST)
            self.end_headers()
            return
        delivery_id = self.headers["webhook-id"]
        with self.server.seen_lock:
            duplicate = delivery_id in self.server.seen
            self.server.seen.add(delivery_id)
        if not duplicate:
            application = event["data"]
            # The event carries the applicant's names: personal data, kept out of the output.
            print(event["id"], event["type"], application["id"], application["status"], flush=True)
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the events printed are the output."""


def main() -> None:
    parser = argparse.ArgumentParser(description="Receive Lendo's webhook deliveries.")
    parser.add_argument("--port", type=int, default=9000, help="0: any free port")
    port = parser.parse_args().port
    server = Receiver(port, os.environ["LENDO_WEBHOOK_SECRET"])
    print(f"listening on http://127.0.0.1:{server.server_port}/", flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
