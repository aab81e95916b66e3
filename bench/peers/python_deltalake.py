#!/usr/bin/env python3
"""Peer: what a Python Lambda author would write with the `deltalake` binding (delta-rs) and
pyarrow. Each log file is read whole (gzip, then `json.load`), its records become rows of a
fixed Arrow schema (the common fields typed, the free-form objects as JSON text, the rest
dropped), and the rows are appended to the table, partitioned by event date: one commit per
file, as a function invoked per delivery commits.

  python_deltalake.py TABLE_URI LOG.json.gz [LOG.json.gz ...]
"""
import gzip
import json
import sys
from datetime import datetime

import pyarrow as pa
from deltalake import write_deltalake

TEXT = pa.string()


def struct(*names, **typed):
    return pa.struct([(n, TEXT) for n in names] + list(typed.items()))


ISSUER = struct("type", "principalId", "arn", "accountId", "userName")
IDENTITY = struct(
    "type", "principalId", "arn", "accountId", "accessKeyId", "userName", "invokedBy",
    "identityProvider", "credentialId",
    sessionContext=struct("sourceIdentity", "ec2RoleDelivery", "assumedRoot",
                          sessionIssuer=ISSUER,
                          attributes=struct("creationDate", "mfaAuthenticated")),
)
FREE_FORM = ["requestParameters", "responseElements", "additionalEventData",
             "serviceEventDetails", "edgeDeviceDetails"]
SCHEMA = pa.schema([
    ("eventVersion", TEXT), ("userIdentity", IDENTITY),
    ("eventTime", pa.timestamp("us", tz="UTC")), ("eventSource", TEXT), ("eventName", TEXT),
    ("awsRegion", TEXT), ("sourceIPAddress", TEXT), ("userAgent", TEXT), ("errorCode", TEXT),
    ("errorMessage", TEXT), *[(name, TEXT) for name in FREE_FORM], ("requestID", TEXT),
    ("eventID", TEXT), ("readOnly", pa.bool_()),
    ("resources", pa.list_(struct("ARN", "accountId", "type"))), ("eventType", TEXT),
    ("apiVersion", TEXT), ("managementEvent", pa.bool_()), ("recipientAccountId", TEXT),
    ("sharedEventID", TEXT), ("vpcEndpointId", TEXT), ("vpcEndpointAccountId", TEXT),
    ("eventCategory", TEXT), ("sessionCredentialFromConsole", TEXT),
    ("tlsDetails", struct("tlsVersion", "cipherSuite", "clientProvidedHostHeader")),
    ("event_date", pa.date32()),
])


def to_row(record):
    row = {name: record.get(name) for name in SCHEMA.names}
    for name in FREE_FORM:
        if row[name] is not None:
            row[name] = json.dumps(row[name], separators=(",", ":"))
    when = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
    row["eventTime"], row["event_date"] = when, when.date()
    return row


def main():
    table_uri, paths = sys.argv[1], sys.argv[2:]
    rows = 0
    for path in paths:
        with gzip.open(path, "rb") as log:
            records = json.load(log)["Records"]
        batch = pa.Table.from_pylist([to_row(r) for r in records], schema=SCHEMA)
        write_deltalake(table_uri, batch, mode="append", partition_by=["event_date"])
        rows += len(records)
    print(f"python deltalake: {rows} records from {len(paths)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
