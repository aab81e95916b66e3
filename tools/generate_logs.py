#!/usr/bin/env python3
"""Deterministic, realistic CloudTrail log files, written as CloudTrail delivers them: one
gzipped JSON document `{"Records":[...]}` per file, under CloudTrail's key layout

  AWSLogs/[<o-org>/]<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<id>.json.gz
  …/CloudTrail-NetworkActivity/…   network activity events (--kind network)
  …/CloudTrail-Insight/…           Insights events, start and end pairs (--kind insights)
  …/CloudTrail-Aggregated/…        five-minute summaries of data events (--kind aggregated)
  …/CloudTrail-Digest/…            one digest per hour and account-region (--digests)

The same arguments give the same bytes on every machine (gzip without a timestamp), so tests
and benchmarks read identical inputs. Records cover the fields AWS documents for each event
kind: identities of every type (IAM user, assumed role with session context, root, AWS
service, federated, SAML, web-identity and Identity Center users, assumed root), management
calls with request parameters and responses, errors, S3 data events with resources (listings
by prefix too), TLS details and additional event data, console sign-ins, service events,
re-deliveries with an addendum, enriched events' eventContext, edge devices; free-form objects
nest and hold non-ASCII text. Access keys and role sessions that calls create are then used by
later calls of their account, and Insights name the API whose calls they count.

  generate_logs.py --out DIR [--files N] [--records N] [--seed S] [--kind K] [--org o-…]
                   [--digests [--signing-key KEY.pem --public-keys-out keys.json]]
                   [--start 2024-04-30T22:00]

Digests are signed as CloudTrail signs them (SHA256withRSA over digestEndTime, the digest's
bucket/key, the SHA-256 of its uncompressed bytes and the previous digest's signature) when a
signing key is given: a test's own key pair, since CloudTrail's private keys are CloudTrail's.
The signature goes where a local copy can keep it, a `<digest>.sig` file holding its hex (in
S3 it is the object's `signature` metadata); --public-keys-out writes the public key as
`aws cloudtrail list-public-keys` prints it. Without a key, each digest carries a stand-in
signature and no sidecar.
  generate_logs.py --single --records N > one.json.gz     # one file, to stdout
"""
import argparse
import gzip
import hashlib
import io
import json
import pathlib
import random
import sys
from datetime import datetime, timedelta, timezone

ACCOUNTS = ["123456789012", "210987654321", "555555555555"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
FOLDERS = {"cloudtrail": "CloudTrail", "network": "CloudTrail-NetworkActivity",
           "insights": "CloudTrail-Insight", "aggregated": "CloudTrail-Aggregated"}
USER_AGENTS = [
    "aws-cli/2.17.4 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe command/s3api.list-buckets",
    "Boto3/1.35.2 md/Botocore#1.35.2 ua/2.0 os/linux#5.10.223-211.872.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.5 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.35.2",
    "aws-sdk-go-v2/1.30.3 ua/2.0 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#arm64 api/ec2#1.171.0",
    "aws-sdk-rust/1.3.9 ua/2.1 api/s3/1.42.0 os/linux lang/rust/1.80.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0",
    "AWS Internal",
    "cloudformation.amazonaws.com",
    "[aws-sdk-java/1.12.770 Linux/5.10.223 OpenJDK_64-Bit_Server_VM/17.0.12+7-LTS java/17.0.12 vendor/Amazon.com_Inc. cfg/retry-mode/standard]",
    "Terraform/1.9.4 (+https://www.terraform.io) terraform-provider-aws/5.62.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.3",
]
# (eventSource, eventName, readOnly): management calls.
CALLS = [
    ("sts.amazonaws.com", "AssumeRole", True),
    ("sts.amazonaws.com", "GetCallerIdentity", True),
    ("iam.amazonaws.com", "CreateAccessKey", False),
    ("iam.amazonaws.com", "AttachRolePolicy", False),
    ("iam.amazonaws.com", "ListRoles", True),
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("ec2.amazonaws.com", "RunInstances", False),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False),
    ("kms.amazonaws.com", "Decrypt", True),
    ("kms.amazonaws.com", "PutKeyPolicy", False),
    ("s3.amazonaws.com", "CreateBucket", False),
    ("s3.amazonaws.com", "PutBucketPolicy", False),
    ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", False),
    ("cloudtrail.amazonaws.com", "StopLogging", False),
    ("logs.amazonaws.com", "CreateLogStream", False),
    ("secretsmanager.amazonaws.com", "GetSecretValue", True),
]
ERRORS = [
    ("AccessDenied", "User: {arn} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"),
    ("Client.UnauthorizedOperation", "You are not authorized to perform this operation. User: {arn} is not authorized to perform: {action}"),
    ("ThrottlingException", "Rate exceeded"),
    ("NoSuchEntityException", "The role with name deploy-legacy cannot be found."),
    ("ValidationException", "Le paramètre « name » est invalide : caractères hors ASCII — 名前"),
]
TLS = [("TLSv1.3", "TLS_AES_128_GCM_SHA256"), ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
       ("TLSv1.3", "TLS_AES_256_GCM_SHA384")]


