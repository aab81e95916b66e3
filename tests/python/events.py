"""Lambda event payloads as AWS sends them: S3 notification records and SQS messages."""
import json
import urllib.parse


def s3_record(bucket, key, size, etag=None):
    """An S3 ObjectCreated notification record: the key form-encoded, as S3 sends it."""
    obj = {"key": urllib.parse.quote_plus(key, safe=""), "size": size,
           "sequencer": "0055AED6DCD90281E5"}
    if etag is not None:
        obj["eTag"] = etag
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2024-04-30T00:05:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:cloudtrail"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "cloudtrail-delta",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": obj},
    }


def sqs_message(message_id, body):
    """An SQS message of a Lambda event source mapping's batch, carrying `body` (JSON)."""
    return {"messageId": message_id, "receiptHandle": message_id, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:cloudtrail-delta",
            "body": json.dumps(body)}
