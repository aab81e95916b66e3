//! Every setting of the command and of the two functions, read once, in one place.
//!
//! A setting is an environment variable; [`VARIABLES`] lists them all with their defaults
//! (the README's configuration table is checked against it). The command's flags set the
//! same values, a flag winning over its variable; the functions read the environment the
//! template gives them. Values are parsed, defaulted and checked here and nowhere else, and a
//! bad one is an error that names its variable (or flag).

use std::time::Duration;

use cloudtrail_parse::{Limits, LogKind};

use crate::maintenance::Policy;
use crate::source::scope::LogScope;
pub use crate::source::scope::{LOG_BUCKET, LOG_PREFIX};
use crate::table::commit::CommitMode;

pub const CLOUDTRAIL_TABLE_URI: &str = "CLOUDTRAIL_TABLE_URI";
pub const INSIGHTS_TABLE_URI: &str = "INSIGHTS_TABLE_URI";
pub const AGGREGATED_TABLE_URI: &str = "AGGREGATED_TABLE_URI";
pub const DIGEST_TABLE_URI: &str = "DIGEST_TABLE_URI";
pub const PUBLIC_KEYS_FILE: &str = "PUBLIC_KEYS_FILE";
pub const VERIFY_GRACE_MINUTES: &str = "VERIFY_GRACE_MINUTES";
pub const VERIFY_QUEUE_URL: &str = "VERIFY_QUEUE_URL";

/// How long after a log's delivery it may still be missing from every digest, by default:
/// CloudTrail writes each hour's digest within the next hour, and backfill digests follow
/// late logs.
pub const DEFAULT_VERIFY_GRACE_MINUTES: u64 = 180;
pub const LOCKING_PROVIDER: &str = "AWS_S3_LOCKING_PROVIDER";
pub const LOCK_TABLE_NAME: &str = "DELTA_DYNAMO_TABLE_NAME";
pub const PARALLEL_READS: &str = "CLOUDTRAIL_DELTA_PARALLEL_READS";
pub const OBJECTS_PER_COMMIT: &str = "CLOUDTRAIL_DELTA_OBJECTS_PER_COMMIT";
pub const MB_PER_COMMIT: &str = "CLOUDTRAIL_DELTA_MB_PER_COMMIT";
pub const MAX_OBJECT_BYTES: &str = "CLOUDTRAIL_DELTA_MAX_OBJECT_BYTES";
pub const MAX_RECORD_BYTES: &str = "CLOUDTRAIL_DELTA_MAX_RECORD_BYTES";
pub const MAX_JSON_BYTES: &str = "CLOUDTRAIL_DELTA_MAX_JSON_BYTES";
pub const MAX_RECORDS: &str = "CLOUDTRAIL_DELTA_MAX_RECORDS";
pub const TARGET_FILE_MB: &str = "TARGET_FILE_MB";
pub const VACUUM_RETENTION_HOURS: &str = "VACUUM_RETENTION_HOURS";
pub const RUST_LOG: &str = "RUST_LOG";
pub const CRASH_AT: &str = crate::runtime::crash::CRASH_AT;
pub const CRASH_RATE: &str = crate::runtime::crash::CRASH_RATE;

/// Objects of a batch read and parsed at once, by default.
pub const DEFAULT_PARALLEL_READS: usize = 4;
/// The log level, by default.
pub const DEFAULT_LOG_FILTER: &str = "warn,cloudtrail_delta=info";

/// Which program reads the settings: what it must be given, and what it may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `cloudtrail-delta`: the tables default to folders under `./delta/`.
    Command,
    /// The ingest function: the CloudTrail and Insights tables and the log bucket are
    /// required; without an aggregated-events table, such objects fail, saying so.
    IngestFunction,
    /// The maintenance function: the CloudTrail and Insights tables are required.
    MaintenanceFunction,
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// The command's flag that sets it, if any.
    pub flag: Option<&'static str>,
    /// The default, as written in the README (empty: none, or required where marked).
    pub default: &'static str,
    /// Who reads it: `command`, `ingest`, `maintenance`.
    pub read_by: &'static [&'static str],
    pub meaning: &'static str,
}

