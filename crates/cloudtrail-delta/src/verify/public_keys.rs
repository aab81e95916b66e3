//! The public keys CloudTrail signs digests with, by fingerprint: from a file saved from
//! `aws cloudtrail list-public-keys` (offline, and in tests), or from CloudTrail's
//! `ListPublicKeys` in each region the digests come from, fetched once per region and again
//! only when a digest names a key not fetched yet ([`KeyProvider`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use base64::Engine;
use serde::Deserialize;

/// Why public keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("ListPublicKeys in {region}: {message}")]
    Api { region: String, message: String },
}

/// Public keys (PKCS#1 DER) by fingerprint.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    by_fingerprint: HashMap<String, Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyList {
    public_key_list: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyEntry {
    value: String,
    fingerprint: String,
}

impl PublicKeys {
    /// The keys of a file holding what `aws cloudtrail list-public-keys` prints
    /// (`{"PublicKeyList": [{"Value": base64 DER, "Fingerprint": hex, …}]}`).
    pub fn from_file(path: &Path) -> Result<Self, KeysError> {
        let fail = |message: String| KeysError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let list: KeyList = serde_json::from_slice(&text).map_err(|e| {
            fail(format!(
                "not the output of `aws cloudtrail list-public-keys`: {e}"
            ))
        })?;
        let mut keys = Self::default();
        for entry in list.public_key_list {
            let der = base64::engine::general_purpose::STANDARD
                .decode(entry.value.trim())
                .map_err(|e| fail(format!("key {}: not base64: {e}", entry.fingerprint)))?;
            keys.insert(entry.fingerprint, der);
        }
        Ok(keys)
    }

    /// The keys CloudTrail used in `region` between `start` and `end` (seconds since the
    /// epoch), from `ListPublicKeys`.
    pub async fn fetch(
        config: &aws_config::SdkConfig,
        region: &str,
        start: i64,
        end: i64,
    ) -> Result<Self, KeysError> {
        let client = aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(config)
                .region(aws_sdk_cloudtrail::config::Region::new(region.to_owned()))
                .build(),
        );
        let fail = |message: String| KeysError::Api {
            region: region.to_owned(),
            message,
        };
        let mut keys = Self::default();
        let mut token = None;
        loop {
            let page = client
                .list_public_keys()
                .start_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(start))
                .end_time(aws_sdk_cloudtrail::primitives::DateTime::from_secs(end))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    fail(aws_sdk_cloudtrail::error::DisplayErrorContext(&e).to_string())
                })?;
            for key in page.public_key_list() {
                if let (Some(fingerprint), Some(value)) = (key.fingerprint(), key.value()) {
                    keys.insert(fingerprint.to_owned(), value.as_ref().to_vec());
                }
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }

    pub fn insert(&mut self, fingerprint: String, der: Vec<u8>) {
        self.by_fingerprint.insert(fingerprint, der);
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: PublicKeys) {
        self.by_fingerprint.extend(other.by_fingerprint);
    }

    /// The key with this fingerprint.
    pub fn get(&self, fingerprint: &str) -> Option<&[u8]> {
        self.by_fingerprint.get(fingerprint).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }
}

/// Where verification takes the public keys from, kept across verifications (the function's
/// warm invocations): a file, or `ListPublicKeys`, whose answers are kept by region.
pub struct KeyProvider {
    /// The keys of a file: these and no others.
    file: Option<PublicKeys>,
    /// Else ListPublicKeys, with this configuration (loaded when first needed).
    config: Option<aws_config::SdkConfig>,
    fetched: HashMap<String, PublicKeys>,
}

impl KeyProvider {
    /// Keys from `file` when given, else from ListPublicKeys with `config` (or the
    /// environment's, loaded on the first call).
    pub fn new(
        file: Option<&Path>,
        config: Option<aws_config::SdkConfig>,
    ) -> Result<Self, KeysError> {
        Ok(Self {
            file: file.map(PublicKeys::from_file).transpose()?,
            config,
            fetched: HashMap::new(),
        })
    }

    /// The keys that digests naming `wanted` (region and fingerprint of each) need, for a
    /// period from `start` to `end` (seconds since the epoch). A region is asked again when
    /// one of its fingerprints is not among the keys it gave before: CloudTrail rotates them.
    pub async fn keys_for(
        &mut self,
        wanted: &[(&str, &str)],
        start: i64,
        end: i64,
    ) -> Result<PublicKeys, KeysError> {
        if let Some(keys) = &self.file {
            return Ok(keys.clone());
        }
        let mut by_region: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (region, fingerprint) in wanted {
            by_region.entry(region).or_default().insert(fingerprint);
        }
        let mut keys = PublicKeys::default();
        for (region, fingerprints) in by_region {
            let known = self
                .fetched
                .get(region)
                .is_some_and(|k| fingerprints.iter().all(|f| k.get(f).is_some()));
            if !known {
                let config = match &self.config {
                    Some(config) => config,
                    None => self.config.insert(crate::aws::load_config().await),
                };
                let fetched = PublicKeys::fetch(config, region, start, end).await?;
                self.fetched.insert(region.to_owned(), fetched);
            }
            keys.extend(self.fetched[region].clone());
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_aws_cli_prints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(
            &path,
            r#"{"PublicKeyList": [{"ValidityStartTime": 1453076702.0, "ValidityEndTime": "2016-02-17T00:25:02+00:00",
                "Value": "AQID", "Fingerprint": "7f3f8f9a"}]}"#,
        )
        .unwrap();
        let keys = PublicKeys::from_file(&path).unwrap();
        assert_eq!(keys.get("7f3f8f9a"), Some(&[1u8, 2, 3][..]));
        assert_eq!(keys.get("other"), None);
        std::fs::write(&path, r#"{"Keys": []}"#).unwrap();
        let error = PublicKeys::from_file(&path).unwrap_err().to_string();
        assert!(error.contains("list-public-keys"), "{error}");
    }

    #[tokio::test]
    async fn a_region_is_asked_again_only_for_a_key_it_did_not_give() {
        // ListPublicKeys at an address where nothing answers: any call fails.
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url("http://127.0.0.1:9")
            .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudtrail::config::Credentials::for_tests())
            .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
            .load()
            .await;
        let mut provider = KeyProvider::new(None, Some(config)).unwrap();
        let mut fetched = PublicKeys::default();
        fetched.insert("k1".into(), vec![1]);
        provider.fetched.insert("us-east-1".into(), fetched);
        let keys = provider
            .keys_for(&[("us-east-1", "k1")], 0, 1)
            .await
            .unwrap();
        assert_eq!(keys.get("k1"), Some(&[1u8][..]));
        let rotated = provider.keys_for(&[("us-east-1", "k2")], 0, 1).await;
        assert!(matches!(rotated, Err(KeysError::Api { .. })), "{rotated:?}");
        let other_region = provider.keys_for(&[("eu-west-1", "k1")], 0, 1).await;
        assert!(
            matches!(other_region, Err(KeysError::Api { .. })),
            "{other_region:?}"
        );
    }
}
