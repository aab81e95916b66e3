//! Any payload through the Lambda's event parser: it may be refused, never panic. See
//! `cloudtrail_delta::fuzz::parse_event`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cloudtrail_delta::fuzz::parse_event(data);
});
