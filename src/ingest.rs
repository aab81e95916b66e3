//! Ingesting one log object into its table: route → decode → parse into Arrow → write Parquet →
//! one commit.
//!
//! Decoding and parsing run on a blocking thread and hand bounded Arrow batches to the writer
//! through a two-slot channel, so parsing overlaps Parquet encoding and memory stays bounded.
//! Nothing becomes visible until the single commit at the end: an object that fails anywhere
//! lands nothing (files already uploaded stay unreferenced, for VACUUM to remove).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deltalake::errors::DeltaTableError;
use deltalake::writer::DeltaWriter;
use tokio::sync::mpsc;

use crate::decode::{DecodeError, Limits, RecordFramer, decompressed};
use crate::logstore::CommitMode;
use crate::route::{Route, SkipReason, route};
use crate::schema::{LogKind, RecordError};
use crate::source::SourceObject;
use crate::table::{CommitOutcome, LogTable};

/// Rows per Arrow batch handed from the parser to the writer. Up to four batches are alive at
/// once (being built, two queued, being encoded), about 3 MB each for CloudTrail records;
/// 8192-row batches cost 36 MB more peak RSS and were no faster.
pub const BATCH_ROWS: usize = 2 * 1024;

/// Why an object could not be ingested. Displays as `<uri>: <cause>`.
#[derive(Debug, thiserror::Error)]
#[error("{uri}: {cause}")]
pub struct IngestError {
    pub uri: String,
    pub cause: Cause,
}

/// The cause of an [`IngestError`].
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("record {index}: {source}")]
    Record { index: u64, source: RecordError },
    #[error("Delta table {table}: {source}")]
    Table {
        table: String,
        source: DeltaTableError,
    },
    #[error("the parser stopped unexpectedly: {0}")]
    Parser(String),
}

/// What ingesting one object came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The object's records were committed.
    Ingested(Report),
    /// The object was already in the table; nothing was added.
    AlreadyIngested { kind: LogKind },
    /// The object is not a log (digest, folder marker, other file).
    Skipped(SkipReason),
}

/// Figures for one ingested object.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub kind: LogKind,
    pub records: u64,
    /// Bytes of the object as stored (gzip).
    pub object_bytes: u64,
    /// Decompressed JSON bytes read.
    pub json_bytes: u64,
    /// Parquet files added.
    pub files: usize,
    pub version: u64,
    pub commit_retries: u64,
    /// Waiting on the object's bytes (local disk or S3).
    pub read: Duration,
    /// Decompressing and parsing into Arrow (on the parser thread).
    pub parse: Duration,
    /// Encoding and uploading Parquet (overlaps `parse`).
    pub write: Duration,
    pub commit: Duration,
}

/// Where the tables are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUris {
    pub cloudtrail: String,
    pub insights: String,
}

/// Ingests log objects into the CloudTrail and Insights tables, keeping table handles open
/// across objects (they are refreshed incrementally, never reloaded).
pub struct Ingester {
    uris: TableUris,
    storage_options: HashMap<String, String>,
    commit_mode: CommitMode,
    tables: HashMap<LogKind, LogTable>,
    limits: Limits,
}

impl Ingester {
    /// An ingester into the tables at `uris`, committing with S3 conditional writes and the
    /// storage options of the environment.
    pub fn new(uris: TableUris) -> Self {
        Self {
            uris,
            storage_options: HashMap::new(),
            commit_mode: CommitMode::ConditionalPut,
            tables: HashMap::new(),
            limits: Limits::default(),
        }
    }

    /// Options for the tables' object store (delta-rs storage options).
    pub fn with_storage_options(mut self, options: HashMap<String, String>) -> Self {
        self.storage_options = options;
        self
    }

