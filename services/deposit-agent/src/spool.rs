//! The file of a deposit, gzipped as it arrives and kept aside until it is sent: in
//! memory while small ([`MEMORY_LIMIT`] compressed), past that in an unnamed temporary
//! file (mode 0600, never linked in a directory, so gone when the call ends, even if the
//! agent is killed). Compression runs on a blocking thread, fed chunk by chunk: the agent
//! never holds the whole file. A file announced at most [`INLINE_LIMIT`] long is
//! compressed where it arrives instead (a few tens of microseconds at the fast level):
//! handing it to a thread would cost more than compressing it.
//!
//! Why aside rather than straight into the request: the file is sent only once it has
//! wholly arrived (a stream cut half-way sends nothing, rather than a truncated deposit),
//! and it can be sent a second time after a 401 of the deposit service (the one retry
//! allowed: a 401 means the deposit was not registered).
//!
//! [`Spool::body`] streams it into a request and records whether the last byte was handed
//! over: until then the service cannot hold the whole file, so cannot have registered it.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use flate2::write::GzEncoder;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use tokio::sync::mpsc;

/// Compressed bytes kept in memory before the spool moves to a temporary file.
pub const MEMORY_LIMIT: usize = 1024 * 1024;
/// Largest file (announced size) compressed on the task that receives it.
pub const INLINE_LIMIT: u64 = 64 * 1024;
/// Bytes of the file read at once when streaming it from the temporary file.
const READ_CHUNK: usize = 256 * 1024;

/// Where compressed bytes go: memory, then an unnamed temporary file.
enum Sink {
    Memory(Vec<u8>),
    File(io::BufWriter<std::fs::File>, u64),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Sink::Memory(v) = self {
            if v.len() + buf.len() <= MEMORY_LIMIT {
                v.extend_from_slice(buf);
                return Ok(buf.len());
            }
            let mut file = io::BufWriter::with_capacity(READ_CHUNK, tempfile::tempfile()?);
            file.write_all(v)?;
            let len = v.len() as u64;
            *self = Sink::File(file, len);
        }
        match self {
            Sink::File(f, len) => {
                f.write_all(buf)?;
                *len += buf.len() as u64;
                Ok(buf.len())
            }
            Sink::Memory(_) => unreachable!("moved to a file above"),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Memory(_) => Ok(()),
            Sink::File(f, _) => f.flush(),
        }
    }
}

/// Deflate states kept for the small files' compression. Making one zeroes about 300 KiB
/// (miniz_oxide's dictionary and hash tables) that the allocator hands back to the
/// kernel once freed, so that each deposit paid for its page faults again; a kept one is
/// reset in place and used again.
static DEFLATERS: Mutex<Vec<Compress>> = Mutex::new(Vec::new());
/// Deflate states kept at most: the deposits compressed at once, usually.
const KEPT_DEFLATERS: usize = 8;

/// A gzip member's header as `GzEncoder` writes it at the fast level: no name, no time,
/// extra flags 4 (fastest), operating system 255 (unknown).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// A small file gzipped where it arrives, with a kept deflate state: the same bytes as
/// `GzEncoder` at the fast level.
struct InlineGzip {
    /// `None` only once given back.
    deflate: Option<Compress>,
    crc: Crc,
    out: Vec<u8>,
}

