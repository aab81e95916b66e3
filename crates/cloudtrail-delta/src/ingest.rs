//! Ingesting one log object into its table: route → decode → parse into Arrow → write Parquet →
//! one commit.
//!
//! Decoding and parsing run on a blocking thread and hand Arrow batches to the writer, at most
//! [`BATCHES_ALIVE`] alive at once, so parsing overlaps Parquet encoding (itself kept off the
//! async workers, see [`crate::runtime::cpu_bound`]) and memory stays bounded.
//! Nothing becomes visible until the single commit at the end: an object that fails anywhere
//! lands nothing (files already uploaded stay unreferenced, for VACUUM to remove).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deltalake::errors::DeltaTableError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::runtime::budget::{Budget, OverBudget};
use crate::settings::{DEFAULT_PARALLEL_READS, Settings, TableUris};
use crate::source::{Opened, SourceObject};
use crate::table::commit::CommitMode;
use crate::table::{CommitOutcome, LogTable, NewObject};
use crate::writer::LogWriter;
use cloudtrail_parse::decode::Limits;
use cloudtrail_parse::route::{Route, SkipReason, route};
use cloudtrail_parse::schema::LogKind;
use cloudtrail_parse::{ParseError, Sha256Hash, parse_log};

/// Batches of one object alive at once: the one the writer encodes and the one the parser
/// builds. This is the one bound between them: the parser takes a slot before it starts a
/// batch, and the writer frees it once it has encoded the batch, so however the threads are
/// scheduled no more are built, queued or encoded (the queue between them needs no bound of
/// its own).
pub const BATCHES_ALIVE: usize = 2;

/// A parsed batch, with the slot it holds until the writer has encoded it.
type Slotted = (arrow::array::RecordBatch, OwnedSemaphorePermit);

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
    /// Not a log this version can read: the bytes do not decode, or a record does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("Delta table {table}: {source}")]
    Table {
        table: String,
        source: Box<DeltaTableError>,
    },
    #[error("the parser stopped unexpectedly: {0}")]
    Parser(String),
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
    #[error(
        "the object is {size} bytes, over the limit of {limit} bytes (raise \
         CLOUDTRAIL_DELTA_MAX_OBJECT_BYTES or --max-object-bytes to ingest it)"
    )]
    ObjectTooLarge { size: u64, limit: u64 },
    #[error("no table is set for {kind} objects: set {variable} (the template sets it)")]
    NoTable {
        kind: LogKind,
        variable: &'static str,
    },
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
    /// The SHA-256 of the decompressed bytes (what CloudTrail's digests list), recorded in the
    /// table's ingest index.
    pub sha256: Sha256Hash,
    /// Parquet files added.
    pub files: usize,
    pub version: u64,
    pub commit_retries: u64,
    /// The newest `eventTime` of the object's records, in microseconds since the epoch (for
    /// the ingest lag metric).
    pub newest_event_micros: Option<i64>,
    /// Waiting on the object's bytes (local disk or S3).
    pub read: Duration,
    /// Decompressing and parsing into Arrow (on the parser thread).
    pub parse: Duration,
    /// Encoding and uploading Parquet (overlaps `parse`).
    pub write: Duration,
    pub commit: Duration,
}

/// Opens an object's bytes as delivered (gzip or plain JSON); may be called again when the
/// object has to be re-read.
pub type Opener = Arc<dyn Fn() -> std::io::Result<Opened> + Send + Sync>;

/// One object of a batch (see [`Ingester::ingest_batch`]).
#[derive(Clone)]
pub struct BatchItem {
    pub object: SourceObject,
    pub open: Opener,
}

/// Ingests log objects into the CloudTrail, Insights and aggregated-events tables, keeping table handles open
/// across objects (they are refreshed incrementally, never reloaded).
pub struct Ingester {
    uris: TableUris,
    storage_options: HashMap<String, String>,
    commit_mode: CommitMode,
    tables: HashMap<LogKind, LogTable>,
    limits: Limits,
    budget: Budget,
    read_ahead: usize,
}

