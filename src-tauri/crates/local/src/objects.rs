//! Objects as files under a directory: `objects/{key}` holds the body and
//! `.meta/{key}` its content type. Writes go to a temporary file that is synced and
//! then renamed (or hard-linked, for put-if-absent, which fails if the key exists), so
//! a reader never sees half an object and a returned put survives a crash.

use crate::LocalError;
use async_trait::async_trait;
use metasync_engine::ports::{
    check_key, check_prefix, jitter_seed, CallCounter, Calls, ErrorKind, Object, ObjectMeta,
    ObjectStore, Service, StoreError,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct DirObjects {
    root: Arc<PathBuf>,
    calls: CallCounter,
    tmp_seq: AtomicU64,
}

impl DirObjects {
    pub(crate) fn open(root: &Path) -> Result<Self, LocalError> {
        for d in [root.join("data"), root.join(".meta"), root.join(".tmp")] {
            std::fs::create_dir_all(&d).map_err(|source| LocalError::Dir { path: d, source })?;
        }
        Ok(Self {
            root: Arc::new(root.to_owned()),
            calls: CallCounter::default(),
            tmp_seq: AtomicU64::new(jitter_seed()),
        })
    }

    /// Where the files of an object live; `key` has been checked.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.root.join("data").join(key)
    }

    fn tmp_path(&self) -> PathBuf {
        let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(".tmp")
            .join(format!("{}-{n:016x}", std::process::id()))
    }

    async fn blocking<T, F>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> std::io::Result<T> + Send + 'static,
    {
        self.calls.add(Service::Objects, operation);
        match tokio::task::spawn_blocking(f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(io_error(operation, &e)),
            Err(e) => Err(StoreError::new(
                ErrorKind::Other,
                Service::Objects,
                operation,
                format!("the file task stopped: {e}"),
            )),
        }
    }
}

fn io_error(operation: &'static str, e: &std::io::Error) -> StoreError {
    let kind = match e.kind() {
        std::io::ErrorKind::PermissionDenied => ErrorKind::Denied,
        _ => ErrorKind::Other,
    };
    StoreError::new(kind, Service::Objects, operation, e.to_string())
}

/// Write `body` to `tmp` and sync it to disk.
fn write_synced(tmp: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(tmp)?;
    f.write_all(body)?;
    f.sync_all()
}

/// Make a rename or link in `dir` durable. On Windows a folder cannot be opened as a
/// file (`File::open` fails with os error 5) and NTFS journals the rename itself, so
/// there is nothing to do.
#[cfg(not(windows))]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(windows)]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// `create_dir_all`, and each folder it made synced into its parent, so a new
/// `date=…/` folder survives a power loss along with the file placed in it.
fn create_dir_synced(dir: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d);
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for made in missing {
        // A relative folder's parent may be "": the working directory.
        let parent = made.parent().filter(|p| !p.as_os_str().is_empty());
        sync_dir(parent.unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

fn place(tmp: &Path, dest: &Path, replace: bool) -> std::io::Result<bool> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    create_dir_synced(parent)?;
    let placed = if replace {
        std::fs::rename(tmp, dest).map(|()| true)
    } else {
        // link(2) fails if dest exists: an atomic create-if-absent across processes.
        let linked = match std::fs::hard_link(tmp, dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        };
        std::fs::remove_file(tmp)?;
        linked
    }?;
    sync_dir(parent)?;
    Ok(placed)
}

struct Put {
    data: PathBuf,
    meta: PathBuf,
    tmp_body: PathBuf,
    tmp_meta: PathBuf,
}

impl Put {
    fn run(self, body: &[u8], content_type: &str, replace: bool) -> std::io::Result<bool> {
        write_synced(&self.tmp_body, body)?;
        if !place(&self.tmp_body, &self.data, replace)? {
            return Ok(false);
        }
        write_synced(&self.tmp_meta, content_type.as_bytes())?;
        place(&self.tmp_meta, &self.meta, true)?;
        Ok(true)
    }
}

#[async_trait]
impl ObjectStore for DirObjects {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        check_key("PutObject", key)?;
        let put = self.plan(key);
        let ct = content_type.to_owned();
        self.blocking("PutObject", move || put.run(&body, &ct, true).map(drop))
            .await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        check_key("PutObject", key)?;
        let put = self.plan(key);
        let ct = content_type.to_owned();
        self.blocking("PutObject", move || put.run(&body, &ct, false))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        check_key("GetObject", key)?;
        let data = self.path_of(key);
        let meta = self.root.join(".meta").join(key);
        self.blocking("GetObject", move || {
            let body = match std::fs::read(&data) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let content_type = std::fs::read_to_string(&meta)
                .unwrap_or_else(|_| "application/octet-stream".into());
            Ok(Some(Object {
                body,
                content_type,
                encryption: None,
            }))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        check_prefix(prefix)?;
        let data = self.root.join("data");
        let prefix = prefix.to_owned();
        self.blocking("ListObjectsV2", move || {
            // Walk only below the prefix's last complete folder.
            let start = prefix.rfind('/').map_or("", |i| &prefix[..i]);
            let mut out = Vec::new();
            let base = if start.is_empty() {
                data.clone()
            } else {
                data.join(start)
            };
            walk(&data, &base, &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    fn calls(&self) -> Calls {
        self.calls.snapshot()
    }
}

impl DirObjects {
    fn plan(&self, key: &str) -> Put {
        Put {
            data: self.path_of(key),
            meta: self.root.join(".meta").join(key),
            tmp_body: self.tmp_path(),
            tmp_meta: self.tmp_path(),
        }
    }
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<ObjectMeta>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let Some(key) = rel
            .to_str()
            .map(|k| k.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            continue;
        };
        let meta = entry.metadata()?;
        if meta.is_dir() {
            // Descend only where keys under it can still match the prefix.
            let folder = format!("{key}/");
            if folder.starts_with(prefix) || prefix.starts_with(&folder) {
                walk(root, &path, prefix, out)?;
            }
        } else if key.starts_with(prefix) {
            out.push(ObjectMeta {
                key,
                size: meta.len(),
            });
        }
    }
    Ok(())
}
