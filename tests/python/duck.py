"""DuckDB with the delta extension the duckdb-extension-delta package ships, loaded from the
package's own signed file: no download, offline."""
import glob
import os

import duckdb


def delta_extension():
    """The delta extension the duckdb-extension-delta package ships, for this DuckDB."""
    import duckdb_extension_delta
    package = os.path.dirname(duckdb_extension_delta.__file__)
    found = glob.glob(f"{package}/extensions/v{duckdb.__version__}/delta.duckdb_extension")
    assert found, f"no delta extension for DuckDB {duckdb.__version__} in {package}"
    return found[0]


def connect(views):
    """A connection with a `delta_scan` view of each table: `views` maps names to folders."""
    con = duckdb.connect(config={"autoinstall_known_extensions": "false",
                                 "autoload_known_extensions": "false"})
    con.execute(f"LOAD '{delta_extension()}'")
    con.execute("SET TimeZone = 'UTC'")
    for view, folder in views.items():
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM delta_scan('{folder}')")
    return con
