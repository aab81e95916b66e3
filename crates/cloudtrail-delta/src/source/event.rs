//! Lambda invocation payloads: which S3 objects an invocation asks us to ingest.
//!
//! Three deliveries reach the function:
//!
//! - S3 event notifications (`{"Records":[{"eventSource":"aws:s3",…}]}`), S3 invoking the
//!   function directly: every record is one created object, its key form-encoded;
//! - SQS batches (`{"Records":[{"eventSource":"aws:sqs",…}]}`) whose message bodies are S3
//!   notifications (S3 → SQS → Lambda) or EventBridge events (EventBridge → SQS → Lambda); each
//!   message succeeds or fails on its own (`batchItemFailures`);
//! - EventBridge "Object Created" events from `aws.s3`.
//!
//! An SQS message may instead ask for the verification of a digest's hour
//! (`{"cloudtrailDeltaVerify": {…}}`, a [`VerifyRequest`]), which the function sends itself
//! when a digest lands, delayed until the grace period has passed.
//!
//! Anything else is an [`EventError`] that says what was received.

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use aws_lambda_events::event::sqs::SqsEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One S3 object an event announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key, decoded (as S3 APIs take it).
    pub key: String,
    /// Another spelling of the key to try when `key` is not found: EventBridge events carry
    /// keys unencoded in AWS's examples, this is the form-decoded spelling in case one
    /// arrives encoded as S3 notifications do.
    pub alternate_key: Option<String>,
    pub size: Option<u64>,
    /// The ETag without quotes.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
}

impl ObjectRef {
    /// `s3://bucket/key`, the object's lineage URI.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// S3 notification or EventBridge event: the invocation succeeds only if every object does.
    Objects(Vec<ObjectRef>),
    /// An SQS batch: each message succeeds or fails on its own.
    Queue(Vec<QueueMessage>),
}

/// One SQS message of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    /// The id to report in `batchItemFailures`.
    pub message_id: String,
    /// The objects its body announces, or why the body could not be read.
    pub objects: Result<Vec<ObjectRef>, EventError>,
    /// The verification it asks for, if it is such a message (then it announces no object).
    pub verify: Option<VerifyRequest>,
}

/// The key of a verification request in an SQS message body.
pub const VERIFY_KEY: &str = "cloudtrailDeltaVerify";

/// A request to verify the hour a digest covers, once `due` has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// The digest object that landed (`s3://bucket/key`).
    pub digest: String,
    pub account: Option<String>,
    pub region: Option<String>,
    /// The hour it covers, in seconds since the epoch: from `start` to before `end`.
    pub start: i64,
    pub end: i64,
    /// When to verify (seconds since the epoch): the end plus the grace period.
    pub due: i64,
}

impl VerifyRequest {
    /// The SQS message body that carries it.
    pub fn to_body(&self) -> String {
        serde_json::json!({ VERIFY_KEY: self }).to_string()
    }
}

/// An event we cannot act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error(
        "unknown event shape (expected an S3 notification, an SQS batch or an EventBridge \
         \"Object Created\" event): {0}"
    )]
    UnknownShape(String),
    #[error("malformed {kind}: {reason}")]
    Malformed { kind: &'static str, reason: String },
    #[error("{kind} without {field}")]
    Missing {
        kind: &'static str,
        field: &'static str,
    },
}

/// Reads an invocation payload.
pub fn parse_invocation(payload: &Value) -> Result<Invocation, EventError> {
    if let Some(source) = first_record_source(payload) {
        return match source {
            "aws:s3" => parse_s3_notification(payload).map(Invocation::Objects),
            "aws:sqs" => parse_sqs_batch(payload).map(Invocation::Queue),
            other => Err(EventError::UnknownShape(format!(
                "records with eventSource {other:?}"
            ))),
        };
    }
    if is_eventbridge(payload) {
        return parse_eventbridge(payload).map(Invocation::Objects);
    }
    Err(EventError::UnknownShape(describe(payload)))
}

/// The `eventSource` of the first record of a `{"Records":[…]}` payload.
fn first_record_source(payload: &Value) -> Option<&str> {
    payload
        .get("Records")?
        .as_array()?
        .first()?
        .get("eventSource")?
        .as_str()
}

fn is_eventbridge(payload: &Value) -> bool {
    payload.get("detail-type").is_some() && payload.get("source").is_some()
}

