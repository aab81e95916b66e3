"""Commit-rate ceilings of one table, modelled and measured (`make bench-commit-rate`).

Each commit mode (S3 conditional writes, the DynamoDB lock) with 1 and 4 concurrent writers:
release CLIs, each committing small local log files one per commit (`--objects-per-commit 1`,
as direct-mode invocations do) into one table on moto_server's S3, through a proxy that
delays every S3 request by `--s3-ms` and every DynamoDB request by `--dynamodb-ms` (the
published medians: tens of milliseconds for small S3 requests, single-digit milliseconds for
DynamoDB). Commits per second come from the commits' own timestamps.

The model, per mode, in requests times latency:
- one writer's commits are serial: a commit takes its CPU time plus its requests (n, counted
  at the proxy) times their latency;
- with W writers, every commit of the others lands while a writer prepares its own: its
  write fails, and it looks at the log again (LIST, the GET of each new commit) and writes
  the next version. So a commit costs n + (W - 1) x c requests, c those of one lost race
  (counted: the requests per commit at 4 writers less those at 1, over 3). W writers waiting
  on their requests in parallel make W / (CPU + (n + (W - 1) c) x latency) commits a second,
  which tends to the table's ceiling 1 / (c x latency) as writers are added;
- on the emulator, each request also takes moto_server's service time (measured with no
  latency injected), and moto serves one request at a time: at most
  1 / ((n + (W - 1) c) x its service time) commits a second.
The model at the published latencies (`--aws-s3-ms`, `--aws-dynamodb-ms`: tens of
milliseconds for small S3 requests, single-digit milliseconds for DynamoDB) gives what to
expect on AWS, with the CPU time of a commit measured on a local table.

    .venv/bin/python bench/commit_rate.py [--commits 20] [--s3-ms 100] [--dynamodb-ms 20]
"""
import argparse
import gzip
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from aws_local import Moto  # noqa: E402
from faults import FaultProxy  # noqa: E402

