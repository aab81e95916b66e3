//! The ingest function's verification of digests: when a digest lands, a request to verify
//! the hour it covers goes to the verification queue, delayed until that hour's grace period
//! has passed (SQS delays a message 15 minutes at most, so a longer wait is a few hops); when
//! the request comes back, the function verifies the hour for the digest's account and region
//! ([`cloudtrail_delta::verify`]) and reports the findings as metrics and log lines.

use std::collections::HashMap;

use chrono::{TimeDelta, Utc};
use tokio::sync::Mutex;

use cloudtrail_delta::parse::route::{account_and_region, delivery_time};
use cloudtrail_delta::settings::{Settings, TableUris};
use cloudtrail_delta::source::event::VerifyRequest;
use cloudtrail_delta::table::commit::CommitMode;
use cloudtrail_delta::verify::public_keys::KeyProvider;
use cloudtrail_delta::verify::{self, Scope, Verification};

/// The longest delay SQS puts on a message.
const MAX_DELAY_SECONDS: i64 = 900;

/// Why a verification could not be asked for or done.
#[derive(Debug, thiserror::Error)]
pub enum VerificationError {
    #[error("cannot queue the verification of {digest}: {message}")]
    Queue { digest: String, message: String },
    #[error("cannot verify the hour of {digest}: {source}")]
    Verify {
        digest: String,
        source: verify::VerifyError,
    },
    #[error("{0}")]
    Keys(#[from] verify::public_keys::KeysError),
}

/// Verifications, through the queue at `queue_url`.
pub struct Verifier {
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
    tables: TableUris,
    commit_mode: CommitMode,
    grace: TimeDelta,
    /// Keys from `PUBLIC_KEYS_FILE`, else fetched with ListPublicKeys and kept by region.
    keys: Mutex<KeyProvider>,
}

impl Verifier {
    /// The verifier `settings` ask for; `None` without a verification queue.
    pub fn new(
        settings: &Settings,
        aws_config: &aws_config::SdkConfig,
    ) -> Result<Option<Self>, VerificationError> {
        let Some(queue_url) = settings.verify_queue.clone() else {
            return Ok(None);
        };
        let keys = KeyProvider::new(
            settings.public_keys_file.as_deref(),
            Some(aws_config.clone()),
        )?;
        Ok(Some(Self {
            queue_url,
            sqs: aws_sdk_sqs::Client::new(aws_config),
            tables: settings.tables.clone(),
            commit_mode: settings.commit_mode.clone(),
            grace: settings.verify_grace,
            keys: Mutex::new(keys),
        }))
    }

    /// The request to verify the hour of the digest at `uri` (`s3://bucket/key`), due once
    /// the grace period after that hour has passed; `None` for a key without CloudTrail's
    /// digest layout.
    pub fn request_for(&self, uri: &str) -> Option<VerifyRequest> {
        let end = delivery_time(uri)?;
        let (account, region) = account_and_region(uri).unzip();
        Some(VerifyRequest {
            digest: uri.to_owned(),
            account: account.map(str::to_owned),
            region: region.map(str::to_owned),
            start: end - 3600,
            end,
            due: end.saturating_add(self.grace.num_seconds()),
        })
    }

    /// Sends `request` to the queue, delayed until it is due (at most 15 minutes: a request
    /// that comes back early is sent again).
    pub async fn enqueue(&self, request: &VerifyRequest) -> Result<(), VerificationError> {
        let delay = (request.due - Utc::now().timestamp()).clamp(0, MAX_DELAY_SECONDS);
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(request.to_body())
            .delay_seconds(i32::try_from(delay).unwrap_or(0))
            .send()
            .await
            .map_err(|e| VerificationError::Queue {
                digest: request.digest.clone(),
                message: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }

    /// Verifies the request's hour if it is due (`Some` with what was found), else sends it
    /// again for later (`None`).
    pub async fn handle(
        &self,
        request: &VerifyRequest,
    ) -> Result<Option<Verification>, VerificationError> {
        let now = Utc::now();
        if request.due > now.timestamp() {
            self.enqueue(request).await?;
            return Ok(None);
        }
        let at = |secs| chrono::DateTime::from_timestamp(secs, 0).unwrap_or(now);
        let scope = Scope {
            start: at(request.start),
            end: at(request.end),
            account: request.account.clone(),
            region: request.region.clone(),
            grace: self.grace,
            now,
        };
        let mut keys = self.keys.lock().await;
        let verification = verify::verify(
            &self.tables,
            &HashMap::new(),
            &self.commit_mode,
            &scope,
            &mut keys,
        )
        .await
        .map_err(|source| VerificationError::Verify {
            digest: request.digest.clone(),
            source,
        })?;
        for finding in &verification.findings {
            tracing::error!(digest = %request.digest, finding = finding.kind.as_str(),
                object = %finding.object, detail = %finding.detail, "verification finding");
        }
        tracing::info!(digest = %request.digest, digests = verification.digests,
            digests_valid = verification.digests_valid,
            log_files_verified = verification.log_files_verified,
            findings = verification.findings.len(), "hour verified");
        Ok(Some(verification))
    }
}
