"""moto's server, handling one request at a time.

moto rolls back a cancelled TransactWriteItems by restoring a copy of each table
taken when the transaction started. Two requests served at once can therefore
undo each other: a concurrent commit that was acknowledged vanishes when another
transaction's rollback restores the older copy. Serializing requests keeps every
moto transaction atomic, while the clients still race exactly as they would
against DynamoDB (read, decide, conditional write).

moto's EventBridge builds a JSONPath parser (its yacc tables) for every input
path of every event it delivers, about 70 ms per entry; parsed paths are
immutable, so they are cached here, which leaves delivery itself unchanged.

One read-only endpoint of its own lets tests see what moto's SES "sent":
`GET /_outbox/ses/sent` answers a JSON array with one object per raw message
sent (SES v1 `SendRawEmail` or v2 `SendEmail` with raw content), in every
account and region, oldest first within each:
`{"source": "...", "destinations": ["..."], "raw": "<the whole message>"}`.
moto's destinations list the request's recipients and then those it read from
the message's To, Cc and Bcc headers, so an address may appear twice. Any other
method on that path answers 405.

Usage: python3 scripts/moto_serial.py HOST PORT
"""

import functools
import json
import sys
import threading

import jsonpath_ng.ext

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


class Serialized:
    """A WSGI middleware that lets one request run at a time, body included."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            return list(self.app(environ, start_response))


SES_SENT_PATH = "/_outbox/ses/sent"


def ses_sent() -> list:
    """Every raw message moto's SES backends hold as sent."""
    from moto.ses.models import RawMessage, ses_backends

    sent = []
    for regions in list(ses_backends.values()):
        for backend in list(regions.values()):
            for message in backend.sent_messages:
                if isinstance(message, RawMessage):
                    sent.append(
                        {
                            "source": message.source,
                            "destinations": list(message.destinations),
                            "raw": message.raw_data,
                        }
                    )
    return sent


class OutboxEndpoints:
    """A WSGI middleware answering the endpoints of this script; moto the rest."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != SES_SENT_PATH:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "GET":
            body = b'{"message": "only GET"}'
            status = "405 Method Not Allowed"
        else:
            body = json.dumps(ses_sent()).encode("utf-8")
            status = "200 OK"
        start_response(
            status,
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, Serialized(OutboxEndpoints(app)), threaded=True)


if __name__ == "__main__":
    main()
