//! Log objects in S3: describing them, listing a prefix, and reading one as a stream.

use std::io;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

use super::SourceObject;
use crate::source::Opened;
use crate::source::event::ObjectRef;

/// An object in S3, pinned to the content its ETag names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    pub bucket: String,
    pub key: String,
    /// The ETag without quotes: the content fingerprint.
    pub etag: String,
    pub version_id: Option<String>,
    pub size: Option<u64>,
}

impl S3Object {
    /// `s3://bucket/key`.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// The object's identity for ingestion: its URI and its ETag.
    pub fn source(&self) -> SourceObject {
        SourceObject {
            uri: self.uri(),
            key: self.key.clone(),
            fingerprint: self.etag.clone(),
            size: self.size,
        }
    }
}

/// Why an S3 object could not be described or listed.
#[derive(Debug, thiserror::Error)]
#[error("{uri}: {message}")]
pub struct S3Error {
    pub uri: String,
    pub message: String,
    /// The object (or bucket) does not exist.
    pub not_found: bool,
}

/// Reads log objects from S3.
#[derive(Debug, Clone)]
pub struct S3Source {
    client: Client,
}

impl S3Source {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Pins down the object an event announces. The event's ETag is used when it has one;
    /// otherwise (or to find which spelling of an EventBridge key exists) the object is
    /// asked for with HeadObject.
    pub async fn resolve(&self, object: &ObjectRef) -> Result<S3Object, S3Error> {
        if object.alternate_key.is_none()
            && let Some(etag) = &object.etag
        {
            return Ok(S3Object {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                etag: etag.clone(),
                version_id: object.version_id.clone(),
                size: object.size,
            });
        }
        match self
            .head(&object.bucket, &object.key, object.version_id.as_deref())
            .await
        {
            Err(e) if e.not_found && object.alternate_key.is_some() => {
                let key = object.alternate_key.as_deref().unwrap_or_default();
                self.head(&object.bucket, key, object.version_id.as_deref())
                    .await
            }
            other => other,
        }
    }

    async fn head(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<S3Object, S3Error> {
        let uri = format!("s3://{bucket}/{key}");
        let head = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| s3_error(&uri, "HeadObject", e))?;
        let etag = head.e_tag().map(unquote).ok_or_else(|| S3Error {
            uri: uri.clone(),
            message: "HeadObject returned no ETag".into(),
            not_found: false,
        })?;
        Ok(S3Object {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag,
            version_id: version_id.map(str::to_owned),
            size: head.content_length().and_then(|n| u64::try_from(n).ok()),
        })
    }

    /// Every object under `prefix` in `bucket`, in key order.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<S3Object>, S3Error> {
        let uri = format!("s3://{bucket}/{prefix}");
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error(&uri, "ListObjectsV2", e))?;
            for item in page.contents() {
                let (Some(key), Some(etag)) = (item.key(), item.e_tag()) else {
                    continue;
                };
                objects.push(S3Object {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    etag: unquote(etag),
                    version_id: None,
                    size: item.size().and_then(|n| u64::try_from(n).ok()),
                });
            }
        }
        Ok(objects)
    }

    /// A function that opens the object as a blocking reader, for the parser thread.
    ///
    /// The GET asks for the exact content the ETag names (`If-Match`), so the bytes parsed
    /// are those the ingest id was made from; the body is streamed, never held whole.
    /// Must be called inside the Tokio runtime; the function it returns must run on a
    /// blocking thread (it waits on the runtime).
    pub fn opener(
        &self,
        object: &S3Object,
    ) -> impl Fn() -> io::Result<Opened> + Send + Sync + 'static + use<> {
        let request = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .if_match(format!("\"{}\"", object.etag))
            .set_version_id(object.version_id.clone());
        let uri = object.uri();
        let handle = Handle::current();
        move || {
            let response = handle.block_on(request.clone().send()).map_err(|e| {
                let error = s3_error(&uri, "GetObject", e);
                let kind = if error.not_found {
                    io::ErrorKind::NotFound
                } else {
                    io::ErrorKind::Other
                };
                io::Error::new(kind, error.message)
            })?;
            let metadata = response.metadata.clone().unwrap_or_default();
            let body = response.body.into_async_read();
            Ok(Opened {
                body: Box::new(SyncIoBridge::new_with_handle(body, handle.clone())),
                metadata,
            })
        }
    }
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

fn s3_error<E>(uri: &str, operation: &str, error: SdkError<E, HttpResponse>) -> S3Error
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let code = error.as_service_error().and_then(|e| e.code());
    let status = error.raw_response().map(|r| r.status().as_u16());
    let not_found =
        matches!(code, Some("NoSuchKey" | "NoSuchBucket" | "NotFound")) || status == Some(404);
    let message = match code {
        Some("PreconditionFailed") => format!(
            "{operation}: the object changed since it was announced (its ETag no longer matches)"
        ),
        Some("NoSuchKey" | "NotFound") => format!("{operation}: no such object"),
        Some("NoSuchBucket") => format!("{operation}: no such bucket"),
        _ if status == Some(404) => format!("{operation}: no such object"),
        _ => format!("{operation} failed: {}", DisplayErrorContext(&error)),
    };
    S3Error {
        uri: uri.to_owned(),
        message,
        not_found,
    }
}
