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

Usage: python3 scripts/moto_serial.py HOST PORT
"""

import functools
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


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, Serialized(app), threaded=True)


if __name__ == "__main__":
    main()
