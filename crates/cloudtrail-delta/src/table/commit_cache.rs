//! A bounded, per-process cache of a table's commit files, in front of its object store.
//!
//! A cold start reads each commit after the newest checkpoint three times: delta-rs replays
//! them for the protocol and metadata, then for the file list, and the ingest index's reader
//! for their `txn` actions; writing a checkpoint reads them once more. On S3 each read is a
//! request. A commit file (`_delta_log/<20 digits>.json`) never changes once it is in place,
//! so the first read can serve the others. Only whole-object reads without conditions are
//! served from the cache; everything else goes to the store.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::object_store::{
    Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result,
};
use futures::stream::BoxStream;

/// Bytes of commit files one cache holds, at most; the oldest go first.
pub const CACHE_BYTES: usize = 8 << 20;

/// What a cache shares between the views of one table's store.
#[derive(Default)]
pub struct CommitCache {
    entries: HashMap<String, (ObjectMeta, Attributes, Bytes)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl CommitCache {
    pub fn shared() -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self::default()))
    }

    fn get(&self, key: &str) -> Option<(ObjectMeta, Attributes, Bytes)> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: String, entry: (ObjectMeta, Attributes, Bytes)) {
        let size = entry.2.len();
        if size > CACHE_BYTES / 4 || self.entries.contains_key(&key) {
            return;
        }
        while self.bytes + size > CACHE_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, _, bytes)) = self.entries.remove(&oldest) {
                self.bytes -= bytes.len();
            }
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.entries.insert(key, entry);
    }
}

/// An object store whose commit-file reads go through a [`CommitCache`].
pub struct CachedCommits {
    inner: Arc<dyn ObjectStore>,
    cache: Arc<Mutex<CommitCache>>,
    /// Put before this store's paths to make the cache's keys: the table's path for a store
    /// rooted at the table, empty for one rooted at the bucket.
    key_prefix: String,
}

impl CachedCommits {
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        cache: Arc<Mutex<CommitCache>>,
        key_prefix: &str,
    ) -> Self {
        let key_prefix = key_prefix.trim_matches('/');
        Self {
            inner,
            cache,
            key_prefix: if key_prefix.is_empty() {
                String::new()
            } else {
                format!("{key_prefix}/")
            },
        }
    }

    /// The cache key of `location` if it is a commit file.
    fn commit_key(&self, location: &Path) -> Option<String> {
        let path = location.as_ref();
        let (folder, name) = path.rsplit_once('/')?;
        let is_commit = (folder == "_delta_log" || folder.ends_with("/_delta_log"))
            && name.len() == 25
            && name.ends_with(".json")
            && name[..20].bytes().all(|b| b.is_ascii_digit());
        is_commit.then(|| format!("{}{path}", self.key_prefix))
    }
}

fn plain(options: &GetOptions) -> bool {
    options.if_match.is_none()
        && options.if_none_match.is_none()
        && options.if_modified_since.is_none()
        && options.if_unmodified_since.is_none()
        && options.range.is_none()
        && options.version.is_none()
        && !options.head
}

fn served((meta, attributes, bytes): (ObjectMeta, Attributes, Bytes)) -> GetResult {
    let range = 0..bytes.len() as u64;
    GetResult {
        payload: GetResultPayload::Stream(Box::pin(futures::stream::once(
            async move { Ok(bytes) },
        ))),
        meta,
        range,
        attributes,
    }
}

impl fmt::Display for CachedCommits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachedCommits({})", self.inner)
    }
}

impl fmt::Debug for CachedCommits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachedCommits({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CachedCommits {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let key = self.commit_key(location).filter(|_| plain(&options));
        let Some(key) = key else {
            return self.inner.get_opts(location, options).await;
        };
        let cached = self.cache.lock().ok().and_then(|cache| cache.get(&key));
        if let Some(entry) = cached {
            return Ok(served(entry));
        }
        let result = self.inner.get_opts(location, options).await?;
        let (meta, attributes) = (result.meta.clone(), result.attributes.clone());
        let bytes = result.bytes().await?;
        let entry = (meta, attributes, bytes);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, entry.clone());
        }
        Ok(served(entry))
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::logstore::object_store::memory::InMemory;
    use deltalake::logstore::object_store::{GetRange, ObjectStoreExt};

    async fn read(store: &dyn ObjectStore, path: &str) -> Result<Bytes> {
        store.get(&Path::from(path)).await?.bytes().await
    }

    #[tokio::test]
    async fn commit_files_are_read_once_and_other_objects_every_time() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let commit = "t/_delta_log/00000000000000000007.json";
        let other = "t/_delta_log/_last_checkpoint";
        for path in [commit, other] {
            inner
                .put(&Path::from(path), PutPayload::from_static(b"{}"))
                .await
                .unwrap();
        }
        let cache = CommitCache::shared();
        let root = CachedCommits::new(inner.clone(), cache.clone(), "");
        // The table's view shares the cache: its keys get the table's path in front.
        let table = CachedCommits::new(
            Arc::new(deltalake::logstore::object_store::prefix::PrefixStore::new(
                inner.clone(),
                "t",
            )),
            cache,
            "/t",
        );
        assert_eq!(
            read(&root, commit).await.unwrap(),
            Bytes::from_static(b"{}")
        );
        assert_eq!(read(&root, other).await.unwrap(), Bytes::from_static(b"{}"));
        for path in [commit, other] {
            inner.delete(&Path::from(path)).await.unwrap();
        }
        // Gone from the store: the commit file still reads, through both views; the other not.
        assert_eq!(
            read(&root, commit).await.unwrap(),
            Bytes::from_static(b"{}")
        );
        assert_eq!(
            read(&table, "_delta_log/00000000000000000007.json")
                .await
                .unwrap(),
            Bytes::from_static(b"{}")
        );
        assert!(read(&root, other).await.is_err());
        // A ranged read goes to the store.
        let ranged = root
            .get_opts(
                &Path::from(commit),
                GetOptions {
                    range: Some(GetRange::Bounded(0..1)),
                    ..GetOptions::default()
                },
            )
            .await;
        assert!(ranged.is_err());
    }

    #[test]
    fn the_cache_keeps_within_its_bytes() {
        let mut cache = CommitCache::default();
        let entry = |n: usize| {
            (
                ObjectMeta {
                    location: Path::from(format!("{n}")),
                    last_modified: chrono::Utc::now(),
                    size: 0,
                    e_tag: None,
                    version: None,
                },
                Attributes::default(),
                Bytes::from(vec![0u8; CACHE_BYTES / 8]),
            )
        };
        for n in 0..20 {
            cache.insert(format!("{n}"), entry(n));
        }
        assert!(cache.bytes <= CACHE_BYTES);
        assert_eq!(cache.entries.len(), 8);
        // The newest stay.
        assert!(cache.get("19").is_some() && cache.get("11").is_none());
    }
}
