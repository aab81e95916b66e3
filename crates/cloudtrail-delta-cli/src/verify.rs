//! `cloudtrail-delta verify`: checks CloudTrail's signed digests against the tables, from the
//! digests table and the ingest indexes (see `cloudtrail_delta::verify`), and prints a summary
//! and one line per finding, or all of it as JSON.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{NaiveDate, TimeDelta, Utc};
use cloudtrail_delta::settings::{self, Settings};
use cloudtrail_delta::verify::public_keys::KeyProvider;
use cloudtrail_delta::verify::{self, Scope, Verification};

use crate::{TableArgs, commit_setup, read_settings};

/// Exit code when verification found problems (1 is an error that stopped it).
pub const FINDINGS_EXIT: u8 = 3;

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    tables: TableArgs,
    /// First day (UTC, YYYY-MM-DD) whose digests and logs are checked [default: yesterday]
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last day (UTC, YYYY-MM-DD) checked [default: today]
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Only this account's digests and logs
    #[arg(long)]
    account: Option<String>,
    /// Only this region's digests and logs
    #[arg(long)]
    region: Option<String>,
    /// CloudTrail's public keys, as `aws cloudtrail list-public-keys` prints them, instead of
    /// calling ListPublicKeys
    #[arg(long, env = settings::PUBLIC_KEYS_FILE)]
    public_keys: Option<String>,
    /// Minutes after its delivery before an ingested log that no digest lists is reported
    /// [default: 180]
    #[arg(long, env = settings::VERIFY_GRACE_MINUTES)]
    grace_minutes: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

impl VerifyArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut flags = self.tables.flags().to_vec();
        flags.extend([
            (settings::PUBLIC_KEYS_FILE, &self.public_keys),
            (settings::VERIFY_GRACE_MINUTES, &self.grace_minutes),
        ]);
        read_settings(&flags)
    }
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    let today = Utc::now().date_naive();
    let to = args.to.unwrap_or(today);
    let from = args.from.unwrap_or(to - TimeDelta::days(1));
    anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    let scope = Scope {
        account: args.account.clone(),
        region: args.region.clone(),
        ..Scope::days(from, to, settings.verify_grace)
    };
    let aws_config = commit_setup(&settings, settings.tables.on_s3()).await;
    let mut keys = KeyProvider::new(settings.public_keys_file.as_deref(), aws_config)?;
    let result = verify::verify(
        &settings.tables,
        &HashMap::new(),
        &settings.commit_mode,
        &scope,
        &mut keys,
    )
    .await
    .context("verify")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_text(&result, from, to);
    }
    Ok(if result.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FINDINGS_EXIT)
    })
}

fn print_text(result: &Verification, from: NaiveDate, to: NaiveDate) {
    println!(
        "{from} to {to}: {}/{} digests valid; {}/{} listed log files verified ({} ingested \
         before hashes were recorded); {} log files ingested, {} within the grace period",
        result.digests_valid,
        result.digests,
        result.log_files_verified,
        result.log_files_listed,
        result.log_files_without_hash,
        result.log_files_ingested,
        result.log_files_pending,
    );
    for gap in &result.gaps {
        println!(
            "gap\t{}\tno digest chains to it since {} (logging or validation was off)",
            gap.digest, gap.after
        );
    }
    for finding in &result.findings {
        match &finding.digest {
            Some(digest) => println!(
                "{}\t{}\t{} (digest {digest})",
                finding.kind.as_str(),
                finding.object,
                finding.detail
            ),
            None => println!(
                "{}\t{}\t{}",
                finding.kind.as_str(),
                finding.object,
                finding.detail
            ),
        }
    }
    if result.findings.is_empty() {
        println!("verified: no findings");
    } else {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for finding in &result.findings {
            *counts.entry(finding.kind.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        println!(
            "FAILED: {} findings ({})",
            result.findings.len(),
            counts.join(", ")
        );
    }
}
