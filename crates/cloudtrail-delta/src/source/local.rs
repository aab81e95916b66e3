//! Log files on the local file system.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

use super::SourceObject;

impl SourceObject {
    /// A local file, fingerprinted by hashing its bytes.
    pub fn local(path: &Path) -> io::Result<Self> {
        let path = std::fs::canonicalize(path)?;
        let mut file = File::open(&path)?;
        let mut hash = Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            size += n as u64;
        }
        let uri = url::Url::from_file_path(&path)
            .map_err(|()| io::Error::other(format!("{} cannot be a file URI", path.display())))?
            .to_string();
        Ok(Self {
            uri,
            key: path.to_string_lossy().into_owned(),
            fingerprint: format!("xxh3:{:032x}", hash.digest128()),
            size: Some(size),
        })
    }
}

/// Every file under `root` (recursively, in name order), or `root` itself when it is a file.
pub fn local_files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let mut entries = std::fs::read_dir(&path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<io::Result<Vec<_>>>()?;
            entries.sort_unstable_by(|a, b| b.cmp(a));
            pending.extend(entries);
        } else if path.exists() {
            files.push(path);
        } else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file or folder", path.display()),
            ));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_folders_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        for f in ["b/c/2.json", "b/1.json", "a.json"] {
            std::fs::write(dir.path().join(f), "{}").unwrap();
        }
        let files = local_files(dir.path()).unwrap();
        let rel: Vec<_> = files
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(rel, ["a.json", "b/1.json", "b/c/2.json"]);
        assert!(local_files(&dir.path().join("missing")).is_err());
    }
}
