"""Reads the Delta tables written by the `cloudtrail-delta` binary with an independent reader
(Python `deltalake` + pyarrow) and checks every value against the source JSON."""
import gzip
import json
import os
import pathlib
import subprocess
import sys
from datetime import timezone

import pytest
from deltalake import DeltaTable

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
BIN = os.environ.get("CLOUDTRAIL_DELTA_BIN", str(ROOT / "target" / "debug" / "cloudtrail-delta"))
GENERATOR = ROOT.parent / "shared" / "bench" / "gen_cloudtrail.py"

# Free-form objects stored as JSON text.
JSON_TEXT = {
    "requestParameters", "responseElements", "additionalEventData", "serviceEventDetails",
    "edgeDeviceDetails", "userIdentity.sessionContext.webIdFederationData.attributes",
}
OURS = {"_rescued_data", "_source_uri", "event_date"}


def ingest(tmp, *sources, check=True):
    cmd = [BIN, "ingest", "--table", str(tmp / "ct"), "--insights-table", str(tmp / "insights"), *map(str, sources)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def load(path):
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data)["Records"]


def source_records(root, folder):
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and f"/{folder}/" in str(path):
            for record in load(path):
                out[(path.resolve().as_uri(), record["eventID"])] = record
    return out


def drop_nulls(value):
    """The table cannot tell an absent field from a null one: compare without either."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def merge(typed, rescued):
    """Deep-merges `_rescued_data` into the typed values (rescued values win)."""
    if isinstance(typed, dict) and isinstance(rescued, dict):
        out = dict(typed)
        for k, v in rescued.items():
            out[k] = merge(typed.get(k), v)
        return out
    return rescued


def rebuild(row, path=""):
    """A source record from a row: JSON text parsed, timestamps back to their text."""
    out = {}
    for key, value in row.items():
        name = f"{path}{key}"
        if value is None or name in OURS:
            continue
        if name in JSON_TEXT:
            value = json.loads(value)
        elif name == "eventTime":
            value = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif isinstance(value, dict):
            value = rebuild(value, name + ".")
        elif isinstance(value, list):
            value = [rebuild(v, name + ".") if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def check_table(table_path, sources):
    rows = DeltaTable(str(table_path)).to_pyarrow_table().to_pylist()
    assert len(rows) == len(sources)
    seen = set()
    for row in rows:
        key = (row["_source_uri"], row["eventID"])
        assert key in sources, f"row not from any source record: {key}"
        assert key not in seen, f"record landed twice: {key}"
        seen.add(key)
        source = sources[key]
        record = rebuild(row)
        if row["_rescued_data"] is not None:
            record = merge(record, json.loads(row["_rescued_data"]))
        assert drop_nulls(record) == drop_nulls(source), key
        assert row["event_date"].isoformat() == source["eventTime"][:10]
    return rows


def test_every_value_of_the_samples_reads_back(tmp_path):
    result = ingest(tmp_path, SAMPLES)
    assert "skipped: 2 (digest: 2)" in result.stdout
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
    newer = by_id["00000000-0000-4000-8000-000000000002"]
    assert str(newer["event_date"]) == "2024-05-01"
    assert json.loads(newer["_rescued_data"])["aBrandNewTopLevelField"] == {"added": "2026"}
    odd = by_id["00000000-0000-4000-8000-000000000003"]
    assert odd["readOnly"] is None and odd["userIdentity"] is None
    assert json.loads(odd["_rescued_data"])["readOnly"] == "false"


def test_reingest_after_optimize_adds_nothing(tmp_path):
    if not GENERATOR.exists():
        pytest.skip(f"{GENERATOR} not found")
    logs = tmp_path / "logs"
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(logs), "--files", "6", "--records", "50", "--seed", "3"],
                   check=True, capture_output=True)
    ingest(tmp_path, logs)
    table = DeltaTable(str(tmp_path / "ct"))
    files_before = set(table.file_uris())
    assert len(files_before) == 6
    metrics = table.optimize.compact()
    assert metrics["numFilesRemoved"] == 6
    table = DeltaTable(str(tmp_path / "ct"))
    assert not files_before & set(table.file_uris()), "OPTIMIZE rewrote every file"
    version = table.version()

    result = ingest(tmp_path, logs)
    assert "already ingested: 6" in result.stdout
    table = DeltaTable(str(tmp_path / "ct"))
    assert table.version() == version
    check_table(tmp_path / "ct", source_records(logs, "CloudTrail"))