class Draw:
    """The seeded choices one file's records are made of."""

    def __init__(self, rng):
        self.rng = rng
        # Credentials calls issue, by account, which its later calls then use:
        # (userName, accessKeyId) of CreateAccessKey, (arn, accessKeyId) of AssumeRole.
        self.access_keys = {}
        self.sessions = {}

    def pick(self, items):
        return self.rng.choice(items)

    def chance(self, p):
        return self.rng.random() < p

    def hex(self, n):
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def upper(self, n):
        return "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(n))

    def uuid(self):
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def ip(self):
        return (f"{self.pick([3, 18, 34, 44, 52, 54, 99, 185])}.{self.rng.randrange(256)}."
                f"{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}")


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def identity(d, account):
    """A userIdentity of one of the documented types."""
    kind = d.pick(["IAMUser", "AssumedRole", "AssumedRole", "AssumedRole", "Root", "AWSService",
                   "FederatedUser", "IdentityCenterUser", "AWSAccount"])
    key = "ASIA" + d.upper(16)
    if kind == "IAMUser":
        if d.access_keys.get(account) and d.chance(0.4):
            name, key = d.pick(d.access_keys[account])
        else:
            name, key = d.pick(["alice", "bob", "ci-deployer", "zoë"]), "AKIA" + d.upper(16)
        return {"type": "IAMUser", "principalId": "AIDA" + d.upper(17),
                "arn": f"arn:aws:iam::{account}:user/{name}", "accountId": account,
                "accessKeyId": key, "userName": name}
    if kind == "AssumedRole":
        role = d.pick(["OrganizationAccountAccessRole", "AWSReservedSSO_Admin_0123456789abcdef",
                       "lambda-exec", "ReadOnly"])
        session = d.pick(["alice@example.com", "i-0" + d.hex(16), "1724150000000000000",
                          "botocore-session-" + str(d.rng.randrange(10**9))])
        if d.sessions.get(account) and d.chance(0.4):
            issued_arn, key = d.pick(d.sessions[account])
            role, session = issued_arn.split("/")[1:]
        out = {"type": "AssumedRole", "principalId": f"AROA{d.upper(17)}:{session}",
               "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
               "accountId": account, "accessKeyId": key,
               "sessionContext": {
                   "sessionIssuer": {"type": "Role", "principalId": "AROA" + d.upper(17),
                                     "arn": f"arn:aws:iam::{account}:role/{role}",
                                     "accountId": account, "userName": role},
                   "webIdFederationData": {},
                   "attributes": {"creationDate": None,
                                  "mfaAuthenticated": d.pick(["false", "true"])}}}
        if d.chance(0.2):
            out["sessionContext"]["sourceIdentity"] = "alice@example.com"
        if session.startswith("i-0"):
            out["sessionContext"]["ec2RoleDelivery"] = "2.0"
        if d.chance(0.1):
            out["sessionContext"]["webIdFederationData"] = {
                "federatedProvider": f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com",
                "attributes": {"aud": "sts.amazonaws.com", "sub": "repo:example/app:ref:refs/heads/main"}}
        if d.chance(0.05):
            out["invokedBy"] = "AWS Internal"
        return out
    if kind == "Root":
        out = {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
               "accountId": account, "accessKeyId": key}
        if d.chance(0.5):
            out["sessionContext"] = {"attributes": {"creationDate": None,
                                                    "mfaAuthenticated": "true"},
                                     "assumedRoot": "true"}
            out["inScopeOf"] = {"issuerType": "AWS::Organizations::Account",
                                "credentialsIssuedTo": f"arn:aws:iam::{account}:root",
                                "sourceAccount": ACCOUNTS[0],
                                "sourceArn": f"arn:aws:iam::{ACCOUNTS[0]}:root"}
        return out
    if kind == "AWSService":
        out = {"type": "AWSService",
               "invokedBy": d.pick(["cloudtrail.amazonaws.com", "config.amazonaws.com",
                                    "lambda.amazonaws.com", "autoscaling.amazonaws.com"])}
        if d.chance(0.3):
            out["inScopeOf"] = {"sourceArn": f"arn:aws:lambda:us-east-1:{account}:function:app",
                                "sourceAccount": account, "issuerType": "AWS::Lambda::Function",
                                "credentialsIssuedTo": f"arn:aws:iam::{account}:role/app"}
        return out
    if kind == "FederatedUser":
        return {"type": "FederatedUser", "principalId": f"{account}:build",
                "arn": f"arn:aws:sts::{account}:federated-user/build", "accountId": account,
                "accessKeyId": key,
                "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": "AIDA" + d.upper(17),
                                                     "arn": f"arn:aws:iam::{account}:user/ci-deployer",
                                                     "accountId": account, "userName": "ci-deployer"},
                                   "attributes": {"creationDate": None, "mfaAuthenticated": "false"}}}
    if kind == "IdentityCenterUser":
        return {"type": "IdentityCenterUser", "accountId": account,
                "onBehalfOf": {"userId": d.uuid(),
                               "identityStoreArn": f"arn:aws:identitystore::{account}:identitystore/d-{d.hex(10)}"},
                "credentialId": d.hex(40)}
    if d.chance(0.2):
        # Identities of AssumeRoleWithSAML and AssumeRoleWithWebIdentity calls.
        if d.chance(0.5):
            return {"type": "SAMLUser", "principalId": f"{d.hex(20)}=:alice", "userName": "alice",
                    "identityProvider": d.hex(20) + "="}
        sub = d.hex(21)
        return {"type": "WebIdentityUser", "principalId": f"accounts.google.com:{d.hex(12)}:{sub}",
                "userName": sub, "identityProvider": "accounts.google.com"}
    return {"type": "AWSAccount", "principalId": "AIDA" + d.upper(17),
            "accountId": d.pick(ACCOUNTS), "invokedBy": "AWS Internal"}


