//! One pass of the following: new accepted deposits start being followed; each deposit
//! whose time has come is listed (`lister-retours-flux`) and its next listing planned
//! (back-off, `Expires`, due date, limit); each declarant's returns are scanned over the
//! windows not yet seen; each new return is downloaded, kept and read. Every piece of
//! work is taken under a lease first.

use std::collections::BTreeSet;
use std::path::PathBuf;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::read;
use super::schedule::{self, backoff_next, due_date_of_month, listing_time, window_end};
use super::types::*;
use super::{FollowPolicy, Inner};
use crate::agents::DepositAccess;
use crate::connection::Target;
use crate::credentials::VerificationResult;
use crate::network::Reach;
use crate::store::{CredentialRow, LeaseOf, VerificationWrite};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Deposits that started being followed.
    pub started: u32,
    /// Listings of one deposit's returns.
    pub flux_listed: u32,
    /// Declarant windows listed.
    pub windows_listed: u32,
    /// New returns (or versions) recorded.
    pub new_returns: u32,
    pub downloaded: u32,
    pub refused: u32,
    pub gone: u32,
    /// Downloads to try again later.
    pub failed: u32,
}

impl PassReport {
    fn add(&mut self, o: &PassReport) {
        self.started += o.started;
        self.flux_listed += o.flux_listed;
        self.windows_listed += o.windows_listed;
        self.new_returns += o.new_returns;
        self.downloaded += o.downloaded;
        self.refused += o.refused;
        self.gone += o.gone;
        self.failed += o.failed;
    }

    /// A French sentence.
    pub fn message(&self) -> String {
        use iea_fr_time::count;
        format!(
            "Suivi des retours : {}, {} du déclarant, {}, {}, {}, {}.",
            count(
                self.flux_listed as u64,
                "dépôt consulté",
                "dépôts consultés"
            ),
            count(self.windows_listed as u64, "fenêtre", "fenêtres"),
            count(
                self.new_returns as u64,
                "nouveau retour",
                "nouveaux retours"
            ),
            count(self.downloaded as u64, "téléchargé", "téléchargés"),
            count(self.refused as u64, "refusé", "refusés"),
            count(self.gone as u64, "plus disponible", "plus disponibles"),
        )
    }
}

pub(super) async fn pass(inner: &Inner, all: bool) -> anyhow::Result<PassReport> {
    let _one = inner.pass_lock.lock().await;
    let mut report = PassReport::default();
    let policy = inner
        .store
        .load::<FollowPolicy>()
        .await?
        .unwrap_or_default();
    report.started = start_new(inner, &policy).await?;
    let concurrency = inner.settings.concurrency.max(1);

    let now = inner.clock.now();
    let ids = inner.store.follows_due(now, all, 1000).await?;
    let results: Vec<anyhow::Result<PassReport>> = futures::stream::iter(ids)
        .map(|id| follow_one(inner, id))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        match r {
            Ok(r) => report.add(&r),
            Err(e) => tracing::error!(error = format!("{e:#}"), "following a deposit failed"),
        }
    }

    let accounts = inner.store.scan_accounts().await?;
    let results: Vec<anyhow::Result<PassReport>> = futures::stream::iter(accounts)
        .map(|(user, first)| scan_one(inner, user, first, &policy, all))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        match r {
            Ok(r) => report.add(&r),
            Err(e) => tracing::error!(error = format!("{e:#}"), "scanning returns failed"),
        }
    }

    // Downloads, until none is due (a pass may have listed many).
    loop {
        let now = inner.clock.now();
        let rows = inner.store.returns_to_download(now, 64).await?;
        if rows.is_empty() {
            break;
        }
        let mut any = false;
        let results: Vec<anyhow::Result<Option<PassReport>>> = futures::stream::iter(rows)
            .map(|row| download_one(inner, row))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(Some(r)) => {
                    any |= r.downloaded + r.refused + r.gone > 0;
                    report.add(&r)
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = format!("{e:#}"), "return download failed"),
            }
        }
        if !any {
            break;
        }
    }
    if report != PassReport::default() {
        tracing::info!(
            started = report.started,
            flux_listed = report.flux_listed,
            windows_listed = report.windows_listed,
            new_returns = report.new_returns,
            downloaded = report.downloaded,
            refused = report.refused,
            gone = report.gone,
            failed = report.failed,
            "returns pass"
        );
    }
    Ok(report)
}

