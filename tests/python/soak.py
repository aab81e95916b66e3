"""The soak: thousands of log objects delivered to the real Lambda binary by many concurrent
invocations, duplicated and out of order, while S3 and DynamoDB fail at random (faults.py)
and function processes are killed at the crash points; then an independent reader checks that
every source record is in the tables exactly once, every value equal.

    python tests/python/soak.py --objects 2000 --workers 32       # `make soak`
    tests/python/test_soak.py                                     # the short form, `make test`

Each worker is one Lambda execution environment: a Runtime API emulator (`cargo lambda watch`)
with one function process. Invocations are delivered as Lambda does:

- direct mode: one S3 notification per invocation; a failed invocation is retried twice, then
  dead-lettered;
- queue mode: SQS batches of up to 50 notifications; the messages a response lists in
  `batchItemFailures` (or all, if the invocation failed) return to the queue, and go to the
  dead-letter queue after 5 receives.

A function process killed mid-invocation makes the invocation fail (Lambda reports "Runtime
exited"); the environment starts a fresh process. At the end the dead letters are redriven
(with the faults still on) until they land, as the README tells operators to do.
"""
import argparse
import collections
import concurrent.futures
import json
import pathlib
import queue
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from aws_local import ExecutionEnvironment, Moto  # noqa: E402
import events  # noqa: E402
from faults import KINDS, FaultProxy  # noqa: E402
from logs import generate  # noqa: E402
from readback import drop_nulls, load, merge, rebuild  # noqa: E402

BUCKET = "soak-logs"
# The tables in a bucket of their own: moto lists a prefix by walking every key of the
# bucket, and each commit lists `_delta_log/`; the thousands of log objects would slow it.
TABLE_BUCKET = "soak-tables"
LOCK_TABLE = "delta_log"
TABLES = {"CloudTrail": f"s3://{TABLE_BUCKET}/tables/cloudtrail",
          "CloudTrail-Insight": f"s3://{TABLE_BUCKET}/tables/insights"}
CRASH_POINTS = ("before-commit", "before-lock-claim", "after-lock-claim", "after-log-entry",
                "after-commit")
DIRECT_ATTEMPTS = 3   # Lambda's asynchronous invocation: the first try and two retries
QUEUE_RECEIVES = 5    # template.yaml: maxReceiveCount of the delivery queue's redrive policy


def s3_record(key, size):
    return events.s3_record(BUCKET, key, size)


def sqs_message(message_id, record):
    return events.sqs_message(message_id, {"Records": [record]})


def reconcile(rows, sources):
    """Counts, against the source records: lost, duplicated, altered and foreign rows."""
    counts = collections.Counter((r["_source_uri"], r["eventID"]) for r in rows)
    altered = 0
    for row in rows:
        key = (row["_source_uri"], row["eventID"])
        if key not in sources:
            continue
        record = rebuild(row)
        if row["_rescued_data"] is not None:
            record = merge(record, json.loads(row["_rescued_data"]))
        if (drop_nulls(record) != drop_nulls(sources[key])
                or row["event_date"].isoformat() != sources[key]["eventTime"][:10]):
            altered += 1
    return {
        "lost": sum(1 for k in sources if k not in counts),
        "duplicated": sum(n - 1 for k, n in counts.items() if n > 1),
        "altered": altered,
        "foreign": sum(1 for k in counts if k not in sources),
    }


