"""docs/queries.md, the query cookbook: every DuckDB query runs over tables the binary wrote
from generated logs and returns exactly the rows computed here from the source JSON; the
Spark SQL and Athena versions parse in their dialects."""
import collections
import re
import shutil
import subprocess
from datetime import date, datetime, timezone

import pytest
import sqlglot

from duck import connect
from logs import generate
from readback import source_records
from test_read_back import BIN, ROOT

COOKBOOK = ROOT / "docs" / "queries.md"
DIALECTS = {"Spark SQL": "spark", "Athena": "athena", "DuckDB": "duckdb"}


def cookbook():
    """{number: (title, {dialect label: SQL})}: the numbered sections of the cookbook."""
    text = COOKBOOK.read_text()
    out = {}
    for section in re.finditer(r"^## (\d+)\. (.+?)\n(.*?)(?=^## |\Z)", text, re.M | re.S):
        blocks = re.findall(r"^\*(Spark SQL|Athena|DuckDB)\*\n\n```sql\n(.*?)```", section[3],
                            re.M | re.S)
        out[int(section[1])] = (section[2], dict(blocks))
    return out


def statements(sql):
    return [s.strip() for s in sql.split(";") if s.strip()]


# ---------------------------------------------------------------- answers from the JSON


def at(record, *path):
    """The value at `path` in a record (keys of objects), None when absent."""
    value = record
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def hour_of(time):
    return time[:13] + ":00:00Z"


def console(ct, outcome=None, mfa=None):
    return [r for _, r in ct if r.get("eventName") == "ConsoleLogin"
            and (outcome is None or at(r, "responseElements", "ConsoleLogin") == outcome)
            and (mfa is None or at(r, "additionalEventData", "MFAUsed") == mfa)]


def who(r):
    return at(r, "userIdentity", "arn")


DENIED = {"AccessDenied", "AccessDeniedException", "Client.UnauthorizedOperation"}
IAM_POLICY_CALLS = {
    "AttachRolePolicy", "AttachUserPolicy", "AttachGroupPolicy", "DetachRolePolicy",
    "DetachUserPolicy", "DetachGroupPolicy", "PutRolePolicy", "PutUserPolicy", "PutGroupPolicy",
    "DeleteRolePolicy", "DeleteUserPolicy", "DeleteGroupPolicy", "CreatePolicy", "DeletePolicy",
    "CreatePolicyVersion", "DeletePolicyVersion", "SetDefaultPolicyVersion",
    "UpdateAssumeRolePolicy"}
RESOURCE_POLICY_CALLS = {"PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey", "PutBucketPolicy",
                         "DeleteBucketPolicy", "PutBucketAcl"}
TRAIL_CALLS = {"StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors",
               "PutInsightSelectors", "DeleteEventDataStore"}
BUCKET = "audit-exports-123456789012"


def grouped(rows, key):
    groups = collections.defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def q1(ct, ins, agg):
    return [(r["eventTime"], who(r), r.get("sourceIPAddress"),
             at(r, "responseElements", "ConsoleLogin"), at(r, "additionalEventData", "MFAUsed"))
            for r in console(ct)]


def q2(ct, ins, agg):
    return [(arn, len(rs)) for arn, rs in grouped(console(ct, "Success", "No"), who).items()]


def q3(ct, ins, agg):
    return [(ip, len(rs), min(r["eventTime"] for r in rs), max(r["eventTime"] for r in rs))
            for ip, rs in grouped(console(ct, "Failure"), lambda r: r.get("sourceIPAddress")).items()]


def q4(ct, ins, agg):
    return [(r["eventTime"], r.get("recipientAccountId"), r.get("eventSource"), r.get("eventName"),
             r.get("sourceIPAddress"), r.get("errorCode"),
             at(r, "userIdentity", "sessionContext", "assumedRoot"))
            for _, r in ct if at(r, "userIdentity", "type") == "Root"
            and at(r, "userIdentity", "invokedBy") is None
            and r.get("eventType") not in (None, "AwsServiceEvent")]


def q5(ct, ins, agg):
    denied = [r for _, r in ct if r.get("errorCode") in DENIED]
    groups = grouped(denied, lambda r: (who(r), hour_of(r["eventTime"])))
    return [(arn, hour, len(rs), len({r.get("eventName") for r in rs} - {None}))
            for (arn, hour), rs in groups.items() if len(rs) >= 3]


def calls_named(ct, source, names):
    return [(r["eventTime"], who(r), r.get("eventName"), r.get("errorCode"))
            for _, r in ct if r.get("eventSource") == source and r.get("eventName") in names]


def q6(ct, ins, agg):
    return calls_named(ct, "iam.amazonaws.com", IAM_POLICY_CALLS)


def q7(ct, ins, agg):
    return [(r["eventTime"], who(r), r.get("eventSource"), r.get("eventName"), r.get("errorCode"),
             at(r, "requestParameters", "keyId") or at(r, "requestParameters", "bucketName"))
            for _, r in ct if r.get("eventName") in RESOURCE_POLICY_CALLS]


