"""`moto_server`, handling one request at a time, as the tests' S3 and DynamoDB.

DynamoDB makes a conditional PutItem atomic, and S3 a conditional PUT (`If-None-Match`):
exactly one of two racing writers wins. moto_server serves each request on its own thread
and checks a condition, then writes, with nothing held in between (moto 5.2:
`dynamodb/models/table.py`, `Table.put_item` parses the condition expression between the
two), so two racing conditional writes can both succeed. Our commit protocol rests on that
atomicity; an emulator that breaks it makes the tests report lost commits that AWS would not
cause. So requests are handled one at a time here, each body read off the socket before the
turn is taken, so that a slow client does not hold the others up. moto runs under Python's
GIL anyway: this costs almost no throughput.

    python moto_serial.py -H 127.0.0.1 -p PORT     (moto_server's own arguments)
"""
import io
import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

TURN = threading.Lock()
dispatch = DomainDispatcherApplication.__call__


def one_at_a_time(self, environ, start_response):
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = environ["wsgi.input"].read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = environ["wsgi.input"].read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    with TURN:
        # Drained inside the turn: a response body may still be computed lazily.
        response = dispatch(self, environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            if hasattr(response, "close"):
                response.close()


DomainDispatcherApplication.__call__ = one_at_a_time

if __name__ == "__main__":
    sys.exit(server.main())
