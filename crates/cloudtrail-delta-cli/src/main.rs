//! `cloudtrail-delta`: ingest CloudTrail log files into local (or object-store) Delta tables.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use cloudtrail_delta::TableUris;
use cloudtrail_delta::ingest::{BatchItem, IngestError};
use cloudtrail_delta::parse::decode::{
    Limits, MAX_JSON_BYTES, MAX_OBJECT_BYTES, MAX_RECORD_BYTES, MAX_RECORDS,
};
use cloudtrail_delta::parse::route::{SkipReason, delivery_date};
use cloudtrail_delta::source::local::local_files;
use cloudtrail_delta::source::s3::{S3Object, S3Source};
use cloudtrail_delta::table::commit::{self, CommitMode};
use cloudtrail_delta::{Ingester, LogKind, Outcome, SourceObject, aws, maintenance};
use indicatif::{ProgressBar, ProgressStyle};

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
}

#[derive(clap::Args)]
struct TableArgs {
    /// The CloudTrail table (a folder or an object-store URI).
    #[arg(
        long,
        env = "CLOUDTRAIL_TABLE_URI",
        default_value = "./delta/cloudtrail"
    )]
    table: String,
    /// The Insights table.
    #[arg(
        long,
        env = "INSIGHTS_TABLE_URI",
        default_value = "./delta/cloudtrail_insights"
    )]
    insights_table: String,
    /// The aggregated-events table (summaries of data events).
    #[arg(
        long,
        env = "AGGREGATED_TABLE_URI",
        default_value = "./delta/cloudtrail_aggregated"
    )]
    aggregated_table: String,
}

impl TableArgs {
    /// Whether any table is on S3 (and so needs the AWS setup of the commit mode).
    fn on_s3(&self) -> bool {
        [&self.table, &self.insights_table, &self.aggregated_table]
            .iter()
            .any(|t| t.starts_with("s3"))
    }

    fn uris(self) -> TableUris {
        TableUris {
            cloudtrail: self.table,
            insights: self.insights_table,
            aggregated: Some(self.aggregated_table),
        }
    }
}

#[derive(clap::Args)]
struct MaintainArgs {
    #[command(flatten)]
    tables: TableArgs,
    /// Compaction packs small files into files of about this many megabytes.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    target_file_mb: u64,
    /// VACUUM deletes unreferenced files older than this many hours.
    #[arg(long, env = "VACUUM_RETENTION_HOURS", default_value_t = 168)]
    vacuum_retention_hours: u64,
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
    /// of work, and a re-run adds nothing twice.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    objects_per_commit: u64,
    /// Megabytes of objects (as stored, gzip) committed together, at most.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    mb_per_commit: u64,
    /// Objects read and parsed at once while filling a commit (S3 round trips overlap;
    /// each object in flight holds at most about 10 MB).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    parallel_reads: u64,
    /// Largest log object (as stored, gzip) to ingest, in bytes; a larger one fails,
    /// named, and nothing of it lands. Default 4 GiB.
    #[arg(long, env = MAX_OBJECT_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    max_object_bytes: Option<u64>,
    /// Largest single record (its JSON text), in bytes. Default 16 MiB (CloudTrail's
    /// events are at most 256 KB).
    #[arg(long, env = MAX_RECORD_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    max_record_bytes: Option<u64>,
    /// Most JSON one log object may decompress to, in bytes; past it the object fails,
    /// named, and nothing of it lands (a gzip bomb stops here). Default 4 GiB.
    #[arg(long, env = MAX_JSON_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    max_json_bytes: Option<u64>,
    /// Most records one log object may hold; past it the object fails, named, and nothing
    /// of it lands. Default 10 000 000.
    #[arg(long, env = MAX_RECORDS, value_parser = clap::value_parser!(u64).range(1..))]
    max_records: Option<u64>,
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
                .unwrap_or_else(|_| "warn,cloudtrail_delta=info".into()),
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
    }
}

/// The commit mode of the environment, with the AWS setup it needs (also when `needs_s3`: S3
/// sources, or tables on S3, whose stores get the commit-file cache of the installed mode).
async fn commit_setup(
    needs_s3: bool,
) -> anyhow::Result<(CommitMode, Option<aws_config::SdkConfig>)> {
    let commit_mode = CommitMode::from_env().map_err(anyhow::Error::msg)?;
    let needs_aws = needs_s3 || matches!(commit_mode, CommitMode::DynamoDb { .. });
    let aws_config = if needs_aws {
        Some(aws::load_config().await)
    } else {
        None
    };
    if let Some(config) = &aws_config {
        commit::install(&commit_mode, config);
    }
    Ok((commit_mode, aws_config))
}

async fn maintain(args: MaintainArgs) -> anyhow::Result<ExitCode> {
    let MaintainArgs {
        tables,
        target_file_mb,
        vacuum_retention_hours,
    } = args;
    let (commit_mode, _aws) = commit_setup(tables.on_s3()).await?;
    let uris = tables.uris();
    let settings = maintenance::Settings {
        target_file_bytes: target_file_mb << 20,
        vacuum_retention: std::time::Duration::from_secs(vacuum_retention_hours * 3600),
    };
    let mut failed = false;
    for (kind, uri, result) in maintenance::upkeep_all(&uris, &commit_mode, settings).await {
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
    let IngestArgs {
        tables,
        sources,
        objects_per_commit,
        mb_per_commit,
        parallel_reads,
        max_object_bytes,
        max_record_bytes,
        max_json_bytes,
        max_records,
    } = args;
    let mut limits = Limits::default();
    if let Some(n) = max_object_bytes {
        limits.max_object_bytes = n;
    }
    if let Some(n) = max_record_bytes {
        limits.max_record_bytes = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = max_json_bytes {
        limits.max_json_bytes = n;
    }
    if let Some(n) = max_records {
        limits.max_records = n;
    }
    let on_s3 = sources.iter().any(|s| s.starts_with("s3://")) || tables.on_s3();
    let (commit_mode, aws_config) = commit_setup(on_s3).await?;
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

    let mut ingester = Ingester::new(tables.uris())
        .with_commit_mode(commit_mode)
        .with_limits(limits)
        .with_read_ahead(parallel_reads as usize);
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
    let mut batch = Batch::new(objects_per_commit, mb_per_commit << 20);
    for input in files {
        let item = match input {
            Input::Local(path) => match SourceObject::local(&path) {
                Ok(object) => BatchItem {
                    object,
                    open: Arc::new(move || {
                        File::open(&path).map(|file| Box::new(file) as Box<dyn Read + Send>)
                    }),
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

    for kind in [LogKind::CloudTrail, LogKind::Insights, LogKind::Aggregated] {
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
    max_items: u64,
    max_bytes: u64,
}

impl Batch {
    fn new(max_items: u64, max_bytes: u64) -> Self {
        Self {
            items: Vec::new(),
            bytes: 0,
            dates: BTreeSet::new(),
            max_items,
            max_bytes,
        }
    }

    /// Whether `item` may join the batch (an empty batch takes anything).
    fn fits(&self, item: &BatchItem) -> bool {
        let new_date = delivery_date(&item.object.key)
            .is_some_and(|date| !self.dates.contains(date) && self.dates.len() >= 2);
        self.items.is_empty()
            || (self.items.len() as u64) < self.max_items
                && self.bytes + item.object.size.unwrap_or(0) <= self.max_bytes
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
        SkipReason::Digest => "digest",
        SkipReason::FolderMarker => "folder marker",
        SkipReason::NotALog => "not a log",
    }
}