def created_keys(ct):
    return [r for _, r in ct if r.get("eventName") == "CreateAccessKey" and r.get("errorCode") is None]


def q8(ct, ins, agg):
    return [(r["eventTime"], who(r), at(r, "responseElements", "accessKey", "userName"),
             at(r, "responseElements", "accessKey", "accessKeyId")) for r in created_keys(ct)]


def q9(ct, ins, agg):
    by_key = grouped([r for _, r in ct], lambda r: at(r, "userIdentity", "accessKeyId"))
    joined = collections.defaultdict(list)
    for c in created_keys(ct):
        key = (at(c, "responseElements", "accessKey", "accessKeyId"),
               at(c, "responseElements", "accessKey", "userName"))
        joined[key].extend(by_key.get(key[0], []) if key[0] is not None else [])
    return [(key, user, len(uses), len({u.get("sourceIPAddress") for u in uses} - {None}),
             min((u["eventTime"] for u in uses), default=None))
            for (key, user), uses in joined.items()]


def q10(ct, ins, agg):
    by_key = grouped([r for _, r in ct], lambda r: at(r, "userIdentity", "accessKeyId"))
    joined = collections.defaultdict(list)
    for a in (r for _, r in ct if r.get("eventName") == "AssumeRole" and r.get("errorCode") is None):
        key = at(a, "responseElements", "credentials", "accessKeyId")
        if key is not None and key in by_key:
            joined[(at(a, "responseElements", "assumedRoleUser", "arn"), who(a))].extend(by_key[key])
    return [(arn, by, len(calls), len({c.get("eventName") for c in calls} - {None}))
            for (arn, by), calls in joined.items()]


def q11(ct, ins, agg):
    rows = [r for _, r in ct if r.get("eventCategory") == "Data"
            and r.get("eventSource") == "s3.amazonaws.com"
            and at(r, "requestParameters", "bucketName") == BUCKET]
    return [(arn, name, len(rs), sum(r.get("errorCode") is not None for r in rs))
            for (arn, name), rs in grouped(rows, lambda r: (who(r), r.get("eventName"))).items()]


def q12(ct, ins, agg):
    rows = [r for _, r in ct if r.get("eventCategory") == "NetworkActivity"
            and r.get("errorCode") == "VpceAccessDenied"]
    key = lambda r: (r.get("vpcEndpointId"), r.get("vpcEndpointAccountId"),  # noqa: E731
                     r.get("recipientAccountId"), r.get("eventSource"), who(r))
    return [(*k, len(rs)) for k, rs in grouped(rows, key).items()]


def insight_pairs(ins, outer):
    ends = grouped([r for r in ins if at(r, "insightDetails", "state") == "End"],
                   lambda r: r.get("sharedEventID"))
    for s in (r for r in ins if at(r, "insightDetails", "state") == "Start"):
        for e in ends.get(s.get("sharedEventID"), [None] if outer else []):
            yield s, e


def q13(ct, ins, agg):
    return [(s.get("sharedEventID"), at(s, "insightDetails", "eventSource"),
             at(s, "insightDetails", "eventName"), at(s, "insightDetails", "insightType"),
             s["eventTime"], e["eventTime"] if e else None)
            for s, e in insight_pairs(ins, outer=True)]


def q14(ct, ins, agg):
    out = collections.defaultdict(list)
    for s, e in insight_pairs(ins, outer=False):
        key = (s.get("sharedEventID"), at(s, "insightDetails", "eventSource"),
               at(s, "insightDetails", "eventName"))
        out[key].extend(c for _, c in ct if c.get("eventSource") == key[1]
                        and c.get("eventName") == key[2]
                        and s["eventTime"] <= c["eventTime"] <= e["eventTime"])
    return [(*key, len(calls), len({who(c) for c in calls} - {None})) for key, calls in out.items()]


def q15(ct, ins, agg):
    return [(r["eventTime"], r.get("eventID"), r.get("eventName"), at(r, "addendum", "reason"),
             at(r, "addendum", "updatedFields"), at(r, "addendum", "originalEventID"))
            for _, r in ct if r.get("addendum") is not None]


def deliveries(ct):
    return grouped(ct, lambda ur: (ur[1].get("eventID"), ur[1].get("recipientAccountId")))


def q16(ct, ins, agg):
    return [(*key, len(copies), len({uri for uri, _ in copies}))
            for key, copies in deliveries(ct).items() if len(copies) > 1]


def q17(ct, ins, agg):
    firsts = [min(copies, key=lambda ur: ur[0])[1] for copies in deliveries(ct).values()]
    return [(day, len(rs)) for day, rs in grouped(firsts, lambda r: r["eventTime"][:10]).items()]


def q18(ct, ins, agg):
    return [(r["eventTime"], who(r), r.get("eventName"), r.get("awsRegion"), r.get("errorCode"))
            for _, r in ct if r.get("eventSource") == "cloudtrail.amazonaws.com"
            and r.get("eventName") in TRAIL_CALLS]


