"""Tables whose schema is not this binary's: older ones (fewer columns, nested ones too) gain
this version's columns in one metadata commit, also when two processes upgrade at once; newer
ones (more columns) are written as they are, and compaction keeps their extra columns; one
whose column changed type fails, naming it. Tables are made by Python `deltalake` from rows
the binary wrote, with columns dropped or added."""
import json
import subprocess
import threading

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from logs import generate
from readback import check_rows, source_records, table_rows
from test_read_back import BIN

DROPPED_TOP = "tlsDetails"
DROPPED_NESTED = ("userIdentity", "inScopeOf")
DROPPED_IN_LIST = ("resources", "ARNPrefix")


def run(*args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300)


def ingest(table, logs):
    return run("ingest", "--table", table, "--insights-table", table.parent / "insights", logs)


def current_rows(tmp_path, seed):
    """Rows of this binary's table for a few generated logs, as a pyarrow table (with the
    partition column), and those logs' records."""
    logs = tmp_path / f"base-logs-{seed}"
    generate(logs, files=3, records=40, seed=seed)
    table = tmp_path / f"base-{seed}" / "ct"
    result = ingest(table, logs)
    assert result.returncode == 0, result.stderr
    return DeltaTable(str(table)).to_pyarrow_table(), source_records(logs, "CloudTrail")


def without(struct_type, name):
    return pa.struct([f for f in struct_type if f.name != name])


def older(rows):
    """`rows` as a release without tlsDetails, userIdentity.inScopeOf and resources[].ARNPrefix
    would have written them."""
    rows = rows.drop_columns([DROPPED_TOP])
    parent, child = DROPPED_NESTED
    index = rows.schema.get_field_index(parent)
    column = rows.column(parent)
    target = without(column.type, child)
    rows = rows.set_column(index, pa.field(parent, target), column.cast(target))
    parent, child = DROPPED_IN_LIST
    index = rows.schema.get_field_index(parent)
    column = rows.column(parent)
    target = pa.list_(without(column.type.value_type, child))
    return rows.set_column(index, pa.field(parent, target), column.cast(target))


def schema_of(table):
    return json.loads(DeltaTable(str(table)).schema().to_json())


def field(schema, *path):
    fields = schema["fields"]
    found = None
    for name in path:
        found = next((f for f in fields if f["name"] == name), None)
        if found is None:
            return None
        kind = found["type"]
        if isinstance(kind, dict) and kind.get("type") == "array":
            kind = kind["elementType"]
        fields = kind.get("fields", []) if isinstance(kind, dict) else []
    return found


def operations(table):
    return [entry["operation"] for entry in DeltaTable(str(table)).history()]


def assert_upgraded(table):
    schema = schema_of(table)
    assert field(schema, DROPPED_TOP)
    assert field(schema, *DROPPED_NESTED)
    assert field(schema, *DROPPED_IN_LIST)