def management_event(d, account, region, when):
    source, name, read_only = d.pick(CALLS)
    who = identity(d, account)
    record = {
        "eventVersion": d.pick(["1.08", "1.09", "1.10", "1.11"]),
        "userIdentity": who,
        "eventTime": iso(when),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": d.pick([d.ip(), d.ip(), "AWS Internal", source]),
        "userAgent": d.pick(USER_AGENTS),
        "requestParameters": request_parameters(d, account, name),
        "responseElements": (response_elements(d, account, name)
                             if not read_only or name == "AssumeRole" else None),
        "requestID": d.uuid(),
        "eventID": d.uuid(),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": tls(d, f"{source.split('.')[0]}.{region}.amazonaws.com"),
    }
    if "sessionContext" in who:
        attributes = who["sessionContext"].get("attributes")
        if attributes is not None:
            attributes["creationDate"] = iso(when - timedelta(minutes=d.rng.randrange(1, 600)))
    if d.chance(0.12):
        code, message = d.pick(ERRORS)
        record["errorCode"] = code
        record["errorMessage"] = message.format(arn=who.get("arn", "arn:aws:iam::" + account + ":user/x"),
                                                action=f"{source.split('.')[0]}:{name}",
                                                resource=f"arn:aws:iam::{account}:role/admin")
        record["responseElements"] = None
    if name in ("AssumeRole", "CreateAccessKey", "Decrypt", "GetSecretValue"):
        record["resources"] = [{"accountId": account, "type": d.pick(["AWS::IAM::Role", "AWS::KMS::Key"]),
                                "ARN": f"arn:aws:iam::{account}:role/{d.pick(['admin', 'deploy'])}"}]
    if source == "sts.amazonaws.com" and name == "AssumeRole":
        record["sharedEventID"] = d.uuid()
    if d.chance(0.1):
        record["apiVersion"] = d.pick(["2006-03-01", "2015-03-31", "2016-11-15"])
    if d.chance(0.08):
        record["vpcEndpointId"] = "vpce-" + d.hex(17)
        record["vpcEndpointAccountId"] = account
    if d.chance(0.05):
        record["sessionCredentialFromConsole"] = "true"
    if d.chance(0.04):
        record["addendum"] = {"reason": d.pick(["DELIVERY_DELAY", "UPDATED_DATA", "SERVICE_OUTAGE"]),
                              "updatedFields": "sourceIPAddress",
                              "originalRequestID": d.uuid(), "originalEventID": d.uuid()}
    if d.chance(0.1) and record["eventVersion"] == "1.11":
        record["eventContext"] = {
            "requestContext": {"aws:MultiFactorAuthPresent": d.pick(["true", "false"]),
                               "aws:ViaAWSService": "false", "aws:PrincipalAccount": account},
            "tagContext": {"resourceTags": [{"arn": f"arn:aws:iam::{account}:role/admin",
                                             "tags": {"team": "platform", "cost-centre": "ü-42"}}],
                           "principalTags": {"project": d.pick(["atlas", "zeus"])}}}
    return record


