//! The simulated update server: `GET /metadata/<file>` and `GET /targets/<file>`, with
//! single-range `Range` requests on targets, an optional bandwidth limit, counters, and
//! the attack modes that act on bytes in flight.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::attack::Attack;
use crate::repo::{Content, SharedRepo};

/// How target files are transferred (`PUT /__admin/transfer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Transfer {
    /// Honour `Range` requests on targets (else answer the whole file, 200).
    pub ranges: bool,
    /// Bandwidth limit for targets, per response; 0 = none.
    pub bytes_per_second: u64,
}

impl Default for Transfer {
    fn default() -> Self {
        Self {
            ranges: true,
            bytes_per_second: 0,
        }
    }
}

/// Counters (`GET /__admin/stats`).
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub range_requests: AtomicU64,
    pub bytes_served: AtomicU64,
    by_file: Mutex<BTreeMap<String, FileStats>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FileStats {
    pub requests: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct StatsView {
    pub requests: u64,
    pub range_requests: u64,
    pub bytes_served: u64,
    /// Per served path (`metadata/…`, `targets/…`).
    pub files: BTreeMap<String, FileStats>,
}

impl Stats {
    pub fn view(&self) -> StatsView {
        StatsView {
            requests: self.requests.load(Ordering::Relaxed),
            range_requests: self.range_requests.load(Ordering::Relaxed),
            bytes_served: self.bytes_served.load(Ordering::Relaxed),
            files: self.by_file.lock().map(|m| m.clone()).unwrap_or_default(),
        }
    }

    pub fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.range_requests.store(0, Ordering::Relaxed);
        self.bytes_served.store(0, Ordering::Relaxed);
        if let Ok(mut m) = self.by_file.lock() {
            m.clear();
        }
    }

    fn request(&self, path: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.by_file.lock() {
            m.entry(path.to_owned()).or_default().requests += 1;
        }
    }

    fn bytes(&self, path: &str, n: u64) {
        self.bytes_served.fetch_add(n, Ordering::Relaxed);
        if let Ok(mut m) = self.by_file.lock() {
            m.entry(path.to_owned()).or_default().bytes += n;
        }
    }
}

/// Everything the service and the admin API share.
#[derive(Clone)]
pub struct Shared {
    pub repo: SharedRepo,
    pub stats: Arc<Stats>,
    pub transfer: Arc<RwLock<Transfer>>,
}

impl Shared {
    fn transfer(&self) -> Transfer {
        self.transfer.read().map(|t| *t).unwrap_or_default()
    }
}

pub fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/metadata/{file}", get(metadata))
        .route("/targets/{*file}", get(target))
        .with_state(shared)
}

/// Longest an endless answer lasts, in time and bytes: the mock stops by itself.
const ENDLESS_LIMIT: Duration = Duration::from_secs(120);
const ENDLESS_BYTES: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;

async fn metadata(State(s): State<Shared>, Path(file): Path<String>) -> Response {
    let path = format!("metadata/{file}");
    s.stats.request(&path);
    let (content, attack) = {
        let repo = s.repo.lock().await;
        (repo.lookup(&path), repo.attack.clone())
    };
    if attack == Attack::EndlessMetadata && file == "timestamp.json" {
        return endless(s, path);
    }
    let Some(Content::Bytes(bytes)) = content else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let interval = match attack {
        Attack::SlowRetrieval { interval_ms } => Some(Duration::from_millis(interval_ms)),
        _ => None,
    };
    let len = bytes.len() as u64;
    let stream = counted(s.stats.clone(), path, bytes_stream(bytes, interval));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn endless(s: Shared, path: String) -> Response {
    let started = Instant::now();
    let stream = futures::stream::unfold(0u64, move |sent| async move {
        if sent >= ENDLESS_BYTES || started.elapsed() > ENDLESS_LIMIT {
            return None;
        }
        let chunk = if sent == 0 {
            let mut v = b"{\"signed\": \"".to_vec();
            v.resize(CHUNK, b'A');
            v
        } else {
            vec![b'A'; CHUNK]
        };
        tokio::task::yield_now().await;
        Some((
            Ok::<_, std::io::Error>(Bytes::from(chunk)),
            sent + CHUNK as u64,
        ))
    });
    let stream = counted(s.stats.clone(), path, stream.boxed());
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

type ByteStream = futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Bytes, at once or one byte every `interval`.
fn bytes_stream(bytes: Bytes, interval: Option<Duration>) -> ByteStream {
    match interval {
        None => futures::stream::once(async move { Ok(bytes) }).boxed(),
        Some(every) => futures::stream::unfold(0usize, move |i| {
            let bytes = bytes.clone();
            async move {
                if i >= bytes.len() {
                    return None;
                }
                if i > 0 {
                    tokio::time::sleep(every).await;
                }
                Some((Ok(bytes.slice(i..i + 1)), i + 1))
            }
        })
        .boxed(),
    }
}

/// Counts what is actually handed to the connection.
fn counted(stats: Arc<Stats>, path: String, inner: ByteStream) -> ByteStream {
    inner
        .inspect(move |item| {
            if let Ok(b) = item {
                stats.bytes(&path, b.len() as u64);
            }
        })
        .boxed()
}

/// A parsed `Range: bytes=a-b` (single range).
fn parse_range(headers: &HeaderMap, len: u64) -> Option<Result<(u64, u64), ()>> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (len.saturating_sub(n), len.saturating_sub(1))
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().ok()?.min(len.saturating_sub(1))
        };
        (start, end)
    };
    if range.0 >= len || range.0 > range.1 {
        return Some(Err(()));
    }
    Some(Ok(range))
}

