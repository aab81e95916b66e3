#!/usr/bin/env python3
"""Peer: DuckDB, the fastest general-purpose JSON-to-Parquet tool at hand, on one thread. It
infers the schema from the whole file and writes zstd Parquet partitioned by event date, but
no Delta table: no transaction log, no commit, so strictly less work than an ingester.

  duckdb_parquet.py OUT_DIR LOG.json.gz [LOG.json.gz ...]
"""
import sys

import duckdb


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    db = duckdb.connect()
    db.execute("SET threads TO 1")
    for number, path in enumerate(paths):
        db.execute(f"""
            COPY (
                SELECT record.*, CAST(CAST(record.eventTime AS TIMESTAMP) AS DATE) AS event_date
                FROM (SELECT unnest(Records) AS record
                      FROM read_json('{path}', sample_size = -1,
                                     maximum_object_size = 2147483647))
            ) TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (event_date),
                          OVERWRITE_OR_IGNORE, FILENAME_PATTERN 'file-{number}-{{i}}')
        """)
    print(f"duckdb: {len(paths)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