def request_parameters(d, account, name):
    if name == "AssumeRole":
        return {"roleArn": f"arn:aws:iam::{account}:role/deploy", "roleSessionName": "deploy-" + d.hex(6),
                "durationSeconds": d.pick([900, 3600]), "tags": [{"key": "team", "value": "platform"}]}
    if name == "RunInstances":
        return {"instancesSet": {"items": [{"imageId": "ami-" + d.hex(17), "minCount": 1, "maxCount": d.rng.randrange(1, 5)}]},
                "instanceType": d.pick(["t3.micro", "m7g.large"]), "blockDeviceMapping": {},
                "monitoring": {"enabled": False}, "disableApiTermination": False}
    if name == "PutBucketPolicy":
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
                                                          "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
        return {"bucketName": "logs-" + d.hex(6), "bucketPolicy": policy, "Host": "s3.amazonaws.com"}
    if name in ("DescribeInstances", "ListRoles", "GetCallerIdentity"):
        return None if d.chance(0.5) else {"maxResults": 100, "filterSet": {}}
    return {"name": d.pick(["prod", "staging", "données-clients"]), "id": d.hex(12),
            "nested": {"depth": [1, 2.5, {"deeper": [True, None, "x"]}]}}


def response_elements(d, account, name):
    if name == "AssumeRole":
        session = "deploy-" + d.hex(6)
        key, arn = "ASIA" + d.upper(16), f"arn:aws:sts::{account}:assumed-role/deploy/{session}"
        d.sessions.setdefault(account, []).append((arn, key))
        return {"credentials": {"accessKeyId": key, "sessionToken": d.hex(40),
                                "expiration": "Aug 20, 2024, 11:34:56 PM"},
                "assumedRoleUser": {"assumedRoleId": "AROA" + d.upper(17) + ":" + session,
                                    "arn": arn}}
    if name == "CreateAccessKey":
        user, key = d.pick(["ci-deployer", "backup-bot"]), "AKIA" + d.upper(16)
        d.access_keys.setdefault(account, []).append((user, key))
        return {"accessKey": {"userName": user, "accessKeyId": key,
                              "status": "Active", "createDate": "Aug 20, 2024 10:34:56 PM"}}
    return {"requestId": d.uuid(), "_return": True} if d.chance(0.5) else None


def tls(d, host):
    version, cipher = d.pick(TLS)
    return {"tlsVersion": version, "cipherSuite": cipher, "clientProvidedHostHeader": host}


