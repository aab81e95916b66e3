"""End to end: log objects in (emulated) S3, the real Lambda binary invoked through the Lambda
Runtime API emulator with S3, SQS and EventBridge events, commits through the DynamoDB lock
table, and the Delta tables read back from S3 by Python `deltalake` and compared value by value
with the source logs."""
import gzip
import io
import json
import os
import pathlib
import subprocess
import sys

import pytest
from deltalake import DeltaTable

import events
from aws_local import CLI, MAINTENANCE, ROOT, ExecutionEnvironment, LambdaRuntime, Moto, finish
import iam_policy
from faults import FaultProxy
from logs import generate
from readback import check_rows, event_id, load, table_rows
from template_expansion import expand

SAMPLES = ROOT / "samples"
BUCKET = "trail-logs"
LOCK_TABLE = "delta_log"
CLOUDTRAIL = f"s3://{BUCKET}/tables/cloudtrail"
INSIGHTS = f"s3://{BUCKET}/tables/cloudtrail_insights"
AGGREGATED = f"s3://{BUCKET}/tables/cloudtrail_aggregated"
DIGESTS = f"s3://{BUCKET}/tables/cloudtrail_digests"


def sample_logs():
    """The sample log and digest files (not the digests' `.sig` files nor the public keys)."""
    return [p for p in SAMPLES.rglob("*") if p.name.endswith((".json", ".json.gz"))
            and "AWSLogs" in p.parts]


def signature_metadata(path):
    """A digest's signature as CloudTrail stores it, in the object's metadata (the samples keep
    it in a `.sig` file beside the digest)."""
    sidecar = path.with_name(path.name + ".sig")
    if not sidecar.exists():
        return {}
    return {"Metadata": {"signature": sidecar.read_text().strip(),
                         "signature-algorithm": "SHA256withRSA"}}


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    moto = Moto(tmp_path_factory.mktemp("moto"))
    moto.client("s3").create_bucket(Bucket=BUCKET)
    moto.create_lock_table(LOCK_TABLE)
    yield moto
    moto.close()


@pytest.fixture(scope="module")
def ingest_requests(aws):
    """A proxy between the module's ingest function and moto that records its requests."""
    proxy = FaultProxy(aws.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def maintenance_requests(aws):
    proxy = FaultProxy(aws.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def function(aws, ingest_requests, tmp_path_factory):
    env = {
        **aws.env(),
        "AWS_ENDPOINT_URL": ingest_requests.endpoint,
        "LOG_BUCKET": BUCKET,
        "CLOUDTRAIL_TABLE_URI": CLOUDTRAIL,
        "INSIGHTS_TABLE_URI": INSIGHTS,
        "AGGREGATED_TABLE_URI": AGGREGATED,
        "DIGEST_TABLE_URI": DIGESTS,
        "AWS_S3_LOCKING_PROVIDER": "dynamodb",
        "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE,
    }
    runtime = LambdaRuntime(tmp_path_factory.mktemp("lambda"), env, instances=4)
    yield runtime
    runtime.close()


def tagged(tag, relative):
    """The key of a log at `relative` (AWSLogs/…) with a folder `tag` after AWSLogs/: each
    test's objects apart, all inside the function's scope (LOG_PREFIX empty)."""
    head, rest = str(relative).split("/", 1)
    assert head == "AWSLogs", relative
    return f"AWSLogs/{tag}/{rest}"


def upload(aws, path, key):
    s3 = aws.client("s3")
    s3.upload_file(str(path), BUCKET, key, ExtraArgs=signature_metadata(path))
    return s3.head_object(Bucket=BUCKET, Key=key)


def s3_record(key, head):
    return events.s3_record(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))


def s3_event(*records):
    return {"Records": list(records)}


def sources_of(paths_by_key, kind_folder):
    out = {}
    for key, path in paths_by_key.items():
        if f"/{kind_folder}/" in f"/{key}":
            for record in load(path):
                out[(f"s3://{BUCKET}/{key}", event_id(record))] = record
    return out


def rows_from(aws, table, keys):
    uris = {f"s3://{BUCKET}/{k}" for k in keys}
    return [r for r in table_rows(table, aws.storage_options()) if r["_source_uri"] in uris]


def test_s3_events_land_every_value(aws, function, tmp_path):
    """Samples and generated logs, one with spaces and `+` in its key, each announced by an S3
    event; digests land in their table. Every value reads back from S3 equal to the source."""
    logs = generate(tmp_path / "gen", files=3, records=40, seed=11)
    insights = generate(tmp_path / "ins", files=1, records=3, seed=12, kind="insights")
    paths_by_key = {str(p.relative_to(tmp_path / "gen")): p for p in logs}
    paths_by_key.update({str(p.relative_to(tmp_path / "ins")): p for p in insights})
    for sample in sample_logs():
        paths_by_key[tagged("samples", sample.relative_to(SAMPLES))] = sample
    odd = "AWSLogs/odd prefix+1/123456789012/CloudTrail/eu-west-1/2024/04/30/copy of+log (2).json.gz"
    paths_by_key[odd] = logs[0]

    outcomes = {}
    for key, path in paths_by_key.items():
        ok, response = function.invoke(s3_event(s3_record(key, upload(aws, path, key))))
        assert ok, response
        [result] = response["objects"]
        outcomes[key] = result["outcome"]
        assert result["uri"] == f"s3://{BUCKET}/{key}"

    digests = [k for k in paths_by_key if "CloudTrail-Digest" in k]
    assert digests and all(v == "ingested" for v in outcomes.values()), outcomes
    landed = {r["_source_uri"]: r for r in table_rows(DIGESTS, aws.storage_options())}
    for key in digests:
        row = landed[f"s3://{BUCKET}/{key}"]
        assert row["signatureSource"] == "s3-metadata"
        assert row["signature"] == paths_by_key[key].with_name(
            paths_by_key[key].name + ".sig").read_text().strip()

    ct_sources = sources_of(paths_by_key, "CloudTrail")
    ins_sources = sources_of(paths_by_key, "CloudTrail-Insight")
    assert any(uri.endswith("copy of+log (2).json.gz") for uri, _ in ct_sources)
    check_rows(rows_from(aws, CLOUDTRAIL, paths_by_key), ct_sources)
    check_rows(rows_from(aws, INSIGHTS, paths_by_key), ins_sources)


def test_commits_go_through_the_lock_table(aws, function, tmp_path):
    [log] = generate(tmp_path, files=1, records=10, seed=21)
    key = "AWSLogs/lock/1/CloudTrail/us-east-1/2024/04/30/one.json.gz"
    ok, response = function.invoke(s3_event(s3_record(key, upload(aws, log, key))))
    assert ok, response
    version = response["objects"][0]["version"]

    entries = {int(e["fileName"][:20]): e for e in aws.lock_entries(LOCK_TABLE, CLOUDTRAIL)}
    log_files = {o["Key"].rsplit("/", 1)[1] for o in aws.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix="tables/cloudtrail/_delta_log/")["Contents"]}
    commits = sorted(int(f[:20]) for f in log_files if f.endswith(".json") and f[:20].isdigit())
    assert version in entries
    # Every commit of the table was claimed in the lock table, and every claim completed.
    assert sorted(entries) == commits == list(range(version + 1))
    assert all(e["complete"] == "true" and int(e["expireTime"]) > 0 for e in entries.values())
    assert not [f for f in log_files if f.endswith(".tmp")], "temporary commit files left"


