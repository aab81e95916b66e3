//! `cloudtrail-delta`: ingest CloudTrail log files into local (or object-store) Delta tables.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use cloudtrail_delta::ingest::{BatchItem, IngestError};
use cloudtrail_delta::parse::route::{SkipReason, delivery_date};
use cloudtrail_delta::settings::{self, CommitBatch, Program, Settings};
use cloudtrail_delta::source::Opened;
use cloudtrail_delta::source::local::local_files;
use cloudtrail_delta::source::s3::{S3Object, S3Source};
use cloudtrail_delta::table::commit::{self, CommitMode};
use cloudtrail_delta::{Ingester, LogKind, Outcome, SourceObject, aws, maintenance};
use indicatif::{ProgressBar, ProgressStyle};

mod verify;

#[derive(Parser)]
#[command(version, about = "Land AWS CloudTrail logs in Delta Lake tables")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest log files (CloudTrail and Insights) into the tables, each file exactly once.
    Ingest(IngestArgs),
    /// Upkeep of both tables: compact small files per partition, VACUUM unreferenced files,
    /// delete expired log entries. Safe while ingests run.
    Maintain(MaintainArgs),
    /// Check CloudTrail's signed digests against the tables: signatures, the chain, every
    /// listed log file ingested with its SHA-256, every ingested log file listed. Exits 3
    /// when it finds a problem.
    Verify(verify::VerifyArgs),
}

/// Flags that set a variable of `cloudtrail_delta::settings` (a flag wins over its variable);
/// values are parsed and checked there, with the variable's default.
#[derive(clap::Args)]
struct TableArgs {
    /// The CloudTrail table (a folder or an object-store URI) [default: ./delta/cloudtrail]
    #[arg(long, env = settings::CLOUDTRAIL_TABLE_URI)]
    table: Option<String>,
    /// The Insights table [default: ./delta/cloudtrail_insights]
    #[arg(long, env = settings::INSIGHTS_TABLE_URI)]
    insights_table: Option<String>,
    /// The aggregated-events table (summaries of data events)
    /// [default: ./delta/cloudtrail_aggregated]
    #[arg(long, env = settings::AGGREGATED_TABLE_URI)]
    aggregated_table: Option<String>,
    /// The digests table (one row per log file each digest lists)
    /// [default: ./delta/cloudtrail_digests]
    #[arg(long, env = settings::DIGEST_TABLE_URI)]
    digest_table: Option<String>,
}

#[derive(clap::Args)]
struct MaintainArgs {
    #[command(flatten)]
    tables: TableArgs,
    /// Compaction packs small files into files of about this many megabytes [default: 128]
    #[arg(long, env = settings::TARGET_FILE_MB)]
    target_file_mb: Option<String>,
    /// VACUUM deletes unreferenced files older than this many hours [default: 168]
    #[arg(long, env = settings::VACUUM_RETENTION_HOURS)]
    vacuum_retention_hours: Option<String>,
}

#[derive(clap::Args)]
struct IngestArgs {
    #[command(flatten)]
    tables: TableArgs,
    /// Log files, folders (walked recursively), or `s3://bucket/prefix` (every object under
    /// the prefix).
    #[arg(required = true)]
    sources: Vec<String>,
    /// Objects committed together, at most (1: one commit per object). Each object is
    /// still in a table wholly or not at all; an interrupted run loses at most one batch
    /// of work, and a re-run adds nothing twice [default: 500]
    #[arg(long, env = settings::OBJECTS_PER_COMMIT)]
    objects_per_commit: Option<String>,
    /// Megabytes of objects (as stored, gzip) committed together, at most [default: 256]
    #[arg(long, env = settings::MB_PER_COMMIT)]
    mb_per_commit: Option<String>,
    /// Objects read and parsed at once while filling a commit, 1 to 256 (S3 round trips
    /// overlap; each object in flight holds at most about 10 MB) [default: 4]
    #[arg(long, env = settings::PARALLEL_READS)]
    parallel_reads: Option<String>,
    /// Largest log object (as stored, gzip) to ingest, in bytes; a larger one fails, named,
    /// and nothing of it lands [default: 4 GiB]
    #[arg(long, env = settings::MAX_OBJECT_BYTES)]
    max_object_bytes: Option<String>,
    /// Largest single record (its JSON text), in bytes; CloudTrail's events are at most
    /// 256 KB [default: 16 MiB]
    #[arg(long, env = settings::MAX_RECORD_BYTES)]
    max_record_bytes: Option<String>,
    /// Most JSON one log object may decompress to, in bytes; past it the object fails, named,
    /// and nothing of it lands (a gzip bomb stops here) [default: 4 GiB]
    #[arg(long, env = settings::MAX_JSON_BYTES)]
    max_json_bytes: Option<String>,
    /// Most records one log object may hold; past it the object fails, named, and nothing of
    /// it lands [default: 10 000 000]
    #[arg(long, env = settings::MAX_RECORDS)]
    max_records: Option<String>,
}

