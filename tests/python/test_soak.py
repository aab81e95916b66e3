"""The short form of the soak (`make soak` runs the long one): a hundred log objects
delivered by 32 concurrent invocations, duplicated and out of order, through S3 and DynamoDB
that fail at random, with function processes killed at the crash points; an independent reader
then finds every source record exactly once, every value equal, and the log clean."""
import os

from faults import KINDS
from soak import run

OBJECTS = int(os.environ.get("SOAK_SHORT_OBJECTS", "100"))


def test_soak_short(tmp_path):
    result = run(objects=OBJECTS, workers=32, fault_rate=0.05, crash_rate=0.05, records=8,
                 seed=3, work_dir=tmp_path, queue_share=0.8, out=lambda line: None)
    print(result)
    assert result["problems"] == [], result
    for table in ("CloudTrail", "CloudTrail-Insight"):
        counts = result[table]
        assert counts["rows"] == counts["records"] > 0, result
        assert counts["lost"] == counts["duplicated"] == counts["altered"] == 0, result
    # Delivered more than once, landed once (no row duplicated, above).
    assert result["duplicate deliveries"] > 0, result
    # Every fault kind happened, and processes died.
    assert set(result["faults"]) == set(KINDS), result["faults"]
    assert result["crashes"] > 0, result
