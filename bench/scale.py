"""Exactly-once state against history (`make bench-scale`).

For each scale (objects ingested over the table's life: 1 k, 1 M, 10 M, 90 M, the last a
year of a 50-account organisation trailing every region, about 245 000 log files a day), a
table is built synthetically at its worst point, just before maintenance:

- the data table: its history compacted (20 Parquet files a day of `event_date`, as `add`
  actions of real statistics, the files themselves absent: a cold ingest never reads them),
  the last six hours of deliveries (the `txn` window) in its checkpoint at version 99, then
  99 direct-mode commits after it, one object each;
- its ingest index `_ingest_index/`: every object of the history, one sorted file a delivery
  day (row groups of 4 096), watermark 99;
- one real object of day 1, ingested by the CLI before the history was laid over it.

Then, cold (a new process each run), the release CLI ingests (a) one new small object,
delivered today (its commit is the one due a checkpoint: it extends the index first), and
(b) the day-1 object again, which must be found already ingested; on a local table and on
moto_server's S3 through a counting proxy. Each run prints wall time, peak RSS (the
process's `ru_maxrss`), the checkpoint and index bytes, and the requests to the store (S3).

    .venv/bin/python bench/scale.py [--scales 1k,1m,10m,90m] [--reps 3] [--stores local,s3]
"""
import argparse
import datetime
import gzip
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from aws_local import Moto  # noqa: E402
from faults import FaultProxy  # noqa: E402

DATA = ROOT / "bench" / "data" / "scale"
OURS = pathlib.Path(os.environ.get("CLOUDTRAIL_DELTA_BIN", ROOT / "target" / "release" / "cloudtrail-delta"))
SAMPLE = next(p for p in sorted((ROOT / "samples").rglob("*.json.gz")) if "/CloudTrail/" in str(p))

SCALES = {"1k": 1_000, "1m": 1_000_000, "10m": 10_000_000, "90m": 90_000_000}
PER_DAY = 245_000            # log files a day: 50 accounts x 17 regions x 288 deliveries
FILES_PER_DAY = 20           # compacted data files per event_date partition
WINDOW = PER_DAY // 4        # deliveries in the six-hour txn window
CHECKPOINT = 99              # the checkpoint's version; 99 commits follow it
INDEX_APP_ID = "cloudtrail-delta/indexed-through"
ID_PREFIX = "cloudtrail-delta/"
BUCKET = "scale"
ACCOUNT = "123456789012"


def now_ms():
    return int(time.time() * 1000)


def random_hex(n, chars):
    """`n` random hex strings of `chars` characters, as an Arrow string array (C speed)."""
    blob = os.urandom(n * chars // 2).hex().encode()
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(chars), n, [None, pa.py_buffer(blob)])
    return fixed.cast(pa.binary()).cast(pa.string())