const ALL: &[&str] = &["command", "ingest", "maintenance"];
const INGEST: &[&str] = &["command", "ingest"];

/// Every variable the command and the functions read.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: CLOUDTRAIL_TABLE_URI,
        flag: Some("--table"),
        default: "./delta/cloudtrail",
        read_by: ALL,
        meaning: "The CloudTrail table (management, data and network activity events): a \
                  folder or an s3:// URI. Required by the functions.",
    },
    Variable {
        name: INSIGHTS_TABLE_URI,
        flag: Some("--insights-table"),
        default: "./delta/cloudtrail_insights",
        read_by: ALL,
        meaning: "The Insights table. Required by the functions.",
    },
    Variable {
        name: AGGREGATED_TABLE_URI,
        flag: Some("--aggregated-table"),
        default: "./delta/cloudtrail_aggregated",
        read_by: ALL,
        meaning: "The aggregated-events table. In the functions, without it aggregated-event \
                  objects fail, saying so.",
    },
    Variable {
        name: DIGEST_TABLE_URI,
        flag: Some("--digest-table"),
        default: "./delta/cloudtrail_digests",
        read_by: ALL,
        meaning: "The digests table: one row per log file each CloudTrail-Digest file lists, \
                  with the digest's signature. In the functions, without it digest objects \
                  fail, saying so.",
    },
    Variable {
        name: LOCKING_PROVIDER,
        flag: None,
        default: "conditional-put",
        read_by: ALL,
        meaning: "How commits to tables on S3 are coordinated: conditional-put (S3 \
                  conditional writes) or dynamodb (the lock table).",
    },
    Variable {
        name: LOCK_TABLE_NAME,
        flag: None,
        default: "delta_log",
        read_by: ALL,
        meaning: "The DynamoDB lock table, with AWS_S3_LOCKING_PROVIDER=dynamodb.",
    },
    Variable {
        name: LOG_BUCKET,
        flag: None,
        default: "",
        read_by: &["ingest"],
        meaning: "The bucket the trail delivers to: the ingest function reads no other. \
                  Required.",
    },
    Variable {
        name: LOG_PREFIX,
        flag: None,
        default: "",
        read_by: &["ingest"],
        meaning: "The trail's S3 key prefix (empty, or ending in /): the ingest function \
                  reads only <LOG_PREFIX>AWSLogs/….",
    },
    Variable {
        name: PARALLEL_READS,
        flag: Some("--parallel-reads"),
        default: "4",
        read_by: INGEST,
        meaning: "Objects read and parsed at once while filling a commit (1 to 256); each \
                  in flight holds at most about 10 MB.",
    },
    Variable {
        name: OBJECTS_PER_COMMIT,
        flag: Some("--objects-per-commit"),
        default: "500",
        read_by: &["command"],
        meaning: "Objects committed together, at most (1: one commit per object).",
    },
    Variable {
        name: MB_PER_COMMIT,
        flag: Some("--mb-per-commit"),
        default: "256",
        read_by: &["command"],
        meaning: "Megabytes of objects (as stored) committed together, at most.",
    },
    Variable {
        name: MAX_OBJECT_BYTES,
        flag: Some("--max-object-bytes"),
        default: "4294967296",
        read_by: INGEST,
        meaning: "Largest log object (as stored) to ingest, in bytes; a larger one fails, \
                  named, and nothing of it lands.",
    },
    Variable {
        name: MAX_RECORD_BYTES,
        flag: Some("--max-record-bytes"),
        default: "16777216",
        read_by: INGEST,
        meaning: "Largest single record (its JSON text), in bytes.",
    },
    Variable {
        name: MAX_JSON_BYTES,
        flag: Some("--max-json-bytes"),
        default: "4294967296",
        read_by: INGEST,
        meaning: "Most JSON one log object may decompress to, in bytes (a gzip bomb stops \
                  here).",
    },
    Variable {
        name: MAX_RECORDS,
        flag: Some("--max-records"),
        default: "10000000",
        read_by: INGEST,
        meaning: "Most records one log object may hold.",
    },
    Variable {
        name: PUBLIC_KEYS_FILE,
        flag: Some("--public-keys"),
        default: "",
        read_by: INGEST,
        meaning: "Verification takes CloudTrail's public keys from this file (what `aws \
                  cloudtrail list-public-keys` prints) instead of calling ListPublicKeys.",
    },
    Variable {
        name: VERIFY_GRACE_MINUTES,
        flag: Some("--grace-minutes"),
        default: "180",
        read_by: INGEST,
        meaning: "Verification reports an ingested log no digest lists only this many minutes \
                  after its delivery (logs may land after their digest; backfill digests \
                  list late ones).",
    },
    Variable {
        name: VERIFY_QUEUE_URL,
        flag: None,
        default: "",
        read_by: &["ingest"],
        meaning: "The SQS queue through which the ingest function verifies each digest's \
                  hour once the grace period has passed; unset, it verifies nothing.",
    },
    Variable {
        name: TARGET_FILE_MB,
        flag: Some("--target-file-mb"),
        default: "128",
        read_by: &["command", "maintenance"],
        meaning: "Compaction packs small files into files of about this many megabytes.",
    },
    Variable {
        name: VACUUM_RETENTION_HOURS,
        flag: Some("--vacuum-retention-hours"),
        default: "168",
        read_by: &["command", "maintenance"],
        meaning: "VACUUM deletes unreferenced files older than this many hours.",
    },
    Variable {
        name: RUST_LOG,
        flag: None,
        default: DEFAULT_LOG_FILTER,
        read_by: ALL,
        meaning: "The log level, per module (tracing's EnvFilter).",
    },
    Variable {
        name: CRASH_AT,
        flag: None,
        default: "",
        read_by: ALL,
        meaning: "Tests only: crash points (comma-separated) where the process aborts.",
    },
    Variable {
        name: CRASH_RATE,
        flag: None,
        default: "1",
        read_by: ALL,
        meaning: "Tests only: the chance (0 to 1) that a named crash point aborts.",
    },
];