impl InlineGzip {
    fn new(capacity: usize) -> Self {
        let kept = DEFLATERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let deflate = match kept {
            Some(mut d) => {
                d.reset();
                d
            }
            None => Compress::new(Compression::fast(), false),
        };
        let mut out = Vec::with_capacity(capacity.max(64));
        out.extend_from_slice(&GZIP_HEADER);
        Self {
            deflate: Some(deflate),
            crc: Crc::new(),
            out,
        }
    }

    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.crc.update(chunk);
        self.deflate(chunk, FlushCompress::None)
    }

    /// Compresses `input` into `out` (with `Finish`: to the end of the stream).
    fn deflate(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        let d = self
            .deflate
            .as_mut()
            .ok_or_else(|| io::Error::other("compression already ended"))?;
        loop {
            if self.out.capacity() - self.out.len() < 1024 {
                self.out.reserve(self.out.capacity().max(4096));
            }
            let (before_in, before_out) = (d.total_in(), d.total_out());
            let status = d
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            input = &input[usize::try_from(d.total_in() - before_in).unwrap_or(input.len())..];
            let progress = d.total_in() != before_in || d.total_out() != before_out;
            match (flush, status) {
                (FlushCompress::Finish, Status::StreamEnd) => return Ok(()),
                (FlushCompress::Finish, _) => {}
                _ if input.is_empty() => return Ok(()),
                _ => {}
            }
            if !progress && self.out.capacity() > self.out.len() + 1024 {
                return Err(io::Error::other("compression made no progress"));
            }
        }
    }

    /// The gzip member: header, deflate stream, CRC-32 and size.
    fn finish(mut self) -> io::Result<Vec<u8>> {
        self.deflate(&[], FlushCompress::Finish)?;
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        out.extend_from_slice(&self.crc.amount().to_le_bytes());
        Ok(out)
    }
}

impl Drop for InlineGzip {
    fn drop(&mut self) {
        if let Some(d) = self.deflate.take() {
            let mut kept = DEFLATERS.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() < KEPT_DEFLATERS {
                kept.push(d);
            }
        }
    }
}

/// Takes the file's bytes in order and gzips them aside.
pub struct Compressor {
    how: How,
    received: u64,
}

enum How {
    /// A small file, compressed as it arrives.
    Inline(InlineGzip),
    /// On a blocking thread, fed through a channel.
    Thread {
        tx: mpsc::Sender<Vec<u8>>,
        task: Option<tokio::task::JoinHandle<io::Result<Spool>>>,
    },
}

impl Default for Compressor {
    fn default() -> Self {
        Self::start()
    }
}

fn spool_from(sink: Sink, bytes: u64) -> io::Result<Spool> {
    Ok(match sink {
        Sink::Memory(v) => Spool {
            bytes,
            compressed: v.len() as u64,
            data: Data::Memory(Arc::new(v)),
        },
        Sink::File(f, len) => Spool {
            bytes,
            compressed: len,
            data: Data::File(Arc::new(f.into_inner().map_err(|e| e.into_error())?)),
        },
    })
}

impl Compressor {
    /// For a file of unknown or large size: compressed on a blocking thread.
    pub fn start() -> Self {
        // A few chunks in flight: the gRPC stream and the compression overlap, memory
        // stays bounded.
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let task = tokio::task::spawn_blocking(move || {
            let mut gz = GzEncoder::new(Sink::Memory(Vec::new()), Compression::fast());
            let mut bytes = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                bytes += chunk.len() as u64;
                gz.write_all(&chunk)?;
            }
            spool_from(gz.finish()?, bytes)
        });
        Self {
            how: How::Thread {
                tx,
                task: Some(task),
            },
            received: 0,
        }
    }

    /// For a file announced `total` bytes long: compressed where it arrives when at most
    /// [`INLINE_LIMIT`], else as [`Self::start`]. A file longer than announced is refused
    /// by the caller before it grows past the limit.
    pub fn for_size(total: u64) -> Self {
        if total <= INLINE_LIMIT {
            let capacity = usize::try_from(total / 2).unwrap_or(0);
            Self {
                how: How::Inline(InlineGzip::new(capacity)),
                received: 0,
            }
        } else {
            Self::start()
        }
    }

    /// Bytes taken so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    pub async fn push(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.received += chunk.len() as u64;
        let (tx, task) = match &mut self.how {
            How::Inline(gz) => return gz.write(&chunk),
            How::Thread { tx, task } => (tx, task),
        };
        if tx.send(chunk).await.is_err() {
            // The compression stopped: its error says why.
            return Err(match task.take() {
                Some(task) => match task.await {
                    Ok(Err(e)) => e,
                    Ok(Ok(_)) => io::Error::other("compression ended early"),
                    Err(e) => io::Error::other(format!("compression task: {e}")),
                },
                None => io::Error::other("compression already failed"),
            });
        }
        Ok(())
    }

    /// The whole file, compressed.
    pub async fn finish(self) -> io::Result<Spool> {
        match self.how {
            How::Inline(gz) => spool_from(Sink::Memory(gz.finish()?), self.received),
            How::Thread { tx, mut task } => {
                let task = task
                    .take()
                    .ok_or_else(|| io::Error::other("compression already failed"))?;
                drop(tx);
                task.await
                    .map_err(|e| io::Error::other(format!("compression task: {e}")))?
            }
        }
    }
}