/// Accepted deposits not followed yet start being followed.
async fn start_new(inner: &Inner, policy: &FollowPolicy) -> anyhow::Result<u32> {
    let mut started = 0;
    loop {
        let todo = inner.store.deposits_to_follow(500).await?;
        if todo.is_empty() {
            return Ok(started);
        }
        let now = inner.clock.now();
        let first_wait = backoff_next(&inner.settings.backoff_minutes, 0);
        let new: Vec<NewFollow> = todo
            .into_iter()
            .map(|d| {
                let day = inner.deposits.due_day(&d.siret);
                NewFollow {
                    due_at: due_date_of_month(&d.month, day).unwrap_or(d.accepted_at + 31 * 86_400),
                    until_at: d.accepted_at + i64::from(policy.limit_days) * 86_400,
                    next_at: d.accepted_at + first_wait,
                    started_at: d.accepted_at,
                    deposit_id: d.id,
                    idflux: d.idflux,
                    user_id: d.user_id,
                    siret: d.siret,
                    month: d.month,
                }
            })
            .collect();
        let n = new.len();
        started += inner.store.start_follows(new, now).await? as u32;
        if n < 500 {
            return Ok(started);
        }
    }
}

/// Who calls, with what identity: what a [`DepositAccess`] is made of.
struct Access {
    user_id: i64,
    row: CredentialRow,
    network: Reach,
    auth_address: String,
    identity: iea_declarant::Identity,
    service: u32,
}

impl Access {
    fn get(&self) -> DepositAccess {
        DepositAccess {
            network: self.network.clone(),
            auth_address: self.auth_address.clone(),
            identity: self.identity.clone(),
            service: self.service,
        }
    }
}

/// The identity of account `user_id` for a call to `address`, or why there is none (a
/// French sentence).
async fn access(
    inner: &Inner,
    user_id: Option<i64>,
    address: &str,
) -> anyhow::Result<Result<Access, String>> {
    let Some(user_id) = user_id else {
        return Ok(Err(
            "Le compte dont l'identité a fait ce dépôt n'existe plus : les retours ne peuvent pas être consultés.".into(),
        ));
    };
    let Some(row) = inner.store.credential(user_id).await? else {
        return Ok(Err(
            "Le compte qui a fait ce dépôt n'a plus d'identifiants Net-entreprises : les retours ne peuvent pas être consultés.".into(),
        ));
    };
    if row.consecutive_failures >= inner.budget {
        return Ok(Err(format!(
            "Les {} dernières authentifications du compte « {} » ont été refusées par Net-entreprises : plus aucune consultation n'est tentée tant que ses identifiants n'ont pas été corrigés.",
            row.consecutive_failures, row.user
        )));
    }
    let mut network = inner.network.for_target(Target::NetEntreprises);
    let auth_address = std::mem::replace(&mut network.address, address.to_owned());
    let password = inner
        .vault
        .open(&row.sealed, &crate::vault::credential_aad(user_id))?;
    Ok(Ok(Access {
        user_id,
        identity: iea_declarant::Identity {
            siret: row.siret.clone(),
            nom: row.nom.clone(),
            prenom: row.prenom.clone(),
            password,
        },
        row,
        network,
        auth_address,
        service: inner.network.net_entreprises_service(),
    }))
}