/// The variable setting `name`, from [`VARIABLES`].
fn variable(name: &str) -> &'static Variable {
    VARIABLES
        .iter()
        .find(|v| v.name == name)
        .expect("every setting is in VARIABLES")
}

/// The table of each kind's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUris {
    pub cloudtrail: String,
    pub insights: String,
    /// None: aggregated-event objects fail, saying which setting names their table.
    pub aggregated: Option<String>,
    /// None: digest objects fail, saying which setting names their table.
    pub digests: Option<String>,
}

impl TableUris {
    /// The table of a kind's records, if one is set.
    pub fn of(&self, kind: LogKind) -> Option<&str> {
        match kind {
            LogKind::CloudTrail => Some(&self.cloudtrail),
            LogKind::Insights => Some(&self.insights),
            LogKind::Aggregated => self.aggregated.as_deref(),
            LogKind::Digest => self.digests.as_deref(),
        }
    }

    /// Each kind with a table, and its table.
    pub fn all(&self) -> Vec<(LogKind, &str)> {
        LogKind::ALL
            .into_iter()
            .filter_map(|kind| self.of(kind).map(|uri| (kind, uri)))
            .collect()
    }

    /// Whether any table is on S3.
    pub fn on_s3(&self) -> bool {
        self.all().iter().any(|(_, uri)| uri.starts_with("s3"))
    }
}

/// The variable naming the table of a kind's records.
pub fn table_variable(kind: LogKind) -> &'static str {
    match kind {
        LogKind::CloudTrail => CLOUDTRAIL_TABLE_URI,
        LogKind::Insights => INSIGHTS_TABLE_URI,
        LogKind::Aggregated => AGGREGATED_TABLE_URI,
        LogKind::Digest => DIGEST_TABLE_URI,
    }
}

