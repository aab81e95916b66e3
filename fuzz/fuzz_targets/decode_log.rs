//! A log object as delivered (gzip or plain JSON, any bytes) through the decoder and the
//! record parser into Arrow batches: it may fail, never panic, and every batch it gives is
//! well-formed. The first byte picks the table's schema (even: CloudTrail, odd: Insights).
#![no_main]

use cloudtrail_delta::LogKind;
use cloudtrail_delta::decode::Limits;
use cloudtrail_delta::ingest::parse_log;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, object)) = data.split_first() else {
        return;
    };
    let kind = if selector % 2 == 0 {
        LogKind::CloudTrail
    } else {
        LogKind::Insights
    };
    let schema = kind.arrow_schema();
    let _ = parse_log(
        kind,
        "s3://fuzz/object.json.gz",
        std::io::Cursor::new(object.to_vec()),
        Limits::default(),
        |batch| {
            assert_eq!(batch.schema(), schema);
            true
        },
    );
});