    /// How commits to tables on S3 are coordinated (see [`crate::logstore`]).
    pub fn with_commit_mode(mut self, mode: CommitMode) -> Self {
        self.commit_mode = mode;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The opened table of a kind, if any object of that kind was ingested.
    pub fn table(&self, kind: LogKind) -> Option<&LogTable> {
        self.tables.get(&kind)
    }

    fn uri(&self, kind: LogKind) -> &str {
        match kind {
            LogKind::CloudTrail => &self.uris.cloudtrail,
            LogKind::Insights => &self.uris.insights,
        }
    }

    async fn open_table(&mut self, kind: LogKind) -> Result<&mut LogTable, Cause> {
        if !self.tables.contains_key(&kind) {
            let uri = self.uri(kind).to_owned();
            let table =
                LogTable::open_or_create(&uri, kind, &self.storage_options, &self.commit_mode)
                    .await
                    .map_err(|source| Cause::Table { table: uri, source })?;
            self.tables.insert(kind, table);
        }
        Ok(self.tables.get_mut(&kind).expect("inserted above"))
    }

    /// Ingests one object; `open` gives its bytes as delivered (gzip or plain JSON).
    pub async fn ingest<R, F>(
        &mut self,
        object: &SourceObject,
        open: F,
    ) -> Result<Outcome, IngestError>
    where
        R: Read + Send + 'static,
        F: FnOnce() -> std::io::Result<R> + Send + 'static,
    {
        let kind = match route(&object.key) {
            Route::Skip(reason) => return Ok(Outcome::Skipped(reason)),
            Route::Ingest(kind) => kind,
        };
        self.ingest_as(kind, object, open)
            .await
            .map_err(|cause| IngestError {
                uri: object.uri.clone(),
                cause,
            })
    }

    async fn ingest_as<R, F>(
        &mut self,
        kind: LogKind,
        object: &SourceObject,
        open: F,
    ) -> Result<Outcome, Cause>
    where
        R: Read + Send + 'static,
        F: FnOnce() -> std::io::Result<R> + Send + 'static,
    {
        let limits = self.limits;
        let table = self.open_table(kind).await?;
        let table_error = |table: &LogTable| {
            let uri = table.uri();
            move |source| Cause::Table { table: uri, source }
        };
        table.refresh().await.map_err(table_error(table))?;
        let ingest_id = object.ingest_id();
        if table
            .contains(&ingest_id)
            .await
            .map_err(table_error(table))?
        {
            return Ok(Outcome::AlreadyIngested { kind });
        }

        let (batches, mut received) = mpsc::channel(2);
        let uri = object.uri.clone();
        let parser =
            tokio::task::spawn_blocking(move || parse_object(kind, &uri, open, limits, batches));

        let mut writer = table.writer().map_err(table_error(table))?;
        let mut write_time = Duration::ZERO;
        let mut failure = None;
        while let Some(batch) = received.recv().await {
            let started = Instant::now();
            if let Err(e) = writer.write(batch).await {
                failure = Some(table_error(table)(e));
                break;
            }
            write_time += started.elapsed();
        }
        drop(received); // stops the parser if the writer failed
        let parsed = parser.await.map_err(|e| Cause::Parser(e.to_string()))?;
        let parsed = match (failure, parsed) {
            (Some(cause), _) | (None, Err(cause)) => {
                writer.reset();
                return Err(cause);
            }
            (None, Ok(parsed)) => parsed,
        };
        let started = Instant::now();
        let adds = match writer.flush().await {
            Ok(adds) => adds,
            Err(e) => {
                writer.reset();
                return Err(table_error(table)(e));
            }
        };
        write_time += started.elapsed();
        let files = adds.len();

        crate::crash::point(crate::crash::BEFORE_COMMIT);
        let started = Instant::now();
        let outcome = table
            .commit(adds, &ingest_id, &object.uri)
            .await
            .map_err(table_error(table))?;
        let commit = started.elapsed();
        Ok(match outcome {
            CommitOutcome::AlreadyIngested => Outcome::AlreadyIngested { kind },
            CommitOutcome::Committed { version, retries } => Outcome::Ingested(Report {
                kind,
                records: parsed.records,
                object_bytes: parsed.object_bytes,
                json_bytes: parsed.json_bytes,
                files,
                version,
                commit_retries: retries,
                read: parsed.read,
                parse: parsed.elapsed.saturating_sub(parsed.read),
                write: write_time,
                commit,
            }),
        })
    }
}

struct Parsed {
    records: u64,
    object_bytes: u64,
    json_bytes: u64,
    /// Time in the object reader's `read`.
    read: Duration,
    /// Time on the parser thread, reading included.
    elapsed: Duration,
}

/// Counts the bytes read from an object and the time spent waiting on them.
struct Metered<R> {
    inner: R,
    meter: Arc<Meter>,
}

#[derive(Default)]
struct Meter {
    bytes: AtomicU64,
    nanos: AtomicU64,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let started = Instant::now();
        let result = self.inner.read(buf);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.meter.nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Ok(n) = result {
            self.meter.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        result
    }
}

/// Decodes and parses one object, sending full batches to the writer.
fn parse_object<R: Read + Send + 'static>(
    kind: LogKind,
    uri: &str,
    open: impl FnOnce() -> std::io::Result<R>,
    limits: Limits,
    batches: mpsc::Sender<arrow::array::RecordBatch>,
) -> Result<Parsed, Cause> {
    let started = Instant::now();
    let meter = Arc::new(Meter::default());
    let input = Metered {
        inner: open().map_err(Cause::Open)?,
        meter: meter.clone(),
    };
    let mut framer = RecordFramer::new(decompressed(input).map_err(DecodeError::from)?, limits);
    let mut builder = kind.batch_builder();
    while let Some(record) = framer.next_record()? {
        builder.append(record).map_err(|source| Cause::Record {
            index: framer.records_read() - 1,
            source,
        })?;
        if builder.len() >= BATCH_ROWS && batches.blocking_send(builder.finish(uri)).is_err() {
            // The writer stopped; its error is the one to report.
            return Err(Cause::Parser("the writer stopped".into()));
        }
    }
    if !builder.is_empty() && batches.blocking_send(builder.finish(uri)).is_err() {
        return Err(Cause::Parser("the writer stopped".into()));
    }
    Ok(Parsed {
        records: framer.records_read(),
        object_bytes: meter.bytes.load(Ordering::Relaxed),
        json_bytes: framer.bytes_read(),
        read: Duration::from_nanos(meter.nanos.load(Ordering::Relaxed)),
        elapsed: started.elapsed(),
    })
}