/// How many objects, and how many bytes of them, the command commits together at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitBatch {
    pub objects: usize,
    pub bytes: u64,
}

/// Every setting, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub tables: TableUris,
    pub commit_mode: CommitMode,
    pub limits: Limits,
    /// Objects of a batch read and parsed at once.
    pub parallel_reads: usize,
    pub commit_batch: CommitBatch,
    pub maintenance: Policy,
    /// The objects the ingest function may read (None in the other programs).
    pub scope: Option<LogScope>,
    /// Where verification takes public keys from: a file, or else ListPublicKeys.
    pub public_keys_file: Option<std::path::PathBuf>,
    /// How long after its delivery an ingested log may be in no digest.
    pub verify_grace: chrono::TimeDelta,
    /// The queue of the ingest function's delayed verifications, if any.
    pub verify_queue: Option<String>,
}

/// A missing or bad setting, named. Displays as `configuration: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// The settings of `program` from the variables `var` gives (the environment, and in the
    /// command its flags over it).
    pub fn from_lookup(
        program: Program,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let read = Reader { var: &var };
        let tables = read.tables(program)?;
        let commit_mode = read.commit_mode()?;
        let defaults = Limits::default();
        let limits = Limits {
            max_object_bytes: read.positive(MAX_OBJECT_BYTES, defaults.max_object_bytes)?,
            max_record_bytes: usize::try_from(
                read.positive(MAX_RECORD_BYTES, defaults.max_record_bytes as u64)?,
            )
            .unwrap_or(usize::MAX),
            max_json_bytes: read.positive(MAX_JSON_BYTES, defaults.max_json_bytes)?,
            max_records: read.positive(MAX_RECORDS, defaults.max_records)?,
            ..defaults
        };
        let parallel_reads = read.positive(PARALLEL_READS, DEFAULT_PARALLEL_READS as u64)?;
        if parallel_reads > 256 {
            return Err(read.bad(PARALLEL_READS, &parallel_reads.to_string(), "above 256"));
        }
        let commit_batch = CommitBatch {
            objects: read.positive(OBJECTS_PER_COMMIT, 500)? as usize,
            bytes: read.positive(MB_PER_COMMIT, 256)? << 20,
        };
        let policy = Policy::default();
        let maintenance = Policy {
            target_file_bytes: read.positive(TARGET_FILE_MB, policy.target_file_bytes >> 20)? << 20,
            vacuum_retention: Duration::from_secs(
                read.number(
                    VACUUM_RETENTION_HOURS,
                    policy.vacuum_retention.as_secs() / 3600,
                )? * 3600,
            ),
        };
        let scope = match program {
            Program::IngestFunction => Some(read.scope()?),
            Program::Command | Program::MaintenanceFunction => None,
        };
        let public_keys_file = read.value(PUBLIC_KEYS_FILE).map(std::path::PathBuf::from);
        let grace_minutes = read.number(VERIFY_GRACE_MINUTES, DEFAULT_VERIFY_GRACE_MINUTES)?;
        // A grace beyond what a time can hold is no grace at all: nothing is ever overdue.
        let verify_grace = i64::try_from(grace_minutes)
            .ok()
            .and_then(chrono::TimeDelta::try_minutes)
            .unwrap_or(chrono::TimeDelta::MAX);
        let verify_queue = read.value(VERIFY_QUEUE_URL);
        Ok(Self {
            tables,
            commit_mode,
            limits,
            parallel_reads: parallel_reads as usize,
            commit_batch,
            maintenance,
            scope,
            public_keys_file,
            verify_grace,
            verify_queue,
        })
    }

    /// The settings of `program` from the process environment.
    pub fn from_env(program: Program) -> Result<Self, SettingsError> {
        Self::from_lookup(program, |name| std::env::var(name).ok())
    }
}

