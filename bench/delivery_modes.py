"""Direct against batched delivery, end to end on the local emulator (`make bench-modes`).

N small log objects in moto's S3 are ingested by the release Lambda binary under the Lambda
Runtime API emulator, through the DynamoDB lock table: once in direct mode (one S3
notification per invocation, `--concurrency` at a time, one commit each) and once in queue
mode (SQS batches of `--batch-size` notifications, one commit per batch). For each table it
prints the commits made, the Parquet files, the wall time, and the time Python `deltalake`
takes to scan one day (count of events by eventName), before and after `cloudtrail-delta
maintain` compacts the table.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from aws_local import ExecutionEnvironment, Moto  # noqa: E402
from logs import generate  # noqa: E402
from events import s3_record, sqs_message  # noqa: E402

BUCKET = "modes-logs"
LOCK_TABLE = "delta_log"


def log_versions(s3, bucket, prefix):
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/_delta_log/"):
        names += [o["Key"].rsplit("/", 1)[1] for o in page.get("Contents", [])]
    return sum(1 for n in names if n.endswith(".json") and n[:20].isdigit())


def query_seconds(table_uri, options, day, reps=3):
    """Median wall time of: open the table, count one day's events by eventName."""
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        table = DeltaTable(table_uri, storage_options=options)
        rows = table.to_pyarrow_dataset().to_table(
            filter=ds.field("event_date") == ds.scalar(day).cast("date32"),
            columns=["eventName"])
        counts = pc.value_counts(rows["eventName"])
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows.num_rows, len(counts), len(table.file_uris())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8, help="direct mode invocations at once")
    parser.add_argument("--batch-size", type=int, default=1000, help="queue mode messages per batch")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="cloudtrail-delta-modes-"))
    logs = generate(work / "logs", files=args.objects, records=args.records, seed=17)
    moto = Moto(work)
    try:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        moto.create_lock_table(LOCK_TABLE)
        keys = {f"logs/{p.relative_to(work / 'logs')}": p for p in logs}
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda kv: s3.upload_file(str(kv[1]), BUCKET, kv[0]), keys.items()))
        notes = [s3_record(BUCKET, k, p.stat().st_size) for k, p in keys.items()]
        days = collections.Counter(k.split("/CloudTrail/", 1)[1].split("/", 1)[1][:10] for k in keys)
        day = days.most_common(1)[0][0].replace("/", "-")
        results = {}
        for mode in ("direct", "queue"):
            # Each mode's tables in a bucket of their own: moto lists a prefix by walking
            # every key of the bucket, and every commit lists `_delta_log/`.
            bucket, prefix = f"modes-{mode}-tables", "tables"
            s3.create_bucket(Bucket=bucket)
            env = {**moto.env(), "LOG_BUCKET": BUCKET, "LOG_PREFIX": "logs/",
                   "CLOUDTRAIL_TABLE_URI": f"s3://{bucket}/{prefix}/cloudtrail",
                   "INSIGHTS_TABLE_URI": f"s3://{bucket}/{prefix}/insights",
                   "AWS_S3_LOCKING_PROVIDER": "dynamodb", "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE,
                   "RUST_LOG": "warn"}
            workers = args.concurrency if mode == "direct" else 1
            log_dir = work / mode
            log_dir.mkdir()
            environments = [ExecutionEnvironment(log_dir, env, timeout=900) for _ in range(workers)]
            if mode == "direct":
                events = [{"Records": [note]} for note in notes]
            else:
                events = [{"Records": [sqs_message(f"m{i + j}", {"Records": [n]})
                                       for j, n in enumerate(notes[i:i + args.batch_size])]}
                          for i in range(0, len(notes), args.batch_size)]
            started = time.perf_counter()
            failures = []

            def serve(environment, share):
                for event in share:
                    ok, response = environment.invoke(event)
                    if not ok or response.get("batchItemFailures"):
                        failures.append(response)

            shares = [events[i::workers] for i in range(workers)]
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                list(pool.map(serve, environments, shares))
            wall = time.perf_counter() - started
            for environment in environments:
                environment.close()
            if failures:
                raise SystemExit(f"{mode}: {len(failures)} invocations failed: {failures[:2]}")
            table = f"s3://{bucket}/{prefix}/cloudtrail"
            commits = log_versions(s3, bucket, f"{prefix}/cloudtrail") - 1  # less the create
            before = query_seconds(table, moto.storage_options(), day)
            rows = DeltaTable(table, storage_options=moto.storage_options()) \
                .to_pyarrow_dataset().count_rows()
            cli = os.environ.get("CLOUDTRAIL_DELTA_BIN", ROOT / "target/release/cloudtrail-delta")
            started_maintain = time.perf_counter()
            maintained = subprocess.run(
                [str(cli), "maintain", "--table", table, "--insights-table",
                 f"s3://{bucket}/{prefix}/insights", "--vacuum-retention-hours", "0"],
                env={**os.environ, **env}, capture_output=True, text=True, timeout=1800)
            if maintained.returncode != 0:
                raise SystemExit(maintained.stdout + maintained.stderr)
            maintain_s = time.perf_counter() - started_maintain
            after = query_seconds(table, moto.storage_options(), day)
            assert after[1] == before[1], (before, after)
            results[mode] = {
                "objects": len(notes),
                "rows": rows, "rows expected": len(notes) * args.records,
                "invocations": len(events), "commits": commits, "wall s": round(wall, 1),
                "objects/s": round(len(notes) / wall, 1), "parquet files": before[3],
                f"query {day} s (before compaction)": round(before[0], 3),
                "rows that day": before[1], "maintain s": round(maintain_s, 1),
                "parquet files after": after[3],
                f"query {day} s (after compaction)": round(after[0], 3),
                "maintain": maintained.stdout.strip().splitlines()[0],
            }
            print(mode, json.dumps(results[mode], indent=2), flush=True)
    finally:
        moto.close()


if __name__ == "__main__":
    main()