def q19(ct, ins, agg):
    return [(r["eventTime"], who(r), r.get("awsRegion"), r.get("recipientAccountId"),
             r.get("errorCode")) for _, r in ct if r.get("eventSource") == "ec2.amazonaws.com"
            and r.get("eventName") == "AuthorizeSecurityGroupIngress"]


def q20(ct, ins, agg):
    rows = [r for _, r in ct if r.get("eventContext") is not None]
    key = lambda r: (at(r, "eventContext", "tagContext", "principalTags", "project"),  # noqa: E731
                     at(r, "eventContext", "requestContext", "aws:MultiFactorAuthPresent"))
    return [(*k, len(rs)) for k, rs in grouped(rows, key).items()]


def q21(ct, ins, agg):
    stats = [s for r in agg if at(r, "summary", "primaryDimension", "dimension") == "resourceARN"
             for s in at(r, "summary", "primaryDimension", "statistics")]
    return [(name, sum(s["value"] for s in ss), len(ss))
            for name, ss in grouped(stats, lambda s: s["name"]).items()]


ANSWERS = {int(name[1:]): f for name, f in globals().items() if re.fullmatch(r"q\d+", name)}


# ---------------------------------------------------------------- the tables and DuckDB


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """The three tables of generated logs (every kind, an organization's layout too), one
    CloudTrail file delivered twice; and the source records behind them."""
    tmp = tmp_path_factory.mktemp("cookbook")
    logs = tmp / "logs"
    trail = generate(logs, files=8, records=400, seed=41)
    # After midnight: the de-duplicated view counts two days.
    generate(logs, files=2, records=100, seed=42, org="o-aa11bb22cc",
             start=datetime(2024, 5, 1, 0, 5, tzinfo=timezone.utc))
    generate(logs, files=3, records=8, seed=43, kind="insights")
    generate(logs, files=2, records=120, seed=44, kind="network")
    generate(logs, files=2, records=60, seed=45, kind="aggregated")
    again = trail[3].with_name(trail[3].name.replace(".json.gz", "") + "Redelivered.json.gz")
    shutil.copyfile(trail[3], again)
    result = subprocess.run(
        [BIN, "ingest", "--table", str(tmp / "ct"), "--insights-table", str(tmp / "insights"),
         "--aggregated-table", str(tmp / "aggregated"), str(logs)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    ct = [*source_records(logs, "CloudTrail").items(),
          *source_records(logs, "CloudTrail-NetworkActivity").items()]
    ct = [(uri, record) for (uri, _), record in ct]
    ins = list(source_records(logs, "CloudTrail-Insight").values())
    agg = list(source_records(logs, "CloudTrail-Aggregated").values())
    assert len(ct) == 8 * 400 + 2 * 100 + 2 * 120 + 400
    return tmp, (ct, ins, agg)


@pytest.fixture(scope="module")
def duck(tables):
    tmp, _ = tables
    return connect({"cloudtrail": tmp / "ct", "cloudtrail_insights": tmp / "insights",
                    "cloudtrail_aggregated": tmp / "aggregated"})


def plain(value):
    """A DuckDB value as the answers write it: times as CloudTrail writes them."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical(rows):
    return sorted((tuple(plain(v) for v in row) for row in rows), key=repr)


def test_the_cookbook_answers_fifteen_questions_or_more_in_three_dialects():
    sections = cookbook()
    assert len(sections) >= 15
    for number, (title, blocks) in sections.items():
        assert set(blocks) == set(DIALECTS), f"{number}. {title}: {sorted(blocks)}"
    assert set(ANSWERS) == set(sections), "one answer per question"


@pytest.mark.parametrize("number", sorted(cookbook()))
def test_a_duckdb_query_returns_the_rows_of_the_source_json(number, tables, duck):
    title, blocks = cookbook()[number]
    *setup, query = statements(blocks["DuckDB"])
    for statement in setup:
        duck.execute(statement)
    got = canonical(tuple(row.values()) for row in duck.execute(query).to_arrow_table().to_pylist())
    expected = canonical(ANSWERS[number](*tables[1]))
    assert expected, f"{number}. {title}: the generated logs hold no answer, the test proves nothing"
    assert got == expected, f"{number}. {title}"


@pytest.mark.parametrize("number", [9, 14])
def test_some_keys_and_insights_have_calls_behind_them(number, tables, duck):
    """The joins of questions 9 (new keys and their use) and 14 (insights and their calls)
    find matches in the generated logs, not only the rows they keep without one."""
    *_, query = statements(cookbook()[number][1]["DuckDB"])
    rows = duck.execute(query).to_arrow_table().to_pylist()
    assert any(row["calls"] > 0 for row in rows)


@pytest.mark.parametrize("label", ["Spark SQL", "Athena"])
def test_the_spark_and_athena_versions_parse_in_their_dialects(label):
    for number, (title, blocks) in cookbook().items():
        for statement in statements(blocks[label]):
            try:
                sqlglot.parse_one(statement, read=DIALECTS[label])
            except sqlglot.errors.ParseError as error:
                pytest.fail(f"{number}. {title} ({label}): {error}")
