"""Reads the Delta tables written by the `cloudtrail-delta` binary with an independent reader
(Python `deltalake` + pyarrow) and checks every value against the source JSON."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from logs import generate
from readback import check_digest_rows, check_table, source_digests, source_records, table_rows

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
BIN = os.environ.get("CLOUDTRAIL_DELTA_BIN", str(ROOT / "target" / "debug" / "cloudtrail-delta"))


def ingest(tmp, *sources, check=True):
    cmd = [BIN, "ingest", "--table", str(tmp / "ct"), "--insights-table", str(tmp / "insights"),
           "--digest-table", str(tmp / "digests"), *map(str, sources)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_every_value_of_the_samples_reads_back(tmp_path):
    result = ingest(tmp_path, SAMPLES)
    assert "digest: 3 files ingested" in result.stdout, result.stdout
    digest_rows = check_digest_rows(table_rows(tmp_path / "digests"), source_digests(SAMPLES))
    assert {r["signatureSource"] for r in digest_rows} == {"unsigned-local"}
    rows = check_table(tmp_path / "ct", source_records(SAMPLES, "CloudTrail"))
    check_table(tmp_path / "insights", source_records(SAMPLES, "CloudTrail-Insight"))
    # The all-fields example exercises what the generator does not: spot-check typed columns.
    by_id = {r["eventID"]: r for r in rows}
    full = by_id["00000000-0000-4000-8000-000000000001"]
    assert full["userIdentity"]["onBehalfOf"]["userId"] == "544894e8-80c1-707f-60e3-3ba6510dfac1"
    assert full["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] == "Admin"
    assert full["resources"][1]["ARNPrefix"] == "arn:aws:s3:::logs/"
    assert full["addendum"]["reason"] == "DELIVERY_DELAY"
    assert full["readOnly"] is False and full["_rescued_data"] is None
    assert '"big": 12345678901234567890\n' in full["requestParameters"]  # verbatim source text
    assert str(full["event_date"]) == "2024-04-30"
    context = full["eventContext"]
    assert dict(context["requestContext"])["aws:SourceVpc"] == "vpc-0abc"
    assert dict(context["tagContext"]["resourceTags"][0]["tags"]) == {"team": "sécurité", "env": ""}
    assert dict(context["tagContext"]["principalTags"]) == {"department": "audit"}
    newer = by_id["00000000-0000-4000-8000-000000000002"]
    assert str(newer["event_date"]) == "2024-05-01"
    newer_rescued = json.loads(newer["_rescued_data"])
    assert newer_rescued["aBrandNewTopLevelField"] == {"added": "2026"}
    # A condition key with a list value does not fit map<string, string>: the map keeps the
    # string entries, `_rescued_data` the whole object.
    assert dict(newer["eventContext"]["requestContext"]) == {"aws:PrincipalAccount": "111122223333"}
    assert newer_rescued["eventContext"]["requestContext"]["aws:CalledVia"] == [
        "cloudformation.amazonaws.com"]
    odd = by_id["00000000-0000-4000-8000-000000000003"]
    assert odd["readOnly"] is None and odd["userIdentity"] is None
    assert json.loads(odd["_rescued_data"])["readOnly"] == "false"


def test_generated_logs_of_every_kind_and_layout_read_back(tmp_path):
    """tools/generate_logs.py's logs (management, data, sign-in, service and edge events,
    network activity events allowed and denied, Insights, both key layouts; digests beside
    them): every value reads back."""
    logs = tmp_path / "logs"
    generate(logs, files=6, records=150, seed=5, digests=True)
    generate(logs, files=3, records=40, seed=6, kind="insights")
    generate(logs, files=3, records=60, seed=7, org="o-aa11bb22cc")
    generate(logs, files=2, records=80, seed=9, kind="network")
    generate(logs, files=2, records=20, seed=10, kind="network", org="o-aa11bb22cc")
    result = ingest(tmp_path, logs)
    assert "digest: 6 files ingested" in result.stdout, result.stdout
    digests = source_digests(logs)
    assert len(digests) == 6
    check_digest_rows(table_rows(tmp_path / "digests"), digests)
    sources = {**source_records(logs, "CloudTrail"),
               **source_records(logs, "CloudTrail-NetworkActivity")}
    rows = check_table(tmp_path / "ct", sources)
    assert len(rows) == 6 * 150 + 3 * 60 + 2 * 80 + 2 * 20
    assert {r["eventType"] for r in rows} >= {"AwsApiCall", "AwsConsoleSignIn", "AwsServiceEvent",
                                              "AwsVpceEvent"}
    network = [r for r in rows if r["eventCategory"] == "NetworkActivity"]
    assert {r["errorCode"] for r in network} == {None, "VpceAccessDenied"}
    assert all(r["vpcEndpointAccountId"] for r in network)
    check_table(tmp_path / "insights", source_records(logs, "CloudTrail-Insight"))


# Every field the AWS pages "CloudTrail record contents for management, data, and network
# activity events" and "CloudTrail userIdentity element" document for eventVersion 1.11, with
# its column type: str, bool, time, json (free-form object as text), map (map<string,string>);
# structs and lists by their leaves (a list's element fields after `[]`).
DOCUMENTED_1_11 = {
    "eventTime": "time", "eventVersion": "str", "eventSource": "str", "eventName": "str",
    "awsRegion": "str", "sourceIPAddress": "str", "userAgent": "str", "errorCode": "str",
    "errorMessage": "str", "requestParameters": "json", "responseElements": "json",
    "additionalEventData": "json", "requestID": "str", "eventID": "str", "eventType": "str",
    "apiVersion": "str", "managementEvent": "bool", "readOnly": "bool",
    "resources[].ARN": "str", "resources[].ARNPrefix": "str", "resources[].accountId": "str",
    "resources[].type": "str", "recipientAccountId": "str", "serviceEventDetails": "json",
    "sharedEventID": "str", "vpcEndpointId": "str", "vpcEndpointAccountId": "str",
    "eventCategory": "str", "addendum.reason": "str", "addendum.updatedFields": "str",
    "addendum.originalRequestID": "str", "addendum.originalEventID": "str",
    "sessionCredentialFromConsole": "str", "edgeDeviceDetails": "json",
    "tlsDetails.tlsVersion": "str", "tlsDetails.cipherSuite": "str",
    "tlsDetails.clientProvidedHostHeader": "str",
    "eventContext.requestContext": "map", "eventContext.tagContext.resourceTags[].arn": "str",
    "eventContext.tagContext.resourceTags[].tags": "map",
    "eventContext.tagContext.principalTags": "map",
    "userIdentity.type": "str", "userIdentity.principalId": "str", "userIdentity.arn": "str",
    "userIdentity.accountId": "str", "userIdentity.accessKeyId": "str",
    "userIdentity.userName": "str", "userIdentity.invokedBy": "str",
    "userIdentity.identityProvider": "str", "userIdentity.credentialId": "str",
    "userIdentity.sessionContext.sessionIssuer.type": "str",
    "userIdentity.sessionContext.sessionIssuer.principalId": "str",
    "userIdentity.sessionContext.sessionIssuer.arn": "str",
    "userIdentity.sessionContext.sessionIssuer.accountId": "str",
    "userIdentity.sessionContext.sessionIssuer.userName": "str",
    "userIdentity.sessionContext.webIdFederationData.federatedProvider": "str",
    "userIdentity.sessionContext.webIdFederationData.attributes": "json",
    "userIdentity.sessionContext.attributes.creationDate": "str",
    "userIdentity.sessionContext.attributes.mfaAuthenticated": "str",
    "userIdentity.sessionContext.sourceIdentity": "str",
    "userIdentity.sessionContext.ec2RoleDelivery": "str",
    "userIdentity.sessionContext.assumedRoot": "str",
    "userIdentity.onBehalfOf.userId": "str", "userIdentity.onBehalfOf.identityStoreArn": "str",
    "userIdentity.inScopeOf.sourceArn": "str", "userIdentity.inScopeOf.sourceAccount": "str",
    "userIdentity.inScopeOf.issuerType": "str", "userIdentity.inScopeOf.credentialsIssuedTo": "str",
}
ARROW_KINDS = {"str": pa.types.is_string, "json": pa.types.is_string, "bool": pa.types.is_boolean,
               "time": pa.types.is_timestamp, "map": pa.types.is_map}


def column_type(schema, path):
    """The Arrow type of the column at `path` (`a.b`, `a[].b`), or None."""
    data_type = pa.struct(list(schema))
    for part in path.replace("[]", ".[]").split("."):
        if part == "[]":
            if not pa.types.is_list(data_type):
                return None
            data_type = data_type.value_type
            continue
        if not pa.types.is_struct(data_type) or data_type.get_field_index(part) < 0:
            return None
        data_type = data_type.field(part).type
    return data_type


def values_at(row, path):
    """The non-null values at `path` in a row."""
    values = [row]
    for part in path.replace("[]", ".[]").split("."):
        if part == "[]":
            values = [item for value in values for item in value]
        else:
            values = [value[part] for value in values if value.get(part) is not None]
    return [v for v in values if v is not None]


def test_every_documented_1_11_field_is_a_typed_column_the_generator_fills(tmp_path):
    """The table types every documented field (none lands in `_rescued_data`), the generated
    logs carry each one in some record, and every value reads back."""
    logs = tmp_path / "logs"
    generate(logs, files=4, records=400, seed=31)
    generate(logs, files=1, records=60, seed=32, kind="network")
    ingest(tmp_path, logs)
    schema = DeltaTable(str(tmp_path / "ct")).schema().to_arrow()
    schema = pa.schema(schema) if not isinstance(schema, pa.Schema) else schema
    for path, kind in DOCUMENTED_1_11.items():
        data_type = column_type(schema, path)
        assert data_type is not None, f"{path} is not a column"
        assert ARROW_KINDS[kind](data_type), f"{path} is {data_type}, not {kind}"
    rows = check_table(tmp_path / "ct", {**source_records(logs, "CloudTrail"),
                                         **source_records(logs, "CloudTrail-NetworkActivity")})
    assert [r["eventID"] for r in rows if r["_rescued_data"] is not None] == []
    unfilled = [p for p in DOCUMENTED_1_11 if not any(values_at(r, p) for r in rows)]
    assert unfilled == []
    enriched = [r for r in rows if r["eventContext"] is not None]
    assert all(r["eventVersion"] == "1.11" for r in enriched)
    assert any(dict(r["eventContext"]["tagContext"]["principalTags"]).get("project") == "atlas"
               for r in enriched)


FIXTURE = ROOT / "tests" / "fixtures" / "tables-0.1"


def test_tables_written_by_release_0_1_stay_readable_and_writable(tmp_path):
    """A copy of the tables 0.1.0 wrote (tests/fixtures/tables-0.1): every value reads back
    equal to its logs, this binary appends to them, and a re-run adds nothing."""
    tables = tmp_path / "tables"
    shutil.copytree(FIXTURE, tables, ignore=shutil.ignore_patterns("logs", "README.md"))
    logs = FIXTURE / "logs"

    def uri_of(path):
        return "file:///tmp/fxlogs/" + str(path.relative_to(logs))

    check_table(tables / "cloudtrail", source_records(logs, "CloudTrail", uri_of))
    check_table(tables / "cloudtrail_insights", source_records(logs, "CloudTrail-Insight", uri_of))
    assert "eventContext" not in DeltaTable(str(tables / "cloudtrail")).schema().to_arrow().names
    new = tmp_path / "new"
    generate(new, files=1, records=80, seed=23)
    cmd = [BIN, "ingest", "--table", str(tables / "cloudtrail"), "--insights-table",
           str(tables / "cloudtrail_insights"), str(new)]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0 and "1 files ingested" in first.stdout, first.stdout + first.stderr
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0 and "already ingested: 1" in again.stdout, again.stdout
    rows = check_table(tables / "cloudtrail", {**source_records(logs, "CloudTrail", uri_of),
                                               **source_records(new, "CloudTrail")})
    # The table gained the columns typed since 0.1 (eventContext), which the new rows fill.
    enriched = [r for r in rows if r["eventContext"] is not None]
    assert enriched and all(r["_source_uri"].startswith(new.resolve().as_uri()) for r in enriched)
    assert all(r["_rescued_data"] is None for r in enriched)


def test_aggregated_events_read_back_from_their_own_table(tmp_path):
    logs = tmp_path / "logs"
    generate(logs, files=3, records=30, seed=11, kind="aggregated")
    generate(logs, files=2, records=10, seed=12, kind="aggregated", org="o-aa11bb22cc")
    cmd = [BIN, "ingest", "--table", str(tmp_path / "ct"), "--insights-table",
           str(tmp_path / "insights"), "--aggregated-table", str(tmp_path / "aggregated"),
           str(logs)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aggregated: 5 files ingested, 110 records" in result.stdout, result.stdout
    rows = check_table(tmp_path / "aggregated", source_records(logs, "CloudTrail-Aggregated"))
    assert all(r["summary"]["primaryDimension"]["statistics"] for r in rows)
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert "already ingested: 5" in again.stdout, again.stdout


def test_a_bad_table_location_fails_once_before_any_object(tmp_path):
    generate(tmp_path / "logs", files=3, records=5, seed=8)
    cmd = [BIN, "ingest", "--table", "foo://bar/ct", "--insights-table", str(tmp_path / "ins"),
           str(tmp_path / "logs")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.count("foo://bar/ct") == 1, result.stderr
    assert "Unknown scheme: foo" in result.stderr and "failed:" not in result.stdout


def test_log_lines_carry_no_colour_codes_when_not_at_a_terminal(tmp_path):
    result = ingest(tmp_path, SAMPLES)
    assert "skipped" in result.stderr, result.stderr
    assert "\x1b[" not in result.stderr, result.stderr[:500]


def test_reingest_after_optimize_adds_nothing(tmp_path):
    logs = tmp_path / "logs"
    generate(logs, files=6, records=50, seed=3)
    ingest(tmp_path, "--objects-per-commit", "1", logs)  # a file per object, for OPTIMIZE to merge
    table = DeltaTable(str(tmp_path / "ct"))
    files_before = set(table.file_uris())
    assert len(files_before) == 6
    metrics = table.optimize.compact()
    assert metrics["numFilesRemoved"] == 6
    table = DeltaTable(str(tmp_path / "ct"))
    assert not files_before & set(table.file_uris()), "OPTIMIZE rewrote every file"
    version = table.version()

    result = ingest(tmp_path, logs)  # in one batch, and one by one
    assert "already ingested: 6" in result.stdout
    result = ingest(tmp_path, "--objects-per-commit", "1", logs)
    assert "already ingested: 6" in result.stdout
    table = DeltaTable(str(tmp_path / "ct"))
    assert table.version() == version
    check_table(tmp_path / "ct", source_records(logs, "CloudTrail"))


def test_an_interrupted_backfill_resumes_without_doubles(tmp_path):
    """A backfill killed after its first batch commit (as a timeout or a lost machine would)
    is run again: the rest lands, nothing twice."""
    logs = tmp_path / "logs"
    generate(logs, files=20, records=15, seed=8)
    killed = subprocess.run(
        [BIN, "ingest", "--table", str(tmp_path / "ct"), "--insights-table",
         str(tmp_path / "insights"), "--objects-per-commit", "6", str(logs)],
        capture_output=True, text=True, env={**os.environ, "CLOUDTRAIL_DELTA_CRASH_AT": "after-commit"})
    assert killed.returncode != 0 and "after-commit: aborting here" in killed.stderr, killed.stderr
    landed = DeltaTable(str(tmp_path / "ct")).to_pyarrow_table(columns=["_source_uri"])
    assert len(set(landed["_source_uri"].to_pylist())) == 6, "the first batch was committed"

    resumed = ingest(tmp_path, "--objects-per-commit", "6", logs)
    assert "already ingested: 6" in resumed.stdout, resumed.stdout
    assert "14 files ingested" in resumed.stdout, resumed.stdout
    check_table(tmp_path / "ct", source_records(logs, "CloudTrail"))


def test_the_index_holds_the_sha256_of_each_sample_uncompressed(tmp_path):
    """The SHA-256 each table's ingest index records for an object is what `sha256sum` gives
    for the object gunzipped: the value CloudTrail's digests list."""
    ingest(tmp_path, SAMPLES)
    result = subprocess.run([BIN, "maintain", "--table", str(tmp_path / "ct"), "--insights-table",
                             str(tmp_path / "insights")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    stored = {}
    for table in ("ct", "insights"):
        index = DeltaTable(str(tmp_path / table / "_ingest_index")).to_pyarrow_table()
        stored.update(zip(index.column("source_uri").to_pylist(), index.column("sha256").to_pylist()))
    logs = [p for p in SAMPLES.rglob("*") if p.name.endswith((".json", ".json.gz"))
            and "AWSLogs" in p.parts and "CloudTrail-Digest" not in p.parts]
    assert sorted(stored) == sorted(p.resolve().as_uri() for p in logs)
    for path in logs:
        gunzip = subprocess.run(["gunzip", "-c", "-f", str(path)], capture_output=True, check=True)
        sha256sum = subprocess.run(["sha256sum"], input=gunzip.stdout, capture_output=True,
                                   check=True).stdout.split()[0].decode()
        assert stored[path.resolve().as_uri()] == sha256sum, path


def test_maintain_compacts_and_vacuums_what_readers_see_unchanged(tmp_path):
    logs = tmp_path / "logs"
    generate(logs, files=12, records=40, seed=9)
    ingest(tmp_path, "--objects-per-commit", "1", logs)
    before = DeltaTable(str(tmp_path / "ct"))
    assert len(before.file_uris()) >= 12
    result = subprocess.run([BIN, "maintain", "--table", str(tmp_path / "ct"), "--insights-table",
                             str(tmp_path / "insights"), "--vacuum-retention-hours", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "files vacuumed" in result.stdout, result.stdout
    after = DeltaTable(str(tmp_path / "ct"))
    partitions = {u.rsplit("/", 2)[1] for u in after.file_uris()}
    assert len(after.file_uris()) == len(partitions), "one file per partition left"
    on_disk = [p for p in (tmp_path / "ct").rglob("*.parquet")
               if "_delta_log" not in str(p) and "_ingest_index" not in str(p)]
    assert len(on_disk) == len(after.file_uris()), "VACUUM deleted the compacted-away files"
    check_table(tmp_path / "ct", source_records(logs, "CloudTrail"))
    # The ingest index names every object once, with its URI; VACUUM left it alone.
    index = DeltaTable(str(tmp_path / "ct" / "_ingest_index")).to_pyarrow_table()
    uris = sorted(index.column("source_uri").to_pylist())
    assert uris == sorted(p.resolve().as_uri() for p in logs.rglob("*.json.gz")
                          if "/CloudTrail/" in str(p)), uris
    assert len(set(index.column("ingest_id").to_pylist())) == len(uris)
    # Re-ingesting after compaction adds nothing.
    assert "already ingested: 12" in ingest(tmp_path, logs).stdout