def test_sixteen_concurrent_invocations_land_exactly_once(aws, function, tmp_path):
    logs = generate(tmp_path, files=16, records=30, seed=31)
    keys = {tagged(f"burst{i:02}", p.relative_to(tmp_path)): p for i, p in enumerate(logs)}
    events = [s3_event(s3_record(k, upload(aws, p, k))) for k, p in keys.items()]
    results = [finish(p) for p in [function.start_invoke(e) for e in events]]
    assert all(ok for ok, _ in results), [r for ok, r in results if not ok]
    versions = [r["objects"][0]["version"] for _, r in results]
    assert len(set(versions)) == 16, f"two invocations committed the same version: {versions}"
    check_rows(rows_from(aws, CLOUDTRAIL, keys), sources_of(keys, "CloudTrail"))


def test_the_same_event_twice_lands_once(aws, function, tmp_path):
    [log] = generate(tmp_path, files=1, records=25, seed=41)
    key = "AWSLogs/twice/1/CloudTrail/us-east-1/2024/04/30/twice.json.gz"
    event = s3_event(s3_record(key, upload(aws, log, key)))
    first_ok, first = function.invoke(event)
    second_ok, second = function.invoke(event)
    assert first_ok and second_ok, (first, second)
    assert first["objects"][0]["outcome"] == "ingested"
    assert second["objects"][0]["outcome"] == "already_ingested"
    check_rows(rows_from(aws, CLOUDTRAIL, [key]), sources_of({key: log}, "CloudTrail"))


