//! A log object as delivered (gzip or plain JSON, any bytes) through the decoder and the
//! record parser into Arrow batches: it may fail, never panic, and every batch it gives has the
//! table's schema. See `cloudtrail_delta::fuzz::decode_log`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cloudtrail_delta::fuzz::decode_log(data);
});
