#!/usr/bin/env python3
"""Memory of a long-lived writer against the commits it has made (`make bench-memory`).

One process ingests N small log files into a local table, one commit each
(`cloudtrail-delta ingest --objects-per-commit 1`), as a warm Lambda in direct mode does
over N invocations. For each N it prints the peak resident size (`/usr/bin/time`), the wall
time, and the growth per commit between the smallest and the largest N. A flat writer holds
the same memory after 400 commits as after 100.

    python3 bench/commit_memory.py [--counts 100,400] [--records 50] [--binary PATH]
"""
import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from logs import generate  # noqa: E402


def run(binary, logs, table):
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M %e", binary, "ingest", "--objects-per-commit", "1",
         "--table", str(table / "cloudtrail"), "--insights-table", str(table / "insights"),
         str(logs)],
        capture_output=True, text=True, check=True)
    peak_kb, seconds = re.findall(r"^(\d+) ([\d.]+)$", result.stderr, re.M)[-1]
    return int(peak_kb) / 1024, float(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="100,400", help="commits per run, comma-separated")
    parser.add_argument("--records", type=int, default=50, help="records per file")
    parser.add_argument("--binary", default=str(ROOT / "target/release/cloudtrail-delta"))
    args = parser.parse_args()
    counts = sorted(int(n) for n in args.counts.split(","))
    work = pathlib.Path(tempfile.mkdtemp(prefix="cloudtrail-delta-memory-"))
    try:
        files = generate(work / "all", files=counts[-1], records=args.records, seed=23)
        rows = []
        for count in counts:
            logs = work / f"logs-{count}"
            for path in files[:count]:
                target = logs / path.relative_to(work / "all")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
            peak, seconds = run(args.binary, logs, work / f"table-{count}")
            rows.append((count, peak, seconds))
        print(f"{'commits':>8} {'peak RSS MB':>12} {'wall s':>8}")
        for count, peak, seconds in rows:
            print(f"{count:>8} {peak:>12.1f} {seconds:>8.1f}")
        if len(rows) > 1:
            (n0, m0, _), (n1, m1, _) = rows[0], rows[-1]
            print(f"growth: {(m1 - m0) * 1024 / (n1 - n0):.0f} KB per commit "
                  f"between {n0} and {n1} commits")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
