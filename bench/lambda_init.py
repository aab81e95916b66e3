#!/usr/bin/env python3
"""Cold start of the Lambda binary: the time from exec to its first request to the Lambda
Runtime API (`GET …/runtime/invocation/next`), i.e. init done and ready for an event.

    python3 bench/lambda_init.py [BINARY] [RUNS]

A tiny HTTP listener on 127.0.0.1 stands in for the Runtime API; the function's settings are
those of a deployment in the DynamoDB mode (init reads them and builds the AWS clients, it
makes no request). Prints the median and the range.
"""
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/cloudtrail-delta-lambda")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20

samples = []
for _ in range(runs):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "cloudtrail-delta", "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
        "LOG_BUCKET": "bucket",
        "CLOUDTRAIL_TABLE_URI": "s3://bucket/delta/cloudtrail",
        "INSIGHTS_TABLE_URI": "s3://bucket/delta/cloudtrail_insights",
        "AWS_S3_LOCKING_PROVIDER": "dynamodb", "DELTA_DYNAMO_TABLE_NAME": "delta_log",
    }
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connection, _ = listener.accept()
    connection.recv(4096)  # the request line of GET /2018-06-01/runtime/invocation/next
    samples.append((time.perf_counter() - started) * 1000)
    process.kill()
    process.wait()
    connection.close()
    listener.close()

print(f"init (exec → first /next request), {runs} runs: median {statistics.median(samples):.1f} ms, "
      f"min {min(samples):.1f} ms, max {max(samples):.1f} ms")
