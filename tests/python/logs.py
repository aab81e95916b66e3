"""Log files for the tests, written as CloudTrail delivers them (gzipped, under the AWSLogs/
key layout): made by the team's generator, `../shared/bench/gen_cloudtrail.py` (or
`$CLOUDTRAIL_DELTA_GENERATOR`), when it is beside the project; otherwise synthesized from the bundled samples (their records, each file
with fresh eventIDs), so the tests run from any checkout."""
import copy
import gzip
import json
import os
import pathlib
import subprocess
import sys
import uuid

from readback import load

ROOT = pathlib.Path(__file__).resolve().parents[2]
GENERATOR = pathlib.Path(os.environ.get("CLOUDTRAIL_DELTA_GENERATOR",
                                        ROOT.parent / "shared" / "bench" / "gen_cloudtrail.py"))
SAMPLES = ROOT / "samples"
FOLDERS = {"cloudtrail": "CloudTrail", "insights": "CloudTrail-Insight"}


def generate(out, files, records, seed, kind="cloudtrail"):
    """Writes `files` log files of `records` records (Insights: pairs) under `out`; returns
    their paths in name order."""
    out = pathlib.Path(out)
    if GENERATOR.exists():
        subprocess.run([sys.executable, str(GENERATOR), "--out", str(out), "--files", str(files),
                        "--records", str(records), "--seed", str(seed), "--kind", kind],
                       check=True, capture_output=True)
    else:
        synthesize(out, files, records, seed, kind)
    return sorted(p for p in out.rglob("*") if p.is_file())


def synthesize(out, files, records, seed, kind):
    folder = FOLDERS[kind]
    pool = [r for p in sorted(SAMPLES.rglob("*.json.gz")) if f"/{folder}/" in str(p)
            for r in load(p)]
    per_file = records * 2 if kind == "insights" else records
    for i in range(files):
        chosen = []
        for j in range(per_file):
            record = copy.deepcopy(pool[(seed * 7919 + i * per_file + j) % len(pool)])
            record["eventID"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{kind}/{i}/{j}"))
            chosen.append(record)
        path = (out / "AWSLogs" / "123456789012" / folder / "us-east-1" / "2024" / "04" / "30"
                / f"123456789012_{folder}_us-east-1_20240430T2200Z_S{seed}F{i:04}.json.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(json.dumps({"Records": chosen}).encode()))
