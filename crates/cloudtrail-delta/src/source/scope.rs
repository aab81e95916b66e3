//! Which objects the function may read: the log files of its trail, `s3://<LOG_BUCKET>/
//! <LOG_PREFIX>AWSLogs/…`, and nothing else.
//!
//! Anyone who may invoke the function, send to its queue or route events to it chooses the
//! bucket and key of an event. The function checks each announced object against the scope it
//! is deployed for before any request about it, so that it cannot be made to read (and copy
//! into the tables) other objects its role can read.

use crate::source::event::ObjectRef;

/// The variable naming the log bucket (required by the function).
pub const LOG_BUCKET: &str = "LOG_BUCKET";
/// The variable holding the trail's key prefix (empty or ending in `/`; default empty).
pub const LOG_PREFIX: &str = "LOG_PREFIX";

/// The log files the function may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScope {
    bucket: String,
    /// `<LOG_PREFIX>AWSLogs/`: every log CloudTrail delivers for the trail starts with it.
    key_prefix: String,
}

/// An object outside the scope, not read. Displays as `s3://bucket/key: <why>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{uri}: refused, not read: {reason}; this function reads only s3://{bucket}/{key_prefix}… \
     ({LOG_BUCKET}, {LOG_PREFIX})"
)]
pub struct OutOfScope {
    pub uri: String,
    pub reason: &'static str,
    bucket: String,
    key_prefix: String,
}

impl LogScope {
    /// The logs of a trail delivering to `bucket` with the key prefix `trail_prefix` (empty,
    /// or ending in `/`).
    pub fn new(bucket: &str, trail_prefix: &str) -> Result<Self, String> {
        if bucket.is_empty() || bucket.contains('/') {
            return Err(format!(
                "{LOG_BUCKET}={bucket:?} is not a bucket name (the trail's log bucket)"
            ));
        }
        if !trail_prefix.is_empty()
            && (!trail_prefix.ends_with('/') || trail_prefix.starts_with('/'))
        {
            return Err(format!(
                "{LOG_PREFIX}={trail_prefix:?} is not a key prefix: empty, or not starting but \
                 ending with \"/\" (the trail's S3 key prefix)"
            ));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            key_prefix: format!("{trail_prefix}AWSLogs/"),
        })
    }

    /// The object as it may be read: in the log bucket, with a key under the prefix. Of the
    /// two spellings of an EventBridge key, only one inside the scope is kept.
    pub fn admit(&self, object: &ObjectRef) -> Result<ObjectRef, OutOfScope> {
        let refuse = |reason| OutOfScope {
            uri: object.uri(),
            reason,
            bucket: self.bucket.clone(),
            key_prefix: self.key_prefix.clone(),
        };
        if object.bucket != self.bucket {
            return Err(refuse("another bucket than the log bucket"));
        }
        let inside = |key: &str| key.starts_with(&self.key_prefix);
        let alternate = object.alternate_key.clone().filter(|k| inside(k));
        if inside(&object.key) {
            Ok(ObjectRef {
                alternate_key: alternate,
                ..object.clone()
            })
        } else if let Some(key) = alternate {
            Ok(ObjectRef {
                key,
                alternate_key: None,
                ..object.clone()
            })
        } else {
            Err(refuse("a key outside the trail's logs"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(bucket: &str, key: &str) -> ObjectRef {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            alternate_key: None,
            size: Some(1),
            etag: Some("e".into()),
            version_id: None,
            sequencer: None,
        }
    }

    const LOG: &str = "org/AWSLogs/o-a1b2c3d4e5/1/CloudTrail/us-east-1/2024/04/30/x.json.gz";

    #[test]
    fn admits_the_trails_logs_only() {
        let scope = LogScope::new("logs", "org/").unwrap();
        assert_eq!(scope.admit(&object("logs", LOG)), Ok(object("logs", LOG)));
        let digest = "org/AWSLogs/1/CloudTrail-Digest/us-east-1/2024/04/30/d.json.gz";
        assert!(scope.admit(&object("logs", digest)).is_ok());

        let err = scope.admit(&object("other", LOG)).unwrap_err();
        assert_eq!(err.reason, "another bucket than the log bucket");
        assert!(
            err.to_string()
                .starts_with(&format!("s3://other/{LOG}: refused, not read")),
            "{err}"
        );
        assert!(err.to_string().contains("s3://logs/org/AWSLogs/…"), "{err}");
        for key in [
            "AWSLogs/1/CloudTrail/us-east-1/2024/04/30/x.json.gz",
            "org2/AWSLogs/1/CloudTrail/x.json.gz",
            "delta/cloudtrail/_delta_log/00000000000000000000.json",
            "org/awslogs/1/CloudTrail/x.json.gz",
            "org/AWSLogs",
        ] {
            let err = scope.admit(&object("logs", key)).unwrap_err();
            assert_eq!(err.reason, "a key outside the trail's logs", "{key}");
        }
    }

    #[test]
    fn an_empty_prefix_means_awslogs_at_the_root() {
        let scope = LogScope::new("logs", "").unwrap();
        assert!(scope.admit(&object("logs", "AWSLogs/1/x.json.gz")).is_ok());
        assert!(scope.admit(&object("logs", LOG)).is_err());
    }

    #[test]
    fn keeps_only_a_spelling_inside_the_scope() {
        let scope = LogScope::new("logs", "my logs/").unwrap();
        let decoded = "my logs/AWSLogs/1/CloudTrail/x.json.gz";
        let encoded = "my+logs/AWSLogs/1/CloudTrail/x.json.gz";
        let announced = ObjectRef {
            alternate_key: Some(decoded.into()),
            ..object("logs", encoded)
        };
        assert_eq!(scope.admit(&announced), Ok(object("logs", decoded)));
        let announced = ObjectRef {
            alternate_key: Some(encoded.into()),
            ..object("logs", decoded)
        };
        assert_eq!(scope.admit(&announced), Ok(object("logs", decoded)));
    }

    #[test]
    fn the_bucket_and_prefix_must_be_well_formed() {
        assert!(LogScope::new("logs", "").is_ok() && LogScope::new("logs", "org/").is_ok());
        for bad in ["org", "/org/"] {
            let err = LogScope::new("logs", bad).unwrap_err();
            assert!(err.contains(LOG_PREFIX), "{err}");
        }
        for bad in ["logs/org", ""] {
            let err = LogScope::new(bad, "").unwrap_err();
            assert!(err.contains(LOG_BUCKET), "{err}");
        }
    }
}