async fn target(State(s): State<Shared>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let path = format!("targets/{file}");
    s.stats.request(&path);
    let (content, attack) = {
        let repo = s.repo.lock().await;
        (repo.lookup(&path), repo.attack.clone())
    };
    let transfer = s.transfer();
    let (file_path, len) = match content {
        Some(Content::File { path, len }) => (path, len),
        Some(Content::Bytes(b)) => {
            let stream = counted(s.stats.clone(), path, bytes_stream(b, None));
            return Body::from_stream(stream).into_response();
        }
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    let etag = format!("\"{}\"", file.split('.').next().unwrap_or_default());
    let mut range = if transfer.ranges {
        parse_range(&headers, len)
    } else {
        None
    };
    // If-Range: a range only if the file is still the one the client started with
    // (except when the attack is to change it between two ranges).
    if let Some(if_range) = headers.get(header::IF_RANGE)
        && if_range.as_bytes() != etag.as_bytes()
        && attack != Attack::ChangedBetweenRanges
    {
        range = None;
    }
    let (status, start, end) = match range {
        Some(Err(())) => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        Some(Ok((a, b))) => {
            s.stats.range_requests.fetch_add(1, Ordering::Relaxed);
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
    };
    let is_package = file.ends_with(".tar");
    let mut body_len = if len == 0 { 0 } else { end - start + 1 };
    let extra = if attack == Attack::OversizePackage && is_package && end + 1 == len {
        1024 * 1024
    } else {
        0
    };
    body_len += extra;
    let flip = match &attack {
        Attack::SubstitutedPackage if is_package => Flip::Middle(len / 2),
        Attack::ChangedBetweenRanges if status == StatusCode::PARTIAL_CONTENT => Flip::All,
        _ => Flip::None,
    };
    let interval = match attack {
        Attack::SlowRetrieval { interval_ms } => Some(Duration::from_millis(interval_ms)),
        _ => None,
    };
    let stream = file_stream(
        file_path,
        start,
        end + 1 - start.min(end + 1),
        extra,
        flip,
        interval,
        transfer.bytes_per_second,
    );
    let stream = counted(s.stats.clone(), path, stream);
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, body_len)
        .header(header::ETAG, etag);
    if transfer.ranges {
        builder = builder.header(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    builder
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[derive(Debug, Clone, Copy)]
enum Flip {
    None,
    /// One byte, at this offset of the file.
    Middle(u64),
    /// Every byte.
    All,
}

/// `count` bytes of the file from `start`, then `extra` zero bytes, transformed and paced
/// as the attack and the bandwidth limit ask.
fn file_stream(
    path: std::path::PathBuf,
    start: u64,
    count: u64,
    extra: u64,
    flip: Flip,
    interval: Option<Duration>,
    bytes_per_second: u64,
) -> ByteStream {
    struct St {
        file: Option<tokio::fs::File>,
        path: std::path::PathBuf,
        pos: u64,
        left: u64,
        extra: u64,
        started: Instant,
        sent: u64,
    }
    let st = St {
        file: None,
        path,
        pos: start,
        left: count,
        extra,
        started: Instant::now(),
        sent: 0,
    };
    futures::stream::unfold(st, move |mut st| async move {
        if st.left == 0 && st.extra == 0 {
            return None;
        }
        let mut chunk = if interval.is_some() { 1 } else { CHUNK as u64 };
        if bytes_per_second > 0 {
            chunk = chunk.min((bytes_per_second / 20).max(1));
        }
        let out: Vec<u8> = if st.left > 0 {
            if st.file.is_none() {
                let mut f = match tokio::fs::File::open(&st.path).await {
                    Ok(f) => f,
                    Err(e) => return Some((Err(e), st)),
                };
                if let Err(e) = f.seek(std::io::SeekFrom::Start(st.pos)).await {
                    return Some((Err(e), st));
                }
                st.file = Some(f);
            }
            let n = chunk.min(st.left) as usize;
            let mut buf = vec![0u8; n];
            let f = st.file.as_mut()?;
            if let Err(e) = f.read_exact(&mut buf).await {
                return Some((Err(e), st));
            }
            match flip {
                Flip::None => {}
                Flip::All => buf.iter_mut().for_each(|b| *b ^= 0xA5),
                Flip::Middle(at) => {
                    if at >= st.pos && at < st.pos + n as u64 {
                        buf[(at - st.pos) as usize] ^= 0xFF;
                    }
                }
            }
            st.pos += n as u64;
            st.left -= n as u64;
            buf
        } else {
            let n = chunk.min(st.extra) as usize;
            st.extra -= n as u64;
            vec![0u8; n]
        };
        if let Some(every) = interval
            && st.sent > 0
        {
            tokio::time::sleep(every).await;
        }
        st.sent += out.len() as u64;
        if bytes_per_second > 0 {
            // Pace to the limit: never ahead of `sent / rate` seconds.
            let due = Duration::from_secs_f64(st.sent as f64 / bytes_per_second as f64);
            let elapsed = st.started.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
        Some((Ok(Bytes::from(out)), st))
    })
    .boxed()
}
