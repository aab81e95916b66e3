//! `cloudtrail-delta`: ingest CloudTrail log files into local (or object-store) Delta tables.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use cloudtrail_delta::ingest::TableUris;
use cloudtrail_delta::logstore::{self, CommitMode};
use cloudtrail_delta::route::SkipReason;
use cloudtrail_delta::source::local::local_files;
use cloudtrail_delta::source::s3::{S3Object, S3Source};
use cloudtrail_delta::{Ingester, LogKind, Outcome, SourceObject, aws};
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
    Ingest {
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
        /// Log files, folders (walked recursively), or `s3://bucket/prefix` (every object under
        /// the prefix).
        #[arg(required = true)]
        sources: Vec<String>,
    },
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
    cloudtrail_delta::memory::keep_rss_flat();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,cloudtrail_delta=info".into()),
        )
        .with_writer(std::io::stderr)
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
    let Command::Ingest {
        table,
        insights_table,
        sources,
    } = cli.command;
    let commit_mode = CommitMode::from_env().map_err(anyhow::Error::msg)?;
    let needs_aws = sources.iter().any(|s| s.starts_with("s3://"))
        || matches!(commit_mode, CommitMode::DynamoDb { .. });
    let aws_config = if needs_aws {
        Some(aws::load_config().await)
    } else {
        None
    };
    if let Some(config) = &aws_config {
        logstore::install(&commit_mode, config);
    }
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

    let mut ingester = Ingester::new(TableUris {
        cloudtrail: table,
        insights: insights_table,
    })
    .with_commit_mode(commit_mode);
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
    for input in files {
        let (object, result) = match input {
            Input::Local(path) => {
                let object = match SourceObject::local(&path) {
                    Ok(object) => object,
                    Err(e) => {
                        summary
                            .failed
                            .push(format!("{}: cannot read: {e}", path.display()));
                        progress.inc(1);
                        continue;
                    }
                };
                let result = ingester.ingest(&object, move || File::open(path)).await;
                (object, result)
            }
            Input::S3(s3_object) => {
                let object = s3_object.source();
                let open = s3.as_ref().context("no S3 client")?.opener(&s3_object);
                let result = ingester.ingest(&object, open).await;
                (object, result)
            }
        };
        match result {
            Ok(Outcome::Ingested(report)) => {
                tracing::debug!(uri = %object.uri, kind = %report.kind, records = report.records,
                    version = report.version, files = report.files, "ingested");
                let entry = summary.ingested.entry(report.kind).or_default();
                entry.0 += 1;
                entry.1 += report.records;
            }
            Ok(Outcome::AlreadyIngested { kind }) => {
                tracing::info!(uri = %object.uri, %kind, "already ingested, nothing added");
                summary.already += 1;
            }
            Ok(Outcome::Skipped(reason)) => {
                tracing::info!(uri = %object.uri, %reason, "skipped");
                *summary
                    .skipped
                    .entry(skip_label(reason).to_owned())
                    .or_default() += 1;
            }
            Err(e) => {
                tracing::error!("{e}");
                summary.failed.push(e.to_string());
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();

    for kind in [LogKind::CloudTrail, LogKind::Insights] {
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

fn skip_label(reason: SkipReason) -> &'static str {
    match reason {
        SkipReason::Digest => "digest",
        SkipReason::FolderMarker => "folder marker",
        SkipReason::NotALog => "not a log",
    }
}
