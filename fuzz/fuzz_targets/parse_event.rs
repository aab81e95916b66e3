//! Any JSON payload through the Lambda's event parser: it may be refused, never panic.
#![no_main]

use cloudtrail_delta::event::parse_invocation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = parse_invocation(&payload);
    }
});
