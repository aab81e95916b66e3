//! # cloudtrail-delta
//!
//! Lands AWS CloudTrail log files in Delta Lake tables: each log object (gzipped
//! `{"Records":[…]}`) is streamed, parsed once into Arrow with a complete, typed CloudTrail
//! schema ([`parse`], the `cloudtrail-parse` crate), written as zstd Parquet partitioned by
//! `event_date`, and appended in one commit that records the object as ingested, so that every
//! object lands wholly, once.
//!
//! ```text
//! source ──► parse (route, decode, Arrow) ──► writer (Parquet) ──► table (one commit)
//! ```
//!
//! - [`source`]: log objects (local files, S3), the Lambda events that announce them, and
//!   the bucket and prefix a function may read;
//! - [`table`]: a Delta table of log records: creation, schema upgrades, idempotent commits
//!   coordinated as [`table::commit`] says (S3 conditional writes, or the DynamoDB lock table
//!   of the `delta-dynamodb-logstore` crate), and the exactly-once state that does not grow
//!   with history ([`table::ingested`], [`table::ingest_index`]);
//! - [`writer`]: record batches into Parquet files, uploaded in parts;
//! - [`ingest`]: the stages wired together, for one object or a batch of them;
//! - [`maintenance`]: compaction, VACUUM and log cleanup, on a schedule;
//! - [`settings`]: every setting of the CLI and both functions, read once;
//! - [`runtime`]: time and memory budgets, allocator settings, metrics, crash points.

pub use cloudtrail_parse as parse;

pub mod aws;
pub mod fuzz;
pub mod ingest;
pub mod maintenance;
pub mod runtime;
pub mod settings;
pub mod source;
pub mod table;
pub mod verify;
pub mod writer;

pub use cloudtrail_parse::LogKind;
pub use ingest::{IngestError, Ingester, Outcome, Report};
pub use settings::TableUris;
pub use source::SourceObject;