OURS = pathlib.Path(os.environ.get("CLOUDTRAIL_DELTA_BIN", ROOT / "target" / "release" / "cloudtrail-delta"))
BUCKET = "rates"
LOCK_TABLE = "delta_log"
MODES = {"conditional-put": {}, "dynamodb": {"AWS_S3_LOCKING_PROVIDER": "dynamodb",
                                             "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE}}


def write_logs(folder, writer, count):
    """`count` one-record logs of writer `writer`, under the CloudTrail key layout."""
    paths = []
    for n in range(count):
        key = (f"AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/06/"
               f"123456789012_CloudTrail_us-east-1_20261206T1200Z_w{writer}n{n}.json.gz")
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"eventVersion": "1.09", "eventTime": "2026-12-06T12:00:00Z",
                  "eventID": f"w{writer}-{n}", "eventName": "GetObject"}
        path.write_bytes(gzip.compress(json.dumps({"Records": [record]}).encode()))
        paths.append(path)
    return paths


def commit_times(s3, prefix, after):
    """The commitInfo timestamps (seconds) of the table's commits after version `after`."""
    times = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/_delta_log/"):
        for o in page.get("Contents", []):
            name = o["Key"].rsplit("/", 1)[1]
            if name.endswith(".json") and name[:20].isdigit() and int(name[:20]) > after:
                body = s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode()
                info = next(json.loads(line)["commitInfo"] for line in body.splitlines()
                            if line.startswith('{"commitInfo"'))
                times.append(info["timestamp"] / 1000)
    return sorted(times)


def run(moto, mode, writers, commits, s3_latency, dynamodb_latency, work):
    """(commits per second, S3 requests per commit, DynamoDB requests per commit)."""
    s3 = moto.client("s3")
    prefix = f"{mode}-{writers}-{int(s3_latency * 1000)}-{time.monotonic_ns()}"
    table = f"s3://{BUCKET}/{prefix}/ct"
    env = {**os.environ, **moto.env(), **MODES[mode], "RUST_LOG": "error"}
    folder = work / prefix
    seed = write_logs(folder / "seed", 99, 1)
    base = [str(OURS), "ingest", "--objects-per-commit", "1", "--table", table,
            "--insights-table", f"s3://{BUCKET}/{prefix}/insights"]
    # The table exists (version 0 created, 1 committed) before the writers start.
    subprocess.run(base + [str(seed[0])], check=True, env=env, capture_output=True)
    proxy = FaultProxy(moto.port, s3_latency=s3_latency, dynamodb_latency=dynamodb_latency)
    try:
        proxied = {**env, "AWS_ENDPOINT_URL": proxy.endpoint}
        processes = []
        for w in range(writers):
            logs = write_logs(folder / f"w{w}", w, commits)
            processes.append(subprocess.Popen(base + [str(p) for p in logs], env=proxied,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for process in processes:
            out, err = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"a writer failed:\n{out.decode()}\n{err.decode()[-2000:]}")
        by_service = dict(proxy.by_service)
    finally:
        proxy.close()
    times = commit_times(s3, f"{prefix}/ct", after=1)
    if len(times) != writers * commits:
        raise RuntimeError(f"{len(times)} commits for {writers * commits} objects")
    rate = (len(times) - 1) / (times[-1] - times[0])
    total = writers * commits
    return rate, by_service.get("s3", 0) / total, by_service.get("dynamodb", 0) / total


def requests_per_commit(writers, alone, race):
    """(S3, DynamoDB) requests per commit with `writers` writers."""
    return tuple(n + (writers - 1) * c for n, c in zip(alone, race))


def model(writers, cpu, alone, race, latency, service=None):
    """Modelled commits per second (see the module docs); `latency` is (S3, DynamoDB)."""
    requests = requests_per_commit(writers, alone, race)
    # On the emulator each request also waits for its service, and it serves one at a time.
    wait = service or 0.0
    rate = writers / (cpu + sum(r * (l + wait) for r, l in zip(requests, latency)))
    if service is not None:
        rate = min(rate, 1 / (sum(requests) * service))
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=20, help="commits per writer")
    parser.add_argument("--s3-ms", type=float, default=100.0, help="injected S3 latency")
    parser.add_argument("--dynamodb-ms", type=float, default=20.0, help="injected DynamoDB latency")
    parser.add_argument("--aws-s3-ms", type=float, default=30.0)
    parser.add_argument("--aws-dynamodb-ms", type=float, default=5.0)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    if not OURS.exists():
        sys.exit(f"{OURS} not found: cargo build --release --bin cloudtrail-delta")
    injected = (args.s3_ms / 1000, args.dynamodb_ms / 1000)
    aws = (args.aws_s3_ms / 1000, args.aws_dynamodb_ms / 1000)
    rows, ceilings = [], []
    with tempfile.TemporaryDirectory(prefix="commit-rate-") as tmp:
        work = pathlib.Path(tmp)
        moto = Moto(work)
        try:
            moto.client("s3").create_bucket(Bucket=BUCKET)
            moto.create_lock_table(LOCK_TABLE)
            for mode in args.modes.split(","):
                cpu = local_commit_seconds(work / f"{mode}-local", args.commits)
                bare, *alone = run(moto, mode, 1, args.commits, 0.0, 0.0, work)
                # The emulator's time per request: a commit's time with no latency, less its CPU.
                service = (1 / bare - cpu) / sum(alone)
                one, *alone = run(moto, mode, 1, args.commits, *injected, work)
                four, *crowded = run(moto, mode, 4, args.commits, *injected, work)
                race = tuple((m - n) / 3 for m, n in zip(crowded, alone))
                print(f"{mode}: CPU {cpu * 1000:.0f} ms a commit, emulator {service * 1000:.0f} ms a "
                      f"request; alone {alone[0]:.1f} S3 + {alone[1]:.1f} DynamoDB requests a commit, "
                      f"a lost race {race[0]:.1f} + {race[1]:.1f}", file=sys.stderr, flush=True)
                for writers, measured in ((1, one), (4, four)):
                    s3_w, ddb_w = requests_per_commit(writers, alone, race)
                    rows.append((mode, writers, s3_w, ddb_w,
                                 model(writers, cpu, alone, race, injected, service), measured,
                                 model(writers, cpu, alone, race, aws)))
                ceilings.append((mode, 1 / sum(c * l for c, l in zip(race, aws))))
        finally:
            moto.close()
    print(f"\nInjected on the emulator: S3 {args.s3_ms:g} ms, DynamoDB {args.dynamodb_ms:g} ms a request; "
          f"AWS: S3 {args.aws_s3_ms:g} ms, DynamoDB {args.aws_dynamodb_ms:g} ms.\n")
    print("| commit mode | writers | S3 + DynamoDB requests per commit | modelled, emulator | "
          "measured, emulator | modelled, AWS |")
    print("|---|---|---|---|---|---|")
    for mode, writers, s3_requests, ddb_requests, modelled, measured, on_aws in rows:
        print(f"| {mode} | {writers} | {s3_requests:.1f} + {ddb_requests:.1f} | {modelled:.1f} commits/s | "
              f"{measured:.1f} commits/s | {on_aws:.1f} commits/s |")
    for mode, ceiling in ceilings:
        print(f"| {mode} | many | | | | {ceiling:.1f} commits/s (ceiling) |")


def local_commit_seconds(folder, commits):
    """Seconds one commit of one small object takes on a local table (CPU and disk)."""
    logs = write_logs(folder / "logs", 0, commits + 1)
    table = folder / "ct"
    base = [str(OURS), "ingest", "--objects-per-commit", "1", "--table", str(table),
            "--insights-table", str(folder / "insights")]
    subprocess.run(base + [str(logs[0])], check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run(base + [str(p) for p in logs[1:]], check=True, capture_output=True)
    return (time.perf_counter() - started) / commits


if __name__ == "__main__":
    main()