/// Times the objects of a batch are tried together before the rest go one by one: each try
/// that fails drops the object at fault and reads the others again (their shared files were
/// never committed).
pub const SHARED_ATTEMPTS: usize = 3;

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
            budget: Budget::default(),
            read_ahead: DEFAULT_PARALLEL_READS,
        }
    }

    /// Options for the tables' object store (delta-rs storage options).
    /// An ingester as `settings` say: tables, commit mode, limits, parallel reads.
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(settings.tables.clone())
            .with_commit_mode(settings.commit_mode.clone())
            .with_limits(settings.limits)
            .with_read_ahead(settings.parallel_reads)
    }

    pub fn with_storage_options(mut self, options: HashMap<String, String>) -> Self {
        self.storage_options = options;
        self
    }

    /// How commits to tables on S3 are coordinated (see [`crate::table::commit`]).
    pub fn with_commit_mode(mut self, mode: CommitMode) -> Self {
        self.commit_mode = mode;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How many objects of a batch ([`ingest_batch`](Self::ingest_batch)) are read and parsed
    /// at once (at least 1). Each holds at most [`BATCHES_ALIVE`] batches of [`BATCH_ROWS`] rows.
    pub fn with_read_ahead(mut self, objects: usize) -> Self {
        self.read_ahead = objects.max(1);
        self
    }

    /// The time and memory the next ingests may spend (the Lambda sets one per invocation).
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    /// Whether an object may start: within the size limit, and the budget not spent.
    fn admit(&self, object: &SourceObject) -> Result<(), Cause> {
        let limit = self.limits.max_object_bytes;
        if let Some(size) = object.size
            && size > limit
        {
            return Err(Cause::ObjectTooLarge { size, limit });
        }
        Ok(self.budget.check()?)
    }

    /// Checks, without a request, that every table location can hold a table (see
    /// [`LogTable::check_location`]); the error names the table.
    pub fn check_tables(&self) -> Result<(), Cause> {
        for (_, uri) in self.uris.all() {
            LogTable::check_location(uri, &self.storage_options, &self.commit_mode).map_err(
                |source| Cause::Table {
                    table: uri.to_owned(),
                    source: Box::new(source),
                },
            )?;
        }
        Ok(())
    }

    /// The opened table of a kind, if any object of that kind was ingested.
    pub fn table(&self, kind: LogKind) -> Option<&LogTable> {
        self.tables.get(&kind)
    }

    async fn open_table(&mut self, kind: LogKind) -> Result<&mut LogTable, Cause> {
        if !self.tables.contains_key(&kind) {
            let uri = self
                .uris
                .of(kind)
                .ok_or(Cause::NoTable {
                    kind,
                    variable: crate::settings::table_variable(kind),
                })?
                .to_owned();
            let table =
                LogTable::open_or_create(&uri, kind, &self.storage_options, &self.commit_mode)
                    .await
                    .map_err(|source| Cause::Table {
                        table: uri,
                        source: Box::new(source),
                    })?;
            self.tables.insert(kind, table);
        }
        Ok(self.tables.get_mut(&kind).expect("inserted above"))
    }

    /// Ingests one object; `open` gives its bytes as delivered (gzip or plain JSON). The
    /// same path as a batch of one ([`ingest_batch`](Self::ingest_batch)).
    pub async fn ingest<R, F>(
        &mut self,
        object: &SourceObject,
        open: F,
    ) -> Result<Outcome, IngestError>
    where
        R: Read + Send + 'static,
        F: FnOnce() -> std::io::Result<R> + Send + 'static,
    {
        let once = std::sync::Mutex::new(Some(open));
        let item = BatchItem {
            object: object.clone(),
            open: Arc::new(move || {
                let open = once
                    .lock()
                    .ok()
                    .and_then(|mut held| held.take())
                    .ok_or_else(|| std::io::Error::other("the object was opened already"))?;
                Ok(Opened::bytes(open()?))
            }),
        };
        let mut results = self.ingest_batch(std::slice::from_ref(&item)).await;
        results.pop().expect("one result per object")
    }

    /// Ingests several objects with one commit per table: their records share Parquet files
    /// (per partition) and the commit carries every object's ingest id, so each object is
    /// still in the table wholly or not at all, and exactly once. Results are in the order of
    /// `items`.
    ///
    /// If one object fails, nothing of the shared write is committed (its files stay
    /// unreferenced, for VACUUM): the failed object is reported and the others are read again
    /// and committed together, up to [`SHARED_ATTEMPTS`] times; after that, or when the shared
    /// commit itself fails, they are committed one by one, so a bad object fails only itself.
    pub async fn ingest_batch(&mut self, items: &[BatchItem]) -> Vec<Result<Outcome, IngestError>> {
        let mut results: Vec<Option<Result<Outcome, IngestError>>> =
            std::iter::repeat_with(|| None).take(items.len()).collect();
        let mut by_kind: BTreeMap<LogKind, Vec<usize>> = BTreeMap::new();
        for (index, item) in items.iter().enumerate() {
            match route(&item.object.key) {
                Route::Skip(reason) => results[index] = Some(Ok(Outcome::Skipped(reason))),
                Route::Ingest(kind) => by_kind.entry(kind).or_default().push(index),
            }
        }
        let failed = |index: usize, cause| IngestError {
            uri: items[index].object.uri.clone(),
            cause,
        };
        for (kind, mut members) in by_kind {
            let mut attempts = 0;
            while !members.is_empty() {
                attempts += 1;
                let alone = members.len() == 1;
                match self.ingest_together(kind, items, &members).await {
                    Ok(outcomes) => {
                        for (index, outcome) in members.iter().zip(outcomes) {
                            results[*index] = Some(Ok(outcome));
                        }
                        break;
                    }
                    Err(Failure::Object(index, cause)) => {
                        results[index] = Some(Err(failed(index, cause)));
                        members.retain(|&m| m != index);
                        if attempts < SHARED_ATTEMPTS {
                            continue;
                        }
                    }
                    Err(Failure::Shared(cause)) if alone => {
                        results[members[0]] = Some(Err(failed(members[0], cause)));
                        break;
                    }
                    Err(Failure::Shared(cause)) => {
                        tracing::warn!(kind = %kind, objects = members.len(), error = %cause,
                            "the shared commit failed; committing the objects one by one");
                    }
                }
                // One by one from here.
                for &index in &members {
                    let result = match self.ingest_together(kind, items, &[index]).await {
                        Ok(mut outcomes) => Ok(outcomes.remove(0)),
                        Err(Failure::Object(_, cause) | Failure::Shared(cause)) => {
                            Err(failed(index, cause))
                        }
                    };
                    results[index] = Some(result);
                }
                break;
            }
        }
        results
            .into_iter()
            .map(|result| result.expect("every item has a result"))
            .collect()
    }

    /// Writes the objects `members` of `items` (all of `kind`) and commits them once. `Err`
    /// when that cannot be done: the object at fault if one is (the others are fine to retry
    /// without it), else the cause of the shared failure.
    async fn ingest_together(
        &mut self,
        kind: LogKind,
        items: &[BatchItem],
        members: &[usize],
    ) -> Result<Vec<Outcome>, Failure> {
        let (limits, budget) = (self.limits, self.budget);
        let read_ahead = self.read_ahead;
        for &index in members {
            self.admit(&items[index].object)
                .map_err(|cause| Failure::Object(index, cause))?;
        }
        let table = self.open_table(kind).await.map_err(Failure::Shared)?;
        let table_error = table_error(table);
        table.refresh().await.map_err(table_error.clone())?;
        let mut outcomes = vec![Outcome::AlreadyIngested { kind }; members.len()];
        let ingest_ids: Vec<String> = members
            .iter()
            .map(|&index| items[index].object.ingest_id())
            .collect();
        let asked: Vec<(&str, &str)> = members
            .iter()
            .zip(&ingest_ids)
            .map(|(&index, id)| (id.as_str(), items[index].object.uri.as_str()))
            .collect();
        let held = table.holds(&asked).await.map_err(table_error.clone())?;
        let mut todo = Vec::new();
        let mut ids = HashSet::new();
        for (slot, (&index, ingest_id)) in members.iter().zip(ingest_ids).enumerate() {
            // An object twice in one batch is ingested once.
            if ids.insert(ingest_id.clone()) && !held[slot] {
                todo.push((slot, index, ingest_id));
            }
        }
        if todo.is_empty() {
            return Ok(outcomes);
        }

        let table_uri = table.uri();
        let mut writer = table.writer();
        let mut written = Vec::with_capacity(todo.len());
        // Objects are written one after another, in order; the next `read_ahead - 1` are
        // already being fetched and parsed, each on its own thread, so small objects on S3
        // cost one round trip's latency per `read_ahead` objects instead of one each.
        let mut waiting = todo.iter().map(|&(_, index, _)| index);
        let mut reading = VecDeque::with_capacity(read_ahead);
        loop {
            while reading.len() < read_ahead
                && let Some(index) = waiting.next()
            {
                let item = &items[index];
                let open = item.open.clone();
                let started = Reading::start(kind, &item.object.uri, move || open(), limits);
                reading.push_back((index, started));
            }
            let Some((index, next)) = reading.pop_front() else {
                break;
            };
            match next.write_into(&mut writer, &table_uri, budget).await {
                Ok(done) => written.push(done),
                Err(cause) => {
                    writer.reset();
                    return Err(match cause {
                        // The shared writer failed: not this object's fault.
                        cause @ Cause::Table { .. } => Failure::Shared(cause),
                        cause => Failure::Object(index, cause),
                    });
                }
            }
        }
        let started = Instant::now();
        let adds = match writer.flush().await {
            Ok(adds) => adds,
            Err(e) => {
                writer.reset();
                return Err(table_error(e));
            }
        };
        let flush = started.elapsed();
        let files = adds.len();
        budget
            .check()
            .map_err(|over| Failure::Shared(Cause::OverBudget(over)))?;

        crate::runtime::crash::point(crate::runtime::crash::BEFORE_COMMIT);
        let started = Instant::now();
        let objects: Vec<NewObject> = todo
            .iter()
            .zip(&written)
            .map(|((_, index, ingest_id), (parsed, _))| NewObject {
                ingest_id,
                uri: &items[*index].object.uri,
                sha256: parsed.sha256,
            })
            .collect();
        let (version, retries) = match table.commit(adds, &objects).await {
            Ok(CommitOutcome::Committed { version, retries }) => (version, retries),
            Ok(CommitOutcome::AlreadyIngested) => return Ok(outcomes),
            // Another writer took some of the objects, or the commit failed.
            Err(e) => return Err(table_error(e)),
        };
        let commit = started.elapsed();
        for ((slot, _, _), (parsed, write)) in todo.iter().zip(written) {
            let commit = Committed {
                files,
                version,
                retries,
                write: write + flush,
                commit,
            };
            outcomes[*slot] = Outcome::Ingested(parsed.report(kind, commit));
        }
        Ok(outcomes)
    }
}

