"""Real protocol peers on 127.0.0.1 for the end-to-end tests, started and stopped by the tests:

- `moto_server` (PyPI `moto[server]`) serving S3 and DynamoDB over HTTP, as the AWS SDKs
  talk to them;
- the Lambda Runtime API emulator of `cargo lambda watch --only-lambda-apis`, with the real
  `cloudtrail-delta-lambda` binary polling it, invoked with `cargo lambda invoke`
  (`LambdaRuntime`) or over the emulator's Invoke API (`ExecutionEnvironment`, which also
  notices a function process that died mid-invocation, and replaces it).
"""
import concurrent.futures
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent
TARGET = ROOT / "target" / "debug"
CLI = os.environ.get("CLOUDTRAIL_DELTA_BIN", str(TARGET / "cloudtrail-delta"))
LAMBDA = os.environ.get("CLOUDTRAIL_DELTA_LAMBDA_BIN", str(TARGET / "cloudtrail-delta-lambda"))
MAINTENANCE = os.environ.get("CLOUDTRAIL_DELTA_MAINTENANCE_BIN",
                             str(TARGET / "cloudtrail-delta-maintenance"))
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout} s")


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Moto:
    """A moto_server on a free port of 127.0.0.1."""

    def __init__(self, log_dir):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / "moto.log", "w")
        # moto_server, one request at a time: see moto_serial.py for why.
        self.process = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).with_name("moto_serial.py")),
             "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._answers, "moto_server")

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {self.process.returncode}")
        try:
            urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).read()
            return True
        except OSError:
            return False

    def env(self):
        """The environment our binaries and boto3 need to use this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def storage_options(self):
        """Python deltalake's options for tables on this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",  # the reader never commits
        }

    def client(self, service):
        import boto3
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def create_lock_table(self, name):
        """The lock table as template.yaml declares it (Delta's S3DynamoDBLogStore layout)."""
        self.client("dynamodb").create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "tablePath", "AttributeType": "S"},
                                  {"AttributeName": "fileName", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "tablePath", "KeyType": "HASH"},
                       {"AttributeName": "fileName", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST")

    def lock_entries(self, lock_table, table_path):
        """Every lock table item of a Delta table, as plain dicts, by version."""
        items = self.client("dynamodb").query(
            TableName=lock_table, KeyConditionExpression="tablePath = :t",
            ExpressionAttributeValues={":t": {"S": table_path}}, ConsistentRead=True)["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]

    def close(self):
        stop(self.process)
        self.log.close()


def start_runtime_api(port, log, timeout=30.0):
    """`cargo lambda watch --only-lambda-apis` (the Lambda Runtime API emulator) on
    127.0.0.1:`port`, returned once it listens."""
    emulator = subprocess.Popen(
        [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "--only-lambda-apis",
         "-A", "127.0.0.1", "-P", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def listening():
        if emulator.poll() is not None:
            raise RuntimeError(f"cargo lambda watch exited with {emulator.returncode}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, "cargo lambda watch", timeout=timeout)
    return emulator


def function_env(env, port):
    """The environment Lambda gives a function process (256 MB), plus `env`, polling the
    Runtime API emulator on `port`."""
    return {**os.environ, **env,
            "AWS_LAMBDA_FUNCTION_NAME": "_", "AWS_LAMBDA_FUNCTION_VERSION": "1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt"}


class LambdaRuntime:
    """`cargo lambda watch --only-lambda-apis` plus `instances` copies of the real function
    binary (`binary`: the ingest function's by default) polling it, so that concurrent
    invocations run concurrently."""

    def __init__(self, log_dir, env, instances=4, binary=LAMBDA):
        self.port = free_port()
        self.log = open(log_dir / f"lambda-{self.port}.log", "w")
        self.emulator = start_runtime_api(self.port, self.log)
        self.functions = [
            subprocess.Popen([binary], env=function_env(env, self.port), stdout=self.log,
                             stderr=subprocess.STDOUT)
            for _ in range(instances)
        ]

    def start_invoke(self, event):
        """Starts `cargo lambda invoke` with `event`; returns the process."""
        return subprocess.Popen(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "invoke", "-A", "127.0.0.1",
             "-P", str(self.port), "--data-ascii", json.dumps(event)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def invoke(self, event):
        """Invokes the function; returns (succeeded, the response or the error text)."""
        return finish(self.start_invoke(event))

    def close(self):
        for function in self.functions:
            stop(function)
        stop(self.emulator)
        self.log.close()


class ExecutionEnvironment:
    """One Lambda execution environment: the Runtime API emulator and one function process,
    restarted when it dies."""

    def __init__(self, log_dir, env, timeout):
        self.port = free_port()
        self.timeout = timeout
        self.log = open(log_dir / f"environment-{self.port}.log", "w")
        self.emulator = start_runtime_api(self.port, self.log, timeout=60)
        self.env = function_env(env, self.port)
        self.function = None
        self.crashes = 0
        self.start_function()
        # Requests of killed processes never return: each invocation gets its own thread.
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=64)

    def start_function(self):
        self.function = subprocess.Popen([LAMBDA], env=self.env, stdout=self.log,
                                         stderr=subprocess.STDOUT)

    def _post(self, event):
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/_/invocations"
        request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return True, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return False, e.read().decode(errors="replace")
        except OSError as e:  # timeouts included
            return False, f"invoke failed: {e!r}"

    def invoke(self, event):
        """(succeeded, response or error). A process that dies mid-invocation fails it, as
        Lambda does, and is replaced."""
        pending = self.pool.submit(self._post, event)
        while not concurrent.futures.wait([pending], timeout=0.05).done:
            if self.function.poll() is not None:
                # The emulator never answers an invocation whose process died.
                self.crashes += 1
                self.start_function()
                return False, "Runtime exited (function process killed)"
        return pending.result()

    def close(self):
        stop(self.function)
        stop(self.emulator)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.log.close()


def finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    if process.returncode == 0:
        return True, json.loads(out)
    return False, out + err
