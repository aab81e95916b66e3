"""template.yaml as SAM expands it (aws-sam-translator, offline), its conditions and
intrinsics resolved for sets of parameters: what each parameter makes of the stack."""
import re

import pytest
from samtranslator.yaml_helper import yaml_parse

from aws_local import ROOT
from iam_policy import role_statements
from template_expansion import LOG_BUCKET, STACK_UUID, expand


@pytest.mark.parametrize("schedule, state", [("rate(6 hours)", "ENABLED"), ("disabled", "DISABLED")])
def test_the_maintenance_schedule_is_off_when_disabled(schedule, state):
    resources = expand(MaintenanceSchedule=schedule)
    rule = resources["MaintenanceFunctionSchedule"]
    assert rule["Type"] == "AWS::Events::Rule"
    assert rule["Properties"]["State"] == state


def test_the_new_bucket_frees_what_vacuum_deletes_under_the_tables_prefix():
    resources = expand(TablesPrefix="tables/", NoncurrentVersionDays=9, TemporaryCommitFileDays=40)
    rules = {r["Id"]: r for r in resources["LogBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["tables-noncurrent-versions"]["Status"] == "Enabled"
    assert rules["tables-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 9}
    assert rules["tables-expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True
    assert rules["tables-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1}
    assert {r["Prefix"] for r in rules.values() if "commit-files" not in r["Id"]} == {"tables/"}
    commit_files = [r for r in rules.values() if "commit-files" in r["Id"]]
    assert sorted(r["Prefix"] for r in commit_files) == [
        "tables/cloudtrail/_delta_log/_commit_", "tables/cloudtrail_aggregated/_delta_log/_commit_",
        "tables/cloudtrail_digests/_delta_log/_commit_", "tables/cloudtrail_insights/_delta_log/_commit_"]
    assert all(r["ExpirationInDays"] == 40 for r in commit_files)
    # Noncurrent versions kept for good when asked.
    off = expand(NoncurrentVersionDays=0)["LogBucket"]["Properties"]["LifecycleConfiguration"]
    assert next(r for r in off["Rules"] if r["Id"] == "tables-noncurrent-versions")["Status"] == "Disabled"


def test_a_tables_bucket_of_ones_own_gets_no_rules_on_the_log_bucket():
    resources = expand(TablesBucket="my-tables")
    assert "LifecycleConfiguration" not in resources["LogBucket"]["Properties"]


def parameter_accepts(name, value):
    """Whether `value` matches parameter `name`'s AllowedPattern (a Java regex; these
    patterns mean the same in Python's)."""
    template = yaml_parse((ROOT / "template.yaml").read_text())
    return re.fullmatch(template["Parameters"][name]["AllowedPattern"], value) is not None


@pytest.mark.parametrize("prefix, allowed", [
    ("delta/", True), ("org/tables/", True), ("tables-2026/", True),
    ("*/", False), ("AWSLogs/", False), ("x/AWSLogs/", False), ("AWSLogs/delta/", False),
    ("del*ta/", False), ("delta?/", False), ("/delta/", False), ("delta", False),
    ("a//b/", False), ("", False),
])
def test_the_tables_prefix_never_covers_the_logs_nor_holds_wildcards(prefix, allowed):
    assert parameter_accepts("TablesPrefix", prefix) is allowed


def test_the_tables_prefix_must_differ_from_the_log_prefix():
    template = yaml_parse((ROOT / "template.yaml").read_text())
    (assertion,) = template["Rules"]["TablesApartFromLogs"]["Assertions"]

    def holds(tables, logs):
        values = {"TablesPrefix": tables, "LogPrefix": logs}

        def evaluate(node):
            if "Ref" in node:
                return values[node["Ref"]]
            if "Fn::Equals" in node:
                a, b = map(evaluate, node["Fn::Equals"])
                return a == b
            if "Fn::Not" in node:
                return not evaluate(node["Fn::Not"][0])
            raise AssertionError(f"unexpected {node}")

        return evaluate(assertion["Assert"])

    assert holds("delta/", "")
    assert holds("delta/", "org-trail/")
    assert not holds("org-trail/", "org-trail/")


def queue_statements(**parameters):
    policy = expand(**parameters)["DeliveryQueuePolicy"]["Properties"]["PolicyDocument"]
    return {s["Sid"]: s for s in policy["Statement"]}


def test_only_the_stacks_own_rule_and_bucket_may_send_to_the_queue_over_tls():
    statements = queue_statements(ExistingLogBucket="trail-bucket")
    events = statements["ExistingBucketEvents"]
    assert events["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ExistingBucketRule", "Arn"]}}}
    deny = statements["DenyInsecureTransport"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # With a bucket of the stack's own there is no EventBridge rule to allow.
    assert "ExistingBucketEvents" not in queue_statements()
    assert "DenyInsecureTransport" in queue_statements()
    for statement in statements.values():
        if statement["Effect"] == "Allow":
            assert "aws:SourceArn" in str(statement["Condition"]), statement


TABLES = ("cloudtrail", "cloudtrail_insights", "cloudtrail_aggregated", "cloudtrail_digests")
ROLE = {"ingest": {"Fn::GetAtt": ["IngestFunctionRole", "Arn"]},
        "maintenance": {"Fn::GetAtt": ["MaintenanceFunctionRole", "Arn"]}}
WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ReplicateObject",
          "s3:ReplicateDelete"}


def statements(resource, resources):
    policy = resources[resource]["Properties"]["PolicyDocument"]
    return {s["Sid"]: s for s in policy["Statement"]}


def as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("log_prefix", ["", "org-trail/"])
def test_only_cloudtrail_writes_or_deletes_the_logs(log_prefix):
    policy = statements("LogBucketPolicy", expand(LogPrefix=log_prefix))
    deny = policy["DenyLogWritesButCloudTrail"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert set(deny["Action"]) == WRITES
    assert deny["Resource"] == f"${{LogBucket.Arn}}/{log_prefix}AWSLogs/*"
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:PrincipalServiceName": "cloudtrail.amazonaws.com"}}
    # The break-glass role is the one other principal let through.
    role = "arn:aws:iam::123456789012:role/restore-logs"
    deny = statements("LogBucketPolicy", expand(BreakGlassRoleArn=role))["DenyLogWritesButCloudTrail"]
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:PrincipalServiceName": "cloudtrail.amazonaws.com"},
        "ArnNotEquals": {"aws:PrincipalArn": role}}


def tables_deny(statement, bucket_arn, prefix="delta/"):
    assert (statement["Effect"], statement["Principal"]) == ("Deny", "*")
    assert set(statement["Action"]) == WRITES
    assert statement["Resource"] == [f"{bucket_arn}/{prefix}{name}/*" for name in TABLES]
    return statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]


def test_only_the_functions_write_or_delete_the_tables_in_the_log_bucket():
    policy = statements("LogBucketPolicy", expand(TablesPrefix="tables/"))
    allowed = tables_deny(policy["DenyTableWritesButFunctions"], "${LogBucket.Arn}", "tables/")
    assert allowed == [ROLE["ingest"], ROLE["maintenance"]]
    writer = "arn:aws:iam::123456789012:role/spark"
    policy = statements("LogBucketPolicy", expand(TablesWriterRoleArn=writer))
    assert tables_deny(policy["DenyTableWritesButFunctions"], "${LogBucket.Arn}") == [
        ROLE["ingest"], ROLE["maintenance"], writer]


def test_a_new_tables_bucket_gets_the_log_buckets_protections():
    resources = expand(TablesBucket="new", KmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/k",
                       AccessLogBucket="access-logs")
    bucket = resources["TablesBucketNew"]["Properties"]
    assert bucket["BucketName"] == f"cloudtrail-delta-tables-{STACK_UUID}"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    [encryption] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "arn:aws:kms:us-east-1:123456789012:key/k"}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == "access-logs"
    rules = {r["Id"] for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules == {r["Id"] for r in expand()["LogBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    policy = statements("TablesBucketNewPolicy", resources)
    assert policy["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allowed = tables_deny(policy["DenyTableWritesButFunctions"], "${TablesBucketNew.Arn}")
    assert allowed == [ROLE["ingest"], ROLE["maintenance"]]
    # The tables are no longer in the log bucket: no rules or denies for them there.
    assert "DenyTableWritesButFunctions" not in statements("LogBucketPolicy", resources)
    assert "LifecycleConfiguration" not in resources["LogBucket"]["Properties"]
    uri = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]["CLOUDTRAIL_TABLE_URI"]
    assert uri == f"s3://cloudtrail-delta-tables-{STACK_UUID}/delta/cloudtrail"


def test_an_existing_tables_bucket_is_left_to_its_owner():
    resources = expand(TablesBucket="my-tables")
    assert "TablesBucketNew" not in resources
    assert "DenyTableWritesButFunctions" not in statements("LogBucketPolicy", resources)


def test_cloudtrail_writes_for_the_named_trails_only():
    trail = "arn:aws:cloudtrail:us-east-1:123456789012:trail/org"
    policy = statements("LogBucketPolicy", expand(TrailArns=[trail]))
    assert policy["AWSCloudTrailAclCheck"]["Condition"] == {"StringEquals": {"aws:SourceArn": [trail]}}
    assert policy["AWSCloudTrailWrite"]["Condition"] == {"StringEquals": {
        "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": [trail]}}
    # Without TrailArns: any trail of the trail accounts.
    policy = statements("LogBucketPolicy", expand())
    assert policy["AWSCloudTrailWrite"]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def role_statements(resources, function):
    role = resources[f"{function}FunctionRole"]["Properties"]["Policies"]
    return [s for policy in role for s in policy["PolicyDocument"]["Statement"]]


def allowed(statements, action):
    return [s for s in statements if s["Effect"] == "Allow" and action in as_list(s["Action"])]


@pytest.mark.parametrize("log_prefix", ["", "delta/org/"])
def test_the_functions_write_only_their_tables_and_never_the_logs(log_prefix):
    resources = expand(LogPrefix=log_prefix)
    tables = [f"arn:aws:s3:::{LOG_BUCKET}/delta/{name}/*" for name in TABLES]
    for function in ("Ingest", "Maintenance"):
        found = role_statements(resources, function)
        [put] = allowed(found, "s3:PutObject")
        assert put["Resource"] == tables, function
        [never] = [s for s in found if s.get("Sid") == "NeverWriteLogs"]
        assert never["Effect"] == "Deny"
        assert set(never["Action"]) == {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"}
        assert never["Resource"] == f"arn:aws:s3:::{LOG_BUCKET}/{log_prefix}AWSLogs/*"
        [listing] = allowed(found, "s3:ListBucket")
        assert listing["Condition"] == {"StringLike": {"s3:prefix": [
            f"delta/{name}/*" for name in TABLES]}}
    # The ingest deletes only temporary commit files; maintenance rewrites and vacuums.
    [delete] = allowed(role_statements(resources, "Ingest"), "s3:DeleteObject")
    assert delete["Resource"] == [t[:-1] + "*_delta_log/_commit_*.json.tmp" for t in tables]
    [rewrite] = allowed(role_statements(resources, "Maintenance"), "s3:DeleteObject")
    assert rewrite["Resource"] == tables


def test_the_functions_claim_lock_items_of_their_tables_only():
    resources = expand(ExistingLockTable="delta_log")
    keys = [f"s3://{LOG_BUCKET}/delta/{name}{tail}"
            for name in TABLES for tail in ("", "/*")]
    for function in ("Ingest", "Maintenance"):
        [lock] = allowed(role_statements(resources, function), "dynamodb:PutItem")
        assert lock["Resource"] == "arn:aws:dynamodb:us-east-1:123456789012:table/delta_log"
        assert list(lock["Condition"]) == ["ForAllValues:StringLike"]
        assert sorted(lock["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]) == \
            sorted(keys)


def test_the_kms_key_serves_both_functions_through_s3_only():
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    resources = expand(KmsKeyArn=key)
    for function in ("Ingest", "Maintenance"):
        [grant] = allowed(role_statements(resources, function), "kms:Decrypt")
        assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
        assert grant["Resource"] == key
        assert grant["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert not allowed(role_statements(expand(), "Maintenance"), "kms:Decrypt")


def test_the_function_is_told_its_log_bucket_and_prefix():
    variables = expand(LogPrefix="org/")["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert (variables["LOG_BUCKET"], variables["LOG_PREFIX"]) == (LOG_BUCKET, "org/")
    variables = expand(ExistingLogBucket="trail-bucket")["IngestFunction"]["Properties"][
        "Environment"]["Variables"]
    assert variables["LOG_BUCKET"] == "trail-bucket"


def test_only_the_stacks_queues_redrive_to_the_dead_letter_queue_over_tls():
    resources = expand()
    names = [resources[q]["Properties"]["QueueName"] for q in ("DeliveryQueue", "VerifyQueue")]
    assert names == [f"cloudtrail-delta-delivery-{STACK_UUID}", f"cloudtrail-delta-verify-{STACK_UUID}"]
    assert resources["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"] == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [f"arn:aws:sqs:us-east-1:123456789012:{n}" for n in names]}
    for policy in ("DeadLetterQueuePolicy", "VerifyQueuePolicy"):
        deny = statements(policy, resources)["DenyInsecureTransport"]
        assert (deny["Effect"], deny["Action"]) == ("Deny", "sqs:*")


def test_each_digest_is_verified_through_the_verify_queue_and_alarmed_on():
    """The ingest function is told the verify queue and grace period, may send to and take
    from that queue (the queue invokes it), may list CloudTrail's public keys, and an alarm
    watches the three integrity metrics."""
    resources = expand(VerifyGraceMinutes=45)
    ingest = resources["IngestFunction"]["Properties"]
    env = ingest["Environment"]["Variables"]
    assert env["VERIFY_QUEUE_URL"] == {"Ref": "VerifyQueue"}
    assert env["VERIFY_GRACE_MINUTES"] == 45
    role = {s["Sid"]: s for s in role_statements(resources, "Ingest")
            if isinstance(s, dict) and "Sid" in s}
    assert "sqs:SendMessage" in role["VerifyQueue"]["Action"]
    assert role["VerifyQueue"]["Resource"] == {"Fn::GetAtt": ["VerifyQueue", "Arn"]}
    assert role["CloudTrailPublicKeys"]["Action"] == "cloudtrail:ListPublicKeys"
    mapping = resources["VerifyQueueMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["VerifyQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    alarm = resources["IntegrityAlarm"]["Properties"]
    watched = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert watched == {"LogFilesMissing", "LogFilesUnverified", "DigestSignatureInvalid"}
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_the_queue_bounds_the_functions_concurrency():
    mapping = expand()["DeliveryQueueMapping"]["Properties"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}
    mapping = expand(QueueMaxConcurrency=20)["DeliveryQueueMapping"]["Properties"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 20}


def test_access_logs_go_where_asked():
    assert "LoggingConfiguration" not in expand()["LogBucket"]["Properties"]
    logging = expand(AccessLogBucket="access-logs")["LogBucket"]["Properties"]["LoggingConfiguration"]
    assert logging == {"DestinationBucketName": "access-logs",
                       "LogFilePrefix": f"cloudtrail-delta/{LOG_BUCKET}/"}


def test_by_default_no_function_reserves_concurrency():
    """Lambda keeps 100 of an account's concurrency unreserved: any reservation would keep the
    stack from deploying in a new account with a small quota."""
    resources = expand()
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 2
    assert not [f for f in functions if "ReservedConcurrentExecutions" in f["Properties"]]
    ingest = expand(ReservedConcurrency=10)["IngestFunction"]["Properties"]
    assert ingest["ReservedConcurrentExecutions"] == 10


GLUE_TABLES = {"CloudTrailGlueTable": "cloudtrail", "InsightsGlueTable": "cloudtrail_insights",
               "AggregatedGlueTable": "cloudtrail_aggregated", "DigestsGlueTable": "cloudtrail_digests"}
TABLE_URIS = {"cloudtrail": "CLOUDTRAIL_TABLE_URI", "cloudtrail_insights": "INSIGHTS_TABLE_URI",
              "cloudtrail_aggregated": "AGGREGATED_TABLE_URI", "cloudtrail_digests": "DIGEST_TABLE_URI"}


@pytest.mark.parametrize("parameters", [{}, {"TablesBucket": "new", "TablesPrefix": "lake/"},
                                        {"TablesBucket": "my-tables", "GlueDatabaseName": "audit"}])
def test_the_tables_are_registered_in_glue_where_the_function_writes_them(parameters):
    """Each table is a Glue table of the stack's database that Athena reads as Delta (provider
    delta, the path as serde parameter, Spark's placeholder column), at the function's URI."""
    resources = expand(**parameters)
    database = resources["GlueDatabase"]["Properties"]["DatabaseInput"]["Name"]
    assert database == parameters.get("GlueDatabaseName", "cloudtrail")
    variables = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]
    for resource, name in GLUE_TABLES.items():
        glue = resources[resource]
        assert glue["Type"] == "AWS::Glue::Table"
        assert glue["Properties"]["DatabaseName"] == {"Ref": "GlueDatabase"}
        table = glue["Properties"]["TableInput"]
        assert table["Name"] == name and table["TableType"] == "EXTERNAL_TABLE"
        assert table["Parameters"]["spark.sql.sources.provider"] == "delta"
        storage = table["StorageDescriptor"]
        location = variables[TABLE_URIS[name]] + "/"
        assert storage["Location"] == storage["SerdeInfo"]["Parameters"]["path"] == location
        assert storage["Columns"] == [{"Name": "col", "Type": "array<string>"}]


def test_glue_registration_can_be_turned_off():
    resources = expand(RegisterTablesInGlue="false")
    assert not [name for name, r in resources.items() if r["Type"].startswith("AWS::Glue::")]


@pytest.mark.parametrize("name, allowed", [("cloudtrail", True), ("sec_logs_2026", True),
                                           ("CloudTrail", False), ("cloud-trail", False), ("", False)])
def test_the_glue_database_name_is_one_athena_accepts(name, allowed):
    assert parameter_accepts("GlueDatabaseName", name) is allowed