/// An authentication refused while consulting counts against the account's budget, as a
/// verification's; a French sentence.
async fn refused(inner: &Inner, a: &Access, v: VerificationResult) -> String {
    tracing::warn!(user = %a.row.user, outcome = v.outcome.code(), "net-entreprises authentication refused while following returns");
    let message = format!(
        "Net-entreprises a refusé l'authentification du compte « {} » : {}",
        a.row.user, v.message
    );
    if v.outcome.is_refusal() {
        let write = VerificationWrite {
            user_id: a.user_id,
            updated_at: a.row.updated_at,
            result: v,
        };
        if let Err(e) = inner
            .store
            .record_verifications(vec![write], crate::sessions::now())
            .await
        {
            tracing::error!(error = format!("{e:#}"), "refusal not recorded");
        }
    }
    message
}

/// The natures in for a flux: current versions whose status is known.
fn natures_in(returns: &[ReturnRecord]) -> BTreeSet<u32> {
    returns
        .iter()
        .filter(|r| r.is_current() && !r.statut.trim().eq_ignore_ascii_case("EN COURS"))
        .map(|r| r.nature)
        .collect()
}

const EXPECTED: [(u32, &str); 3] = [(10, "l'AEE"), (11, "la conformité"), (94, "le CRM PAS")];

/// The next listing of a deposit after one at `now` (`polled`: whether the service
/// answered), given the natures in and the answer's `Expires`.
pub(super) fn plan(
    f: &FollowRecord,
    natures: &BTreeSet<u32>,
    now: i64,
    polled: bool,
    expires_in: i64,
    backoff: &[u32],
    message: Option<String>,
) -> FollowUpdate {
    let missing: Vec<&str> = EXPECTED
        .iter()
        .filter(|(n, _)| !natures.contains(n))
        .map(|(_, l)| *l)
        .collect();
    let last = polled.then_some(now).or(f.last_polled_at);
    if missing.is_empty() {
        return FollowUpdate {
            state: FollowState::Done,
            phase_started_at: f.phase_started_at,
            polls: f.polls + i64::from(polled),
            next_at: now,
            last_polled_at: last,
            message: "Tous les retours attendus sont arrivés : AEE, conformité et CRM PAS.".into(),
        };
    }
    if now >= f.until_at {
        return FollowUpdate {
            state: FollowState::Expired,
            phase_started_at: f.phase_started_at,
            polls: f.polls + i64::from(polled),
            next_at: now,
            last_polled_at: last,
            message: format!(
                "Suivi arrêté : la limite de jours est passée sans que tous les retours soient arrivés (manque {}).",
                missing.join(", ")
            ),
        };
    }
    // Once 10 and 11 are in, the CRM comes after the due date: a new phase starts there.
    let phase_start = if natures.contains(&10) && natures.contains(&11) {
        f.due_at.max(f.started_at)
    } else {
        f.started_at
    };
    let (phase_started_at, polls) = if phase_start != f.phase_started_at {
        (phase_start, 0)
    } else {
        (f.phase_started_at, f.polls)
    };
    let polls = if polled && now >= phase_start {
        polls + 1
    } else {
        polls
    };
    let mut next_at = if now < phase_start {
        phase_start + backoff_next(backoff, 0)
    } else {
        now + backoff_next(backoff, polls)
    };
    next_at = next_at
        .max(now + expires_in.max(0))
        .min(f.until_at.max(now + 1));
    let why = message.unwrap_or_else(|| format!("En attente de {}.", missing.join(", ")));
    FollowUpdate {
        state: FollowState::Following,
        phase_started_at,
        polls,
        next_at,
        last_polled_at: last,
        message: format!(
            "{why} Prochaine consultation le {}.",
            iea_fr_time::date_time_unix(next_at)
        ),
    }
}