def console_sign_in(d, account, region, when):
    success = d.chance(0.8)
    record = management_event(d, account, "us-east-1", when)
    record.update({
        "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "eventType": "AwsConsoleSignIn", "readOnly": False, "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success" if success else "Failure"},
        "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home",
                                "MobileVersion": "No", "MFAUsed": d.pick(["Yes", "No"]),
                                "MFAIdentifier": f"arn:aws:iam::{account}:mfa/alice"},
        "userAgent": USER_AGENTS[4],
    })
    record.pop("errorCode", None)
    record.pop("errorMessage", None)
    if not success:
        record["errorMessage"] = "Failed authentication"
    return record


def data_event(d, account, region, when):
    bucket = d.pick(["app-assets", "audit-exports", "ml-datasets"]) + "-" + account
    key = d.pick(["index.html", "2024/08/20/export.csv.gz", "images/été/photo 1.jpg"])
    name = d.pick(["GetObject", "PutObject", "HeadObject", "DeleteObject"])
    record = management_event(d, account, region, when)
    record.update({
        "eventSource": "s3.amazonaws.com", "eventName": name,
        "readOnly": name in ("GetObject", "HeadObject"),
        "requestParameters": {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", "key": key},
        "responseElements": None if name != "PutObject" else {"x-amz-server-side-encryption": "aws:kms"},
        "additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                "bytesTransferredIn": 0.0, "bytesTransferredOut": float(d.rng.randrange(1 << 20)),
                                "AuthenticationMethod": "AuthHeader", "x-amz-id-2": d.hex(60)},
        "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                      {"accountId": account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
        "managementEvent": False, "eventCategory": "Data",
        "tlsDetails": tls(d, f"{bucket}.s3.{region}.amazonaws.com"),
    })
    if d.chance(0.1):
        # A listing names the objects by their prefix.
        record.update({
            "eventName": "ListObjects", "readOnly": True, "responseElements": None,
            "requestParameters": {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com",
                                  "prefix": "2024/", "list-type": "2"},
        })
        record["resources"][0] = {"type": "AWS::S3::Object", "ARNPrefix": f"arn:aws:s3:::{bucket}/2024/"}
    return record


def service_event(d, account, region, when):
    return {
        "eventVersion": "1.08",
        "userIdentity": {"accountId": account, "invokedBy": "cloudtrail.amazonaws.com"},
        "eventTime": iso(when), "eventSource": "cloudtrail.amazonaws.com",
        "eventName": d.pick(["CloudTrailInsightExported", "ScheduledDeletion"]),
        "awsRegion": region, "sourceIPAddress": "cloudtrail.amazonaws.com",
        "userAgent": "cloudtrail.amazonaws.com", "requestParameters": None,
        "responseElements": None, "eventID": d.uuid(), "readOnly": False,
        "eventType": "AwsServiceEvent", "managementEvent": True, "recipientAccountId": account,
        "serviceEventDetails": {"snapshotId": "snap-" + d.hex(17), "state": "completed",
                                "details": [{"k": "v", "n": 1}]},
        "sharedEventID": d.uuid(), "eventCategory": "Management",
    }


def edge_device_event(d, account, region, when):
    record = management_event(d, account, region, when)
    record.update({"eventSource": "s3.amazonaws.com", "eventName": "PutObject",
                   "edgeDeviceDetails": {"type": "outposts", "deviceID": "op-" + d.hex(17)}})
    return record


def network_event(d, account, region, when):
    denied = d.chance(0.3)
    source = d.pick(["s3.amazonaws.com", "kms.amazonaws.com", "secretsmanager.amazonaws.com"])
    record = {
        "eventVersion": "1.11",
        "userIdentity": {"type": "AssumedRole", "principalId": f"AROA{d.upper(17)}:app",
                         "arn": f"arn:aws:sts::{account}:assumed-role/app/app",
                         "accountId": account, "accessKeyId": "ASIA" + d.upper(16)},
        "eventTime": iso(when), "eventSource": source,
        "eventName": d.pick(["GetObject", "Decrypt", "GetSecretValue"]),
        "awsRegion": region, "sourceIPAddress": f"10.0.{d.rng.randrange(256)}.{d.rng.randrange(1, 255)}",
        "userAgent": d.pick(USER_AGENTS[:4]),
        "requestID": d.uuid(), "eventID": d.uuid(),
        "eventType": "AwsVpceEvent", "recipientAccountId": account,
        "sharedEventID": d.uuid(),
        "vpcEndpointId": "vpce-" + d.hex(17),
        "vpcEndpointAccountId": d.pick([account, ACCOUNTS[2]]),
        "eventCategory": "NetworkActivity",
    }
    if denied:
        record["errorCode"] = "VpceAccessDenied"
        record["errorMessage"] = ("The request was denied due to a VPC endpoint policy")
    return record