/// Why objects ingested together could not be committed.
enum Failure {
    /// This object (its index in the batch) failed; the others may go on without it.
    Object(usize, Cause),
    /// The shared write or commit failed, through no one object's fault.
    Shared(Cause),
}

/// Turns a Delta error of `table` into the shared failure it causes.
fn table_error(table: &LogTable) -> impl Fn(DeltaTableError) -> Failure + Clone + use<> {
    let uri = table.uri();
    move |source| {
        Failure::Shared(Cause::Table {
            table: uri.clone(),
            source: Box::new(source),
        })
    }
}

/// One object being read and parsed on its own blocking thread; its batches wait until
/// [`Reading::write_into`] takes them, [`BATCHES_ALIVE`] at most.
struct Reading {
    batches: mpsc::UnboundedReceiver<Slotted>,
    parser: tokio::task::JoinHandle<Result<Parsed, Cause>>,
}

impl Reading {
    /// Starts reading the object `open` gives. The parser runs ahead by at most one batch.
    fn start<F>(kind: LogKind, uri: &str, open: F, limits: Limits) -> Self
    where
        F: FnOnce() -> std::io::Result<Opened> + Send + 'static,
    {
        let (sender, batches) = mpsc::unbounded_channel();
        let uri = uri.to_owned();
        let parser =
            tokio::task::spawn_blocking(move || parse_object(kind, &uri, open, limits, sender));
        Self { batches, parser }
    }