/// A short description of an unrecognised payload for the error message.
fn describe(payload: &Value) -> String {
    match payload {
        Value::Object(map) if map.is_empty() => "an empty object".to_owned(),
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().take(8).map(String::as_str).collect();
            format!("an object with keys {keys:?}")
        }
        Value::Array(_) => "an array".to_owned(),
        other => format!("a JSON {}", json_type(other)),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn parse_s3_notification(payload: &Value) -> Result<Vec<ObjectRef>, EventError> {
    let event = S3Event::deserialize(payload).map_err(|e| EventError::Malformed {
        kind: "S3 event notification",
        reason: e.to_string(),
    })?;
    event
        .records
        .iter()
        .filter(|record| is_object_created(record))
        .map(s3_record_object)
        .collect()
}

/// S3 notifications for other event types (deletes, restores) have nothing to ingest.
fn is_object_created(record: &S3EventRecord) -> bool {
    record
        .event_name
        .as_deref()
        .is_none_or(|name| name.starts_with("ObjectCreated:"))
}

fn s3_record_object(record: &S3EventRecord) -> Result<ObjectRef, EventError> {
    const KIND: &str = "S3 event record";
    let entity = &record.s3;
    let bucket = entity.bucket.name.clone().ok_or(EventError::Missing {
        kind: KIND,
        field: "s3.bucket.name",
    })?;
    let encoded = entity.object.key.as_deref().ok_or(EventError::Missing {
        kind: KIND,
        field: "s3.object.key",
    })?;
    let key = decode_key(encoded).map_err(|reason| EventError::Malformed { kind: KIND, reason })?;
    Ok(ObjectRef {
        bucket,
        key,
        alternate_key: None,
        size: entity.object.size.and_then(|s| u64::try_from(s).ok()),
        etag: entity.object.e_tag.as_deref().map(unquote),
        version_id: entity.object.version_id.clone().filter(|v| !v.is_empty()),
        sequencer: entity.object.sequencer.clone(),
    })
}

/// Decodes a key as S3 notifications encode it: form encoding, `+` for a space and `%XX` for
/// any other byte that is not safe in a URL.
pub fn decode_key(encoded: &str) -> Result<String, String> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| format!("key {encoded:?} does not decode to UTF-8"))
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

fn parse_sqs_batch(payload: &Value) -> Result<Vec<QueueMessage>, EventError> {
    let batch = SqsEvent::deserialize(payload).map_err(|e| EventError::Malformed {
        kind: "SQS event",
        reason: e.to_string(),
    })?;
    batch
        .records
        .iter()
        .map(|message| {
            let message_id = message.message_id.clone().ok_or(EventError::Missing {
                kind: "SQS message",
                field: "messageId",
            })?;
            let (objects, verify) = match message.body.as_deref().map(parse_queued_body) {
                None => (
                    Err(EventError::Missing {
                        kind: "SQS message",
                        field: "body",
                    }),
                    None,
                ),
                Some(Ok(Queued::Objects(objects))) => (Ok(objects), None),
                Some(Ok(Queued::Verify(request))) => (Ok(Vec::new()), Some(request)),
                Some(Err(e)) => (Err(e), None),
            };
            Ok(QueueMessage {
                message_id,
                objects,
                verify,
            })
        })
        .collect()
}

/// What a queued message asks for.
enum Queued {
    Objects(Vec<ObjectRef>),
    Verify(VerifyRequest),
}

/// The body of a queued message, parsed once: a verification request, or the objects it
/// announces (see [`queued_objects`]).
fn parse_queued_body(body: &str) -> Result<Queued, EventError> {
    let value = body_json(body)?;
    match value.get(VERIFY_KEY) {
        Some(request) => serde_json::from_value(request.clone())
            .map(Queued::Verify)
            .map_err(|e| EventError::Malformed {
                kind: "verification request",
                reason: e.to_string(),
            }),
        None => queued_objects(&value).map(Queued::Objects),
    }
}

fn body_json(body: &str) -> Result<Value, EventError> {
    serde_json::from_str(body).map_err(|e| EventError::Malformed {
        kind: "SQS message body",
        reason: e.to_string(),
    })
}

/// The objects a queued message announces: an S3 notification, an EventBridge event, an SNS
/// envelope around either, or the `s3:TestEvent` S3 sends when a notification is configured
/// (nothing to ingest).
fn queued_objects(value: &Value) -> Result<Vec<ObjectRef>, EventError> {
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if value.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(message) = value.get("Message").and_then(Value::as_str)
    {
        return queued_objects(&body_json(message)?);
    }
    match parse_invocation(value)? {
        Invocation::Objects(objects) => Ok(objects),
        Invocation::Queue(_) => Err(EventError::UnknownShape(
            "an SQS batch inside an SQS message".to_owned(),
        )),
    }
}

