//! One log object, from its bytes as delivered to Arrow record batches of its table's schema.

use std::collections::HashMap;
use std::io::Read;

use arrow::array::RecordBatch;

use crate::content_hash::{HashingReader, Sha256Hash};
use crate::decode::{DecodeError, Limits, RecordFramer, decompressed};
use crate::schema::digest::{DigestError, DigestSignature, parse_digest};
use crate::schema::{LogKind, RecordError};

/// Rows per Arrow batch handed from the parser to the writer, about 2 MB of Arrow memory for
/// CloudTrail records: larger batches are no faster and raise the peak memory.
pub const BATCH_ROWS: usize = 1024;

/// JSON bytes of the records of one batch, at most (plus the record that crosses it). A batch
/// is about 1.5 MB of JSON with ordinary records, but an event may take 256 KB (CloudTrail's
/// cap, and more under our own record limit), and 1 024 of those would be a quarter of a
/// gigabyte per batch, two alive: this keeps a batch's memory bounded by bytes, not by rows,
/// and keeps each string column's bytes far below Arrow's 2 GiB offset limit.
pub const BATCH_JSON_BYTES: usize = 4 << 20;

/// The largest digest read, uncompressed: a digest lists an hour's log files of one account
/// and region, a few hundred bytes each, so this is far beyond any real one.
pub const MAX_DIGEST_BYTES: u64 = 64 << 20;

/// Why a log object could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("record {index}: {source}")]
    Record { index: u64, source: RecordError },
    #[error("digest: {0}")]
    Digest(#[from] DigestError),
    /// The sink answered that it takes no more batches; its own error is the one to report.
    #[error("the writer stopped")]
    Stopped,
}

/// What parsing one log object came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedLog {
    pub records: u64,
    /// Decompressed JSON bytes read.
    pub json_bytes: u64,
    /// The SHA-256 of the decompressed bytes: what a digest lists for the log file.
    pub sha256: Sha256Hash,
}

