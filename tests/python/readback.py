"""Reading our Delta tables back with an independent reader (Python `deltalake` + pyarrow) and
rebuilding every source record from its row, to compare with the source JSON."""
import gzip
import json
from datetime import datetime, timezone

from deltalake import DeltaTable

# Free-form objects stored as JSON text.
JSON_TEXT = {
    "requestParameters", "responseElements", "additionalEventData", "serviceEventDetails",
    "edgeDeviceDetails", "userIdentity.sessionContext.webIdFederationData.attributes",
}
# Objects with user-chosen keys, stored as map<string, string> (pyarrow: a list of pairs).
MAPS = {
    "eventContext.requestContext", "eventContext.tagContext.principalTags",
    "eventContext.tagContext.resourceTags.tags",
}
OURS = {"_rescued_data", "_source_uri", "event_date"}


def event_id(record):
    """A record's id: `eventID`, or `eventId` in aggregated events."""
    return record.get("eventID") or record.get("eventId")


def event_day(record):
    """The date a record is partitioned by: its eventTime's, or its window start's."""
    time = record.get("eventTime") or record["timeWindow"]["windowStart"]
    return time[:10]


def load(path):
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data)["Records"]


def source_records(root, folder, uri_of=lambda path: path.resolve().as_uri()):
    """Every record of the log files under `root` in a `folder` (CloudTrail, CloudTrail-Insight),
    keyed by (the URI `uri_of` gives the file, eventID)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and f"/{folder}/" in str(path):
            for record in load(path):
                out[(uri_of(path), event_id(record))] = record
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
    """A source record from a row: JSON text parsed, maps back to objects, timestamps back to
    their text."""
    out = {}
    for key, value in row.items():
        name = f"{path}{key}"
        if value is None or name in OURS:
            continue
        if name in JSON_TEXT:
            value = json.loads(value)
        elif name in MAPS:
            value = dict(value)
        elif isinstance(value, datetime):
            value = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif isinstance(value, dict):
            value = rebuild(value, name + ".")
        elif isinstance(value, list):
            value = [rebuild(v, name + ".") if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def table_rows(table_uri, storage_options=None):
    return DeltaTable(str(table_uri), storage_options=storage_options).to_pyarrow_table().to_pylist()


def check_table(table_uri, sources, storage_options=None):
    """Reads the whole table and checks it holds exactly `sources`, every value equal."""
    return check_rows(table_rows(table_uri, storage_options), sources)


def check_rows(rows, sources):
    """Checks that `rows` are exactly the records of `sources`, once each, every value equal."""
    assert len(rows) == len(sources)
    seen = set()
    for row in rows:
        key = (row["_source_uri"], event_id(row))
        assert key in sources, f"row not from any source record: {key}"
        assert key not in seen, f"record landed twice: {key}"
        seen.add(key)
        source = sources[key]
        record = rebuild(row)
        if row["_rescued_data"] is not None:
            record = merge(record, json.loads(row["_rescued_data"]))
        assert drop_nulls(record) == drop_nulls(source), key
        assert row["event_date"].isoformat() == event_day(source)
    return rows


DIGEST_OURS = OURS | {"signature", "signatureAlgorithm", "signatureSource"}


def source_digests(root, uri_of=lambda path: path.resolve().as_uri()):
    """Every digest file under `root` (…/CloudTrail-Digest/…), parsed, by the URI `uri_of`
    gives it."""
    out = {}
    for path in sorted(root.rglob("*.json.gz")):
        if "CloudTrail-Digest" in path.parts:
            out[uri_of(path)] = json.loads(gzip.decompress(path.read_bytes()))
    return out


def check_digest_rows(rows, digests):
    """Checks that `rows` of a digests table are exactly one per log file each digest of
    `digests` lists (one for a digest that lists none), every value equal to its source."""
    expected = sum(max(1, len(d["logFiles"])) for d in digests.values())
    assert len(rows) == expected, (len(rows), expected)
    by_digest = {}
    for row in rows:
        by_digest.setdefault(row["_source_uri"], []).append(row)
    assert set(by_digest) == set(digests)
    for uri, digest in digests.items():
        files = []
        for row in by_digest[uri]:
            fields = {k: v for k, v in row.items() if k not in DIGEST_OURS}
            record = rebuild(fields)
            if row["_rescued_data"] is not None:
                record = merge(record, json.loads(row["_rescued_data"]))
            log_file = record.pop("logFile", None)
            if log_file is not None:
                files.append(log_file)
            head = {k: v for k, v in digest.items() if k != "logFiles"}
            assert drop_nulls(record) == drop_nulls(head), uri
            assert row["event_date"].isoformat() == digest["digestEndTime"][:10]
        key = lambda f: f["s3Object"]
        assert sorted(drop_nulls(files), key=key) == sorted(drop_nulls(digest["logFiles"]), key=key), uri
    return rows