/// Reads variables through a lookup, naming each in its errors.
struct Reader<'a, F> {
    var: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    /// The variable's value, trimmed; None when unset or empty.
    fn value(&self, name: &str) -> Option<String> {
        (self.var)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// How a bad value is reported: by its flag too, when the command has one.
    fn bad(&self, name: &str, value: &str, why: &str) -> SettingsError {
        let by = match variable(name).flag {
            Some(flag) => format!("{name} (or {flag})"),
            None => name.to_owned(),
        };
        SettingsError(format!("{by}={value:?} is {why}"))
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, SettingsError> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| self.bad(name, &v, "not a whole number")),
        }
    }

    fn positive(&self, name: &str, default: u64) -> Result<u64, SettingsError> {
        match self.number(name, default)? {
            0 => Err(self.bad(name, "0", "not a positive number")),
            n => Ok(n),
        }
    }

    fn table(&self, name: &str, program: Program) -> Result<Option<String>, SettingsError> {
        let uri = match (self.value(name), program) {
            (Some(uri), _) => uri,
            (None, Program::Command) => variable(name).default.to_owned(),
            (None, _) if name == AGGREGATED_TABLE_URI || name == DIGEST_TABLE_URI => {
                return Ok(None);
            }
            (None, _) => {
                return Err(SettingsError(format!(
                    "{name} is not set (the Delta table URI, s3://…)"
                )));
            }
        };
        if let Err(e) = url_of(&uri) {
            return Err(self.bad(name, &uri, &format!("not a table URI: {e}")));
        }
        Ok(Some(uri))
    }

    fn tables(&self, program: Program) -> Result<TableUris, SettingsError> {
        let required = |name| {
            self.table(name, program)?
                .ok_or_else(|| SettingsError(format!("{name} is not set")))
        };
        let tables = TableUris {
            cloudtrail: required(CLOUDTRAIL_TABLE_URI)?,
            insights: required(INSIGHTS_TABLE_URI)?,
            aggregated: self.table(AGGREGATED_TABLE_URI, program)?,
            digests: self.table(DIGEST_TABLE_URI, program)?,
        };
        let all = tables.all();
        for (i, (kind, uri)) in all.iter().enumerate() {
            for (other, other_uri) in &all[i + 1..] {
                if uri.trim_end_matches('/') == other_uri.trim_end_matches('/') {
                    return Err(SettingsError(format!(
                        "{} and {} are the same table ({uri}); each needs its own location",
                        table_variable(*kind),
                        table_variable(*other)
                    )));
                }
            }
        }
        Ok(tables)
    }

    fn commit_mode(&self) -> Result<CommitMode, SettingsError> {
        match self.value(LOCKING_PROVIDER) {
            None => Ok(CommitMode::ConditionalPut),
            Some(p) if p.eq_ignore_ascii_case("conditional-put") => Ok(CommitMode::ConditionalPut),
            Some(p) if p.eq_ignore_ascii_case("dynamodb") => Ok(CommitMode::DynamoDb {
                table_name: self
                    .value(LOCK_TABLE_NAME)
                    .unwrap_or_else(|| variable(LOCK_TABLE_NAME).default.to_owned()),
            }),
            Some(other) => Err(SettingsError(format!(
                "{LOCKING_PROVIDER}={other:?} is not supported: leave it unset (or set it to \
                 \"conditional-put\") for S3 conditional writes, or set it to \"dynamodb\""
            ))),
        }
    }

    fn scope(&self) -> Result<LogScope, SettingsError> {
        let bucket = self.value(LOG_BUCKET).ok_or_else(|| {
            SettingsError(format!(
                "{LOG_BUCKET} is not set (the bucket the trail delivers to; the function \
                 reads no other)"
            ))
        })?;
        let prefix = self.value(LOG_PREFIX).unwrap_or_default();
        LogScope::new(&bucket, &prefix).map_err(SettingsError)
    }
}