/// The `detail` of an EventBridge event from `aws.s3`.
#[derive(Debug, Deserialize)]
struct S3Detail {
    bucket: Option<DetailBucket>,
    object: Option<DetailObject>,
}

#[derive(Debug, Deserialize)]
struct DetailBucket {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DetailObject {
    key: Option<String>,
    size: Option<u64>,
    etag: Option<String>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

fn parse_eventbridge(payload: &Value) -> Result<Vec<ObjectRef>, EventError> {
    const KIND: &str = "EventBridge event";
    let source = payload.get("source").and_then(Value::as_str);
    let detail_type = payload.get("detail-type").and_then(Value::as_str);
    if source != Some("aws.s3") {
        return Err(EventError::UnknownShape(format!(
            "an EventBridge event from {source:?}, not aws.s3"
        )));
    }
    if detail_type != Some("Object Created") {
        // Deletions, restores and the like: nothing to ingest.
        return Ok(Vec::new());
    }
    let detail = payload.get("detail").ok_or(EventError::Missing {
        kind: KIND,
        field: "detail",
    })?;
    let detail = S3Detail::deserialize(detail).map_err(|e| EventError::Malformed {
        kind: KIND,
        reason: e.to_string(),
    })?;
    let bucket = detail
        .bucket
        .and_then(|b| b.name)
        .ok_or(EventError::Missing {
            kind: KIND,
            field: "detail.bucket.name",
        })?;
    let object = detail.object.ok_or(EventError::Missing {
        kind: KIND,
        field: "detail.object",
    })?;
    let key = object.key.ok_or(EventError::Missing {
        kind: KIND,
        field: "detail.object.key",
    })?;
    let alternate_key = decode_key(&key).ok().filter(|decoded| *decoded != key);
    Ok(vec![ObjectRef {
        bucket,
        key,
        alternate_key,
        size: object.size,
        etag: object.etag.as_deref().map(unquote),
        version_id: object.version_id.filter(|v| !v.is_empty()),
        sequencer: object.sequencer,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_record(key: &str) -> Value {
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2024-04-30T00:05:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AROAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "10.0.0.1"},
            "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "cloudtrail-delta",
                "bucket": {"name": "logs", "arn": "arn:aws:s3:::logs"},
                "object": {
                    "key": key,
                    "size": 1234,
                    "eTag": "0123abcd",
                    "versionId": "v1",
                    "sequencer": "0055AED6DCD90281E5"
                }
            }
        })
    }

