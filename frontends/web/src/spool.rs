//! A DSN file on its way to the orchestrator. `Deposit`'s first message announces the
//! file's size, which a browser's multipart body tells only once it has ended: the bytes
//! wait in a temporary file rather than in memory, then go to the orchestrator in messages
//! of [`CHUNK`] bytes. What the console holds of an upload is then one buffer of [`CHUNK`]
//! bytes while receiving and a message or two while sending, whatever the file's size.
//!
//! The file is private and leaves nothing behind: created unnamed (`O_TMPFILE`, or created
//! and unlinked at once where the file system cannot), mode 0600, in the system's
//! temporary folder (`TMPDIR`) or a folder of the console's own ([`SpoolDir::own`]), so
//! that it is gone when its handle is dropped — the deposit sent, refused, the file too
//! large, the browser gone — and with the process if it dies. A DSN holds personal data:
//! its bytes never reach a log.

use std::fs::{File, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::Stream;

/// Bytes per upload message (the contract advises at most 1 MiB); also what the console
/// buffers before writing to the file.
pub const CHUNK: usize = 512 * 1024;

/// Where uploads wait. Nothing is created there but unnamed files, so nothing is left
/// to remove, and the folder needs no care while the console runs (a folder of its own
/// in `/tmp` would be removed by the system's age-based clean-up after days unchanged).
#[derive(Debug, Clone)]
pub struct SpoolDir {
    dir: PathBuf,
}

impl SpoolDir {
    /// The system's temporary folder (`TMPDIR`, else `/tmp`).
    pub fn system() -> Self {
        Self {
            dir: std::env::temp_dir(),
        }
    }

    /// `dir` as the console's own: created if missing, mode 0700 (e.g. a folder of the
    /// data directory).
    pub fn own(dir: &Path) -> io::Result<Self> {
        iea_runtime::pki::private_dir(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A new, empty, unnamed file (mode 0600) in the folder.
    pub async fn file(&self) -> io::Result<Spool> {
        let dir = self.dir.clone();
        let file = blocking(move || {
            let file = tempfile::tempfile_in(&dir)?;
            // An `O_TMPFILE` file takes the process's umask (0644 as a rule): made
            // private before a byte is written.
            file.set_permissions(Permissions::from_mode(0o600))?;
            Ok(file)
        })
        .await?;
        Ok(Spool {
            file: Some(file),
            buf: Vec::new(),
            len: 0,
        })
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

/// A file being received: its bytes buffered up to [`CHUNK`], then written.
pub struct Spool {
    /// Absent only while a write is under way (a write cut short leaves it absent: the
    /// spool is then unusable, and its file closed when the write ends).
    file: Option<File>,
    buf: Vec<u8>,
    len: u64,
}

impl Spool {
    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`, writing to the file each time [`CHUNK`] bytes are buffered.
    pub async fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.len += data.len() as u64;
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(CHUNK);
            }
            let n = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Writes what is buffered (the buffer's memory is kept for the next bytes).
    async fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("an earlier write to the upload's file failed"))?;
        let mut buf = std::mem::take(&mut self.buf);
        let (file, mut buf) = blocking(move || {
            file.write_all(&buf)?;
            buf.clear();
            Ok((file, buf))
        })
        .await?;
        self.file = Some(file);
        std::mem::swap(&mut self.buf, &mut buf);
        Ok(())
    }

    /// The whole file, ready to be read from its start.
    pub async fn finish(mut self) -> io::Result<Spooled> {
        self.flush().await?;
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("an earlier write to the upload's file failed"))?;
        let file = blocking(move || {
            let mut file = file;
            file.seek(SeekFrom::Start(0))?;
            Ok(file)
        })
        .await?;
        Ok(Spooled {
            file,
            len: self.len,
        })
    }
}

/// A file received whole, read back from its start.
pub struct Spooled {
    file: File,
    len: u64,
}

/// Why the file could not be read back while it was being sent, if it could not.
#[derive(Clone, Default)]
pub struct ReadFailure(Arc<Mutex<Option<io::Error>>>);

impl ReadFailure {
    /// The error met, if one was.
    pub fn take(&self) -> Option<io::Error> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn set(&self, e: io::Error) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }
}

impl Spooled {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file's bytes in pieces of [`CHUNK`] bytes (the last one shorter), each read when
    /// the previous one has been taken. A read that fails ends the stream early and is
    /// kept in `failed` (the orchestrator then receives fewer bytes than announced and
    /// records nothing). The file is closed, and so gone, when the stream is dropped.
    pub fn chunks(self, failed: ReadFailure) -> impl Stream<Item = Vec<u8>> + Send + 'static {
        futures::stream::unfold((self.file, self.len), move |(file, left)| {
            let failed = failed.clone();
            async move {
                if left == 0 {
                    return None;
                }
                let n = (CHUNK as u64).min(left) as usize;
                let read = blocking(move || {
                    let mut file = file;
                    let mut buf = vec![0; n];
                    file.read_exact(&mut buf)?;
                    Ok((file, buf))
                })
                .await;
                match read {
                    Ok((file, buf)) => Some((buf, (file, left - n as u64))),
                    Err(e) => {
                        failed.set(e);
                        None
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_file_is_private_unnamed_and_read_back_whole_in_chunks() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data/web-uploads");
        SpoolDir::own(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().mode() & 0o7777,
            0o700,
            "the folder is the console's alone"
        );
        // Again, on a folder that exists, made the console's own.
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let spool_dir = SpoolDir::own(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
        let mut spool = spool_dir.file().await.unwrap();
        assert!(spool.is_empty());
        // Pieces as the network hands them: small, empty, then larger than a chunk.
        let data: Vec<u8> = (0..(2 * CHUNK + 1000)).map(|i| (i % 251) as u8).collect();
        spool.write(&data[..10]).await.unwrap();
        spool.write(&data[10..10]).await.unwrap();
        spool.write(&data[10..CHUNK + 5]).await.unwrap();
        spool.write(&data[CHUNK + 5..]).await.unwrap();
        assert_eq!(spool.len(), data.len() as u64);
        // Private, and unnamed: nothing in the folder, no link to the file, which is gone
        // once closed.
        let meta = spool.file.as_ref().unwrap().metadata().unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(meta.nlink(), 0);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

        let spooled = spool.finish().await.unwrap();
        assert_eq!(spooled.len(), data.len() as u64);
        let failed = ReadFailure::default();
        let chunks: Vec<Vec<u8>> = spooled.chunks(failed.clone()).collect().await;
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            [CHUNK, CHUNK, 1000]
        );
        assert_eq!(chunks.concat(), data);
        assert!(failed.take().is_none());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

        // The system's temporary folder by default.
        let system = SpoolDir::system();
        assert_eq!(system.path(), std::env::temp_dir());
        let mut spool = system.file().await.unwrap();
        spool.write(b"S10.G00.00.001,'x'\n").await.unwrap();
        let meta = spool.file.as_ref().unwrap().metadata().unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.nlink()), (0o600, 0));
    }

    #[tokio::test]
    async fn a_file_shorter_than_announced_ends_the_stream_with_its_error() {
        let mut spool = SpoolDir::system().file().await.unwrap();
        spool.write(&[7; 100]).await.unwrap();
        let mut spooled = spool.finish().await.unwrap();
        // As if the file had lost bytes since they were counted.
        spooled.len = 2 * CHUNK as u64;
        let failed = ReadFailure::default();
        let chunks: Vec<Vec<u8>> = spooled.chunks(failed.clone()).collect().await;
        assert!(chunks.is_empty());
        assert_eq!(
            failed.take().map(|e| e.kind()),
            Some(io::ErrorKind::UnexpectedEof)
        );
    }
}
