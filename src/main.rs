//! `cloudtrail-delta`: ingest CloudTrail log files into local (or object-store) Delta tables.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use cloudtrail_delta::ingest::TableUris;
use cloudtrail_delta::route::SkipReason;
use cloudtrail_delta::source::local_files;
use cloudtrail_delta::{Ingester, LogKind, Outcome, SourceObject};
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
        /// Log files, or folders walked recursively.
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

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Command::Ingest {
        table,
        insights_table,
        sources,
    } = cli.command;
    let mut files: Vec<PathBuf> = Vec::new();
    for source in &sources {
        if source.contains("://") {
            bail!(
                "{source}: only local files and folders are supported as sources by this version"
            );
        }
        files
            .extend(local_files(source.as_ref()).with_context(|| format!("cannot list {source}"))?);
    }

    let mut ingester = Ingester::new(
        TableUris {
            cloudtrail: table,
            insights: insights_table,
        },
        HashMap::new(),
    );
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
    for path in files {
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
        let open_path = path.clone();
        match ingester
            .ingest(&object, move || File::open(open_path))
            .await
        {
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