def insight_pair(d, account, region, when):
    insight = d.uuid()
    source, name = d.pick([("ec2.amazonaws.com", "RunInstances"),
                           ("iam.amazonaws.com", "AttachRolePolicy"), ("kms.amazonaws.com", "Decrypt")])
    kind = d.pick(["ApiCallRateInsight", "ApiErrorRateInsight"])
    start = when - timedelta(minutes=d.rng.randrange(5, 60))

    def record(state, t):
        details = {"state": state, "eventSource": source, "eventName": name,
                   "insightType": kind,
                   "insightContext": {"statistics": {"baseline": {"average": round(d.rng.random(), 7)},
                                                     "insight": {"average": round(d.rng.random() * 50, 7)},
                                                     "insightDuration": 3, "baselineDuration": 10079},
                                      "attributions": [{"attribute": "userIdentityArn",
                                                        "insight": [{"value": f"arn:aws:iam::{account}:role/app", "average": 3.5}],
                                                        "baseline": [{"value": f"arn:aws:iam::{account}:role/app", "average": 0.01}]}]}}
        if kind == "ApiErrorRateInsight":
            details["errorCode"] = "AccessDenied"
        return {"eventVersion": "1.08", "eventTime": iso(t), "awsRegion": region,
                "eventID": d.uuid(), "eventType": "AwsCloudTrailInsight",
                "recipientAccountId": account, "sharedEventID": insight,
                "insightDetails": details, "eventCategory": "Insight"}

    return [record("Start", start), record("End", when)]


# Aggregation templates: the primary dimension, and the dimensions of its details.
AGGREGATIONS = {"API_ACTIVITY": ("eventName", ["resourceARN", "userIdentity.arn"]),
                "RESOURCE_ACCESS": ("resourceARN", ["eventName"]),
                "USER_ACTIONS": ("userIdentity.arn", ["eventName", "sourceIPAddress"])}


def dimension_values(d, dimension, account):
    if dimension == "eventName":
        return ["GetObject", "PutObject", "HeadObject", "DeleteObject", "Invoke"]
    if dimension == "resourceARN":
        return [f"arn:aws:s3:::bucket-{n}-{account}" for n in range(1, 6)]
    if dimension == "userIdentity.arn":
        return [f"arn:aws:sts::{account}:assumed-role/app/{n}" for n in ("api", "batch", "etl")]
    return [d.ip() for _ in range(4)]


def statistics(d, dimension, account, total):
    names = d.rng.sample(dimension_values(d, dimension, account), k=d.rng.randrange(1, 4))
    counts = sorted((d.rng.randrange(1, max(2, total)) for _ in names), reverse=True)
    return [{"name": name, "value": count} for name, count in zip(names, counts)]


def aggregated_event(d, account, region, start):
    template = d.pick(sorted(AGGREGATIONS))
    primary, details = AGGREGATIONS[template]
    window = start.replace(second=0) - timedelta(minutes=start.minute % 5)
    total = d.rng.randrange(1, 5000)
    return {
        "eventVersion": "1.0", "accountId": account, "eventId": d.uuid(),
        "eventCategory": "Aggregated", "eventType": "AwsAggregatedEvent", "awsRegion": region,
        "eventSource": d.pick(["s3.amazonaws.com", "lambda.amazonaws.com", "dynamodb.amazonaws.com"]),
        "timeWindow": {"windowStart": iso(window), "windowEnd": iso(window + timedelta(minutes=5)),
                       "windowSize": "PT5M"},
        "summary": {
            "primaryDimension": {"dimension": primary,
                                 "statistics": statistics(d, primary, account, total)[:1],
                                 "aggregationType": "Count"},
            "details": [{"dimension": dimension,
                         "statistics": statistics(d, dimension, account, total),
                         "aggregationType": "Count"} for dimension in details],
        },
    }