def corrupt_copy(log, out):
    data = log.read_bytes()
    out.write_bytes(data[: len(data) // 2])  # a truncated gzip stream
    return out


def test_a_corrupt_object_fails_alone(aws, function, tmp_path):
    good, other = generate(tmp_path / "gen", files=2, records=20, seed=51)
    bad = corrupt_copy(good, tmp_path / "bad.json.gz")
    keys = {
        "AWSLogs/corrupt/1/CloudTrail/us-east-1/2024/04/30/good.json.gz": good,
        "AWSLogs/corrupt/1/CloudTrail/us-east-1/2024/04/30/bad.json.gz": bad,
    }
    heads = {k: upload(aws, p, k) for k, p in keys.items()}

    ok, error = function.invoke(s3_event(*(s3_record(k, h) for k, h in heads.items())))
    assert not ok, "an invocation with a corrupt object must fail"
    assert "bad.json.gz" in error and "good.json.gz" not in error, error
    good_key = next(iter(keys))
    assert {r["_source_uri"] for r in rows_from(aws, CLOUDTRAIL, keys)} == {f"s3://{BUCKET}/{good_key}"}
    check_rows(rows_from(aws, CLOUDTRAIL, keys), sources_of({good_key: good}, "CloudTrail"))

    # The same through SQS: only the corrupt message is reported failed.
    sqs_keys = {
        "AWSLogs/sqs/1/CloudTrail/us-east-1/2024/04/30/good.json.gz": other,
        "AWSLogs/sqs/1/CloudTrail/us-east-1/2024/04/30/bad.json.gz": bad,
    }
    messages = [sqs_message(f"m{i}", s3_event(s3_record(k, upload(aws, p, k))))
                for i, (k, p) in enumerate(sqs_keys.items())]
    ok, response = function.invoke({"Records": messages})
    assert ok, response
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    sqs_good = next(iter(sqs_keys))
    check_rows(rows_from(aws, CLOUDTRAIL, sqs_keys), sources_of({sqs_good: other}, "CloudTrail"))


sqs_message = events.sqs_message


def table_version(aws, prefix):
    names = [o["Key"].rsplit("/", 1)[1] for o in aws.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix=f"{prefix}/_delta_log/")["Contents"]]
    return max(int(n[:20]) for n in names if n.endswith(".json") and n[:20].isdigit())


def test_an_sqs_batch_lands_in_one_commit(aws, function, tmp_path):
    """Queue mode: 30 notifications (one of them delivered twice) make one commit; every
    object lands once, every value equal."""
    logs = generate(tmp_path, files=30, records=12, seed=55)
    keys = {tagged("batch", p.relative_to(tmp_path)): p for p in logs}
    records = [s3_record(k, upload(aws, p, k)) for k, p in keys.items()]
    messages = [sqs_message(f"b{i}", s3_event(r)) for i, r in enumerate(records)]
    messages.append(sqs_message("dup", s3_event(records[0])))
    before = table_version(aws, "tables/cloudtrail")
    ok, response = function.invoke({"Records": messages})
    assert ok, response
    assert response == {"batchItemFailures": []}
    assert table_version(aws, "tables/cloudtrail") == before + 1, "one commit for the batch"
    check_rows(rows_from(aws, CLOUDTRAIL, keys), sources_of(keys, "CloudTrail"))


def test_eventbridge_object_created(aws, function, tmp_path):
    [log] = generate(tmp_path, files=1, records=15, seed=61)
    key = "AWSLogs/eventbridge/1/CloudTrail/us-east-1/2024/04/30/eb log.json.gz"
    head = upload(aws, log, key)
    event = {
        "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2024-04-30T00:05:00Z",
        "region": "us-east-1", "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {"version": "0", "bucket": {"name": BUCKET},
                   "object": {"key": key, "size": head["ContentLength"],
                              "etag": head["ETag"].strip('"'), "sequencer": "617f08299329d189"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "cloudtrail.amazonaws.com",
                   "reason": "PutObject"},
    }
    ok, response = function.invoke(event)
    assert ok, response
    assert response["objects"][0]["outcome"] == "ingested"
    check_rows(rows_from(aws, CLOUDTRAIL, [key]), sources_of({key: log}, "CloudTrail"))


def deliver_both_layouts(aws, function, tmp_path, kind, seed):
    """Generated `kind` logs in both key layouts, uploaded; the first announced by an S3
    notification and the rest by an SQS batch, each delivery checked; gives their keys."""
    logs = generate(tmp_path / "gen", files=2, records=20, seed=seed, kind=kind)
    logs += generate(tmp_path / "gen", files=1, records=20, seed=seed + 1, kind=kind,
                     org="o-aa11bb22cc")
    keys = {tagged(kind, p.relative_to(tmp_path / "gen")): p for p in logs}
    records = [s3_record(k, upload(aws, p, k)) for k, p in keys.items()]
    ok, response = function.invoke(s3_event(records[0]))
    assert ok and response["objects"][0]["outcome"] == "ingested", response
    ok, response = function.invoke({"Records": [sqs_message(f"{kind}{i}", s3_event(r))
                                                 for i, r in enumerate(records[1:])]})
    assert ok and response == {"batchItemFailures": []}, response
    return keys


def test_network_activity_events_land_in_the_cloudtrail_table(aws, function, tmp_path):
    """Files under CloudTrail-NetworkActivity/ (both layouts), allowed and denied VPC endpoint
    calls, through S3 notifications and an SQS batch: every value lands in the CloudTrail
    table."""
    keys = deliver_both_layouts(aws, function, tmp_path, "network", seed=63)
    rows = rows_from(aws, CLOUDTRAIL, keys)
    check_rows(rows, sources_of(keys, "CloudTrail-NetworkActivity"))
    assert {r["errorCode"] for r in rows} == {None, "VpceAccessDenied"}
    assert {r["eventCategory"] for r in rows} == {"NetworkActivity"}


def test_aggregated_events_land_in_their_own_table(aws, function, tmp_path):
    """Files under CloudTrail-Aggregated/ (both layouts), through an S3 notification and an
    SQS batch: every value lands in the aggregated-events table, dated by window start."""
    keys = deliver_both_layouts(aws, function, tmp_path, "aggregated", seed=65)
    rows = rows_from(aws, AGGREGATED, keys)
    check_rows(rows, sources_of(keys, "CloudTrail-Aggregated"))
    assert {r["eventType"] for r in rows} == {"AwsAggregatedEvent"}


def test_an_unknown_event_fails_clearly(function):
    ok, error = function.invoke({"hello": "world"})
    assert not ok
    assert "unknown event shape" in error, error


def run_cli(aws, env_extra, *args):
    env = {**aws.env(), **env_extra}
    return subprocess.run([CLI, "ingest", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def test_a_writer_killed_after_its_lock_claim_is_repaired(aws, function, tmp_path):
    """The CLI (same core and log store) dies right after claiming its version in DynamoDB,
    before `_delta_log/N.json` exists; the next writer, the Lambda, completes that commit."""
    first, second = generate(tmp_path, files=2, records=12, seed=71)
    keys = {"AWSLogs/killed/1/CloudTrail/us-east-1/2024/04/30/first.json.gz": first,
            "AWSLogs/killed/1/CloudTrail/us-east-1/2024/04/30/second.json.gz": second}
    heads = {k: upload(aws, p, k) for k, p in keys.items()}
    first_key, second_key = keys

    lock = {"AWS_S3_LOCKING_PROVIDER": "dynamodb", "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE}
    killed = run_cli(aws, {**lock, "CLOUDTRAIL_DELTA_CRASH_AT": "after-lock-claim"},
                     "--table", CLOUDTRAIL, "--insights-table", INSIGHTS,
                     f"s3://{BUCKET}/{first_key}")
    assert killed.returncode != 0 and "after-lock-claim" in killed.stderr, killed.stderr
    latest = max(aws.lock_entries(LOCK_TABLE, CLOUDTRAIL), key=lambda e: e["fileName"])
    assert latest["complete"] == "false"
    claimed = int(latest["fileName"][:20])
    log_key = f"tables/cloudtrail/_delta_log/{latest['fileName']}"
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=log_key)

    ok, response = function.invoke(s3_event(s3_record(second_key, heads[second_key])))
    assert ok, response
    assert response["objects"][0]["version"] == claimed + 1
    repaired = {e["fileName"]: e for e in aws.lock_entries(LOCK_TABLE, CLOUDTRAIL)}
    assert repaired[latest["fileName"]]["complete"] == "true"
    # Both objects are in the table once, the killed writer's commit included.
    check_rows(rows_from(aws, CLOUDTRAIL, keys), sources_of(keys, "CloudTrail"))
    # Its retry finds it there.
    ok, response = function.invoke(s3_event(s3_record(first_key, heads[first_key])))
    assert ok and response["objects"][0]["outcome"] == "already_ingested", response


def test_conditional_put_mode_from_the_cli(aws, tmp_path):
    """The other commit mode: S3 conditional writes, no lock table. Four CLI processes ingest a
    prefix of S3 objects at once; a re-run adds nothing."""
    logs = generate(tmp_path, files=8, records=10, seed=81)
    for i, p in enumerate(logs):
        upload(aws, p, f"cp/{i % 4}/" + str(p.relative_to(tmp_path)))
    table, insights = f"s3://{BUCKET}/cp-tables/cloudtrail", f"s3://{BUCKET}/cp-tables/insights"
    env = {**os.environ, **aws.env()}
    runs = [subprocess.Popen([CLI, "ingest", "--table", table, "--insights-table", insights,
                              f"s3://{BUCKET}/cp/{i}/"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for i in range(4)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, out + err
        assert "2 files ingested" in out, out
    keys = {f"cp/{i % 4}/" + str(p.relative_to(tmp_path)): p for i, p in enumerate(logs)}
    check_rows(rows_from(aws, table, keys), sources_of(keys, "CloudTrail"))
    assert aws.lock_entries(LOCK_TABLE, table) == []

    again = run_cli(aws, {}, "--table", table, "--insights-table", insights, f"s3://{BUCKET}/cp/")
    assert again.returncode == 0 and "already ingested: 8" in again.stdout, again.stdout


def test_a_log_whose_parquet_outgrows_an_upload_part_lands_whole(aws, tmp_path):
    """A log whose Parquet file is larger than an upload part (5 MiB) goes to S3 as a multipart
    upload; the file is whole and every value reads back."""
    log = generate(tmp_path, files=1, records=50_000, seed=83)[0]
    key = "large/" + str(log.relative_to(tmp_path))
    upload(aws, log, key)
    table = f"s3://{BUCKET}/large-tables/cloudtrail"
    result = run_cli(aws, {}, "--table", table, "--insights-table",
                     f"s3://{BUCKET}/large-tables/insights", f"s3://{BUCKET}/large/")
    assert result.returncode == 0, result.stdout + result.stderr
    listed = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="large-tables/cloudtrail/event_date=")
    sizes = [item["Size"] for item in listed["Contents"]]
    assert max(sizes) > 5 << 20, sizes
    check_rows(rows_from(aws, table, {key}), sources_of({key: log}, "CloudTrail"))


def test_the_bundled_events_work_as_documented(aws, tmp_path):
    """events/ (for `sam local invoke -e`) against the samples uploaded as events/README.md
    says, to a function whose log bucket is that bucket: every file gives the documented
    outcome."""
    bucket = "my-cloudtrail-logs"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    for sample in sample_logs():
        s3.upload_file(str(sample), bucket, str(sample.relative_to(SAMPLES)),
                       ExtraArgs=signature_metadata(sample))
    ct = ("AWSLogs/123456789012/CloudTrail/us-east-1/2024/04/30/"
          "123456789012_CloudTrail_us-east-1_20240430T2200Z_41ACC356B8C5CEC9.json.gz")
    copy = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/04/30/copy of+log.json.gz"
    s3.upload_file(str(SAMPLES / ct), bucket, copy)
    tables = {"CLOUDTRAIL_TABLE_URI": f"s3://{bucket}/delta/cloudtrail",
              "INSIGHTS_TABLE_URI": f"s3://{bucket}/delta/insights",
              "DIGEST_TABLE_URI": f"s3://{bucket}/delta/digests"}
    function = LambdaRuntime(tmp_path, {**aws.env(), "LOG_BUCKET": bucket, **tables,
                                        "AWS_S3_LOCKING_PROVIDER": "dynamodb",
                                        "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE}, instances=1)

    def invoke(name):
        ok, response = function.invoke(json.loads((ROOT / "events" / name).read_text()))
        assert ok, (name, response)
        return response

    expected = {
        "s3-cloudtrail.json": ("ingested", "cloudtrail"),
        "s3-insights.json": ("ingested", "insights"),
        "s3-digest.json": ("ingested", "digest"),
        "s3-key-with-spaces-and-plus.json": ("ingested", "cloudtrail"),
        "eventbridge-object-created.json": ("already_ingested", "cloudtrail"),
    }
    try:
        for name, (outcome, kind) in expected.items():
            [result] = invoke(name)["objects"]
            assert (result["outcome"], result.get("kind")) == (outcome, kind), (name, result)
        assert invoke("sqs-batch.json") == {"batchItemFailures": []}
    finally:
        function.close()
    landed = {r["_source_uri"]
              for r in table_rows(tables["CLOUDTRAIL_TABLE_URI"], aws.storage_options())}
    assert landed == {f"s3://{bucket}/{ct}", f"s3://{bucket}/{copy}"}


@pytest.mark.parametrize("unset, bad, named", [
    ("LOG_BUCKET", {}, "LOG_BUCKET"),
    (None, {"LOG_PREFIX": "/"}, "LOG_PREFIX"),
    ("CLOUDTRAIL_TABLE_URI", {}, "CLOUDTRAIL_TABLE_URI"),
    ("INSIGHTS_TABLE_URI", {}, "INSIGHTS_TABLE_URI"),
    (None, {"AWS_S3_LOCKING_PROVIDER": "zookeeper"}, "AWS_S3_LOCKING_PROVIDER"),
])
def test_a_bad_setting_stops_the_function_at_init(aws, unset, bad, named):
    from aws_local import LAMBDA
    env = {**os.environ, **aws.env(), "LOG_BUCKET": BUCKET, "CLOUDTRAIL_TABLE_URI": CLOUDTRAIL,
           "INSIGHTS_TABLE_URI": INSIGHTS, **bad,
           # No runtime API behind this address: init must fail before reaching it.
           "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "AWS_LAMBDA_FUNCTION_NAME": "_",
           "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}
    env.pop(unset, None)
    result = subprocess.run([LAMBDA], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr, result.stdout + result.stderr


def parquet_keys(aws, prefix):
    s3 = aws.client("s3")
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys |= {o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")
                 and "/_delta_log/" not in o["Key"] and "/_ingest_index/" not in o["Key"]}
    return keys


# Where the invocation dies, and what its retry finds: before the lock claim nothing is
# decided, so the retry ingests; from the claim on the commit is decided, so the retry (after
# repairing an unfinished commit) finds the object already in the table.
CRASHES = [
    ("before-commit", "ingested"),
    ("before-lock-claim", "ingested"),
    ("after-lock-claim", "already_ingested"),
    ("after-log-entry", "already_ingested"),
    ("after-commit", "already_ingested"),
]


@pytest.mark.parametrize("point, retry_outcome", CRASHES)
def test_an_invocation_killed_at_a_crash_point_lands_once_on_retry(aws, function, tmp_path,
                                                                  point, retry_outcome):
    [log] = generate(tmp_path, files=1, records=9, seed=90 + [p for p, _ in CRASHES].index(point))
    key = f"AWSLogs/crash-{point}/1/CloudTrail/us-east-1/2024/04/30/log.json.gz"
    event = s3_event(s3_record(key, upload(aws, log, key)))
    before = parquet_keys(aws, "tables/cloudtrail/")
    env = {**aws.env(), "LOG_BUCKET": BUCKET, "CLOUDTRAIL_TABLE_URI": CLOUDTRAIL,
           "INSIGHTS_TABLE_URI": INSIGHTS, "AWS_S3_LOCKING_PROVIDER": "dynamodb",
           "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE, "CLOUDTRAIL_DELTA_CRASH_AT": point}
    doomed = ExecutionEnvironment(tmp_path, env, timeout=120)
    try:
        ok, error = doomed.invoke(event)
    finally:
        doomed.close()
    assert not ok and doomed.crashes == 1, error
    log_text = next(tmp_path.glob("environment-*.log")).read_text()
    assert f"CLOUDTRAIL_DELTA_CRASH_AT={point}: aborting here" in log_text
    written = parquet_keys(aws, "tables/cloudtrail/") - before
    assert written, "the killed invocation had written its Parquet file"

    # Lambda retries the event, on another process.
    ok, response = function.invoke(event)
    assert ok, response
    assert response["objects"][0]["outcome"] == retry_outcome, response
    check_rows(rows_from(aws, CLOUDTRAIL, [key]), sources_of({key: log}, "CloudTrail"))
    entries = aws.lock_entries(LOCK_TABLE, CLOUDTRAIL)
    assert all(e["complete"] == "true" for e in entries), entries
    referenced = {u.split(f"{BUCKET}/", 1)[1] for u in
                  DeltaTable(CLOUDTRAIL, storage_options=aws.storage_options()).file_uris()}
    if retry_outcome == "ingested":
        # The killed invocation's files were never committed: unreferenced, left for VACUUM.
        assert not written & referenced
    else:
        assert written <= referenced


def test_a_lock_claim_whose_answer_was_lost_is_still_ours(aws, tmp_path):
    """DynamoDB writes the claim, then the answer is lost (a 500 after success): the SDK retries
    the PutItem, which now fails its condition on our own item. The writer must see the claim
    as its own and finish its commit, not take it for another writer's."""
    [log] = generate(tmp_path, files=1, records=7, seed=95)
    key = "lost-answer/AWSLogs/1/CloudTrail/us-east-1/2024/04/30/log.json.gz"
    upload(aws, log, key)
    table = f"s3://{BUCKET}/lost-answer/cloudtrail"
    proxy = FaultProxy(aws.port, nth={2: "error-after-success"}, only="PutItem")  # 1: the create
    try:
        env = {**aws.env(), "AWS_ENDPOINT_URL": proxy.endpoint, "AWS_S3_LOCKING_PROVIDER": "dynamodb",
               "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE, "RUST_LOG": "warn"}
        run = subprocess.run([CLI, "ingest", "--table", table, "--insights-table",
                              f"s3://{BUCKET}/lost-answer/insights", "--objects-per-commit", "1",
                              f"s3://{BUCKET}/{key}"], env={**os.environ, **env},
                             capture_output=True, text=True, timeout=300)
    finally:
        proxy.close()
    assert proxy.stats["error-after-success"] == 1, proxy.stats
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 files ingested" in run.stdout, run.stdout
    check_rows(rows_from(aws, table, [key]), sources_of({key: log}, "CloudTrail"))
    entries = aws.lock_entries(LOCK_TABLE, table)
    assert [e["complete"] for e in entries] == ["true", "true"], entries  # create, append


def test_objects_outside_the_log_scope_are_refused_unread(aws, tmp_path):
    """A function deployed for s3://trail-logs/trail/AWSLogs/ is announced a log of another
    bucket, a log outside its prefix and some other object of its bucket, beside one of its
    own: the three fail, named, with the reason, and no request about them reaches S3 (every
    request goes through a recording proxy); its own log lands. The same through SQS."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="other-logs")
    [log] = generate(tmp_path, files=1, records=8, seed=97)
    own = tagged("own", log.relative_to(tmp_path)).replace("AWSLogs/", "trail/AWSLogs/", 1)
    refused = {
        ("other-logs", own.replace("/own/", "/foreign/")): "another bucket than the log bucket",
        (BUCKET, tagged("root", log.relative_to(tmp_path))): "a key outside the trail's logs",
        (BUCKET, "private/report.json"): "a key outside the trail's logs",
    }
    heads = {(BUCKET, own): upload(aws, log, own)}
    for bucket, key in refused:
        s3.upload_file(str(log), bucket, key)
        heads[(bucket, key)] = s3.head_object(Bucket=bucket, Key=key)

    def record(bucket, key):
        head = heads[(bucket, key)]
        return events.s3_record(bucket, key, head["ContentLength"], head["ETag"].strip('"'))

    proxy = FaultProxy(aws.port)
    table = f"s3://{BUCKET}/scope-tables/cloudtrail"
    env = {**aws.env(), "AWS_ENDPOINT_URL": proxy.endpoint, "LOG_BUCKET": BUCKET,
           "LOG_PREFIX": "trail/", "CLOUDTRAIL_TABLE_URI": table,
           "INSIGHTS_TABLE_URI": f"s3://{BUCKET}/scope-tables/cloudtrail_insights",
           "AWS_S3_LOCKING_PROVIDER": "dynamodb", "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE}
    (tmp_path / "lambda").mkdir()
    function = LambdaRuntime(tmp_path / "lambda", env, instances=1)
    try:
        ok, error = function.invoke(s3_event(record(BUCKET, own), *(record(*r) for r in refused)))
        queued = [sqs_message(f"q{i}", s3_event(record(*r))) for i, r in enumerate(refused)]
        queue_ok, queue_response = function.invoke({"Records": queued})
    finally:
        function.close()
        proxy.close()

    assert not ok, "an invocation with refused objects fails"
    assert squeezed("3 of 4 objects failed") in squeezed(error), error
    for (bucket, key), reason in refused.items():
        said = f"s3://{bucket}/{key}: refused, not read: {reason}; this function reads only " \
               "s3://trail-logs/trail/AWSLogs/… (LOG_BUCKET, LOG_PREFIX)"
        assert squeezed(said) in squeezed(error), error
    assert queue_ok and queue_response == {"batchItemFailures": [
        {"itemIdentifier": f"q{i}"} for i in range(len(refused))]}, queue_response

    asked = [f"{r.host} {r.path}" for r in proxy.seen if r.service == "s3"]
    assert any(own.rsplit("/", 1)[1] in a for a in asked), "its own log was read"
    for needle in ["other-logs", "/AWSLogs/root/", "private/report.json"]:
        assert not [a for a in asked if needle in a], f"a request about {needle} was made"
    rows = table_rows(table, aws.storage_options())
    assert {r["_source_uri"] for r in rows} == {f"s3://{BUCKET}/{own}"}
    check_rows(rows, sources_of({own: log}, "CloudTrail"))
    # And what it did ask, its role in the stack deployed this way allows.
    role = iam_policy.role_statements(expand(
        ExistingLogBucket=BUCKET, LogPrefix="trail/", TablesPrefix="scope-tables/",
        ExistingLockTable=LOCK_TABLE), "Ingest")
    denied, checked = iam_policy.refused(role, proxy.seen)
    assert not denied, denied
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "dynamodb:PutItem"} <= set(checked)


def squeezed(text):
    """`text` without whitespace and the frame `cargo lambda invoke` draws around an error
    (it wraps lines anywhere): for comparing an error with what it must say."""
    return "".join(text.replace("│", "").replace("×", "").split())


def gzip_member(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def test_gzip_bombs_fail_clearly_with_nothing_committed(aws, tmp_path):
    """Two hostile objects beside a real log, under a function whose bounds are set low
    (CLOUDTRAIL_DELTA_MAX_JSON_BYTES 32 MiB, CLOUDTRAIL_DELTA_MAX_RECORDS 1 000): 1 GiB of
    JSON whitespace in a 1 MB object, and 2 000 copies of a real record. Each fails, named,
    with the bound it passed; nothing of them is committed; the real log lands."""
    [log] = generate(tmp_path / "gen", files=1, records=5, seed=98)
    good = tagged("bomb-good", log.relative_to(tmp_path / "gen"))
    folder = good.rsplit("/", 1)[0].replace("/bomb-good/", "/bombs/")
    spaces = gzip_member(b" " * (8 << 20))
    whitespace_bomb = gzip_member(b'{"Records":[') + spaces * 128
    assert len(whitespace_bomb) < 2 << 20
    record = json.dumps(load(log)[0]).encode()
    many = gzip_member(b'{"Records":[' + b",".join([record] * 2000) + b"]}")
    bombs = {f"{folder}/whitespace.json.gz": (whitespace_bomb,
                                              "the object decompresses to more than 33554432 bytes of JSON"),
             f"{folder}/records.json.gz": (many, "the object holds more than 1000 records")}
    s3 = aws.client("s3")
    heads = {good: upload(aws, log, good)}
    for key, (data, _) in bombs.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        heads[key] = s3.head_object(Bucket=BUCKET, Key=key)

    table = f"s3://{BUCKET}/bomb-tables/cloudtrail"
    env = {**aws.env(), "LOG_BUCKET": BUCKET, "CLOUDTRAIL_TABLE_URI": table,
           "INSIGHTS_TABLE_URI": f"s3://{BUCKET}/bomb-tables/insights",
           "AWS_S3_LOCKING_PROVIDER": "dynamodb", "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE,
           "CLOUDTRAIL_DELTA_MAX_JSON_BYTES": str(32 << 20),
           "CLOUDTRAIL_DELTA_MAX_RECORDS": "1000"}
    (tmp_path / "lambda").mkdir()
    function = LambdaRuntime(tmp_path / "lambda", env, instances=1)
    try:
        ok, error = function.invoke(s3_event(*(s3_record(k, h) for k, h in heads.items())))
    finally:
        function.close()
    assert not ok, "an invocation with bombs fails"
    assert squeezed("2 of 3 objects failed") in squeezed(error), error
    for key, (_, cause) in bombs.items():
        said = f"s3://{BUCKET}/{key}: {cause}, with nothing committed"
        assert squeezed(said) in squeezed(error), error
    landed = DeltaTable(table, storage_options=aws.storage_options())
    rows = table_rows(table, aws.storage_options())
    assert {r["_source_uri"] for r in rows} == {f"s3://{BUCKET}/{good}"}
    check_rows(rows, sources_of({good: log}, "CloudTrail"))
    assert landed.version() == 1, "the table's creation and one commit, of the real log"


SCHEDULED_EVENT = {"version": "0", "id": "5c0b7a4e-4f4a-4a52-9c0e-7d8f0f6d2f11",
                   "detail-type": "Scheduled Event", "source": "aws.events",
                   "account": "123456789012", "time": "2024-05-01T00:00:00Z",
                   "region": "us-east-1", "resources": [], "detail": {}}


def test_the_scheduled_maintenance_function_compacts_and_vacuums(aws, function, tmp_path,
                                                                maintenance_requests):
    """Next to last in this module: the maintenance binary under the Runtime API emulator, invoked with
    the schedule's event, on the table the tests above filled with a small file per commit
    (and with the files of killed invocations, never committed). Afterwards: one file per day,
    the same rows, no Parquet file in S3 that the table does not reference, and ingest goes
    on."""
    options = aws.storage_options()

    def state():
        table = DeltaTable(CLOUDTRAIL, storage_options=options)
        files = {u.split(f"{BUCKET}/", 1)[1] for u in table.file_uris()}
        rows = sorted((r["_source_uri"], r["eventID"], json.dumps(r, sort_keys=True, default=str))
                      for r in table_rows(CLOUDTRAIL, options))
        return table.version(), files, rows

    version_before, files_before, rows_before = state()
    days_before = {f.rsplit("/", 2)[1] for f in files_before}
    assert len(files_before) > len(days_before), "the tests above left several files a day"
    unreferenced = parquet_keys(aws, "tables/cloudtrail/") - files_before
    assert unreferenced, "the crash-point tests above left uncommitted files"

    env = {**aws.env(), "CLOUDTRAIL_TABLE_URI": CLOUDTRAIL, "INSIGHTS_TABLE_URI": INSIGHTS,
           "AWS_S3_LOCKING_PROVIDER": "dynamodb", "DELTA_DYNAMO_TABLE_NAME": LOCK_TABLE,
           "VACUUM_RETENTION_HOURS": "0"}
    maintenance = LambdaRuntime(tmp_path, {**env, "AWS_ENDPOINT_URL": maintenance_requests.endpoint},
                                instances=1, binary=MAINTENANCE)
    try:
        ok, response = maintenance.invoke(SCHEDULED_EVENT)
    finally:
        maintenance.close()
    assert ok, response
    summary = {t["kind"]: t for t in response["tables"]}
    assert set(summary) == {"cloudtrail", "insights"}, response
    cloudtrail = summary["cloudtrail"]
    assert cloudtrail["partitions_conflicted"] == 0, response

    version_after, files_after, rows_after = state()
    assert version_after > version_before
    assert len(files_after) == len(days_before), "one file per day"
    assert {f.rsplit("/", 2)[1] for f in files_after} == days_before
    assert (cloudtrail["files_removed"] - cloudtrail["files_added"]
            == len(files_before) - len(files_after)), response
    assert cloudtrail["files_vacuumed"] == len((files_before | unreferenced) - files_after), response
    assert rows_after == rows_before, "readers see the same rows, value for value"
    assert parquet_keys(aws, "tables/cloudtrail/") == files_after, \
        "VACUUM left only referenced files"

    # The ingest function, warm across the maintenance commits, goes on.
    [log] = generate(tmp_path / "after", files=1, records=6, seed=404)
    key = "AWSLogs/after-maintenance/1/CloudTrail/us-east-1/2024/04/30/log.json.gz"
    ok, response = function.invoke(s3_event(s3_record(key, upload(aws, log, key))))
    assert ok and response["objects"][0]["outcome"] == "ingested", response
    check_rows(rows_from(aws, CLOUDTRAIL, [key]), sources_of({key: log}, "CloudTrail"))


def test_every_request_of_the_functions_is_one_their_roles_allow(ingest_requests,
                                                                 maintenance_requests):
    """Last: every S3 and DynamoDB request the module's ingest function made (S3 and SQS
    deliveries, repairs of killed writers' commits, batches, after maintenance) and the
    maintenance function made (compaction, VACUUM, log cleanup) is one IAM would allow
    their roles in the stack deployed for this bucket: the template's least privilege is
    enough to work, in particular the ingest's deletes (temporary commit files only) and
    the lock table's leading keys."""
    resources = expand(ExistingLogBucket=BUCKET, TablesPrefix="tables/",
                       ExistingLockTable=LOCK_TABLE)
    for function, proxy, used in [
        ("Ingest", ingest_requests, {"s3:GetObject", "s3:PutObject", "s3:ListBucket",
                                     "s3:DeleteObject", "dynamodb:PutItem",
                                     "dynamodb:UpdateItem", "dynamodb:Query"}),
        ("Maintenance", maintenance_requests, {"s3:GetObject", "s3:PutObject", "s3:ListBucket",
                                               "s3:DeleteObject", "dynamodb:PutItem"}),
    ]:
        denied, checked = iam_policy.refused(iam_policy.role_statements(resources, function),
                                             proxy.seen)
        assert not denied, (function, denied[:20])
        assert used <= set(checked), (function, checked)


def emf_lines(log_path):
    """The EMF documents a function printed (one JSON line per invocation)."""
    out = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{") and '"CloudWatchMetrics"' in line:
            out.append(json.loads(line))
    return out


def test_a_digest_after_its_logs_is_verified_through_the_queue(aws, tmp_path):
    """A digest lands after the logs of its hour, of which one was altered after CloudTrail
    hashed it, one deleted and one planted: the function queues the verification of the
    hour; delivered back through the queue (as the event source mapping would), it verifies
    the hour and its metrics say what it found. Signed with a key pair made here."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from logs import generate_logs

    bucket = "verify-trail"
    aws.client("s3").create_bucket(Bucket=bucket)
    sqs = aws.client("sqs")
    queue_url = sqs.create_queue(QueueName="cloudtrail-delta-verify")["QueueUrl"]
    key_pair = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(generate_logs.public_keys(key_pair)))
    trail = tmp_path / "trail"
    # Three logs per account-region in one hour, and each account-region's digest of it.
    generate(trail, files=45, records=3, seed=71, digests=True, signing_key=key_pair,
             bucket=bucket)
    place = "AWSLogs/123456789012/CloudTrail/us-east-1/"
    logs = sorted(p for p in trail.rglob("*.json.gz")
                  if str(p.relative_to(trail)).startswith(place))
    [digest] = [p for p in trail.rglob("*.json.gz")
                if "/123456789012/CloudTrail-Digest/us-east-1/" in str(p)]
    altered, deleted, kept = logs
    text = gzip.decompress(altered.read_bytes()).replace(b'"eventName":"', b'"eventName":"X', 1)
    altered.write_bytes(gzip.compress(text, mtime=0))
    planted_key = str(kept.relative_to(trail)).replace("T2210Z_", "T2230Z_")
    planted = generate(tmp_path / "planted", files=1, records=2, seed=72)[0]

    tables = {"CLOUDTRAIL_TABLE_URI": f"s3://{bucket}/tables/cloudtrail",
              "INSIGHTS_TABLE_URI": f"s3://{bucket}/tables/insights",
              "DIGEST_TABLE_URI": f"s3://{bucket}/tables/digests"}
    function = LambdaRuntime(tmp_path, {**aws.env(), "LOG_BUCKET": bucket, **tables,
                                        "VERIFY_QUEUE_URL": queue_url,
                                        "PUBLIC_KEYS_FILE": str(keys),
                                        "VERIFY_GRACE_MINUTES": "0"}, instances=1)
    s3 = aws.client("s3")

    def deliver(path, key):
        s3.upload_file(str(path), bucket, key, ExtraArgs=signature_metadata(path))
        head = s3.head_object(Bucket=bucket, Key=key)
        record = events.s3_record(bucket, key, head["ContentLength"], head["ETag"].strip('"'))
        ok, response = function.invoke({"Records": [record]})
        assert ok and response["objects"][0]["outcome"] == "ingested", response

    try:
        for path, key in [(altered, str(altered.relative_to(trail))),
                          (kept, str(kept.relative_to(trail))), (planted, planted_key)]:
            deliver(path, key)
        # The digest comes last, as CloudTrail writes it after its hour.
        deliver(digest, str(digest.relative_to(trail)))
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=5).get("Messages", [])
        assert len(messages) == 1, messages
        request = json.loads(messages[0]["Body"])["cloudtrailDeltaVerify"]
        assert request["digest"] == f"s3://{bucket}/{digest.relative_to(trail)}"
        assert (request["account"], request["region"]) == ("123456789012", "us-east-1")
        batch = {"Records": [events.sqs_message("verify-1", json.loads(messages[0]["Body"]))]}
        ok, response = function.invoke(batch)
        assert ok and response == {"batchItemFailures": []}, response
    finally:
        function.close()
    [*_, metrics] = emf_lines(pathlib.Path(function.log.name))
    assert (metrics["LogFilesMissing"], metrics["LogFilesUnverified"],
            metrics["DigestSignatureInvalid"]) == (1, 2, 0), metrics
    log = pathlib.Path(function.log.name).read_text()
    for finding, key in [("missing", deleted.relative_to(trail)),
                         ("hash-mismatch", altered.relative_to(trail)), ("unlisted", planted_key)]:
        assert any(finding in line and str(key) in line for line in log.splitlines()), finding