async fn follow_one(inner: &Inner, id: i64) -> anyhow::Result<PassReport> {
    let mut report = PassReport::default();
    let now = inner.clock.now();
    let lease = inner.settings.lease_secs as i64;
    let owner = inner.owner.clone();
    let Some(f) = inner
        .store
        .lease_follow(id, owner.clone(), now, now + lease)
        .await?
    else {
        return Ok(report);
    };
    let _renewal = renew(inner, LeaseOf::Follow(id));
    let mut polled = false;
    let mut expires_in = 0;
    let mut message = None;
    match access(inner, f.user_id, &inner.consultation_address).await? {
        Err(why) => message = Some(why),
        Ok(a) => match inner
            .agent
            .list_flux_returns(a.get(), f.idflux.clone())
            .await
        {
            Err(e) => {
                tracing::warn!(deposit = id, idflux = %f.idflux, error = %e, "returns listing failed");
                message = Some(
                    "Le service de dépôt ne répond pas : les retours seront consultés plus tard."
                        .into(),
                );
            }
            Ok(ReturnsListing::Listing {
                returns,
                expires_in_secs,
                ..
            }) => {
                polled = true;
                report.flux_listed += 1;
                expires_in = i64::from(expires_in_secs);
                // Only this flux's returns are taken from its listing.
                let returns: Vec<ListedReturn> = returns
                    .into_iter()
                    .filter(|r| r.idflux == f.idflux)
                    .collect();
                let new = written(|| {
                    inner
                        .store
                        .record_listed_returns(returns.clone(), f.user_id, now)
                })
                .await?;
                report.new_returns += new.len() as u32;
                for r in &new {
                    tracing::info!(deposit = id, idflux = %r.idflux, nature = r.nature, return_id = %r.return_id, version = r.version, statut = %r.statut, "return listed");
                }
            }
            Ok(ReturnsListing::Failed {
                failure: ListingFailure::UnknownFlux,
                ..
            }) => {
                polled = true;
                report.flux_listed += 1;
                message = Some("Net-entreprises ne connaît pas encore ce flux.".into());
            }
            Ok(ReturnsListing::Failed {
                failure,
                message: m,
            }) => {
                tracing::warn!(deposit = id, idflux = %f.idflux, failure = ?failure, "returns listing refused");
                message = Some(m);
            }
            Ok(ReturnsListing::Authentication(v)) => message = Some(refused(inner, &a, v).await),
        },
    }
    let returns = inner.store.returns_of_flux(f.idflux.clone()).await?;
    let u = plan(
        &f,
        &natures_in(&returns),
        now,
        polled,
        expires_in,
        &inner.settings.backoff_minutes,
        message,
    );
    if u.state != FollowState::Following {
        tracing::info!(deposit = id, idflux = %f.idflux, state = u.state.code(), "deposit following ended");
    }
    if !written(|| {
        inner
            .store
            .finish_follow(id, owner.clone(), u.clone(), inner.clock.now())
    })
    .await?
    {
        tracing::warn!(deposit = id, "returns following lease lost");
    }
    Ok(report)
}