CLOUDTRAIL_MIX = [(management_event, 60), (data_event, 20), (console_sign_in, 6),
                  (service_event, 4), (edge_device_event, 2)]


def records_for(kind, d, account, region, start, count):
    """`count` records (Insights: pairs) of a file delivered for the 5 minutes from `start`."""
    def when():
        # Mostly in the window, some up to 15 minutes late.
        return start + timedelta(seconds=d.rng.randrange(-900, 300) if d.chance(0.1)
                                 else d.rng.randrange(300))
    out = []
    for _ in range(count):
        if kind == "insights":
            out.extend(insight_pair(d, account, region, when()))
        elif kind == "aggregated":
            out.append(aggregated_event(d, account, region, when()))
        elif kind == "network":
            out.append(network_event(d, account, region, when()))
        else:
            makers, weights = zip(*CLOUDTRAIL_MIX)
            out.append(d.rng.choices(makers, weights)[0](d, account, region, when()))
    return out


def document(records):
    """The file's bytes, as CloudTrail delivers them: compact JSON, gzipped (no timestamp)."""
    text = json.dumps({"Records": records}, separators=(",", ":"), ensure_ascii=False).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(text)
    return text, buffer.getvalue()


def folder_of(org, account, kind_folder, region, t):
    org_part = f"{org}/" if org else ""
    return f"AWSLogs/{org_part}{account}/{kind_folder}/{region}/{t:%Y/%m/%d}"


def public_key_der(private_key):
    """The PKCS#1 DER of a private key's public key: what ListPublicKeys returns (base64)."""
    from cryptography.hazmat.primitives import serialization
    return private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.PKCS1)


def fingerprint(private_key):
    """The key's fingerprint, as digests name it: hex, 32 digits (the MD5 of its DER)."""
    return hashlib.md5(public_key_der(private_key)).hexdigest()


def public_keys(private_key, start=datetime(2020, 1, 1, tzinfo=timezone.utc),
                end=datetime(2030, 1, 1, tzinfo=timezone.utc)):
    """The key as `aws cloudtrail list-public-keys` prints it."""
    import base64
    return {"PublicKeyList": [{
        "Value": base64.b64encode(public_key_der(private_key)).decode(),
        "ValidityStartTime": start.isoformat(), "ValidityEndTime": end.isoformat(),
        "Fingerprint": fingerprint(private_key)}]}


def string_to_sign(body, text):
    """What a digest's signature covers."""
    return "\n".join([body["digestEndTime"], f'{body["digestS3Bucket"]}/{body["digestS3Object"]}',
                      hashlib.sha256(text).hexdigest(),
                      body["previousDigestSignature"] or "null"]).encode()


