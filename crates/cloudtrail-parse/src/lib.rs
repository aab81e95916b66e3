//! AWS CloudTrail log objects into typed Arrow record batches.
//!
//! One thing, synchronous, with no AWS and no Delta in it: the bytes of a log object as
//! CloudTrail delivers it (gzip or plain JSON, `{"Records":[…]}`) become Arrow record batches
//! of its table's schema, decoded and parsed once, in a stream, with bounded memory whatever
//! the object's size.
//!
//! ```text
//! bytes ──► decode (gzip members) ──► framer (one record's JSON at a time, container_scan)
//!       ──► json_reader + columns (straight into Arrow builders; misfits to rescue)
//!       ──► RecordBatch of schema::<kind> (parse::parse_log)
//! ```
//!
//! [`route`] tells from an object's key which table its records belong to (or why it is not
//! a log); [`schema`] holds the three tables' schemas.

pub mod columns;
pub mod container_scan;
pub mod content_hash;
pub mod decode;
pub mod json_reader;
pub mod parse;
pub mod rescue;
pub mod route;
pub mod schema;

pub use content_hash::Sha256Hash;
pub use decode::Limits;
pub use parse::{BATCH_JSON_BYTES, BATCH_ROWS, ParseError, ParsedLog, parse_log};
pub use schema::LogKind;