/// Scans `user_id`'s returns over the windows not yet seen, each at most as wide as the
/// service announced (10 minutes before any answer; halved and remembered after a 429).
async fn scan_one(
    inner: &Inner,
    user_id: i64,
    first_deposit_at: i64,
    policy: &FollowPolicy,
    all: bool,
) -> anyhow::Result<PassReport> {
    let mut report = PassReport::default();
    let s = &inner.settings;
    let now = inner.clock.now();
    let lease = s.lease_secs as i64;
    let owner = inner.owner.clone();
    let Some(c) = inner
        .store
        .lease_scan(
            user_id,
            owner.clone(),
            now,
            now + lease,
            // Never further back than the limit of the following (an installation with
            // years of deposits does not list them all).
            (first_deposit_at - s.scan_lookback_secs as i64)
                .max(now - i64::from(policy.limit_days) * 86_400),
            10,
            all,
        )
        .await?
    else {
        return Ok(report);
    };
    let limit = now - s.scan_lag_secs as i64;
    let mut cursor = c.cursor_at;
    let mut width = c.window_minutes.max(1);
    let mut announced = c.announced_minutes;
    let mut windows = 0;
    let mut too_wide = 0;
    let mut failed: Option<String> = None;
    let a = match access(inner, Some(user_id), &inner.consultation_address).await? {
        Ok(a) => Some(a),
        Err(why) => {
            failed = Some(why);
            None
        }
    };
    while let Some(a) = &a
        && cursor < limit
        && windows < s.scan_windows_per_pass
    {
        let w = announced.map_or(width, |x| width.min(x.max(1)));
        let fin = window_end(inner.listing_zone, cursor, w, limit);
        if fin <= cursor {
            break;
        }
        let answer = inner
            .agent
            .list_declarant_returns(
                a.get(),
                listing_time(inner.listing_zone, cursor),
                listing_time(inner.listing_zone, fin),
            )
            .await;
        match answer {
            Ok(ReturnsListing::Listing {
                returns,
                window_max_minutes,
                ..
            }) => {
                windows += 1;
                report.windows_listed += 1;
                if window_max_minutes > 0 {
                    announced = Some(i64::from(window_max_minutes));
                    width = i64::from(window_max_minutes);
                }
                let new = written(|| {
                    inner.store.record_listed_returns(
                        returns.clone(),
                        Some(user_id),
                        inner.clock.now(),
                    )
                })
                .await?;
                report.new_returns += new.len() as u32;
                for r in &new {
                    tracing::info!(user = user_id, idflux = %r.idflux, nature = r.nature, return_id = %r.return_id, version = r.version, ours = r.deposit_id.is_some(), "return listed by the declarant scan");
                }
                cursor = fin;
                inner
                    .store
                    .advance_scan(
                        user_id,
                        owner.clone(),
                        cursor,
                        width,
                        announced,
                        now,
                        String::new(),
                        false,
                        inner.clock.now(),
                    )
                    .await?;
                let until = inner.clock.now() + lease;
                inner
                    .store
                    .renew_return_lease(LeaseOf::Scan(user_id), owner.clone(), until)
                    .await?;
            }
            Ok(ReturnsListing::Failed {
                failure: ListingFailure::WindowTooWide,
                ..
            }) if too_wide < 6 => {
                too_wide += 1;
                width = (w / 2).max(1);
                announced = Some(announced.map_or(width, |x| x.min(width)));
                tracing::warn!(
                    user = user_id,
                    width_minutes = width,
                    "returns window too wide: narrowed"
                );
            }
            Ok(ReturnsListing::Failed { failure, message }) => {
                tracing::warn!(user = user_id, failure = ?failure, "declarant returns listing failed");
                failed = Some(message);
                break;
            }
            Ok(ReturnsListing::Authentication(v)) => {
                failed = Some(refused(inner, a, v).await);
                break;
            }
            Err(e) => {
                tracing::warn!(user = user_id, error = %e, "declarant returns listing failed");
                failed = Some("Le service de dépôt ne répond pas : les retours du déclarant seront consultés plus tard.".into());
                break;
            }
        }
    }
    let now = inner.clock.now();
    let (next_at, message) = match failed {
        Some(m) => (now + s.retry_delay_secs as i64, m),
        // More to catch up: on the next pass.
        None if cursor < limit => (now, String::new()),
        None => (now + s.scan_interval_secs as i64, String::new()),
    };
    written(|| {
        inner.store.advance_scan(
            user_id,
            owner.clone(),
            cursor,
            width,
            announced,
            next_at,
            message.clone(),
            true,
            now,
        )
    })
    .await?;
    Ok(report)
}