enum Data {
    Memory(Arc<Vec<u8>>),
    File(Arc<std::fs::File>),
}

/// A file gzipped, ready to be sent (as many times as needed).
pub struct Spool {
    /// Size of the file as received, and compressed.
    pub bytes: u64,
    pub compressed: u64,
    data: Data,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("bytes", &self.bytes)
            .field("compressed", &self.compressed)
            .field("in_memory", &matches!(self.data, Data::Memory(_)))
            .finish()
    }
}

/// Set once the last byte of a body was handed to the HTTP stack.
#[derive(Debug, Clone, Default)]
pub struct Handed(Arc<AtomicBool>);

impl Handed {
    pub fn all(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Spool {
    /// The compressed file as a request body, and what tells whether all of it was
    /// handed over.
    pub fn body(&self) -> (reqwest::Body, Handed) {
        let (stream, handed) = self.stream();
        (reqwest::Body::wrap_stream(stream), handed)
    }

    /// The compressed file in chunks, and what tells whether the last was handed over.
    pub fn stream(
        &self,
    ) -> (
        futures::stream::BoxStream<'static, io::Result<Vec<u8>>>,
        Handed,
    ) {
        let handed = Handed::default();
        let flag = handed.0.clone();
        let total = self.compressed;
        let stream: futures::stream::BoxStream<'static, io::Result<Vec<u8>>> = match &self.data {
            Data::Memory(v) => {
                let v = v.clone();
                Box::pin(futures::stream::once(async move {
                    flag.store(true, Ordering::SeqCst);
                    Ok(v.as_ref().clone())
                }))
            }
            Data::File(file) => {
                let file = file.clone();
                Box::pin(futures::stream::try_unfold(0u64, move |offset| {
                    let file = file.clone();
                    let flag = flag.clone();
                    async move {
                        if offset >= total {
                            return Ok(None);
                        }
                        let len = usize::try_from((total - offset).min(READ_CHUNK as u64))
                            .unwrap_or(READ_CHUNK);
                        let chunk = tokio::task::spawn_blocking(move || {
                            let mut buf = vec![0; len];
                            file.read_exact_at(&mut buf, offset).map(|()| buf)
                        })
                        .await
                        .map_err(|e| io::Error::other(format!("reading the spool: {e}")))??;
                        let next = offset + chunk.len() as u64;
                        if next >= total {
                            flag.store(true, Ordering::SeqCst);
                        }
                        Ok(Some((chunk, next)))
                    }
                }))
            }
        };
        (stream, handed)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use futures::StreamExt;

    use super::*;

    async fn spool_of(chunks: &[Vec<u8>]) -> Spool {
        let mut c = Compressor::start();
        for ch in chunks {
            c.push(ch.clone()).await.unwrap();
        }
        c.finish().await.unwrap()
    }

    async fn spool_inline(chunks: &[Vec<u8>]) -> Spool {
        let total = chunks.iter().map(|c| c.len() as u64).sum();
        let mut c = Compressor::for_size(total);
        assert!(matches!(c.how, How::Inline(_)));
        for ch in chunks {
            c.push(ch.clone()).await.unwrap();
        }
        c.finish().await.unwrap()
    }

    async fn sent_bytes(spool: &Spool) -> (Vec<u8>, bool) {
        let (mut stream, handed) = spool.stream();
        assert!(!handed.all(), "nothing handed before the body is read");
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        (out, handed.all())
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn a_small_file_stays_in_memory_and_arrives_whole() {
        let file = b"S10.G00.00.001,'IEA'\n".repeat(100);
        let spool = spool_of(&[file[..700].to_vec(), file[700..].to_vec()]).await;
        assert_eq!(spool.bytes, file.len() as u64);
        assert!(format!("{spool:?}").contains("in_memory: true"));
        for _ in 0..2 {
            let (sent, handed) = sent_bytes(&spool).await;
            assert!(handed);
            assert_eq!(sent.len() as u64, spool.compressed);
            assert_eq!(gunzip(&sent), file);
        }
    }

    /// A small file compressed where it arrives gives the same spool as on a thread.
    #[tokio::test]
    async fn a_small_file_is_compressed_inline_alike() {
        let file = b"S21.G00.30.001,'1234567890123'\n".repeat(500);
        assert!(file.len() as u64 <= INLINE_LIMIT);
        let chunks = [file[..5000].to_vec(), file[5000..].to_vec()];
        let (inline, threaded) = (spool_inline(&chunks).await, spool_of(&chunks).await);
        assert_eq!(inline.bytes, file.len() as u64);
        assert_eq!(inline.compressed, threaded.compressed);
        let (sent, handed) = sent_bytes(&inline).await;
        assert!(handed);
        assert_eq!(gunzip(&sent), file);
        assert_eq!(sent, sent_bytes(&threaded).await.0);
        // A large file announced is compressed on a thread.
        assert!(matches!(
            Compressor::for_size(INLINE_LIMIT + 1).how,
            How::Thread { .. }
        ));
    }

    /// Bytes that do not compress: the compressed output outgrows its first capacity.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        let mut x = seed | 1;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A kept deflate state, reset and used again, gives the bytes a new one gives, for
    /// files one after the other and at once, compressible or not, and an upload dropped
    /// half-way gives its state back unharmed.
    #[tokio::test]
    async fn a_kept_deflate_state_compresses_as_a_new_one() {
        let text = b"S21.G00.30.001,'1234567890123'\n".repeat(3000);
        let files = [
            text[..INLINE_LIMIT as usize].to_vec(),
            noise(INLINE_LIMIT as usize, 7),
            b"S10.G00.00.001,'IEA'\n".to_vec(),
            noise(3000, 11),
        ];
        let fresh = |file: &[u8]| {
            let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
            gz.write_all(file).unwrap();
            gz.finish().unwrap()
        };
        for round in 0..3 {
            // Half an upload, dropped: its state goes back to the kept ones.
            let mut dropped = Compressor::for_size(INLINE_LIMIT);
            dropped.push(noise(10_000, round)).await.unwrap();
            drop(dropped);
            let mut at_once: Vec<Compressor> = files
                .iter()
                .map(|f| Compressor::for_size(f.len() as u64))
                .collect();
            for (c, f) in at_once.iter_mut().zip(&files) {
                for chunk in f.chunks(1000) {
                    c.push(chunk.to_vec()).await.unwrap();
                }
            }
            for (c, f) in at_once.into_iter().zip(&files) {
                let spool = c.finish().await.unwrap();
                let (sent, _) = sent_bytes(&spool).await;
                assert_eq!(sent, fresh(f), "round {round}");
                assert_eq!(gunzip(&sent), *f);
            }
        }
        let kept = DEFLATERS.lock().unwrap().len();
        assert!((1..=KEPT_DEFLATERS).contains(&kept), "{kept} kept");
    }

    #[tokio::test]
    async fn a_large_file_moves_to_a_temporary_file_and_can_be_sent_twice() {
        // Incompressible enough to pass the memory limit once gzipped.
        let mut file = Vec::with_capacity(3 << 20);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while file.len() < (3 << 20) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            file.extend_from_slice(&x.to_le_bytes());
        }
        let chunks: Vec<Vec<u8>> = file.chunks(100_000).map(<[u8]>::to_vec).collect();
        let spool = spool_of(&chunks).await;
        assert!(format!("{spool:?}").contains("in_memory: false"));
        assert!(spool.compressed as usize > MEMORY_LIMIT);
        for _ in 0..2 {
            let (sent, handed) = sent_bytes(&spool).await;
            assert!(handed);
            assert_eq!(gunzip(&sent), file);
        }
    }

    #[tokio::test]
    async fn a_body_read_halfway_is_not_all_handed() {
        let mut file = Vec::new();
        let mut x: u32 = 12345;
        while file.len() < (2 << 20) {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            file.extend_from_slice(&x.to_le_bytes());
        }
        let spool = spool_of(&[file]).await;
        let (mut stream, handed) = spool.stream();
        stream.next().await.unwrap().unwrap();
        assert!(!handed.all());
    }
}
