//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), here so that the fuzzers and the
//! stable replay of their inputs (`tests/fuzz_regressions.rs`) run exactly the same code.

use std::io::Cursor;

use crate::LogKind;
use crate::source::event::parse_invocation;
use cloudtrail_parse::decode::Limits;
use cloudtrail_parse::parse_log;

/// Any bytes as a log object (gzip or plain JSON) through the decoder and the record parser:
/// the first byte picks the schema (even: CloudTrail, odd: Insights). Gives the records
/// parsed, or why the object was refused. Panics only if a batch has another schema than
/// the table's.
pub fn decode_log(data: &[u8]) -> Result<u64, String> {
    let Some((&selector, object)) = data.split_first() else {
        return Err("empty input".into());
    };
    let kind = if selector % 2 == 0 {
        LogKind::CloudTrail
    } else {
        LogKind::Insights
    };
    let schema = kind.arrow_schema();
    parse_log(
        kind,
        "s3://fuzz/object.json.gz",
        &Default::default(),
        Cursor::new(object.to_vec()),
        Limits::default(),
        |batch| {
            assert_eq!(batch.schema(), schema, "a batch with another schema");
            true
        },
    )
    .map(|parsed| parsed.records)
    .map_err(|e| e.to_string())
}

/// Any bytes as a Lambda payload: `None` if they are not JSON, otherwise whether the event
/// parser accepted them.
pub fn parse_event(data: &[u8]) -> Option<bool> {
    let payload = serde_json::from_slice::<serde_json::Value>(data).ok()?;
    Some(parse_invocation(&payload).is_ok())
}