/// A write that must be made (what was listed or downloaded): a busy database is tried
/// again, for a while.
async fn written<T, F, Fut>(mut write: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut tries = 0;
    loop {
        match write().await {
            Ok(v) => return Ok(v),
            Err(e) if tries < 20 => {
                tries += 1;
                tracing::warn!(error = format!("{e:#}"), "returns write not made yet");
                tokio::time::sleep(std::time::Duration::from_millis(50 * tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Renews a lease until dropped (a download or a listing may outlast it).
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn renew(inner: &Inner, what: LeaseOf) -> Renewal {
    let store = inner.store.clone();
    let owner = inner.owner.clone();
    let clock = inner.clock.clone();
    let secs = inner.settings.lease_secs.max(3);
    Renewal(tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(secs / 3)).await;
            let until = clock.now() + secs as i64;
            match store.renew_return_lease(what, owner.clone(), until).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => tracing::warn!(error = format!("{e:#}"), "returns lease renewal failed"),
            }
        }
    }))
}

/// Whether `url` is a download address of the service at `base`.
pub(super) fn url_is_under(url: &str, base: &str) -> bool {
    let prefix = format!("{}/telecharger-retour/1.0/", base.trim_end_matches('/'));
    match url.strip_prefix(&prefix) {
        Some(rest) => {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'-' || b == b'_')
                && !rest.contains("//")
        }
        None => false,
    }
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

async fn download_one(inner: &Inner, row: i64) -> anyhow::Result<Option<PassReport>> {
    let mut report = PassReport::default();
    let s = &inner.settings;
    let now = inner.clock.now();
    let owner = inner.owner.clone();
    let Some(rec) = inner
        .store
        .lease_return(row, owner.clone(), now, now + s.lease_secs as i64)
        .await?
    else {
        return Ok(None);
    };
    let _renewal = renew(inner, LeaseOf::Return(row));
    let later = |message: String| {
        let give_up = rec.attempts + 1 >= i64::from(s.max_download_attempts);
        if give_up {
            DownloadEnd::Refused(format!(
                "{message} Abandon après {} essais.",
                rec.attempts + 1
            ))
        } else {
            DownloadEnd::Failed {
                message,
                next_try_at: inner.clock.now() + s.retry_delay_secs as i64,
            }
        }
    };
    let end = if !url_is_under(&rec.url, &inner.download_address) {
        tracing::warn!(idflux = %rec.idflux, nature = rec.nature, return_id = %rec.return_id, "return download address outside the download service: refused");
        DownloadEnd::Refused(
            "L'adresse de téléchargement de ce retour n'est pas celle du service de téléchargement de Net-entreprises configuré : il n'a pas été téléchargé.".into(),
        )
    } else {
        match access(inner, rec.user_id, &inner.download_address).await? {
            Err(why) => later(why),
            Ok(a) => {
                let name = format!(
                    "{}-{}-{}-v{}",
                    safe(&rec.idflux),
                    rec.nature,
                    safe(&rec.return_id),
                    rec.version
                );
                let part = inner.files_dir.join(format!("{name}.part"));
                let kept = inner.files_dir.join(format!("{name}.xml"));
                let _ = tokio::fs::remove_file(&part).await;
                match inner
                    .agent
                    .download_return(a.get(), rec.url.clone(), s.max_bytes, part.clone())
                    .await
                {
                    Ok(ReturnDownload::Done { .. }) => {
                        keep_and_read(inner, &rec, part, kept).await?
                    }
                    Ok(ReturnDownload::Failed { failure, message }) => match failure {
                        DownloadFailure::Gone => DownloadEnd::Gone(format!(
                            "Ce retour n'est plus téléchargeable (purgé ou remplacé) : {}",
                            message.trim()
                        )),
                        DownloadFailure::ForeignAddress | DownloadFailure::TooLarge => {
                            tracing::warn!(idflux = %rec.idflux, nature = rec.nature, return_id = %rec.return_id, failure = ?failure, "return download refused");
                            DownloadEnd::Refused(message)
                        }
                        DownloadFailure::Unavailable | DownloadFailure::Unexpected => {
                            later(message)
                        }
                    },
                    Ok(ReturnDownload::Authentication(v)) => later(refused(inner, &a, v).await),
                    Err(e) => {
                        tracing::warn!(idflux = %rec.idflux, nature = rec.nature, error = %e, "return download failed");
                        later("Le service de dépôt ne répond pas : le retour sera téléchargé plus tard.".into())
                    }
                }
            }
        }
    };
    match &end {
        DownloadEnd::Downloaded { bytes, .. } => {
            report.downloaded += 1;
            tracing::info!(idflux = %rec.idflux, nature = rec.nature, return_id = %rec.return_id, bytes, "return downloaded and read");
        }
        DownloadEnd::Refused(_) => report.refused += 1,
        DownloadEnd::Gone(_) => {
            report.gone += 1;
            tracing::info!(idflux = %rec.idflux, nature = rec.nature, return_id = %rec.return_id, "return gone");
        }
        DownloadEnd::Failed { .. } => report.failed += 1,
    }
    let mut sirets = match &end {
        DownloadEnd::Downloaded { read, .. } => match read.as_ref() {
            ReadResult::Crm { crm, .. } => vec![crm.siret.clone()],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let done = written(|| {
        inner
            .store
            .finish_return(row, owner.clone(), end.clone(), inner.clock.now())
    })
    .await?;
    if !done {
        tracing::warn!(idflux = %rec.idflux, nature = rec.nature, "return lease lost before its outcome was written");
    }
    // A new CRM, or one whose new version replaces an older one (whose rates leave the
    // export folder even when the new version is refused): its establishments' folders.
    if rec.nature == 94 {
        sirets.extend(inner.store.crm_sirets_of_flux(rec.idflux.clone()).await?);
        sirets.sort();
        sirets.dedup();
        for siret in sirets {
            export(inner, &siret).await?;
        }
    }
    Ok(Some(report))
}

/// Checks and reads the downloaded document `part`; kept as `kept` (0600) if read.
async fn keep_and_read(
    inner: &Inner,
    rec: &ReturnRecord,
    part: PathBuf,
    kept: PathBuf,
) -> anyhow::Result<DownloadEnd> {
    let max = usize::try_from(inner.settings.max_bytes).unwrap_or(usize::MAX);
    let rec2 = rec.clone();
    let read = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let bytes = std::fs::read(&part)?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let result = read::read_document(&rec2, &bytes, max);
        match &result {
            Ok(_) => std::fs::rename(&part, &kept)?,
            Err(_) => {
                let _ = std::fs::remove_file(&part);
            }
        }
        Ok((sha256, bytes.len() as i64, result))
    })
    .await??;
    let (sha256, bytes, result) = read;
    Ok(match result {
        Ok(read) => DownloadEnd::Downloaded {
            file_path: kept_path(inner, rec),
            sha256,
            bytes,
            read: Box::new(read),
        },
        Err((message, code)) => {
            // The reason only: never the document.
            tracing::warn!(idflux = %rec.idflux, nature = rec.nature, return_id = %rec.return_id, bytes, reason = code, "return document refused");
            DownloadEnd::Refused(message)
        }
    })
}

fn kept_path(inner: &Inner, rec: &ReturnRecord) -> String {
    inner
        .files_dir
        .join(format!(
            "{}-{}-{}-v{}.xml",
            safe(&rec.idflux),
            rec.nature,
            safe(&rec.return_id),
            rec.version
        ))
        .display()
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rewrites the export folder of `siret`.
pub(super) async fn export(inner: &Inner, siret: &str) -> anyhow::Result<()> {
    let crms = inner.store.crm_files(siret.to_owned()).await?;
    let today = schedule::day_of(inner.clock.now());
    let rates = inner
        .store
        .current_rates(Some(siret.to_owned()), None, today, false)
        .await?;
    let dir = inner.export_dir.join(siret);
    let n = rates.len();
    tokio::task::spawn_blocking(move || super::export::rewrite(&dir, &crms, &rates)).await??;
    tracing::info!(siret = %siret, rates = n, "pas rates exported");
    Ok(())
}