/// The settings the flags (and, for the rest, the environment) give.
fn read_settings(flags: &[(&str, &Option<String>)]) -> anyhow::Result<Settings> {
    let given: BTreeMap<&str, String> = flags
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (*name, v.clone())))
        .collect();
    Ok(Settings::from_lookup(Program::Command, |name| {
        given
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    })?)
}

impl TableArgs {
    fn flags(&self) -> [(&'static str, &Option<String>); 4] {
        [
            (settings::CLOUDTRAIL_TABLE_URI, &self.table),
            (settings::INSIGHTS_TABLE_URI, &self.insights_table),
            (settings::AGGREGATED_TABLE_URI, &self.aggregated_table),
            (settings::DIGEST_TABLE_URI, &self.digest_table),
        ]
    }
}

impl MaintainArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut flags = self.tables.flags().to_vec();
        flags.push((settings::TARGET_FILE_MB, &self.target_file_mb));
        flags.push((
            settings::VACUUM_RETENTION_HOURS,
            &self.vacuum_retention_hours,
        ));
        read_settings(&flags)
    }
}

impl IngestArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut flags = self.tables.flags().to_vec();
        flags.extend([
            (settings::OBJECTS_PER_COMMIT, &self.objects_per_commit),
            (settings::MB_PER_COMMIT, &self.mb_per_commit),
            (settings::PARALLEL_READS, &self.parallel_reads),
            (settings::MAX_OBJECT_BYTES, &self.max_object_bytes),
            (settings::MAX_RECORD_BYTES, &self.max_record_bytes),
            (settings::MAX_JSON_BYTES, &self.max_json_bytes),
            (settings::MAX_RECORDS, &self.max_records),
        ]);
        read_settings(&flags)
    }
}

#[derive(Default)]
struct Summary {
    ingested: BTreeMap<LogKind, (u64, u64)>,
    already: u64,
    skipped: BTreeMap<String, u64>,
    failed: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    cloudtrail_delta::runtime::memory::keep_rss_flat();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| settings::DEFAULT_LOG_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files and pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One source to ingest.
enum Input {
    Local(PathBuf),
    S3(S3Object),
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ingest(args) => ingest(args).await,
        Command::Maintain(args) => maintain(args).await,
        Command::Verify(args) => verify::run(args).await,
    }
}

/// The AWS setup of `settings`' commit mode, when it needs one (also when `needs_s3`: S3
/// sources, or tables on S3, whose stores get the commit-file cache of the installed mode).
async fn commit_setup(settings: &Settings, needs_s3: bool) -> Option<aws_config::SdkConfig> {
    let needs_aws = needs_s3 || matches!(settings.commit_mode, CommitMode::DynamoDb { .. });
    if !needs_aws {
        return None;
    }
    let config = aws::load_config().await;
    commit::install(&settings.commit_mode, &config);
    Some(config)
}