    /// Streams the object into `writer`: parsed on its thread, encoded here. On error the
    /// writer holds part of the object and must be reset. Dropping a `Reading` instead stops
    /// its parser at its next batch.
    async fn write_into(
        mut self,
        writer: &mut LogWriter,
        table_uri: &str,
        budget: Budget,
    ) -> Result<(Parsed, Duration), Cause> {
        let mut write_time = Duration::ZERO;
        let mut failure = None;
        let mut newest = None;
        loop {
            // A stalled read must not outlast the budget either.
            let next = match budget.deadline {
                Some(deadline) => tokio::time::timeout_at(deadline.into(), self.batches.recv())
                    .await
                    .unwrap_or(None),
                None => self.batches.recv().await,
            };
            if let Err(over) = budget.check() {
                // Not waiting for the parser: it may be stuck in a stalled read. Dropped, it
                // stops at its next batch; its thread is not the invocation's to wait for.
                return Err(Cause::OverBudget(over));
            }
            let Some((batch, slot)) = next else { break };
            newest = newest.max(newest_event_time(&batch));
            let started = Instant::now();
            let written = writer.write(batch).await;
            drop(slot); // the batch is encoded and dropped: the parser may start another
            if let Err(source) = written {
                failure = Some(Cause::Table {
                    table: table_uri.to_owned(),
                    source: Box::new(source),
                });
                break;
            }
            write_time += started.elapsed();
        }
        drop(self.batches); // stops the parser if the writer failed
        let parsed = self
            .parser
            .await
            .map_err(|e| Cause::Parser(e.to_string()))?;
        match (failure, parsed) {
            (Some(cause), _) | (None, Err(cause)) => Err(cause),
            (None, Ok(parsed)) => Ok((
                Parsed {
                    newest_event_micros: newest,
                    ..parsed
                },
                write_time,
            )),
        }
    }
}

