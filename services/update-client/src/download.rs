//! Downloading a package: capped by its signed length, under an overall deadline and an
//! idle timeout, resumable with HTTP `Range`, verified (length and SHA-256) before it is
//! kept.
//!
//! Files live in `<state>/downloads/`, named after the signed hash (hex), never after a
//! name the server chose: `<sha256>.part` while it downloads, `<sha256>.pkg` once it
//! matches. A partial file is resumed with `Range: bytes=N-` when the server answers 206
//! with the matching `Content-Range`; a 200 means no range support, and the download
//! starts again from zero. If the result does not match its signed hash (the file
//! changed on the server between two requests, or was substituted), it is discarded.
//!
//! Writes are done inline with `std::fs` in chunks of [`WRITE_CHUNK`] (page cache), so
//! that a download cancelled at any await point (the caller gone, the process killed)
//! never leaves a write in flight that could interleave with the next attempt.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{Context as Digest, SHA256};
use futures::StreamExt;
use iea_net::{HttpClient, NetError};
use reqwest::{StatusCode, Url, header};
use tracing::Instrument;

use crate::error::UpdateError;
use crate::trust::TargetRef;

/// Buffered bytes written at once.
pub const WRITE_CHUNK: usize = 256 * 1024;
/// Progress is reported at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Where a download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub bytes_per_second: u64,
    pub seconds_remaining: u32,
}

/// Limits of one download.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole download, all requests together.
    pub deadline: Instant,
    /// Longest wait for the next bytes.
    pub idle: Duration,
}

pub fn downloads_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("downloads")
}

fn hash_file(path: &Path) -> std::io::Result<(Digest, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut d = Digest::new(&SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
        len += n as u64;
    }
    Ok((d, len))
}

