//! Streaming one file to an object store in fixed-size parts, at most one part in flight.
//!
//! The memory an upload holds is therefore the same whatever the file's length: the part
//! being filled and the part being sent. object_store's `BufWriter` (with this part size and
//! one part in flight) does the same work, but holds more: it takes the encoded bytes as they
//! come, keeps what is short of a part as slices of the buffer they came in (so that buffer
//! stays allocated until the next part goes), and copies nothing out; here the short rest is
//! copied into the next part's buffer and the full part is sent as its own allocation, which
//! keeps the peak lower. A file that ends within its first part is sent with one `PUT`, as
//! most log objects' files do. Parts are 5 MiB on object stores, 1 MiB on a local file system
//! ([`part_bytes`]).

use std::sync::Arc;

use bytes::Bytes;
use deltalake::logstore::object_store::{
    self, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload, path::Path,
};
use tokio::task::JoinHandle;
use url::Url;

/// Bytes per part on an object store: S3's smallest part, so a part is sent as soon as one
/// may be.
pub const OBJECT_STORE_PART_BYTES: usize = 5 << 20;

/// Bytes per part on a local file system, which takes parts of any size: small enough to come
/// from malloc's heap, where a freed part's pages may serve the next, where a 5 MiB one is
/// mapped, and faulted in, afresh each time.
pub const LOCAL_PART_BYTES: usize = 1 << 20;

/// The part size for files under the table at `table_url`.
pub fn part_bytes(table_url: &Url) -> usize {
    if table_url.scheme() == "file" {
        LOCAL_PART_BYTES
    } else {
        OBJECT_STORE_PART_BYTES
    }
}

/// A file on its way to `path`: parts sent as they fill, the file made whole by
/// [`finish`](Self::finish).
pub struct FileUpload {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// Started with the first full part.
    multipart: Option<Box<dyn MultipartUpload>>,
    /// The part being sent.
    in_flight: Option<JoinHandle<object_store::Result<()>>>,
    part_bytes: usize,
}

impl FileUpload {
    /// An upload in parts of `part_bytes` (see [`part_bytes`]).
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, part_bytes: usize) -> Self {
        Self {
            store,
            path,
            multipart: None,
            in_flight: None,
            part_bytes,
        }
    }

    /// A new, empty buffer for the file's bytes, with room for a part plus what one write may
    /// add past it: a row group, 1–2 MB of zstd on CloudTrail logs (a larger one grows the
    /// buffer). Reserved, not touched: pages count only once written.
    pub fn buffer(&self) -> Vec<u8> {
        Vec::with_capacity(self.part_bytes + self.part_bytes.max(2 << 20))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends the full parts at the front of `buffer`, leaving the rest (less than a part) in
    /// it. Waits for the part before each one to be sent.
    pub async fn send_full_parts(&mut self, buffer: &mut Vec<u8>) -> object_store::Result<()> {
        while buffer.len() >= self.part_bytes {
            let mut rest = self.buffer();
            rest.extend_from_slice(&buffer[self.part_bytes..]);
            let mut part = std::mem::replace(buffer, rest);
            part.truncate(self.part_bytes);
            self.send(part).await?;
        }
        Ok(())
    }

    async fn send(&mut self, part: Vec<u8>) -> object_store::Result<()> {
        self.wait().await?;
        let multipart = match &mut self.multipart {
            Some(multipart) => multipart,
            None => self
                .multipart
                .insert(self.store.put_multipart(&self.path).await?),
        };
        let sending = multipart.put_part(PutPayload::from(Bytes::from(part)));
        self.in_flight = Some(tokio::spawn(sending));
        Ok(())
    }

    /// Waits for the part in flight, if any.
    async fn wait(&mut self) -> object_store::Result<()> {
        match self.in_flight.take() {
            Some(sending) => sending.await.map_err(|e| object_store::Error::Generic {
                store: "upload",
                source: Box::new(e),
            })?,
            None => Ok(()),
        }
    }

    /// Sends `rest`, the file's last bytes, and makes the file whole at its path. On failure
    /// the parts sent are discarded.
    pub async fn finish(mut self, rest: Vec<u8>) -> object_store::Result<()> {
        if self.multipart.is_none() {
            self.store.put(&self.path, Bytes::from(rest).into()).await?;
            return Ok(());
        }
        let finished = async {
            if !rest.is_empty() {
                self.send(rest).await?;
            }
            self.wait().await?;
            let multipart = self.multipart.as_mut().expect("started: checked above");
            multipart.complete().await.map(drop)
        }
        .await;
        if finished.is_err() {
            self.abort().await;
        }
        finished
    }

    /// Discards the parts sent (best effort: parts left behind expire with the bucket's
    /// lifecycle rule for incomplete multipart uploads).
    pub async fn abort(mut self) {
        let _ = self.wait().await;
        if let Some(mut multipart) = self.multipart.take()
            && let Err(e) = multipart.abort().await
        {
            tracing::warn!(path = %self.path, error = %e, "could not abort a multipart upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_tables_take_small_parts_and_object_stores_s3_sized_ones() {
        let local = Url::parse("file:///tmp/delta/cloudtrail").unwrap();
        assert_eq!(part_bytes(&local), LOCAL_PART_BYTES);
        for remote in ["s3://bucket/delta/cloudtrail", "memory:///", "az://c/t"] {
            assert_eq!(
                part_bytes(&Url::parse(remote).unwrap()),
                OBJECT_STORE_PART_BYTES
            );
        }
    }
}