struct Parsed {
    records: u64,
    object_bytes: u64,
    json_bytes: u64,
    sha256: Sha256Hash,
    /// Time in the object reader's `read`.
    read: Duration,
    /// Time on the parser thread, reading included.
    elapsed: Duration,
    newest_event_micros: Option<i64>,
}

/// What the commit of an object came to, for its [`Report`].
struct Committed {
    files: usize,
    version: u64,
    retries: u64,
    write: Duration,
    commit: Duration,
}

impl Parsed {
    fn report(&self, kind: LogKind, committed: Committed) -> Report {
        Report {
            kind,
            records: self.records,
            object_bytes: self.object_bytes,
            json_bytes: self.json_bytes,
            sha256: self.sha256,
            files: committed.files,
            version: committed.version,
            commit_retries: committed.retries,
            newest_event_micros: self.newest_event_micros,
            read: self.read,
            parse: self.elapsed.saturating_sub(self.read),
            write: committed.write,
            commit: committed.commit,
        }
    }
}

/// Counts the bytes read from an object and the time spent waiting on them.
struct Metered<R> {
    inner: R,
    meter: Arc<Meter>,
    /// Reading past this many bytes fails (the object is over `max_object_bytes`).
    limit: u64,
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
            let total = self.meter.bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            if total > self.limit {
                return Err(std::io::Error::other(format!(
                    "the object is over the limit of {} bytes (raise \
                     CLOUDTRAIL_DELTA_MAX_OBJECT_BYTES or --max-object-bytes to ingest it)",
                    self.limit
                )));
            }
        }
        result
    }
}

/// The newest `eventTime` of a batch (microseconds since the epoch).
fn newest_event_time(batch: &arrow::array::RecordBatch) -> Option<i64> {
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampMicrosecondType;
    let column = batch.column_by_name("eventTime")?;
    let times = column.as_primitive_opt::<TimestampMicrosecondType>()?;
    times.iter().flatten().max()
}

/// Decodes and parses one object, sending full batches to the writer.
fn parse_object(
    kind: LogKind,
    uri: &str,
    open: impl FnOnce() -> std::io::Result<Opened>,
    limits: Limits,
    batches: mpsc::UnboundedSender<Slotted>,
) -> Result<Parsed, Cause> {
    let started = Instant::now();
    let meter = Arc::new(Meter::default());
    let opened = open().map_err(Cause::Open)?;
    let input = Metered {
        inner: opened.body,
        meter: meter.clone(),
        limit: limits.max_object_bytes,
    };
    // Never closed, so acquiring only waits; the writer frees a slot as it drops a batch,
    // and all of them if it stops.
    let slots = Arc::new(Semaphore::new(BATCHES_ALIVE));
    let next_slot = || futures::executor::block_on(slots.clone().acquire_owned()).ok();
    let mut slot = next_slot();
    let parsed = parse_log(kind, uri, &opened.metadata, input, limits, |batch| {
        let sent = match slot.take() {
            Some(held) => batches.send((batch, held)).is_ok(),
            None => false,
        };
        slot = next_slot();
        sent
    })?;
    Ok(Parsed {
        records: parsed.records,
        object_bytes: meter.bytes.load(Ordering::Relaxed),
        json_bytes: parsed.json_bytes,
        sha256: parsed.sha256,
        read: Duration::from_nanos(meter.nanos.load(Ordering::Relaxed)),
        elapsed: started.elapsed(),
        newest_event_micros: None,
    })
}