def object_key(day, name):
    return (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_us-east-1_{day:%Y%m%d}T1200Z_{name}.json.gz")


def write_log(path, name):
    """A small real log (the first sample's records, fresh eventIDs)."""
    with gzip.open(SAMPLE) as f:
        records = json.load(f)["Records"]
    for i, record in enumerate(records):
        record["eventID"] = f"{name}-{i}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump({"Records": records}, f)


def commit_lines(version, adds, txns, sources):
    info = {"commitInfo": {"timestamp": now_ms(), "operation": "WRITE",
                           "operationParameters": {"mode": "Append"},
                           "cloudtrail_delta.sources": sources}}
    lines = [json.dumps(info)]
    lines += [json.dumps({"txn": {"appId": a, "version": 1, "lastUpdated": t}}) for a, t in txns]
    lines += [json.dumps({"add": a}) for a in adds]
    return "\n".join(lines) + "\n"


def fake_add(template, day, n):
    add = dict(template)
    add["path"] = f"event_date={day:%Y-%m-%d}/part-{n:05d}-history-c000.zstd.parquet"
    add["partitionValues"] = {"event_date": f"{day:%Y-%m-%d}"}
    add["size"] = 128 << 20
    return add


def index_day(day, count, version):
    """`count` synthetic index rows of objects delivered on `day`, sorted by ingest id."""
    ids = pc.binary_join_element_wise(pa.scalar(ID_PREFIX), random_hex(count, 32), "")
    uris = pc.binary_join_element_wise(
        pa.scalar(f"s3://org-trail/AWSLogs/o-example/{ACCOUNT}/CloudTrail/eu-west-1/{day:%Y/%m/%d}/"
                  f"{ACCOUNT}_CloudTrail_eu-west-1_{day:%Y%m%d}T1200Z_"),
        random_hex(count, 16), pa.scalar(".json.gz"), "")
    at = int(datetime.datetime.combine(day, datetime.time(), datetime.timezone.utc).timestamp() * 1e6)
    return pa.table({
        "ingest_id": ids,
        "source_uri": uris,
        "table_version": pa.array([version] * count, pa.int64()),
        "committed_at": pa.array([at] * count, pa.timestamp("us", "UTC")),
        "delivery_date": pa.array([day] * count, pa.date32()),
    })


INDEX_SCHEMA = pa.schema([
    pa.field("ingest_id", pa.string(), nullable=False),
    pa.field("source_uri", pa.string()),
    pa.field("table_version", pa.int64(), nullable=False),
    pa.field("committed_at", pa.timestamp("us", "UTC"), nullable=False),
    pa.field("delivery_date", pa.date32()),
])


def build(scale, objects, store, env):
    """The table at its worst point, under DATA/<scale>-<store>/; gives (folder, new log, day-1 log
    source)."""
    root = DATA / f"{scale}-{store}"
    done = root / ".done"
    days = max(1, -(-objects // PER_DAY))
    today = datetime.date.today()
    day1 = today - datetime.timedelta(days=days - 1)
    new_log = root / "logs" / object_key(today, "new")
    day1_log = root / "logs" / object_key(day1, "day1")
    day1_source = str(day1_log) if store == "local" else f"s3://{BUCKET}/{object_key(day1, 'day1')}"
    if done.exists():
        if store == "s3":
            upload_logs(env, root)
        return root, new_log, day1_source
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    write_log(new_log, "new")
    write_log(day1_log, "day1")
    table = root / "ct"
    if store == "s3":
        upload_logs(env, root)
    # The day-1 object, ingested for real: versions 0 (create) and 1.
    subprocess.run([str(OURS), "ingest", "--objects-per-commit", "1", "--table", str(table),
                    "--insights-table", str(root / "insights"), day1_source],
                   check=True, env=env, capture_output=True)
    log = table / "_delta_log"
    first = [json.loads(line) for line in (log / f"{1:020}.json").read_text().splitlines()]
    template = next(a["add"] for a in first if "add" in a)
    day1_txn = next(a["txn"] for a in first if "txn" in a)
    day1_uri = next(a["commitInfo"] for a in first if "commitInfo" in a)["cloudtrail_delta.sources"][0]

    # Version 2: the compacted history's files and the window's transactions (objects of today).
    window = min(objects, WINDOW)
    window_ids = pc.binary_join_element_wise(pa.scalar(ID_PREFIX), random_hex(window, 32), "")
    window_ids = window_ids.to_pylist()
    adds = [fake_add(template, day1 + datetime.timedelta(days=d), n)
            for d in range(days) for n in range(FILES_PER_DAY)]
    stamp = now_ms()
    (log / f"{2:020}.json").write_text(commit_lines(
        2, adds, [(i, stamp) for i in window_ids],
        [f"s3://org-trail/{object_key(today, f'w{n}')}" for n in range(window)]))
    # Versions 3..99: one direct-mode object each; then the checkpoint at 99.
    tail_ids = []
    for version in range(3, CHECKPOINT + 1):
        ingest_id = f"{ID_PREFIX}{os.urandom(16).hex()}"
        tail_ids.append((ingest_id, version))
        (log / f"{version:020}.json").write_text(commit_lines(
            version, [fake_add(template, today, 1000 + version)], [(ingest_id, now_ms())],
            [f"s3://org-trail/{object_key(today, f'v{version}')}"]))
    DeltaTable(str(table)).create_checkpoint()

    # The index: every object up to version 99, one sorted file a delivery day.
    remaining = objects - window - len(tail_ids) - 1
    per_day = max(0, remaining) // days
    index = table / "_ingest_index"
    properties = WriterProperties(max_row_group_size=4096, compression="ZSTD",
                                  statistics_truncate_length=64)
    for d in range(days):
        day = day1 + datetime.timedelta(days=d)
        count = per_day + (max(0, remaining) - per_day * days if d == days - 1 else 0)
        part = index_day(day, count, 2).cast(INDEX_SCHEMA)
        if day == day1:
            part = pa.concat_tables([part, pa.table({
                "ingest_id": [day1_txn["appId"]], "source_uri": [day1_uri],
                "table_version": pa.array([1], pa.int64()),
                "committed_at": pa.array([stamp * 1000], pa.timestamp("us", "UTC")),
                "delivery_date": pa.array([day1], pa.date32())}, schema=INDEX_SCHEMA)])
        if day == today:
            extra = pa.table({
                "ingest_id": window_ids + [i for i, _ in tail_ids],
                "source_uri": [f"s3://org-trail/{object_key(today, f'w{n}')}" for n in range(window)]
                + [f"s3://org-trail/{object_key(today, f'v{v}')}" for _, v in tail_ids],
                "table_version": pa.array([2] * window + [v for _, v in tail_ids], pa.int64()),
                "committed_at": pa.array([stamp * 1000] * (window + len(tail_ids)),
                                         pa.timestamp("us", "UTC")),
                "delivery_date": pa.array([today] * (window + len(tail_ids)), pa.date32()),
            }, schema=INDEX_SCHEMA)
            part = pa.concat_tables([part, extra])
        part = part.sort_by("ingest_id")
        last = d == days - 1
        write_deltalake(
            str(index), part, partition_by=["delivery_date"], mode="append",
            configuration={"delta.checkpointInterval": "100"} if d == 0 else None,
            writer_properties=properties,
            commit_properties=CommitProperties(app_transactions=[
                Transaction(INDEX_APP_ID, CHECKPOINT, now_ms())]) if last else None)
        if d % 30 == 0:
            print(f"  {scale}: index day {d + 1}/{days}", file=sys.stderr, flush=True)

    # Versions 100..198: 99 direct-mode commits since the checkpoint, objects of today.
    for version in range(CHECKPOINT + 1, 2 * CHECKPOINT + 1):
        (log / f"{version:020}.json").write_text(commit_lines(
            version, [fake_add(template, today, 1000 + version)],
            [(f"{ID_PREFIX}{os.urandom(16).hex()}", now_ms())],
            [f"s3://org-trail/{object_key(today, f'v{version}')}"]))
    done.write_text(f"built in {time.perf_counter() - started:.0f} s\n")
    print(f"  {scale}-{store}: built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return root, new_log, day1_source


def upload_logs(env, root):
    import boto3
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    if BUCKET not in existing:
        s3.create_bucket(Bucket=BUCKET)
    for path in (root / "logs").rglob("*.json.gz"):
        s3.upload_file(str(path), BUCKET, str(path.relative_to(root / "logs")))
    return s3


def sizes(table):
    log = table / "_delta_log"
    last = json.loads((log / "_last_checkpoint").read_text())["version"]
    checkpoint = (log / f"{last:020}.checkpoint.parquet").stat().st_size
    index = sum(p.stat().st_size for p in (table / "_ingest_index").rglob("*") if p.is_file())
    return checkpoint, index


def run_cli(args, env):
    """(wall seconds, peak RSS bytes, stdout) of one cold ingest. The peak is GNU time's (its
    child's `ru_maxrss`): this process is large after building a table, and a child forked
    from it counts the parent's pages until it execs."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", str(OURS), "ingest", "--objects-per-commit", "1",
                             *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"ingest {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    rss = int(result.stderr.strip().splitlines()[-1]) * 1024
    return wall, rss, result.stdout


def measure_local(root, new_log, day1_source, reps, env):
    results = {"new": [], "again": []}
    for _ in range(reps):
        for case, source, expect in (("new", str(new_log), "1 files ingested"),
                                     ("again", day1_source, "already ingested: 1")):
            run = root / "run"
            shutil.rmtree(run, ignore_errors=True)
            subprocess.run(["cp", "-al", str(root / "ct"), str(run)], check=True)
            wall, rss, out = run_cli(["--table", str(run), "--insights-table", str(root / "insights"),
                                      source], env)
            if expect not in out:
                raise RuntimeError(f"{case}: expected {expect!r}, got:\n{out}")
            results[case].append((wall, rss, None))
            shutil.rmtree(run)
    return results


def measure_s3(root, new_log, day1_source, reps, moto, env):
    import boto3
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    prefix = f"{root.name}/ct"
    table_uri = f"s3://{BUCKET}/{prefix}"
    local = root / "ct"
    for path in local.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(local)}")
    keep = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keep |= {o["Key"] for o in page.get("Contents", [])}
    restore = [f"{prefix}/_delta_log/_last_checkpoint", f"{prefix}/_ingest_index/_delta_log/_last_checkpoint"]
    new_source = f"s3://{BUCKET}/{new_log.relative_to(root / 'logs')}"
    results = {"new": [], "again": []}
    proxy = FaultProxy(moto.port)

    def ingest(source, endpoint):
        return run_cli(["--table", table_uri, "--insights-table", f"s3://{BUCKET}/{root.name}/insights",
                        source], {**env, "AWS_ENDPOINT_URL": endpoint})

    def reset():
        added = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            added |= {o["Key"] for o in page.get("Contents", [])} - keep
        for key in added:
            s3.delete_object(Bucket=BUCKET, Key=key)
        for key in restore:
            original = local / key[len(prefix) + 1:]
            if original.exists():
                s3.upload_file(str(original), BUCKET, key)

    try:
        for case, source, expect in (("new", new_source, "1 files ingested"),
                                     ("again", day1_source, "already ingested: 1")):
            # Requests, counted once through the proxy; times and peaks straight to moto.
            before = proxy.requests
            ingest(source, proxy.endpoint)
            requests = proxy.requests - before
            reset()
            for _ in range(reps):
                wall, rss, out = ingest(source, moto.endpoint)
                if expect not in out:
                    raise RuntimeError(f"{case}: expected {expect!r}, got:\n{out}")
                results[case].append((wall, rss, requests))
                reset()
    finally:
        proxy.close()
        # moto keeps objects in memory: the next scale's table needs it.
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=BUCKET, Key=o["Key"])
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default=",".join(SCALES))
    parser.add_argument("--stores", default="local,s3")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if not OURS.exists():
        sys.exit(f"{OURS} not found: cargo build --release --bin cloudtrail-delta")
    DATA.mkdir(parents=True, exist_ok=True)
    stores = args.stores.split(",")
    moto = Moto(DATA) if "s3" in stores else None
    rows = []
    try:
        for scale in args.scales.split(","):
            objects = SCALES[scale]
            for store in stores:
                env = {**os.environ, "RUST_LOG": "warn"}
                if store == "s3":
                    env.update(moto.env())
                root, new_log, day1_source = build(scale, objects, store, env)
                checkpoint, index = sizes(root / "ct")
                if store == "local":
                    results = measure_local(root, new_log, day1_source, args.reps, env)
                else:
                    results = measure_s3(root, new_log, day1_source, args.reps, moto, env)
                for case, runs in results.items():
                    wall = statistics.median(r[0] for r in runs)
                    rss = statistics.median(r[1] for r in runs)
                    requests = runs[0][2]
                    rows.append((scale, store, case, wall, rss, checkpoint, index, requests))
                    print(f"{scale:>4} {store:>5} {case:>5}: {wall:.3f} s, {rss / 2**20:.1f} MiB, "
                          f"checkpoint {checkpoint / 1e6:.2f} MB, index {index / 1e6:.1f} MB, "
                          f"requests {requests if requests is not None else '-'}", flush=True)
    finally:
        if moto:
            moto.close()
    print()
    print("| objects | store | ingest | wall (median) | peak RSS | checkpoint | index | requests |")
    print("|---|---|---|---|---|---|---|---|")
    for scale, store, case, wall, rss, checkpoint, index, requests in rows:
        what = "new object" if case == "new" else "day-1 object again"
        print(f"| {scale} | {store} | {what} | {wall:.2f} s | {rss / 2**20:.0f} MiB | "
              f"{checkpoint / 1e6:.2f} MB | {index / 1e6:.1f} MB | {requests if requests is not None else '-'} |")


if __name__ == "__main__":
    main()
