//! # cloudtrail-delta
//!
//! Lands AWS CloudTrail log files in Delta Lake tables: each log object (gzipped
//! `{"Records":[…]}`) is streamed, parsed once into Arrow with a complete, typed CloudTrail
//! schema, written as zstd Parquet partitioned by `event_date`, and appended in one commit
//! that records the object as ingested, so that every object lands wholly, once.
//!
//! The pipeline, one module per stage:
//!
//! - [`route`]: which table an object belongs to (CloudTrail, Insights) or why it is skipped;
//! - [`decode`]: gzip detection and framing of the document into records
//!   ([`container_scan`] finds where each one ends);
//! - [`columns`] and [`schema`]: parsing records straight into Arrow builders;
//!   [`rescue`] keeps whatever the schema cannot type;
//! - [`table`]: the Delta table (creation, idempotent commits); [`ingested`] reads the
//!   objects its recent commits hold, and [`ingest_index`] keeps every object it holds, so
//!   that exactly-once state does not grow with history; [`writer`] streams batches into its
//!   Parquet files, encoded as
//!   [`encoding`] chooses, sent in parts by [`upload`], described by [`file_stats`];
//! - [`ingest`]: the stages wired together for one object;
//! - [`source`]: identities of log objects and local listing;
//! - [`maintenance`]: compaction, VACUUM and log cleanup, on a schedule;
//! - [`metrics`]: an invocation's figures as CloudWatch Embedded Metric Format;
//! - [`budget`]: the time and memory an invocation's ingests may spend;
//! - [`memory`]: allocator settings the binaries apply at start.

pub mod aws;
pub mod budget;
pub mod columns;
pub mod container_scan;
pub mod crash;
pub mod decode;
pub mod encoding;
pub mod event;
pub mod file_stats;
pub mod fuzz;
pub mod ingest;
pub mod ingest_index;
pub mod ingested;
pub mod json_reader;
pub mod lambda;
pub mod logstore;
pub mod maintenance;
pub mod memory;
pub mod metrics;
pub mod rescue;
pub mod route;
pub mod schema;
pub mod scope;
pub mod source;
pub mod table;
pub mod upload;
pub mod writer;

pub use ingest::{IngestError, Ingester, Outcome, Report, TableUris};
pub use schema::LogKind;
pub use source::SourceObject;