def sign(private_key, message):
    """SHA256withRSA (RSASSA-PKCS1-v1_5), in hex."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    return private_key.sign(message, padding.PKCS1v15(), hashes.SHA256()).hex()


def load_key(path):
    from cryptography.hazmat.primitives import serialization
    return serialization.load_pem_private_key(pathlib.Path(path).read_bytes(), password=None)


def digest(d, bucket, org, account, region, hour, files, previous, key_pair=None):
    """The digest of one hour of one account-region, signed with `key_pair` if given."""
    end = hour + timedelta(hours=1)
    key = (f"{folder_of(org, account, 'CloudTrail-Digest', region, end)}/"
           f"{account}_CloudTrail-Digest_{region}_main_{region}_{end:%Y%m%dT%H%M%SZ}.json.gz")
    times = [t for f in files for t in (f["oldestEventTime"], f["newestEventTime"])]
    body = {
        "awsAccountId": account,
        "digestStartTime": iso(hour), "digestEndTime": iso(end),
        "digestS3Bucket": bucket, "digestS3Object": key,
        "digestPublicKeyFingerprint": fingerprint(key_pair) if key_pair else d.hex(32),
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": max(times) if times else None,
        "oldestEventTime": min(times) if times else None,
        "previousDigestS3Bucket": previous and bucket,
        "previousDigestS3Object": previous and previous["key"],
        "previousDigestHashValue": previous and previous["hash"],
        "previousDigestHashAlgorithm": previous and "SHA-256",
        "previousDigestSignature": previous and previous["signature"],
        "logFiles": files,
    }
    text, data = document_plain(body)
    # Without a key, a stand-in for the signature, so that each digest still names its
    # predecessor's as CloudTrail's chain does.
    signature = sign(key_pair, string_to_sign(body, text)) if key_pair else d.hex(512)
    return key, data, {"key": key, "hash": hashlib.sha256(text).hexdigest(), "signature": signature}


def document_plain(body):
    text = json.dumps(body, separators=(",", ":")).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(text)
    return text, buffer.getvalue()


def generate(out, files, records, seed, kind, org=None, digests=False, start=None,
             bucket="cloudtrail-logs", signing_key=None):
    """Writes the files under `out`; returns their paths (not the `.sig` files of digests
    signed with `signing_key`, a private key or a PEM file's path)."""
    if isinstance(signing_key, (str, pathlib.Path)):
        signing_key = load_key(signing_key)
    rng = random.Random(seed)
    d = Draw(rng)
    start = start or datetime(2024, 4, 30, 22, 0, tzinfo=timezone.utc)
    written, listed = [], {}
    for i in range(files):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        region = REGIONS[(i // len(ACCOUNTS)) % len(REGIONS)]
        t = start + timedelta(minutes=5 * (i // (len(ACCOUNTS) * len(REGIONS))))
        recs = records_for(kind, d, account, region, t, records)
        text, data = document(recs)
        name = f"{account}_CloudTrail_{region}_{t:%Y%m%dT%H%MZ}_{d.upper(16)}.json.gz"
        key = f"{folder_of(org, account, FOLDERS[kind], region, t)}/{name}"
        path = pathlib.Path(out) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
        times = sorted(r["eventTime"] if "eventTime" in r else r["timeWindow"]["windowStart"]
                       for r in recs)
        hour = t.replace(minute=0)
        listed.setdefault((account, region, hour), []).append({
            "s3Bucket": bucket, "s3Object": key, "hashValue": hashlib.sha256(text).hexdigest(),
            "hashAlgorithm": "SHA-256", "newestEventTime": times[-1] if times else None,
            "oldestEventTime": times[0] if times else None})
    if digests:
        previous = {}
        for (account, region, hour), logs in sorted(listed.items()):
            key, data, previous[(account, region)] = digest(
                d, bucket, org, account, region, hour, logs, previous.get((account, region)),
                signing_key)
            path = pathlib.Path(out) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if signing_key:
                path.with_name(path.name + ".sig").write_text(previous[(account, region)]["signature"])
            written.append(path)
    return sorted(written)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder to write the AWSLogs/ tree under")
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--records", type=int, default=100, help="records per file (Insights: pairs)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kind", choices=sorted(FOLDERS), default="cloudtrail")
    parser.add_argument("--org", help="organization id: keys under AWSLogs/<org>/<account>/")
    parser.add_argument("--digests", action="store_true", help="also one digest per hour and account-region")
    parser.add_argument("--signing-key", help="PEM RSA private key to sign the digests with")
    parser.add_argument("--public-keys-out", help="write the signing key's public key here, as "
                        "`aws cloudtrail list-public-keys` prints it")
    parser.add_argument("--start", help="delivery time of the first files, UTC (default 2024-04-30T22:00)")
    parser.add_argument("--single", action="store_true", help="one file, to stdout")
    args = parser.parse_args()
    start = (datetime.fromisoformat(args.start).replace(tzinfo=timezone.utc)
             if args.start else None)
    if args.single:
        d = Draw(random.Random(args.seed))
        start = start or datetime(2024, 4, 30, 22, 0, tzinfo=timezone.utc)
        _, data = document(records_for(args.kind, d, ACCOUNTS[0], REGIONS[0], start, args.records))
        sys.stdout.buffer.write(data)
        return
    if not args.out:
        parser.error("--out is required (or --single)")
    key_pair = load_key(args.signing_key) if args.signing_key else None
    generate(args.out, args.files, args.records, args.seed, args.kind, args.org, args.digests,
             start, signing_key=key_pair)
    if args.public_keys_out:
        if not key_pair:
            parser.error("--public-keys-out needs --signing-key")
        pathlib.Path(args.public_keys_out).write_text(json.dumps(public_keys(key_pair), indent=2))


if __name__ == "__main__":
    main()
