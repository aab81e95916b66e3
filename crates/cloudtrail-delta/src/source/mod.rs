//! Log objects to ingest: their identity (URI, key, content fingerprint) and where they come
//! from: [`local`] files and folders, or [`s3`] buckets, announced by the Lambda [`event`]s
//! and kept to the log bucket and prefix a function serves ([`scope`]).

pub mod event;
pub mod local;
pub mod s3;
pub mod scope;

use std::collections::HashMap;
use std::io::Read;

use xxhash_rust::xxh3::Xxh3;

/// An object opened for reading: its bytes, and its user metadata (a digest's signature is
/// there; empty for local files).
pub struct Opened {
    pub body: Box<dyn Read + Send>,
    pub metadata: HashMap<String, String>,
}

impl Opened {
    /// Bytes without metadata.
    pub fn bytes(body: impl Read + Send + 'static) -> Self {
        Self {
            body: Box::new(body),
            metadata: HashMap::new(),
        }
    }
}

/// One log object: where it is and what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    /// Where the object lives (`s3://bucket/key`, `file:///path`): the lineage on every row.
    pub uri: String,
    /// The key (or path) that routing reads.
    pub key: String,
    /// Identifies the content: an S3 ETag, or a hash of a local file's bytes.
    pub fingerprint: String,
    /// The object's size in bytes, when known.
    pub size: Option<u64>,
}

impl SourceObject {
    /// The ingest id: the Delta transaction app id that records this object as ingested.
    /// The same URI with the same content always gives the same id.
    pub fn ingest_id(&self) -> String {
        let mut hash = Xxh3::new();
        hash.update(self.uri.as_bytes());
        hash.update(b"\n");
        hash.update(self.fingerprint.as_bytes());
        format!("cloudtrail-delta/{:032x}", hash.digest128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_id_depends_on_uri_and_content() {
        let a = SourceObject {
            uri: "s3://b/k".into(),
            key: "k".into(),
            fingerprint: "e1".into(),
            size: None,
        };
        let same = a.clone();
        let other_content = SourceObject {
            fingerprint: "e2".into(),
            ..a.clone()
        };
        let other_key = SourceObject {
            uri: "s3://b/k2".into(),
            ..a.clone()
        };
        assert_eq!(a.ingest_id(), same.ingest_id());
        assert_ne!(a.ingest_id(), other_content.ingest_id());
        assert_ne!(a.ingest_id(), other_key.ingest_id());
        assert!(a.ingest_id().starts_with("cloudtrail-delta/"));
    }
}
