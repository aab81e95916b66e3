//! Replays the fuzz targets' seeds and every input a fuzz run once crashed on
//! (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`) on the stable toolchain: each must
//! be handled (accepted or refused) without a panic. See `fuzz/Cargo.toml` to run the fuzzers.

use std::path::{Path, PathBuf};

use cloudtrail_delta::fuzz::{decode_log, parse_event};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for folder in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n != ".keep") {
                let data = std::fs::read(&path).unwrap();
                out.push((path, data));
            }
        }
    }
    out
}

#[test]
fn decode_log_inputs_never_panic() {
    let inputs = inputs("decode_log");
    assert!(inputs.len() >= 3, "the seeds are missing");
    for (path, data) in inputs {
        let outcome = std::panic::catch_unwind(|| decode_log(&data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
        // The seeds are real logs: they must parse.
        if path.components().any(|c| c.as_os_str() == "seeds") {
            let records = outcome
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(records > 0, "{}", path.display());
        }
    }
}

#[test]
fn parse_event_inputs_never_panic() {
    let inputs = inputs("parse_event");
    assert!(inputs.len() >= 6, "the seeds are missing");
    for (path, data) in inputs {
        let outcome = std::panic::catch_unwind(|| parse_event(&data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
        if path.components().any(|c| c.as_os_str() == "seeds") {
            assert_eq!(
                outcome.unwrap(),
                Some(true),
                "{} is a valid event",
                path.display()
            );
        }
    }
}
