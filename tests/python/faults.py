"""A fault-injecting HTTP proxy on 127.0.0.1, between our binaries and moto_server.

Point a binary's `AWS_ENDPOINT_URL` at the proxy instead of moto and every S3 and DynamoDB
request it makes passes through here, where a fault can be injected at random (`rate`) or on
the Nth request (`nth`). The faults are the ones AWS clients meet in production:

- `s3-500`: S3 answers 500 InternalError; the request is not executed;
- `s3-slowdown`: S3 answers 503 SlowDown (its throttling); not executed;
- `dynamodb-throttle`: DynamoDB answers 400 ProvisionedThroughputExceededException; not executed;
- `dynamodb-500`: DynamoDB answers 500 InternalServerError; not executed;
- `error-after-success`: the request IS executed, then the client gets a 500 (S3) or
  InternalServerError (DynamoDB): the ambiguous failure a retry must survive (a conditional
  write retried after it succeeded, say);
- `drop-mid-body`: executed, then the connection is cut halfway through the response body
  (or before the response, when it has no body);
- `latency`: executed after a delay of up to `max_latency` seconds.

Apart from faults, `s3_latency` and `dynamodb_latency` delay every request to that service by
a fixed number of seconds, as a service whose latency is known (the commit-rate bench).

`only` limits the faults to requests of one operation (a DynamoDB `X-Amz-Target` suffix such
as "PutItem", or an S3 method such as "PUT"). The proxy counts what it injected (`stats`), so
a test can check that every kind happened.
"""
import http.client
import http.server
import random
import socket
import threading
from collections import Counter
from typing import NamedTuple

S3_ONLY = {"s3-500", "s3-slowdown"}
DYNAMODB_ONLY = {"dynamodb-throttle", "dynamodb-500"}
KINDS = ("s3-500", "s3-slowdown", "dynamodb-throttle", "dynamodb-500", "error-after-success",
         "drop-mid-body", "latency")

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-connection", "content-length"}


def s3_error(status, code, message):
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>FAULTPROXY</RequestId></Error>").encode()
    return status, [("Content-Type", "application/xml")], body


def dynamodb_error(status, error_type, message):
    body = (f'{{"__type":"com.amazonaws.dynamodb.v20120810#{error_type}",'
            f'"message":"{message}"}}').encode()
    return status, [("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-ErrorType", error_type)], body


ERRORS = {
    "s3-500": s3_error(500, "InternalError", "We encountered an internal error. Please try again."),
    "s3-slowdown": s3_error(503, "SlowDown", "Please reduce your request rate."),
    "dynamodb-throttle": dynamodb_error(400, "ProvisionedThroughputExceededException",
                                        "The level of configured provisioned throughput for the "
                                        "table was exceeded."),
    "dynamodb-500": dynamodb_error(500, "InternalServerError", "Internal server error"),
}


class Request(NamedTuple):
    """One request the proxy forwarded (the body only of DynamoDB requests and of S3's bulk
    deletes)."""
    service: str
    method: str
    host: str
    path: str
    target: str
    body: bytes


class FaultProxy:
    """Listens on a free port of 127.0.0.1 and forwards to `upstream` (host, port)."""

    def __init__(self, upstream_port, rate=0.0, kinds=KINDS, nth=None, seed=0, max_latency=0.5,
                 only=None, s3_latency=0.0, dynamodb_latency=0.0):
        self.upstream_port = upstream_port
        self.fixed_latency = {"s3": s3_latency, "dynamodb": dynamodb_latency}
        self.by_service = Counter()
        # Every request (a Request): what a test may assert never went, or went only where a
        # policy allows.
        self.seen = []
        self.rate = rate
        self.kinds = tuple(kinds)
        self.nth = dict(nth or {})
        self.max_latency = max_latency
        self.only = only
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.stats = Counter()
        proxy = self

        class Handler(ProxyHandler):
            pass

        Handler.proxy = proxy
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def choose(self, service, operation):
        """The fault for the next request to `service` ("s3" or "dynamodb"), or None."""
        with self.lock:
            self.by_service[service] += 1
            if self.only is not None and operation != self.only:
                return None, 0.0
            self.requests += 1
            kind = self.nth.pop(self.requests, None)
            if kind is None and self.rate and self.random.random() < self.rate:
                allowed = [k for k in self.kinds
                           if not (k in S3_ONLY and service != "s3")
                           and not (k in DYNAMODB_ONLY and service != "dynamodb")]
                kind = self.random.choice(allowed) if allowed else None
            if kind is not None:
                self.stats[kind] += 1
            return kind, self.random.random()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _forward(self, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, [(k, v) for k, v in response.getheaders()
                                     if k.lower() not in HOP_BY_HOP], data
        finally:
            conn.close()

    def _send(self, status, headers, body, declared=None):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if declared is None else declared))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _handle(self):
        body = self._body()
        target = self.headers.get("X-Amz-Target", "")
        service = "dynamodb" if target.startswith("DynamoDB") else "s3"
        operation = target.rsplit(".", 1)[-1] if service == "dynamodb" else self.command
        with self.proxy.lock:
            kept = body if service == "dynamodb" or self.path.endswith("?delete") else b""
            self.proxy.seen.append(Request(service, self.command, self.headers.get("Host", ""),
                                           self.path, target, kept))
        kind, dice = self.proxy.choose(service, operation)
        if self.proxy.fixed_latency[service]:
            threading.Event().wait(self.proxy.fixed_latency[service])
        if kind in ERRORS:
            status, headers, error = ERRORS[kind]
            self._send(status, headers, error)
            return
        if kind == "latency":
            threading.Event().wait(dice * self.proxy.max_latency)
        status, headers, data = self._forward(body)
        if kind == "error-after-success":
            status, headers, error = ERRORS["dynamodb-500" if service == "dynamodb" else "s3-500"]
            self._send(status, headers, error)
        elif kind == "drop-mid-body":
            if data and self.command != "HEAD":
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            self._send(status, headers, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