/// Removes downloads of other packages than `keep` (stale partial files).
pub fn prune(state_dir: &Path, keep: &[&TargetRef]) {
    let dir = downloads_dir(state_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stem = name.split('.').next().unwrap_or_default().to_owned();
        if !keep.iter().any(|k| k.sha256_hex() == stem) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Downloads `target` (from `targets_base`) into the downloads directory and returns
/// the path of the verified file. `report` is called with progress.
pub async fn fetch_package(
    client: &HttpClient,
    targets_base: &Url,
    target: &TargetRef,
    state_dir: &Path,
    limits: Limits,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<PathBuf, UpdateError> {
    let dir = downloads_dir(state_dir);
    std::fs::create_dir_all(&dir)?;
    let hex = target.sha256_hex();
    let done_path = dir.join(format!("{hex}.pkg"));
    let part_path = dir.join(format!("{hex}.part"));
    if done_path.exists() {
        let (d, len) = hash_file(&done_path)?;
        if len == target.length && d.finish().as_ref() == target.sha256.as_slice() {
            tracing::info!(package = %target.name, "package already downloaded and verified");
            report(Progress {
                done: len,
                total: len,
                bytes_per_second: 0,
                seconds_remaining: 0,
            });
            return Ok(done_path);
        }
        std::fs::remove_file(&done_path)?;
    }
    let url = targets_base
        .join(&target.file_name())
        .map_err(|e| UpdateError::Internal(anyhow::anyhow!("target url: {e}")))?;
    let span = tracing::info_span!("download", package = %target.name, length = target.length);
    async {
        let result = transfer(client, &url, target, &part_path, limits, report).await;
        match result {
            Ok(()) => {}
            Err(e) => {
                if matches!(
                    e,
                    UpdateError::DownloadRefused(_) | UpdateError::TooLarge(_)
                ) {
                    tracing::warn!(error = %e, "partial download discarded");
                    let _ = std::fs::remove_file(&part_path);
                }
                return Err(e);
            }
        }
        std::fs::rename(&part_path, &done_path)?;
        tracing::info!("package verified");
        Ok(done_path)
    }
    .instrument(span)
    .await
}

async fn transfer(
    client: &HttpClient,
    url: &Url,
    target: &TargetRef,
    part_path: &Path,
    limits: Limits,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), UpdateError> {
    let total = target.length;
    // What is already there.
    let (mut digest, mut have) = match hash_file(part_path) {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Digest::new(&SHA256), 0),
        Err(e) => return Err(e.into()),
    };
    if have > total {
        std::fs::remove_file(part_path)?;
        digest = Digest::new(&SHA256);
        have = 0;
    }
    if have < total {
        let remaining = limits.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(UpdateError::Deadline("le téléchargement"));
        }
        let resume_from = have;
        let u = url.clone();
        let send = client.send(|c| {
            let mut req = c.get(u.clone()).timeout(remaining);
            if resume_from > 0 {
                req = req.header(header::RANGE, format!("bytes={resume_from}-"));
            }
            req
        });
        let response = match tokio::time::timeout(remaining, send).await {
            Err(_) => return Err(UpdateError::Deadline("le téléchargement")),
            Ok(Err(NetError::Transport(d))) if d.step == iea_net::Step::Timeout => {
                return Err(UpdateError::Deadline("le téléchargement"));
            }
            Ok(Err(NetError::Transport(d))) => return Err(UpdateError::Unreachable(d)),
            Ok(Err(NetError::Settings(s))) => return Err(UpdateError::InvalidRequest(s)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(part_path)?;
        match status {
            StatusCode::PARTIAL_CONTENT if resume_from > 0 => {
                let expected = format!("bytes {resume_from}-{}/{total}", total - 1);
                let got = response
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if got != expected {
                    tracing::warn!(got, expected, "unexpected content-range, starting again");
                    file.set_len(0)?;
                    drop(file);
                    std::fs::remove_file(part_path)?;
                    return Err(UpdateError::DownloadRefused(format!(
                        "content-range {got} instead of {expected}"
                    )));
                }
                tracing::info!(resume_from, "resuming the download");
            }
            StatusCode::OK => {
                if resume_from > 0 {
                    tracing::info!(resume_from, "the server does not resume, starting again");
                    file.set_len(0)?;
                    digest = Digest::new(&SHA256);
                    have = 0;
                }
            }
            StatusCode::NOT_FOUND => return Err(UpdateError::UnknownVersion(target.name.clone())),
            other => {
                let d = iea_net::probe::from_status(client.settings(), other.as_u16());
                return Err(UpdateError::Unreachable(d));
            }
        }
        let started = Instant::now();
        let start_have = have;
        let mut last_report = Instant::now() - PROGRESS_EVERY;
        let mut buf: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
        let mut stream = response.bytes_stream();
        loop {
            let remaining = limits.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(UpdateError::Deadline("le téléchargement"));
            }
            let wait = remaining.min(limits.idle);
            let next = match tokio::time::timeout(wait, stream.next()).await {
                Err(_) => return Err(UpdateError::Deadline("le téléchargement")),
                Ok(n) => n,
            };
            let chunk = match next {
                None => break,
                Some(Ok(c)) => c,
                Some(Err(e)) if e.is_timeout() => {
                    return Err(UpdateError::Deadline("le téléchargement"));
                }
                Some(Err(e)) => {
                    let d = iea_net::probe::classify(&e, client.settings());
                    file.write_all(&buf)?;
                    return Err(UpdateError::Unreachable(d));
                }
            };
            if have + buf.len() as u64 + chunk.len() as u64 > total {
                return Err(UpdateError::TooLarge(format!(
                    "{} is longer than its signed length {total}",
                    target.name
                )));
            }
            digest.update(&chunk);
            buf.extend_from_slice(&chunk);
            if buf.len() >= WRITE_CHUNK {
                file.write_all(&buf)?;
                have += buf.len() as u64;
                buf.clear();
            }
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                report(progress(
                    have + buf.len() as u64,
                    total,
                    start_have,
                    started,
                ));
            }
        }
        file.write_all(&buf)?;
        have += buf.len() as u64;
        report(progress(have, total, start_have, started));
        // Durable before it is verified and staged.
        file.sync_all()?;
    }
    if have != total {
        return Err(UpdateError::Unreachable(iea_net::Diagnosis {
            address: url.to_string(),
            step: iea_net::Step::Http,
            tls_problem: None,
            http_status: None,
            latency: Duration::ZERO,
            message: "Le téléchargement a été interrompu avant la fin : il reprendra à la prochaine tentative.".into(),
            detail: format!("body ended at {have} of {total} bytes"),
        }));
    }
    if digest.finish().as_ref() != target.sha256.as_slice() {
        return Err(UpdateError::DownloadRefused(format!(
            "{} does not match its signed sha256",
            target.name
        )));
    }
    Ok(())
}

fn progress(done: u64, total: u64, start: u64, started: Instant) -> Progress {
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 {
        ((done - start) as f64 / secs) as u64
    } else {
        0
    };
    let remaining = total
        .saturating_sub(done)
        .checked_div(rate)
        .map_or(0, |s| u32::try_from(s).unwrap_or(u32::MAX));
    Progress {
        done,
        total,
        bytes_per_second: rate,
        seconds_remaining: remaining,
    }
}