def test_an_older_table_gains_this_versions_columns(tmp_path):
    rows, old_sources = current_rows(tmp_path, seed=71)
    table = tmp_path / "older" / "ct"
    write_deltalake(str(table), older(rows), partition_by=["event_date"])
    assert field(schema_of(table), DROPPED_TOP) is None

    logs = tmp_path / "new-logs"
    generate(logs, files=2, records=30, seed=72)
    result = ingest(table, logs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_upgraded(table)
    assert operations(table).count("ADD COLUMN") == 1, operations(table)

    new_sources = source_records(logs, "CloudTrail")
    all_rows = table_rows(table)
    new_rows = [r for r in all_rows if (r["_source_uri"], r["eventID"]) in new_sources]
    check_rows(new_rows, new_sources)
    old_rows = [r for r in all_rows if (r["_source_uri"], r["eventID"]) in old_sources]
    assert len(old_rows) == len(old_sources)
    assert all(r[DROPPED_TOP] is None for r in old_rows)

    # Compaction merges files of both schemas into one per day, values unchanged.
    before = sorted(json.dumps(r, sort_keys=True, default=str) for r in all_rows)
    result = run("maintain", "--table", table, "--insights-table", table.parent / "insights",
                 "--vacuum-retention-hours", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    after_rows = table_rows(table)
    assert sorted(json.dumps(r, sort_keys=True, default=str) for r in after_rows) == before
    assert len(DeltaTable(str(table)).file_uris()) == len({r["event_date"] for r in after_rows})

    # A re-run of the same logs adds nothing, and no second upgrade.
    again = ingest(table, logs)
    assert again.returncode == 0 and "already ingested: 2" in again.stdout, again.stdout
    assert operations(table).count("ADD COLUMN") == 1


def test_two_processes_upgrade_one_table_at_once(tmp_path):
    rows, _ = current_rows(tmp_path, seed=73)
    table = tmp_path / "older" / "ct"
    write_deltalake(str(table), older(rows), partition_by=["event_date"])
    results, sources = {}, {}
    for name, seed in (("a", 74), ("b", 75)):
        generate(tmp_path / name, files=2, records=20, seed=seed)
        sources.update(source_records(tmp_path / name, "CloudTrail"))

    def one(name):
        results[name] = ingest(table, tmp_path / name)

    threads = [threading.Thread(target=one, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stdout + result.stderr)
    assert_upgraded(table)
    assert 1 <= operations(table).count("ADD COLUMN") <= 2
    rows = [r for r in table_rows(table) if (r["_source_uri"], r["eventID"]) in sources]
    check_rows(rows, sources)


def test_a_newer_table_keeps_the_columns_this_version_does_not_know(tmp_path):
    rows, old_sources = current_rows(tmp_path, seed=76)
    future = pa.array([f"future-{i}" for i in range(rows.num_rows)])
    rows = rows.append_column("aFutureField", future)
    index = rows.schema.get_field_index("userIdentity")
    identity = rows.column("userIdentity").combine_chunks()
    nested = pa.StructArray.from_arrays(
        [identity.field(i) for i in range(identity.type.num_fields)] + [future],
        fields=list(identity.type) + [pa.field("aFutureChild", pa.string())],
        mask=pc.is_null(identity))
    rows = rows.set_column(index, pa.field("userIdentity", nested.type), nested)
    table = tmp_path / "newer" / "ct"
    write_deltalake(str(table), rows, partition_by=["event_date"])
    versions = len(operations(table))

    logs = tmp_path / "new-logs"
    generate(logs, files=2, records=25, seed=77)
    result = ingest(table, logs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ADD COLUMN" not in operations(table)
    assert len(operations(table)) == versions + 1
    new_sources = source_records(logs, "CloudTrail")
    all_rows = table_rows(table)
    new_rows = [r for r in all_rows if (r["_source_uri"], r["eventID"]) in new_sources]
    assert all(r.pop("aFutureField") is None for r in new_rows)
    for r in new_rows:
        if r["userIdentity"] is not None:
            assert r["userIdentity"].pop("aFutureChild") is None
    check_rows(new_rows, new_sources)

    def futures(table_rows_):
        return sorted((r["eventID"], r["aFutureField"],
                       (r["userIdentity"] or {}).get("aFutureChild"))
                      for r in table_rows_ if (r["_source_uri"], r["eventID"]) in old_sources)

    kept = futures(table_rows(table))
    assert len(kept) == rows.num_rows and all(f for _, f, _ in kept)
    result = run("maintain", "--table", table, "--insights-table", table.parent / "insights",
                 "--vacuum-retention-hours", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert futures(table_rows(table)) == kept, "compaction kept the newer release's columns"


def test_a_table_whose_column_changed_type_fails_naming_it(tmp_path):
    rows, _ = current_rows(tmp_path, seed=78)
    index = rows.schema.get_field_index("readOnly")
    rows = rows.set_column(index, pa.field("readOnly", pa.string()),
                           rows.column("readOnly").cast(pa.string()))
    table = tmp_path / "changed" / "ct"
    write_deltalake(str(table), rows, partition_by=["event_date"])
    logs = tmp_path / "new-logs"
    generate(logs, files=1, records=5, seed=79)
    result = ingest(table, logs)
    assert result.returncode != 0
    assert "column readOnly is string in the table, but boolean in this version" in result.stdout, \
        result.stdout + result.stderr
