"""`cloudtrail-delta verify` against logs and digests signed with a key pair made here (CloudTrail's
private keys are CloudTrail's): a valid chain verifies, and each way a trail's files can be
tampered with is reported by name, with a non-zero exit."""
import gzip
import json
import os
import pathlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from logs import generate, generate_logs

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("CLOUDTRAIL_DELTA_BIN", str(ROOT / "target" / "debug" / "cloudtrail-delta"))
FINDINGS_EXIT = 3
# 13 five-minute steps over 15 account-regions: two hours of logs, so every account-region
# has a chain of two digests (22:00-23:00, then 23:00-00:00 naming the first).
FILES = 15 * 13


@pytest.fixture(scope="module")
def key_pair():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def trail(tmp_path_factory, key_pair):
    """The logs and signed digests of two hours, and the public keys file."""
    root = tmp_path_factory.mktemp("trail")
    generate(root / "logs", files=FILES, records=2, seed=31, digests=True, signing_key=key_pair)
    (root / "keys.json").write_text(json.dumps(generate_logs.public_keys(key_pair)))
    return root


def copy_of(trail, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(trail / "logs", logs)
    return logs


def verify(tmp_path, logs, keys, *extra, ingest=True):
    tables = ["--table", str(tmp_path / "ct"), "--insights-table", str(tmp_path / "insights"),
              "--digest-table", str(tmp_path / "digests")]
    if ingest:
        result = subprocess.run([BIN, "ingest", *tables, str(logs)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    return subprocess.run([BIN, "verify", *tables, "--from", "2024-04-30", "--to", "2024-04-30",
                           "--public-keys", str(keys), *extra], capture_output=True, text=True)


def findings(result):
    assert result.returncode == FINDINGS_EXIT, result.stdout + result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()
            if line.split("\t")[0] in {"missing", "hash-mismatch", "unlisted", "unsigned",
                                       "bad-signature", "chain-break"}]


def logs_of(logs, folder="CloudTrail"):
    return sorted(p for p in logs.rglob("*.json.gz") if folder in p.parts)


def digests_of(logs):
    return logs_of(logs, "CloudTrail-Digest")


def rewrite_gzip(path, change):
    text = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(change(text), mtime=0))


def test_a_valid_chain_verifies(trail, tmp_path):
    logs = copy_of(trail, tmp_path)
    result = verify(tmp_path, logs, trail / "keys.json", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["findings"] == [] and report["gaps"] == []
    assert report["digests"] == report["digests_valid"] == 30
    assert report["log_files_listed"] == report["log_files_verified"] == FILES
    assert report["log_files_ingested"] == FILES
    # The text form says the same.
    text = verify(tmp_path, logs, trail / "keys.json", ingest=False)
    assert text.returncode == 0 and "verified: no findings" in text.stdout, text.stdout


def test_a_tampered_log_file_is_a_hash_mismatch(trail, tmp_path):
    logs = copy_of(trail, tmp_path)
    victim = logs_of(logs)[7]
    # One byte of one record: a deletion hidden as a different event name.
    rewrite_gzip(victim, lambda text: text.replace(b'"eventName":"', b'"eventName":"X', 1))
    found = findings(verify(tmp_path, logs, trail / "keys.json"))
    assert [(f[0], f[1]) for f in found] == [("hash-mismatch", victim.resolve().as_uri())], found


def test_a_deleted_log_file_is_missing(trail, tmp_path):
    logs = copy_of(trail, tmp_path)
    victim = logs_of(logs)[3]
    victim.unlink()
    key = str(victim.relative_to(logs))
    found = findings(verify(tmp_path, logs, trail / "keys.json"))
    assert [(f[0], f[1]) for f in found] == [("missing", f"s3://cloudtrail-logs/{key}")], found


def test_an_extra_log_file_no_digest_lists_is_unlisted(trail, tmp_path):
    logs = copy_of(trail, tmp_path)
    # A planted file in the layout of a real one, within an hour its digest covers.
    real = logs_of(logs)[0]
    planted = real.with_name(real.name.replace("T2200Z_", "T2230Z_").replace(".json.gz", "P.json.gz"))
    [made] = generate(tmp_path / "other", files=1, records=3, seed=99)
    shutil.copy(made, planted)
    found = findings(verify(tmp_path, logs, trail / "keys.json"))
    assert [(f[0], f[1]) for f in found] == [("unlisted", planted.resolve().as_uri())], found
    # Within the grace period it is not reported yet.
    pending = verify(tmp_path, logs, trail / "keys.json", "--grace-minutes", str(10 ** 8),
                     ingest=False)
    assert pending.returncode == 0, pending.stdout


def test_a_forged_digest_is_a_bad_signature(trail, tmp_path):
    logs = copy_of(trail, tmp_path)
    # The forger alters a log and rewrites its digest to match, but cannot sign it.
    first_hour = [d for d in digests_of(logs) if d.name.endswith("T230000Z.json.gz")]
    digest = first_hour[0]
    body = json.loads(gzip.decompress(digest.read_bytes()))
    victim = logs / body["logFiles"][0]["s3Object"]
    rewrite_gzip(victim, lambda text: text.replace(b'"eventName":"', b'"eventName":"X', 1))
    body["logFiles"][0]["hashValue"] = generate_logs.hashlib.sha256(
        gzip.decompress(victim.read_bytes())).hexdigest()
    digest.write_bytes(gzip.compress(json.dumps(body, separators=(",", ":")).encode(), mtime=0))
    found = findings(verify(tmp_path, logs, trail / "keys.json"))
    kinds = {(f[0], f[1]) for f in found}
    assert ("bad-signature", digest.resolve().as_uri()) in kinds, found
    # The next digest of the chain names the forged one's true hash: the chain breaks there.
    assert any(f[0] == "chain-break" for f in found), found
    assert not any(f[0] in {"hash-mismatch", "missing", "unlisted"} for f in found), found


def test_a_deleted_digest_breaks_the_chain(trail, tmp_path):
    logs = copy_of(trail, tmp_path)
    first_hour = sorted(d for d in digests_of(logs) if d.name.endswith("T230000Z.json.gz"))
    gone = first_hour[0]
    gone.unlink()
    gone.with_name(gone.name + ".sig").unlink()
    found = findings(verify(tmp_path, logs, trail / "keys.json"))
    breaks = [f for f in found if f[0] == "chain-break"]
    assert len(breaks) == 1 and gone.name in breaks[0][2], found
    # The logs it listed are in no digest any more.
    assert {f[0] for f in found} == {"chain-break", "unlisted"}, found


def test_a_digest_without_its_signature_is_unsigned(trail, tmp_path):
    logs = copy_of(trail, tmp_path)
    digest = digests_of(logs)[5]
    digest.with_name(digest.name + ".sig").unlink()
    found = findings(verify(tmp_path, logs, trail / "keys.json"))
    assert ("unsigned", digest.resolve().as_uri()) in {(f[0], f[1]) for f in found}, found
    # Its successor names a signature the table cannot show: the chain is checked no further.
    assert {f[0] for f in found} <= {"unsigned", "chain-break"}, found


def test_a_key_that_is_not_cloudtrails_fails_every_signature(trail, tmp_path):
    logs = copy_of(trail, tmp_path)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = generate_logs.public_keys(other)
    # Another key under the fingerprint the digests name.
    keys["PublicKeyList"][0]["Fingerprint"] = json.loads(
        (trail / "keys.json").read_text())["PublicKeyList"][0]["Fingerprint"]
    (tmp_path / "wrong.json").write_text(json.dumps(keys))
    found = findings(verify(tmp_path, logs, tmp_path / "wrong.json"))
    assert {f[0] for f in found} == {"bad-signature"} and len(found) == 30, found


def test_a_log_file_overwritten_after_its_ingest_is_caught(trail, tmp_path):
    """The altered copy lands beside the original (new content, new ingest id): the table
    holds both, and verify names the one the digest does not vouch for."""
    logs = copy_of(trail, tmp_path)
    assert verify(tmp_path, logs, trail / "keys.json").returncode == 0
    victim = logs_of(logs)[11]
    rewrite_gzip(victim, lambda text: text.replace(b'"eventName":"', b'"eventName":"X', 1))
    found = findings(verify(tmp_path, logs, trail / "keys.json"))
    assert [(f[0], f[1]) for f in found] == [("hash-mismatch", victim.resolve().as_uri())], found


def readme_query(title):
    """The SQL block of the README that starts with `-- <title>`."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"```sql\n-- {title}\n") + len("```sql\n")
    return readme[start:readme.index("```", start)]


def test_the_readme_query_lists_the_rows_of_unverified_log_files(trail, tmp_path):
    """The README's query over the tables, after maintenance brought the index up to date:
    exactly the rows of the altered and the planted file."""
    from duck import connect
    from readback import load

    logs = copy_of(trail, tmp_path)
    altered = logs_of(logs)[2]
    rewrite_gzip(altered, lambda text: text.replace(b'"eventName":"', b'"eventName":"X', 1))
    real = logs_of(logs)[0]
    planted = real.with_name(real.name.replace("T2200Z_", "T2230Z_").replace(".json.gz", "P.json.gz"))
    [made] = generate(tmp_path / "other", files=1, records=3, seed=98)
    shutil.copy(made, planted)
    assert verify(tmp_path, logs, trail / "keys.json").returncode == FINDINGS_EXIT
    maintained = subprocess.run([BIN, "maintain", "--table", str(tmp_path / "ct"),
                                 "--insights-table", str(tmp_path / "insights"),
                                 "--digest-table", str(tmp_path / "digests")],
                                capture_output=True, text=True)
    assert maintained.returncode == 0, maintained.stdout + maintained.stderr
    con = connect({"cloudtrail": tmp_path / "ct", "cloudtrail_index": tmp_path / "ct" / "_ingest_index",
                   "cloudtrail_digests": tmp_path / "digests"})
    rows = con.execute(f"SELECT _source_uri, eventID FROM ({readme_query('unverified rows')})").fetchall()
    expected = {(path.resolve().as_uri(), record["eventID"])
                for path in (altered, planted) for record in load(path)}
    assert sorted(rows) == sorted(expected)


def test_without_a_keys_file_the_keys_come_from_list_public_keys(trail, tmp_path):
    """No --public-keys: verify asks CloudTrail's ListPublicKeys (the AWS SDK over HTTP, here
    to a stand-in on 127.0.0.1, since the emulator has no CloudTrail keys), following its
    pages, once per region the digests come from."""
    import base64
    import http.server
    import re
    import threading

    keys = json.loads((trail / "keys.json").read_text())["PublicKeyList"]
    asked = []

    class ListPublicKeys(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            assert self.headers["X-Amz-Target"] == "CloudTrail_20131101.ListPublicKeys"
            region = re.search(r"Credential=[^/]+/\d+/([^/]+)/cloudtrail/",
                               self.headers["Authorization"]).group(1)
            asked.append((region, body.get("NextToken")))
            if body.get("NextToken") is None:  # a first page with another key only
                page = {"PublicKeyList": [{"Value": base64.b64encode(b"other").decode(),
                                           "Fingerprint": "0" * 32}], "NextToken": "2"}
            else:
                page = {"PublicKeyList": [{**keys[0], "ValidityStartTime": 1577836800,
                                           "ValidityEndTime": 1893456000}]}
            data = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ListPublicKeys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    logs = copy_of(trail, tmp_path)
    tables = ["--table", str(tmp_path / "ct"), "--insights-table", str(tmp_path / "insights"),
              "--digest-table", str(tmp_path / "digests")]
    ingested = subprocess.run([BIN, "ingest", *tables, str(logs)], capture_output=True, text=True)
    assert ingested.returncode == 0, ingested.stderr
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_port}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1"}
    env.pop("PUBLIC_KEYS_FILE", None)
    try:
        result = subprocess.run([BIN, "verify", *tables, "--from", "2024-04-30",
                                 "--to", "2024-04-30"], capture_output=True, text=True, env=env)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "30/30 digests valid" in result.stdout, result.stdout
    regions = {region for region, _ in asked}
    assert regions == set(generate_logs.REGIONS)
    # Each region once (two pages), whatever the number of its digests.
    assert sorted(asked, key=repr) == sorted(((r, t) for r in regions for t in (None, "2")),
                                             key=repr), asked