async fn maintain(args: MaintainArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    let _aws = commit_setup(&settings, settings.tables.on_s3()).await;
    let mut failed = false;
    for (kind, uri, result) in maintenance::upkeep_all(
        &settings.tables,
        &settings.commit_mode,
        settings.maintenance,
    )
    .await
    {
        match result {
            Ok(Some(done)) => println!("{kind} table {uri}: {done}"),
            Ok(None) => println!("{kind} table {uri}: no table yet, nothing to do"),
            Err(e) => {
                failed = true;
                eprintln!("failed: {kind} table {uri}: {e}");
            }
        }
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    let sources = args.sources;
    let on_s3 = sources.iter().any(|s| s.starts_with("s3://")) || settings.tables.on_s3();
    let aws_config = commit_setup(&settings, on_s3).await;
    let s3 = aws_config
        .as_ref()
        .map(|config| S3Source::new(aws::s3_client(config)));

    let mut files: Vec<Input> = Vec::new();
    for source in &sources {
        if let Some(location) = source.strip_prefix("s3://") {
            let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
            let s3 = s3.as_ref().context("no S3 client")?;
            let objects = s3
                .list(bucket, prefix)
                .await
                .with_context(|| format!("cannot list {source}"))?;
            files.extend(objects.into_iter().map(Input::S3));
        } else if source.contains("://") {
            bail!("{source}: sources are local files and folders, or s3://bucket/prefix");
        } else {
            let paths =
                local_files(source.as_ref()).with_context(|| format!("cannot list {source}"))?;
            files.extend(paths.into_iter().map(Input::Local));
        }
    }

    let mut ingester = Ingester::from_settings(&settings);
    // A location no table can be at fails here, once, not once per object.
    ingester
        .check_tables()
        .map_err(|cause| anyhow::anyhow!("{cause}"))?;
    let progress = if files.len() > 1 && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files, {per_sec}, ETA {eta} {msg}")
                .expect("a valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut summary = Summary::default();
    let mut batch = Batch::new(settings.commit_batch);
    for input in files {
        let item = match input {
            Input::Local(path) => match SourceObject::local(&path) {
                Ok(object) => BatchItem {
                    object,
                    open: Arc::new(move || File::open(&path).map(Opened::bytes)),
                },
                Err(e) => {
                    summary
                        .failed
                        .push(format!("{}: cannot read: {e}", path.display()));
                    progress.inc(1);
                    continue;
                }
            },
            Input::S3(s3_object) => BatchItem {
                object: s3_object.source(),
                open: Arc::new(s3.as_ref().context("no S3 client")?.opener(&s3_object)),
            },
        };
        if !batch.fits(&item) {
            batch.ingest(&mut ingester, &mut summary, &progress).await;
        }
        batch.push(item);
    }
    batch.ingest(&mut ingester, &mut summary, &progress).await;
    progress.finish_and_clear();

    for kind in LogKind::ALL {
        let (files, records) = summary.ingested.get(&kind).copied().unwrap_or_default();
        if let Some(table) = ingester.table(kind) {
            let version = table.version().map_or("none".to_owned(), |v| v.to_string());
            println!(
                "{kind}: {files} files ingested, {records} records; table {} at version {version}",
                table.uri()
            );
        }
    }
    let skipped: u64 = summary.skipped.values().sum();
    let reasons: Vec<String> = summary
        .skipped
        .iter()
        .map(|(r, n)| format!("{r}: {n}"))
        .collect();
    println!(
        "already ingested: {}; skipped: {skipped}{}; failed: {}",
        summary.already,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        summary.failed.len()
    );
    for failure in &summary.failed {
        println!("failed: {failure}");
    }
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Objects to commit together: up to a count and a size, and from at most two delivery dates
/// (so that few partitions are open at once).
struct Batch {
    items: Vec<BatchItem>,
    bytes: u64,
    dates: BTreeSet<String>,
    limit: CommitBatch,
}

impl Batch {
    fn new(limit: CommitBatch) -> Self {
        Self {
            items: Vec::new(),
            bytes: 0,
            dates: BTreeSet::new(),
            limit,
        }
    }

    /// Whether `item` may join the batch (an empty batch takes anything).
    fn fits(&self, item: &BatchItem) -> bool {
        let new_date = delivery_date(&item.object.key)
            .is_some_and(|date| !self.dates.contains(date) && self.dates.len() >= 2);
        self.items.is_empty()
            || self.items.len() < self.limit.objects
                && self.bytes + item.object.size.unwrap_or(0) <= self.limit.bytes
                && !new_date
    }

    fn push(&mut self, item: BatchItem) {
        self.bytes += item.object.size.unwrap_or(0);
        if let Some(date) = delivery_date(&item.object.key) {
            self.dates.insert(date.to_owned());
        }
        self.items.push(item);
    }

    /// Ingests the batch (one commit per table) and empties it.
    async fn ingest(
        &mut self,
        ingester: &mut Ingester,
        summary: &mut Summary,
        progress: &ProgressBar,
    ) {
        if self.items.is_empty() {
            return;
        }
        let results = ingester.ingest_batch(&self.items).await;
        cloudtrail_delta::runtime::memory::return_freed_pages();
        for (item, result) in self.items.iter().zip(results) {
            summary.record(&item.object, result);
            progress.inc(1);
        }
        self.items.clear();
        self.bytes = 0;
        self.dates.clear();
    }
}

impl Summary {
    fn record(&mut self, object: &SourceObject, result: Result<Outcome, IngestError>) {
        match result {
            Ok(Outcome::Ingested(report)) => {
                tracing::debug!(uri = %object.uri, kind = %report.kind, records = report.records,
                    version = report.version, files = report.files, "ingested");
                let entry = self.ingested.entry(report.kind).or_default();
                entry.0 += 1;
                entry.1 += report.records;
            }
            Ok(Outcome::AlreadyIngested { kind }) => {
                tracing::info!(uri = %object.uri, %kind, "already ingested, nothing added");
                self.already += 1;
            }
            Ok(Outcome::Skipped(reason)) => {
                tracing::info!(uri = %object.uri, %reason, "skipped");
                *self
                    .skipped
                    .entry(skip_label(reason).to_owned())
                    .or_default() += 1;
            }
            Err(e) => {
                tracing::error!("{e}");
                self.failed.push(e.to_string());
            }
        }
    }
}

fn skip_label(reason: SkipReason) -> &'static str {
    match reason {
        SkipReason::FolderMarker => "folder marker",
        SkipReason::NotALog => "not a log",
    }
}