/// Decodes one log object as delivered (gzip or plain JSON) and parses its records into Arrow
/// batches of at most [`BATCH_ROWS`] rows (fewer when their JSON passes [`BATCH_JSON_BYTES`]),
/// handing each to `sink` (which answers whether to go on). `metadata` is the object's user
/// metadata (where a digest's signature is).
pub fn parse_log<R: Read + Send + 'static>(
    kind: LogKind,
    uri: &str,
    metadata: &HashMap<String, String>,
    input: R,
    limits: Limits,
    mut sink: impl FnMut(RecordBatch) -> bool,
) -> Result<ParsedLog, ParseError> {
    let mut decoded = HashingReader::new(decompressed(input).map_err(DecodeError::from)?);
    if !kind.has_records() {
        // A digest is one small object (a line per log file of an hour), read whole.
        let limit = limits.max_json_bytes.min(MAX_DIGEST_BYTES);
        let mut text = Vec::new();
        (&mut decoded)
            .take(limit.saturating_add(1))
            .read_to_end(&mut text)
            .map_err(DecodeError::from)?;
        if text.len() as u64 > limit {
            return Err(DigestError::TooLarge { limit }.into());
        }
        let signature = DigestSignature::from_metadata(uri, metadata);
        let batch = parse_digest(&text, uri, &signature)?;
        let records = batch.num_rows() as u64;
        if !sink(batch) {
            return Err(ParseError::Stopped);
        }
        return Ok(ParsedLog {
            records,
            json_bytes: text.len() as u64,
            sha256: decoded.finish(),
        });
    }
    let mut framer = RecordFramer::new(decoded, limits);
    let mut builder = kind.batch_builder();
    let mut batch_bytes = 0;
    while let Some(record) = framer.next_record()? {
        batch_bytes += record.len();
        builder
            .append(record)
            .map_err(|source| ParseError::Record {
                index: framer.records_read() - 1,
                source,
            })?;
        if builder.len() >= BATCH_ROWS || batch_bytes >= BATCH_JSON_BYTES {
            batch_bytes = 0;
            if !sink(builder.finish(uri)) {
                return Err(ParseError::Stopped);
            }
        }
    }
    if !builder.is_empty() && !sink(builder.finish(uri)) {
        return Err(ParseError::Stopped);
    }
    let (records, json_bytes) = (framer.records_read(), framer.bytes_read());
    // The framer reads to the end of the input to see that nothing follows the document, so
    // the hash covers every byte.
    Ok(ParsedLog {
        records,
        json_bytes,
        sha256: framer.into_input().finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `sizes.len()` records, record `i` carrying a `requestParameters` text of
    /// `sizes[i]` bytes; gives the log and each record's JSON length.
    fn log_of(sizes: &[usize]) -> (Vec<u8>, Vec<usize>) {
        let records: Vec<String> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                format!(
                    r#"{{"eventVersion":"1.08","eventTime":"2024-04-30T22:00:00Z","eventID":"e{i}","requestParameters":{{"p":"{}"}}}}"#,
                    "x".repeat(size)
                )
            })
            .collect();
        let lengths = records.iter().map(String::len).collect();
        (
            format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes(),
            lengths,
        )
    }

    fn batch_rows(log: Vec<u8>) -> Vec<usize> {
        let mut rows = Vec::new();
        let parsed = parse_log(
            LogKind::CloudTrail,
            "file:///log.json",
            &HashMap::new(),
            std::io::Cursor::new(log),
            Limits::default(),
            |batch| {
                rows.push(batch.num_rows());
                true
            },
        )
        .expect("a valid log");
        assert_eq!(parsed.records as usize, rows.iter().sum::<usize>());
        rows
    }

    #[test]
    fn the_hash_is_of_the_uncompressed_bytes_whole() {
        use std::io::Write;
        let (log, _) = log_of(&[100; 3]);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&log).unwrap();
        let gzipped = gzip.finish().unwrap();
        for input in [log.clone(), gzipped] {
            let parsed = parse_log(
                LogKind::CloudTrail,
                "file:///log.json.gz",
                &HashMap::new(),
                std::io::Cursor::new(input),
                Limits::default(),
                |_| true,
            )
            .unwrap();
            assert_eq!(parsed.sha256, Sha256Hash::of(&log));
        }
        // Trailing whitespace is part of the file CloudTrail hashed.
        let mut spaced = log.clone();
        spaced.extend_from_slice(b"\n\n");
        let parsed = parse_log(
            LogKind::CloudTrail,
            "file:///log.json",
            &HashMap::new(),
            std::io::Cursor::new(spaced.clone()),
            Limits::default(),
            |_| true,
        )
        .unwrap();
        assert_eq!(parsed.sha256, Sha256Hash::of(&spaced));
    }

    #[test]
    fn batches_of_ordinary_records_close_at_the_row_count() {
        let (log, _) = log_of(&[100; 2500]);
        assert_eq!(
            batch_rows(log),
            [BATCH_ROWS, BATCH_ROWS, 2500 - 2 * BATCH_ROWS]
        );
    }

    #[test]
    fn batches_of_large_records_close_at_the_byte_bound() {
        let (log, lengths) = log_of(&[200_000; 50]);
        // Each batch takes records until their JSON reaches the bound: the one that crosses
        // it is the batch's last.
        let per_batch = BATCH_JSON_BYTES.div_ceil(lengths[0]);
        assert!(per_batch < BATCH_ROWS);
        assert_eq!(batch_rows(log), [per_batch, per_batch, 50 - 2 * per_batch]);
    }

    #[test]
    fn the_byte_bound_counts_from_each_batch_start() {
        // Small records, then one large one: the large one closes its batch, and the count of
        // bytes starts again after it.
        let mut sizes = vec![100; 10];
        sizes.push(BATCH_JSON_BYTES);
        sizes.extend([100; 10]);
        let (log, _) = log_of(&sizes);
        assert_eq!(batch_rows(log), [11, 10]);
    }
}