    #[test]
    fn s3_notification_lists_every_record_with_decoded_keys() {
        let payload = json!({"Records": [
            s3_record("AWSLogs/1/CloudTrail/us-east-1/2024/04/30/a.json.gz"),
            s3_record("my+logs/caf%C3%A9%2B1/b+c.json.gz"),
        ]});
        let Invocation::Objects(objects) = parse_invocation(&payload).unwrap() else {
            panic!("expected objects");
        };
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].bucket, "logs");
        assert_eq!(
            objects[0].key,
            "AWSLogs/1/CloudTrail/us-east-1/2024/04/30/a.json.gz"
        );
        assert_eq!(objects[1].key, "my logs/café+1/b c.json.gz");
        assert_eq!(objects[1].size, Some(1234));
        assert_eq!(objects[1].etag.as_deref(), Some("0123abcd"));
        assert_eq!(objects[1].version_id.as_deref(), Some("v1"));
        assert_eq!(objects[1].sequencer.as_deref(), Some("0055AED6DCD90281E5"));
        assert_eq!(objects[1].uri(), "s3://logs/my logs/café+1/b c.json.gz");
    }

    #[test]
    fn s3_notification_ignores_non_creations() {
        let mut removed = s3_record("k.json.gz");
        removed["eventName"] = json!("ObjectRemoved:Delete");
        let payload = json!({"Records": [removed, s3_record("k2.json.gz")]});
        let Invocation::Objects(objects) = parse_invocation(&payload).unwrap() else {
            panic!("expected objects");
        };
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key, "k2.json.gz");
    }

    #[test]
    fn sqs_batch_reads_each_message_on_its_own() {
        let s3_body = json!({"Records": [s3_record("a.json.gz")]}).to_string();
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}).to_string();
        let sns_body = json!({
            "Type": "Notification",
            "Message": json!({"Records": [s3_record("b.json.gz")]}).to_string()
        })
        .to_string();
        let payload = json!({"Records": [
            {"messageId": "m1", "body": s3_body, "eventSource": "aws:sqs"},
            {"messageId": "m2", "body": "not json", "eventSource": "aws:sqs"},
            {"messageId": "m3", "body": test_event, "eventSource": "aws:sqs"},
            {"messageId": "m4", "body": sns_body, "eventSource": "aws:sqs"},
        ]});
        let Invocation::Queue(messages) = parse_invocation(&payload).unwrap() else {
            panic!("expected a queue batch");
        };
        let ids: Vec<_> = messages.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2", "m3", "m4"]);
        assert_eq!(messages[0].objects.as_ref().unwrap()[0].key, "a.json.gz");
        assert!(matches!(
            messages[1].objects,
            Err(EventError::Malformed { .. })
        ));
        assert_eq!(messages[2].objects, Ok(Vec::new()));
        assert_eq!(messages[3].objects.as_ref().unwrap()[0].key, "b.json.gz");
        assert!(messages.iter().all(|m| m.verify.is_none()));
    }

    #[test]
    fn a_verification_request_reads_back_from_its_message() {
        let request = VerifyRequest {
            digest: "s3://b/AWSLogs/1/CloudTrail-Digest/us-east-1/2024/04/30/d.json.gz".into(),
            account: Some("1".into()),
            region: Some("us-east-1".into()),
            start: 1_714_514_400,
            end: 1_714_518_000,
            due: 1_714_528_800,
        };
        let payload = json!({"Records": [
            {"messageId": "v1", "body": request.to_body(), "eventSource": "aws:sqs"},
        ]});
        let Invocation::Queue(messages) = parse_invocation(&payload).unwrap() else {
            panic!("expected a queue batch");
        };
        assert_eq!(messages[0].verify.as_ref(), Some(&request));
        assert_eq!(messages[0].objects, Ok(Vec::new()));
    }

    #[test]
    fn eventbridge_object_created() {
        let payload = json!({
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2024-04-30T00:05:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:s3:::logs"],
            "detail": {
                "version": "0",
                "bucket": {"name": "logs"},
                "object": {
                    "key": "AWSLogs/1/CloudTrail/us-east-1/2024/04/30/a b.json.gz",
                    "size": 5,
                    "etag": "b1946ac92492d2347c6235b4d2611184",
                    "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                    "sequencer": "617f08299329d189"
                },
                "reason": "PutObject"
            }
        });
        let Invocation::Objects(objects) = parse_invocation(&payload).unwrap() else {
            panic!("expected objects");
        };
        assert_eq!(
            objects[0].key,
            "AWSLogs/1/CloudTrail/us-east-1/2024/04/30/a b.json.gz"
        );
        assert_eq!(objects[0].alternate_key, None);
        assert_eq!(objects[0].size, Some(5));
        assert_eq!(
            objects[0].version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );

        let mut encoded = payload.clone();
        encoded["detail"]["object"]["key"] = json!("x/a+b%3A.json.gz");
        let Invocation::Objects(objects) = parse_invocation(&encoded).unwrap() else {
            panic!("expected objects");
        };
        assert_eq!(objects[0].key, "x/a+b%3A.json.gz");
        assert_eq!(objects[0].alternate_key.as_deref(), Some("x/a b:.json.gz"));

        let mut deleted = payload;
        deleted["detail-type"] = json!("Object Deleted");
        assert_eq!(parse_invocation(&deleted), Ok(Invocation::Objects(vec![])));
    }

    #[test]
    fn unknown_shapes_say_what_arrived() {
        let err = parse_invocation(&json!({"hello": "world"})).unwrap_err();
        assert!(err.to_string().contains("unknown event shape"), "{err}");
        assert!(err.to_string().contains("hello"), "{err}");
        let err =
            parse_invocation(&json!({"Records": [{"eventSource": "aws:kinesis"}]})).unwrap_err();
        assert!(err.to_string().contains("aws:kinesis"), "{err}");
        let err = parse_invocation(&json!({"detail-type": "x", "source": "aws.ec2"})).unwrap_err();
        assert!(err.to_string().contains("aws.ec2"), "{err}");
        let err = parse_invocation(&json!(42)).unwrap_err();
        assert!(err.to_string().contains("number"), "{err}");
    }

    #[test]
    fn s3_record_without_key_is_malformed() {
        let mut record = s3_record("k");
        record["s3"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("key");
        let err = parse_invocation(&json!({"Records": [record]})).unwrap_err();
        assert_eq!(
            err,
            EventError::Missing {
                kind: "S3 event record",
                field: "s3.object.key"
            }
        );
    }
}