/// The table location `uri` names (a folder, a `file://` or an object-store URI), as delta-rs
/// reads it, without creating anything.
fn url_of(uri: &str) -> Result<url::Url, String> {
    match url::Url::parse(uri) {
        Ok(url) => Ok(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let path = std::path::absolute(uri).map_err(|e| e.to_string())?;
            url::Url::from_directory_path(&path).map_err(|()| format!("{} is not a path", uri))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variable lookup over fixed pairs, standing in for the environment.
    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const FUNCTION_TABLES: &[(&str, &str)] = &[
        (CLOUDTRAIL_TABLE_URI, "s3://b/c"),
        (INSIGHTS_TABLE_URI, "s3://b/i"),
        (LOG_BUCKET, "logs"),
    ];

    fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = FUNCTION_TABLES.to_vec();
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn the_command_has_a_default_for_every_table_and_limit() {
        let settings = Settings::from_lookup(Program::Command, lookup(&[])).unwrap();
        assert_eq!(settings.tables.cloudtrail, "./delta/cloudtrail");
        assert_eq!(settings.tables.insights, "./delta/cloudtrail_insights");
        assert_eq!(
            settings.tables.aggregated.as_deref(),
            Some("./delta/cloudtrail_aggregated")
        );
        assert_eq!(settings.commit_mode, CommitMode::ConditionalPut);
        assert_eq!(settings.limits, Limits::default());
        assert_eq!(settings.parallel_reads, DEFAULT_PARALLEL_READS);
        assert_eq!(settings.maintenance, Policy::default());
        assert_eq!(settings.scope, None);
    }

    #[test]
    fn the_readme_defaults_are_the_ones_applied() {
        let settings = Settings::from_lookup(Program::Command, lookup(&[])).unwrap();
        let default = |name| variable(name).default.parse::<u64>().unwrap();
        assert_eq!(settings.parallel_reads as u64, default(PARALLEL_READS));
        assert_eq!(
            settings.commit_batch.objects as u64,
            default(OBJECTS_PER_COMMIT)
        );
        assert_eq!(settings.commit_batch.bytes >> 20, default(MB_PER_COMMIT));
        assert_eq!(settings.limits.max_object_bytes, default(MAX_OBJECT_BYTES));
        assert_eq!(
            settings.limits.max_record_bytes as u64,
            default(MAX_RECORD_BYTES)
        );
        assert_eq!(settings.limits.max_json_bytes, default(MAX_JSON_BYTES));
        assert_eq!(settings.limits.max_records, default(MAX_RECORDS));
        assert_eq!(
            settings.maintenance.target_file_bytes >> 20,
            default(TARGET_FILE_MB)
        );
        assert_eq!(
            settings.maintenance.vacuum_retention.as_secs() / 3600,
            default(VACUUM_RETENTION_HOURS)
        );
        assert_eq!(
            settings.verify_grace.num_minutes() as u64,
            default(VERIFY_GRACE_MINUTES)
        );
    }

    #[test]
    fn the_functions_need_both_tables_and_the_ingest_function_its_bucket() {
        for (missing, program) in [
            (CLOUDTRAIL_TABLE_URI, Program::IngestFunction),
            (INSIGHTS_TABLE_URI, Program::MaintenanceFunction),
            (LOG_BUCKET, Program::IngestFunction),
        ] {
            let vars: Vec<_> = with(&[])
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = Settings::from_lookup(program, lookup(&vars)).unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
        }
        let settings = Settings::from_lookup(
            Program::MaintenanceFunction,
            lookup(&[
                (CLOUDTRAIL_TABLE_URI, "s3://b/c"),
                (INSIGHTS_TABLE_URI, "s3://b/i"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.tables.aggregated, None);
        assert_eq!(settings.scope, None);
        let settings = Settings::from_lookup(
            Program::IngestFunction,
            lookup(&with(&[(LOG_PREFIX, "org/")])),
        )
        .unwrap();
        assert_eq!(settings.scope, Some(LogScope::new("logs", "org/").unwrap()));
    }

    #[test]
    fn two_kinds_in_one_table_are_refused() {
        let err = Settings::from_lookup(
            Program::IngestFunction,
            lookup(&with(&[(AGGREGATED_TABLE_URI, "s3://b/c/")])),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(CLOUDTRAIL_TABLE_URI)
                && err.to_string().contains(AGGREGATED_TABLE_URI)
                && err.to_string().contains("same table"),
            "{err}"
        );
    }

    #[test]
    fn the_commit_mode_and_its_lock_table() {
        let mode = |vars: &[(&str, &str)]| {
            Settings::from_lookup(Program::Command, lookup(vars)).map(|s| s.commit_mode)
        };
        assert_eq!(mode(&[]), Ok(CommitMode::ConditionalPut));
        assert_eq!(
            mode(&[(LOCKING_PROVIDER, "conditional-put")]),
            Ok(CommitMode::ConditionalPut)
        );
        assert_eq!(
            mode(&[(LOCKING_PROVIDER, "dynamodb")]),
            Ok(CommitMode::DynamoDb {
                table_name: "delta_log".into()
            })
        );
        assert_eq!(
            mode(&[(LOCKING_PROVIDER, "DynamoDB"), (LOCK_TABLE_NAME, "locks")]),
            Ok(CommitMode::DynamoDb {
                table_name: "locks".into()
            })
        );
        let err = mode(&[(LOCKING_PROVIDER, "zookeeper")]).unwrap_err();
        assert!(
            err.to_string().contains(LOCKING_PROVIDER) && err.to_string().contains("zookeeper"),
            "{err}"
        );
    }

    #[test]
    fn numbers_are_checked_and_named_with_their_flag() {
        let read = |vars: &[(&str, &str)]| Settings::from_lookup(Program::Command, lookup(vars));
        let settings = read(&[
            (MAX_OBJECT_BYTES, "10"),
            (MAX_RECORD_BYTES, "20"),
            (MAX_JSON_BYTES, "1000"),
            (MAX_RECORDS, " 7 "),
            (PARALLEL_READS, "16"),
            (TARGET_FILE_MB, "64"),
            (VACUUM_RETENTION_HOURS, "0"),
        ])
        .unwrap();
        assert_eq!(
            settings.limits,
            Limits {
                max_object_bytes: 10,
                max_record_bytes: 20,
                max_json_bytes: 1000,
                max_records: 7,
                ..Limits::default()
            }
        );
        assert_eq!(settings.parallel_reads, 16);
        assert_eq!(settings.maintenance.target_file_bytes, 64 << 20);
        assert_eq!(settings.maintenance.vacuum_retention, Duration::ZERO);
        for (name, value, flag) in [
            (MAX_JSON_BYTES, "0", "--max-json-bytes"),
            (MAX_RECORDS, "many", "--max-records"),
            (PARALLEL_READS, "257", "--parallel-reads"),
            (TARGET_FILE_MB, "-1", "--target-file-mb"),
        ] {
            let err = read(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(flag), "{err}");
        }
    }

    #[test]
    fn a_table_location_must_be_a_uri_or_a_path() {
        let err = Settings::from_lookup(
            Program::Command,
            lookup(&[(CLOUDTRAIL_TABLE_URI, "s3://bucket with space/t")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--table"), "{err}");
    }

    #[test]
    fn the_readme_configuration_table_says_what_is_applied() {
        let readme = include_str!("../../../README.md");
        for variable in VARIABLES {
            let row = readme
                .lines()
                .find(|line| line.starts_with(&format!("| `{}` |", variable.name)))
                .unwrap_or_else(|| panic!("README has no row for {}", variable.name));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let flag = variable.flag.map(|f| format!("`{f}`")).unwrap_or_default();
            let default = match variable.default {
                "" => String::new(),
                default => format!("`{default}`"),
            };
            assert_eq!(
                (cells[2], cells[3]),
                (flag.as_str(), default.as_str()),
                "{row}"
            );
            assert_eq!(cells[4], variable.read_by.join(", "), "{row}");
        }
    }

    #[test]
    fn every_variable_is_listed_once_and_every_flag_is_a_long_one() {
        let mut names: Vec<_> = VARIABLES.iter().map(|v| v.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len());
        assert!(
            VARIABLES
                .iter()
                .filter_map(|v| v.flag)
                .all(|flag| flag.starts_with("--"))
        );
    }
}