def check_log(s3, moto, prefix, table_uri):
    """The table's log: contiguous commits, every lock entry complete and in place, no
    temporary commit file left, a checkpoint. Returns (version, problems)."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=TABLE_BUCKET,
                                                             Prefix=f"{prefix}/_delta_log/"):
        keys += [o["Key"].rsplit("/", 1)[1] for o in page.get("Contents", [])]
    commits = sorted(int(k[:20]) for k in keys if k.endswith(".json") and k[:20].isdigit())
    problems = []
    if commits != list(range(len(commits))):
        problems.append(f"commits not contiguous: {commits[:5]}…")
    entries = moto.lock_entries(LOCK_TABLE, table_uri)
    incomplete = [e["fileName"] for e in entries if e["complete"] != "true"]
    if incomplete:
        problems.append(f"incomplete lock entries: {incomplete}")
    orphaned = [e["fileName"] for e in entries if int(e["fileName"][:20]) not in commits]
    if orphaned:
        problems.append(f"lock entries without a commit file (orphaned commits): {orphaned}")
    # A temporary commit file named by an entry is that commit's; it goes once the entry is
    # complete. Others are litter of writers killed before their claim (as with Delta's own
    # S3DynamoDBLogStore): never read, they only take space.
    temps = {k for k in keys if k.endswith(".tmp")}
    claimed = temps & {e["tempPath"] for e in entries}
    if claimed:
        problems.append(f"temporary commit files of claimed commits left: {sorted(claimed)}")
    if commits and len(commits) > 100 and "_last_checkpoint" not in keys:
        problems.append("no checkpoint after more than 100 commits")
    checkpoints = sum(1 for k in keys if k.endswith(".checkpoint.parquet"))
    return (commits[-1] if commits else -1), checkpoints, len(temps), problems


def run(objects, workers, fault_rate, crash_rate, records, seed, work_dir, queue_share=0.5,
        duplicate_share=0.1, timeout=600.0, out=print):
    work_dir = pathlib.Path(work_dir)
    started = time.monotonic()
    rng = random.Random(seed)
    insights_files = max(1, objects // 50)
    logs = generate(work_dir / "logs", files=objects - insights_files, records=records, seed=seed)
    logs += generate(work_dir / "insights", files=insights_files, records=max(1, records // 10),
                     seed=seed + 1, kind="insights")
    moto = Moto(work_dir)
    proxy = None
    environments = []
    try:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=TABLE_BUCKET)
        moto.create_lock_table(LOCK_TABLE)
        keys = {}
        for path in logs:
            root = work_dir / ("insights" if "CloudTrail-Insight" in str(path) else "logs")
            keys[f"soak/{path.relative_to(root)}"] = path
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda kv: s3.upload_file(str(kv[1]), BUCKET, kv[0]), keys.items()))
        out(f"soak: {len(keys)} objects uploaded in {time.monotonic() - started:.1f} s")

        # Deliveries: every object once, a share twice; shuffled; direct or through the queue.
        notes = [s3_record(k, p.stat().st_size) for k, p in keys.items()]
        notes += rng.sample(notes, int(len(notes) * duplicate_share))
        rng.shuffle(notes)
        work = queue.Queue()
        direct, queued = [], []
        for note in notes:
            (queued if rng.random() < queue_share else direct).append(note)
        for note in direct:
            work.put(("direct", [note], 1))
        messages = [(f"m{i}", note, 1) for i, note in enumerate(queued)]
        while messages:
            size = rng.randint(1, 50)
            work.put(("queue", messages[:size], None))
            messages = messages[size:]

        proxy = FaultProxy(moto.port, rate=fault_rate, seed=seed)
        env = {**moto.env(), "AWS_ENDPOINT_URL": proxy.endpoint,
               "LOG_BUCKET": BUCKET, "LOG_PREFIX": "soak/",
               "CLOUDTRAIL_TABLE_URI": TABLES["CloudTrail"],
               "INSIGHTS_TABLE_URI": TABLES["CloudTrail-Insight"],
               "AWS_S3_LOCKING_PROVIDER": "dynamodb", "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE,
               "RUST_LOG": "warn"}
        if crash_rate:
            env.update({"CLOUDTRAIL_DELTA_CRASH_AT": ",".join(CRASH_POINTS),
                        "CLOUDTRAIL_DELTA_CRASH_RATE": str(crash_rate)})
        log_dir = work_dir / "environments"
        log_dir.mkdir(exist_ok=True)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            environments = list(pool.map(lambda _: ExecutionEnvironment(log_dir, env, timeout),
                                         range(workers)))
        out(f"soak: {workers} execution environments up; {len(notes)} deliveries "
            f"({len(notes) - len(keys)} duplicates), {len(direct)} direct, {len(queued)} queued")

        figures = collections.Counter()
        dead = []
        lock = threading.Lock()
        done = threading.Event()
        pending = [work.qsize()]

        def finish_one():
            with lock:
                pending[0] -= 1
                if pending[0] == 0:
                    done.set()

        def requeue(item):
            with lock:
                pending[0] += 1
            work.put(item)

        def serve(environment):
            while not done.is_set():
                try:
                    mode, batch, attempt = work.get(timeout=0.2)
                except queue.Empty:
                    continue
                if mode == "direct":
                    ok, response = environment.invoke({"Records": batch})
                    with lock:
                        figures["invocations"] += 1
                        if ok:
                            for result in response["objects"]:
                                figures[f"outcome {result['outcome']}"] += 1
                    if not ok:
                        if attempt < DIRECT_ATTEMPTS:
                            with lock:
                                figures["retries (direct)"] += 1
                            requeue(("direct", batch, attempt + 1))
                        else:
                            with lock:
                                dead.append(("direct", batch))
                else:
                    event = {"Records": [sqs_message(m, note) for m, note, _ in batch]}
                    ok, response = environment.invoke(event)
                    with lock:
                        figures["invocations"] += 1
                    failed = ({f["itemIdentifier"] for f in response["batchItemFailures"]}
                              if ok else {m for m, _, _ in batch})
                    again = []
                    for message_id, note, receives in batch:
                        if message_id not in failed:
                            continue
                        if receives < QUEUE_RECEIVES:
                            again.append((message_id, note, receives + 1))
                        else:
                            with lock:
                                dead.append(("queue", [(message_id, note, receives)]))
                    if again:
                        with lock:
                            figures["messages redelivered (queue)"] += len(again)
                        requeue(("queue", again, None))
                finish_one()

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(serve, environments))
        delivered = time.monotonic() - started

        # Redrive the dead letters, faults still on, until they land (bounded).
        figures["dead-lettered"] = len(dead)
        rounds = 0
        while dead and rounds < 10:
            rounds += 1
            letters, dead = dead, []
            for mode, batch in letters:
                if mode == "direct":
                    event = {"Records": batch}
                else:
                    event = {"Records": [sqs_message(m, n) for m, n, _ in batch]}
                ok, response = environments[0].invoke(event)
                if not ok or (mode == "queue" and response["batchItemFailures"]):
                    dead.append((mode, batch))
        figures["redrive rounds"] = rounds
        figures["still dead"] = len(dead)
        figures["crashes"] = sum(e.crashes for e in environments)
        for log in log_dir.glob("*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("CLOUDTRAIL_DELTA_CRASH_AT="):
                    figures["crashed at " + line.split("=", 1)[1].split(":")[0]] += 1
        faults = dict(proxy.stats)
        proxy_requests = proxy.requests
        proxy.rate = 0.0
        wall = time.monotonic() - started

        # The independent reader: Python deltalake, straight from (unfaulted) moto.
        from deltalake import DeltaTable
        result = {"objects": len(keys), "deliveries": len(notes),
                  "duplicate deliveries": len(notes) - len(keys),
                  "workers": workers, "wall s": round(wall, 1),
                  "delivery s": round(delivered, 1), "requests through the proxy": proxy_requests,
                  "faults": faults, **figures}
        problems = []
        records_total = 0
        for folder, table_uri in TABLES.items():
            sources = {}
            for key, path in keys.items():
                if f"/{folder}/" in f"/{key}":
                    for record in load(path):
                        sources[(f"s3://{BUCKET}/{key}", record["eventID"])] = record
            records_total += len(sources)
            table = DeltaTable(table_uri, storage_options=moto.storage_options())
            rows = table.to_pyarrow_table().to_pylist()
            counts = reconcile(rows, sources)
            prefix = table_uri.split(f"{TABLE_BUCKET}/", 1)[1]
            version, checkpoints, temps, log_problems = check_log(s3, moto, prefix, table_uri)
            referenced = {a for a in table.file_uris()}
            parquet = set()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=TABLE_BUCKET,
                                                                     Prefix=prefix):
                parquet |= {f"s3://{TABLE_BUCKET}/{o['Key']}" for o in page.get("Contents", [])
                            if o["Key"].endswith(".parquet") and "/_delta_log/" not in o["Key"]}
            result[folder] = {"records": len(sources), "rows": len(rows), **counts,
                              "version": version, "checkpoints": checkpoints,
                              "temporary commit files left (litter)": temps,
                              "unreferenced parquet files (for VACUUM)": len(parquet - referenced)}
            problems += [f"{folder}: {p}" for p in log_problems]
            problems += [f"{folder}: {n} {what}" for what, n in counts.items() if n]
        result["records"] = records_total
        result["suppressed duplicates"] = figures["outcome already_ingested"]
        if dead:
            problems.append(f"{len(dead)} deliveries still failing after the redrive")
        result["problems"] = problems
        return result
    finally:
        for environment in environments:
            environment.close()
        if proxy:
            proxy.close()
        moto.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--records", type=int, default=20, help="records per object")
    parser.add_argument("--workers", type=int, default=32, help="concurrent invocations")
    parser.add_argument("--fault-rate", type=float, default=0.03,
                        help=f"share of S3/DynamoDB requests given a fault ({', '.join(KINDS)})")
    parser.add_argument("--crash-rate", type=float, default=0.01,
                        help="chance that a function process dies at each crash point it reaches")
    parser.add_argument("--queue-share", type=float, default=0.8,
                        help="share of deliveries through the queue (SQS batches); the rest "
                             "are direct S3 notifications, one commit each")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="cloudtrail-delta-soak-"))
    result = run(args.objects, args.workers, args.fault_rate, args.crash_rate, args.records,
                 args.seed, work, queue_share=args.queue_share)
    print(json.dumps(result, indent=2))
    if not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work folder: {work}")
    missing = [k for k in KINDS if not result["faults"].get(k)]
    if missing:
        print(f"fault kinds never injected: {missing}")
    sys.exit(1 if result["problems"] or missing else 0)


if __name__ == "__main__":
    main()
