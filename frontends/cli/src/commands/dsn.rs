//! `iea dsn`: DSN files. `check` and `sample` are local and send nothing: `check` reads
//! the file and names each problem with its line (the first [`iea_dsn::MAX_PROBLEMS`],
//! then one sentence counting the others; `--json`: `omitted`, `omitted_message`),
//! `sample` writes a valid file (mode 0600: it holds made-up personal data shaped like
//! real ones). `deposit`, `list`, `show`, `resolve` and `accounts` go through the
//! orchestrator's deposit queue: the file is streamed to it in chunks (the front-end may
//! be on another workstation), checked there again (a bad file is refused with its first
//! problems and a sentence counting the others, nothing recorded), and deposited exactly
//! once. `board` reads the deadline board; `follow` (module [`follow`]) asks the
//! orchestrator to follow the deposits' returns now.

use std::path::Path;

use iea_dsn::{DeclarationKind, Month, SampleSpec, Scanner, TestOrReal};
use iea_proto::error::{ApiError, ErrorCode};
use iea_proto::v1::board_client::BoardClient;
use iea_proto::v1::deposits_client::DepositsClient;
use iea_proto::v1::returns_client::ReturnsClient;
use iea_proto::v1::*;
use serde_json::{Value, json};

mod follow;

use super::Ctx;
use crate::args::{DsnAccountsCommand, DsnCommand, DsnKindArg, DsnSampleArgs};
use crate::client;
use crate::output::{CliError, CliResult, day, print_json, rfc3339, when};
use iea_fr_time::count;

/// Exit code of `check` when the file has problems, and of `deposit` when the deposit is
/// not accepted — the orchestrator's refusal of a file with problems included (as
/// `credentials verify` when a verification is not valid); other failures (unreadable
/// file, orchestrator unreachable) exit 1.
pub const EXIT_INVALID: u8 = 3;

/// Most employees `sample` writes (a 100,000-employee file is already about 40 MB).
const MAX_EMPLOYEES: usize = 100_000;

pub async fn run(ctx: &Ctx, cmd: DsnCommand) -> CliResult {
    match cmd {
        DsnCommand::Check { file } => check(ctx, &file),
        DsnCommand::Sample(args) => write_sample(ctx, args),
        DsnCommand::Deposit {
            file,
            user,
            no_wait,
            timeout,
        } => deposit(ctx, &file, user, no_wait, timeout).await,
        DsnCommand::List {
            siret,
            month,
            state,
            limit,
            before,
        } => {
            let request = ListDsnDepositsRequest {
                siret: siret.unwrap_or_default(),
                month: month.unwrap_or_default(),
                state: state.unwrap_or_default(),
                limit: limit.unwrap_or_default(),
                before: before.unwrap_or_default(),
            };
            list(ctx, request).await
        }
        DsnCommand::Show { id } => show(ctx, id).await,
        DsnCommand::Resolve { id, idflux, resend } => {
            use resolve_dsn_deposit_request::Resolution;
            let resolution = match idflux {
                Some(i) => Resolution::Idflux(i),
                None => Resolution::Resend(resend),
            };
            let d = client_for(ctx)
                .await?
                .resolve_deposit(client::authed(
                    &ctx.data_dir,
                    ResolveDsnDepositRequest {
                        id,
                        resolution: Some(resolution),
                    },
                ))
                .await?
                .into_inner();
            print_deposit(ctx, &d);
            Ok(())
        }
        DsnCommand::Accounts(c) => accounts(ctx, c).await,
        DsnCommand::Board { siret } => board(ctx, siret).await,
        DsnCommand::Follow { deposit } => follow::run(ctx, deposit).await,
    }
}

async fn client_for(ctx: &Ctx) -> CliResult<DepositsClient<tonic::transport::Channel>> {
    let stack = client::stack_file(&ctx.data_dir)?;
    Ok(DepositsClient::new(client::connect(&stack).await?))
}

/// `iea dsn show ID`: the deposit, then, once accepted, its returns as the orchestrator
/// follows them (acknowledgement, conformity and its anomalies, CRM PAS), which the person
/// would otherwise only see on the web console or after `iea dsn follow`.
async fn show(ctx: &Ctx, id: i64) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let channel = client::connect(&stack).await?;
    let d = DepositsClient::new(channel.clone())
        .get_deposit(client::authed(&ctx.data_dir, GetDsnDepositRequest { id }))
        .await?
        .into_inner();
    let returns = if d.idflux.is_empty() {
        None
    } else {
        Some(
            ReturnsClient::new(channel)
                .list_returns(client::authed(
                    &ctx.data_dir,
                    ListDsnReturnsRequest { deposit_id: id },
                ))
                .await?
                .into_inner(),
        )
    };
    if ctx.json {
        print_json(&json!({
            "deposit": deposit_json(&d),
            "returns": returns.as_ref().map(follow::deposit_json),
        }));
        return Ok(());
    }
    let mut lines = deposit_lines(&d);
    if let Some(r) = &returns {
        lines.extend(follow::show_lines(r));
    }
    for line in lines {
        say!("{line}");
    }
    Ok(())
}

/// Chunks of the file sent to the orchestrator (gRPC refuses messages over 4 MiB).
const CHUNK: usize = 1 << 20;

async fn deposit(
    ctx: &Ctx,
    file: &Path,
    user: Option<String>,
    no_wait: bool,
    timeout: u64,
) -> CliResult {
    use tokio::io::AsyncReadExt;
    let read_failed = |e: std::io::Error| {
        CliError::new(
            "read_failed",
            format!(
                "Le fichier {} n'a pas pu être lu : {}",
                file.display(),
                crate::output::io_error_fr(&e)
            ),
        )
    };
    let mut f = tokio::fs::File::open(file).await.map_err(read_failed)?;
    let size = f.metadata().await.map_err(read_failed)?.len();
    let mut deposits = client_for(ctx).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let start = DsnUpload {
        start: Some(DsnUploadStart {
            file_name: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            total_size: size,
            user: user.unwrap_or_default(),
        }),
        data: Vec::new(),
    };
    // Read as it is sent: a file of any size in bounded memory. A read error ends the
    // stream short, and the orchestrator records nothing.
    let reader = tokio::spawn(async move {
        if tx.send(start).await.is_err() {
            return Ok(());
        }
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            let msg = DsnUpload {
                start: None,
                data: buf,
            };
            if tx.send(msg).await.is_err() {
                return Ok(());
            }
        }
    });
    let sent = deposits
        .deposit(client::authed(
            &ctx.data_dir,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await;
    if let Ok(Err(e)) = reader.await {
        return Err(read_failed(e));
    }
    let mut d = sent.map_err(upload_refusal)?.into_inner();
    if !no_wait {
        // A person sees each change while waiting (on stderr: the result stays alone on
        // stdout); a program reads the deposit as it ends.
        let mut progress = (!ctx.json).then(Progress::default);
        if let Some(p) = &mut progress {
            p.show(&d);
        }
        d = wait_settled(ctx, &mut deposits, d, timeout, |d| {
            if let Some(p) = &mut progress {
                p.show(d);
            }
        })
        .await?;
        if progress.is_some() && !d.settled {
            eprintln!(
                "Le dépôt n° {} n'est pas terminé au bout de {timeout} s : l'orchestrateur le poursuit. \
                 Pour en suivre l'issue : iea dsn show {}",
                d.id, d.id
            );
        }
    }
    print_deposit(ctx, &d);
    if !no_wait && d.state != "accepted" {
        std::process::exit(i32::from(EXIT_INVALID));
    }
    Ok(())
}

/// The changes of a deposit a person is waiting for, one line each on stderr: its state
/// and the orchestrator's sentence when either changed (« Dépôt DSN n° 4 : en file
/// d'attente — … Nouvel essai automatique dans 30 s. »).
#[derive(Default)]
struct Progress {
    last: Option<(String, String)>,
}

impl Progress {
    fn show(&mut self, d: &DsnDeposit) {
        if let Some(line) = self.line(d) {
            eprintln!("{line}");
        }
    }

    /// The line for `d`, if it says something new and the deposit is still under way
    /// (its end is printed in full).
    fn line(&mut self, d: &DsnDeposit) -> Option<String> {
        let now = (d.state.clone(), d.message.clone());
        if d.settled || self.last.as_ref() == Some(&now) {
            return None;
        }
        self.last = Some(now);
        let mut line = format!("Dépôt DSN n° {} : {}", d.id, state_fr(&d.state));
        if !d.message.is_empty() {
            line.push_str(" — ");
            line.push_str(d.message.trim());
        }
        Some(line)
    }
}

/// Follows deposit `d` with `WatchDeposit` (the orchestrator sends it at each change, each
/// given to `on_change`) until it is settled or `timeout` seconds have passed: the deposit
/// as last received. A stream that ends before a settled deposit (the orchestrator
/// stopping) is opened again; a refusal or a broken connection is an error, as a failed
/// `GetDeposit` was.
async fn wait_settled(
    ctx: &Ctx,
    deposits: &mut DepositsClient<tonic::transport::Channel>,
    mut d: DsnDeposit,
    timeout: u64,
    mut on_change: impl FnMut(&DsnDeposit),
) -> CliResult<DsnDeposit> {
    use tokio::time::timeout_at;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout);
    let id = d.id;
    while !d.settled {
        let watch =
            deposits.watch_deposit(client::authed(&ctx.data_dir, WatchDsnDepositRequest { id }));
        let Ok(watch) = timeout_at(deadline, watch).await else {
            break;
        };
        let mut changes = watch?.into_inner();
        loop {
            match timeout_at(deadline, changes.message()).await {
                Err(_) => return Ok(d),
                Ok(Ok(Some(now))) => {
                    d = now;
                    on_change(&d);
                }
                Ok(Ok(None)) => break,
                Ok(Err(status)) => return Err(status.into()),
            }
            if d.settled {
                return Ok(d);
            }
        }
        // Ended early: a moment before watching again.
        let pause = tokio::time::sleep(std::time::Duration::from_millis(250));
        if timeout_at(deadline, pause).await.is_err() {
            break;
        }
    }
    Ok(d)
}

/// The orchestrator's answer to an upload that gave no deposit: a file it refuses for its
/// problems (each with its line, as `check` lists them) ends with [`EXIT_INVALID`] like
/// `check` of the same file; any other failure stays a failure.
fn upload_refusal(status: tonic::Status) -> CliError {
    let e = ApiError::from_status(&status);
    let bad_file = e.error_code() == Some(ErrorCode::BadDsnFile);
    let e = CliError::from(e);
    if bad_file {
        e.with_exit(EXIT_INVALID)
    } else {
        e
    }
}

async fn list(ctx: &Ctx, request: ListDsnDepositsRequest) -> CliResult {
    let filtered =
        !(request.siret.is_empty() && request.month.is_empty() && request.state.is_empty());
    let r = client_for(ctx)
        .await?
        .list_deposits(client::authed(&ctx.data_dir, request.clone()))
        .await?
        .into_inner();
    let all = r.deposits;
    // Where the next page starts: the last deposit given.
    let next_before = all.last().filter(|_| r.truncated).map(|d| d.id);
    if ctx.json {
        print_json(&json!({
            "deposits": all.iter().map(deposit_json).collect::<Vec<_>>(),
            "truncated": r.truncated,
            "next_before": next_before,
        }));
        return Ok(());
    }
    if all.is_empty() {
        say!(
            "{}",
            if filtered {
                "Aucun dépôt DSN ne correspond."
            } else {
                "Aucun dépôt DSN."
            }
        );
    }
    for d in &all {
        say!(
            "n° {} · {} · SIRET {} · mois {} · {}{}",
            d.id,
            state_fr(&d.state),
            d.siret,
            iea_fr_time::de(&iea_fr_time::month_text(&d.month)),
            when(d.created_at.as_ref()).unwrap_or_default(),
            if d.idflux.is_empty() {
                String::new()
            } else {
                format!(" · flux {}", d.idflux)
            }
        );
    }
    if let Some(before) = next_before {
        say!(
            "D'autres dépôts, plus anciens, ne sont pas affichés : {}. La suite : {}",
            if all.len() == 1 {
                "seul le plus récent l'est".to_owned()
            } else {
                format!("seuls les {} plus récents le sont", all.len())
            },
            next_page_command(&request, before)
        );
    }
    Ok(())
}

/// The command that lists the next page: the same filters, from deposit `before` on.
fn next_page_command(request: &ListDsnDepositsRequest, before: i64) -> String {
    let mut command = "iea dsn list".to_owned();
    let siret: String = request.siret.split_whitespace().collect();
    for (option, value) in [
        ("--siret", siret.as_str()),
        ("--month", request.month.trim()),
        ("--state", request.state.as_str()),
    ] {
        if !value.is_empty() {
            command.push_str(&format!(" {option} {value}"));
        }
    }
    if request.limit != 0 {
        command.push_str(&format!(" --limit {}", request.limit));
    }
    command.push_str(&format!(" --before {before}"));
    command
}

async fn accounts(ctx: &Ctx, cmd: DsnAccountsCommand) -> CliResult {
    let mut c = client_for(ctx).await?;
    match cmd {
        DsnAccountsCommand::Set { siret, user } => {
            let a = c
                .set_deposit_account(client::authed(
                    &ctx.data_dir,
                    SetDepositAccountRequest { siret, user },
                ))
                .await?
                .into_inner();
            if ctx.json {
                print_json(&json!({"account": {"siret": a.siret, "user": a.user}}));
            } else {
                say!(
                    "Les DSN du SIRET {} seront déposées avec les identifiants du compte « {} ».",
                    a.siret,
                    a.user
                );
            }
        }
        DsnAccountsCommand::List => {
            let all = c
                .list_deposit_accounts(client::authed(&ctx.data_dir, ListDepositAccountsRequest {}))
                .await?
                .into_inner()
                .accounts;
            if ctx.json {
                let list: Vec<Value> = all
                    .iter()
                    .map(|a| {
                        json!({
                            "siret": a.siret,
                            "user": a.user,
                            "next_due": rfc3339(a.next_due.as_ref()),
                            "last_check": a.last_checked_at.as_ref().map(|t| json!({
                                "valid": a.last_check_valid,
                                "message": a.last_check_message,
                                "at": rfc3339(Some(t)),
                            })),
                        })
                    })
                    .collect();
                print_json(&json!({ "accounts": list }));
            } else if all.is_empty() {
                say!(
                    "Aucun compte désigné : le compte qui a des identifiants Net-entreprises dépose, s'il est le seul."
                );
            } else {
                for a in &all {
                    say!(
                        "SIRET {} : compte « {} », prochaine échéance le {}",
                        a.siret,
                        a.user,
                        when(a.next_due.as_ref()).unwrap_or_default()
                    );
                    if let Some(t) = when(a.last_checked_at.as_ref()) {
                        let mark = if a.last_check_valid { "✔" } else { "✘" };
                        say!(
                            "  {mark} identifiants vérifiés le {t} : {}",
                            a.last_check_message
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

async fn board(ctx: &Ctx, siret: Option<String>) -> CliResult {
    let stack = client::stack_file(&ctx.data_dir)?;
    let r = BoardClient::new(client::connect(&stack).await?)
        .get_board(client::authed(
            &ctx.data_dir,
            GetBoardRequest {
                siret: siret.unwrap_or_default(),
            },
        ))
        .await?
        .into_inner();
    if ctx.json {
        print_json(&json!({
            "computed_at": rfc3339(r.computed_at.as_ref()),
            "rows": r.rows.iter().map(|w| json!({
                "siret": w.siret,
                "month": w.month,
                "due": rfc3339(w.due.as_ref()),
                "days_left": w.days_left,
                "days_late": w.days_late,
                "due_words": w.due_words,
                "overdue": w.overdue,
                "deposit": (w.deposit_id != 0).then(|| json!({
                    "id": w.deposit_id,
                    "state": w.deposit_state,
                    "deposited_at": rfc3339(w.deposited_at.as_ref()),
                    "idflux": (!w.idflux.is_empty()).then_some(&w.idflux),
                })),
                "conformity": (!w.conformity.is_empty()).then_some(&w.conformity),
                "anomalies": w.anomalies,
                "crm": w.crm_received.then(|| json!({
                    "received_at": rfc3339(w.crm_received_at.as_ref()),
                    "rates": w.rates,
                    "identifier": w.crm_identifier,
                })),
            })).collect::<Vec<_>>(),
            "alerts": r.alerts.iter().map(alert_json).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    for line in board_lines(&r) {
        say!("{line}");
    }
    Ok(())
}

/// The board for a person, line by line.
fn board_lines(r: &BoardReport) -> Vec<String> {
    let mut out = Vec::new();
    match when(r.computed_at.as_ref()) {
        Some(t) => out.push(format!("Tableau des échéances DSN, au {t}")),
        None => out.push("Tableau des échéances DSN".to_owned()),
    }
    if r.rows.is_empty() {
        out.push("Aucun établissement : aucun dépôt ni compte désigné pour un SIRET.".to_owned());
    }
    for w in &r.rows {
        out.push(format!(
            "SIRET {} — {} : échéance le {} ({})",
            w.siret,
            iea_fr_time::month_text(&w.month),
            when(w.due.as_ref()).unwrap_or_default(),
            w.due_words
        ));
        let deposit = if w.deposit_id == 0 {
            "aucun dépôt".to_owned()
        } else {
            let mut s = format!("dépôt n° {} {}", w.deposit_id, state_fr(&w.deposit_state));
            if let Some(t) = when(w.deposited_at.as_ref()) {
                s.push_str(&format!(" le {t}"));
            }
            s
        };
        let conformity = match w.conformity.as_str() {
            "" => String::new(),
            "ok" => " · conforme".to_owned(),
            "ano" => format!(" · conforme avec anomalies ({})", w.anomalies),
            "ko" => format!(
                " · non conforme ({})",
                count(w.anomalies.into(), "anomalie", "anomalies")
            ),
            _ => " · conformité attendue".to_owned(),
        };
        let crm = if w.crm_received {
            format!(
                " · CRM PAS reçu le {} ({} taux)",
                day(w.crm_received_at.as_ref()).unwrap_or_default(),
                w.rates
            )
        } else if w.conformity.is_empty() {
            String::new()
        } else {
            " · CRM PAS attendu".to_owned()
        };
        out.push(format!("  {deposit}{conformity}{crm}"));
    }
    if r.alerts.is_empty() {
        out.push("Aucune alerte.".to_owned());
    } else {
        out.push(format!(
            "Alertes ({}), la plus urgente d'abord :",
            r.alerts.len()
        ));
        for (i, a) in r.alerts.iter().enumerate() {
            out.push(format!("  {}. {}", i + 1, a.message));
        }
    }
    out
}

/// An alert of the board for programs (`iea dsn board --json`, `iea status --json`).
pub fn alert_json(a: &BoardAlert) -> Value {
    json!({
        "code": a.code,
        "message": a.message,
        "urgency": a.urgency,
        "siret": a.siret,
        "month": a.month,
        "deposit_id": (a.deposit_id != 0).then_some(a.deposit_id),
        "due": rfc3339(a.due.as_ref()),
    })
}

fn state_fr(state: &str) -> &'static str {
    match state {
        "received" => "reçu",
        "checked" => "contrôlé",
        "queued" => "en file d'attente",
        "waiting" => "en attente",
        "sending" => "en cours d'envoi",
        "accepted" => "accepté",
        "rejected" => "rejeté",
        "uncertain" => "réponse perdue, vérification en cours",
        "to_check" => "à vérifier",
        "failed" => "refusé",
        _ => "état inconnu",
    }
}

fn deposit_json(d: &DsnDeposit) -> Value {
    json!({
        "id": d.id,
        "state": d.state,
        "settled": d.settled,
        "idflux": (!d.idflux.is_empty()).then_some(&d.idflux),
        "anomalies": d.anomalies.iter().map(|a| json!({"code": a.code, "message": a.message})).collect::<Vec<_>>(),
        "anomalies_omitted": d.anomalies_omitted,
        "message": d.message,
        "siret": d.siret,
        "month": d.month,
        "kind": d.kind,
        "fraction": d.fraction,
        "essai_reel": d.essai_reel,
        "account": (!d.account.is_empty()).then_some(&d.account),
        "requested_by": d.requested_by,
        "file_name": d.file_name,
        "sha256": d.sha256,
        "bytes": d.bytes,
        "attempts": d.attempts,
        "created_at": rfc3339(d.created_at.as_ref()),
        "updated_at": rfc3339(d.updated_at.as_ref()),
        "attempt_started_at": rfc3339(d.attempt_started_at.as_ref()),
        "candidates": d.candidates.iter().map(|c| json!({"idflux": c.idflux, "date": c.date, "statut": c.statut})).collect::<Vec<_>>(),
    })
}

fn print_deposit(ctx: &Ctx, d: &DsnDeposit) {
    if ctx.json {
        print_json(&json!({"deposit": deposit_json(d)}));
        return;
    }
    for line in deposit_lines(d) {
        say!("{line}");
    }
}

/// What a person reads of a deposit.
fn deposit_lines(d: &DsnDeposit) -> Vec<String> {
    let mut out = vec![format!(
        "Dépôt DSN n° {} : {} — SIRET {}, mois {}",
        d.id,
        state_fr(&d.state),
        d.siret,
        iea_fr_time::de(&iea_fr_time::month_text(&d.month))
    )];
    if !d.idflux.is_empty() {
        out.push(format!("  Flux (idflux) : {}", d.idflux));
    }
    for a in &d.anomalies {
        out.push(format!("  Anomalie {} : {}", a.code, a.message));
    }
    if d.anomalies_omitted > 0 {
        let n = d.anomalies_omitted;
        let s = if n == 1 { "" } else { "s" };
        let count = iea_dsn::group_thousands(usize::try_from(n).unwrap_or(usize::MAX));
        out.push(match d.anomalies.len() {
            0 => format!("  {count} anomalie{s}, non conservée{s}"),
            1 => format!("  … et {count} autre{s} anomalie{s} (seule la première est conservée)"),
            kept => format!(
                "  … et {count} autre{s} anomalie{s} (seules les {kept} premières sont conservées)"
            ),
        });
    }
    if !d.message.is_empty() {
        out.push(format!("  {}", d.message));
    }
    if !d.account.is_empty() {
        out.push(format!("  Compte qui dépose : {}", d.account));
    }
    for c in &d.candidates {
        out.push(format!(
            "  Flux possible : {} ({}, {})",
            c.idflux,
            iea_fr_time::listed_text(&c.date),
            c.statut
        ));
    }
    if let Some(t) = when(d.updated_at.as_ref()) {
        out.push(format!("  Mis à jour le {t}"));
    }
    out
}

fn check(ctx: &Ctx, file: &Path) -> CliResult {
    let read_failed = |e: std::io::Error| {
        CliError::new(
            "read_failed",
            format!(
                "Le fichier {} n'a pas pu être lu : {}",
                file.display(),
                crate::output::io_error_fr(&e)
            ),
        )
    };
    // Read in chunks: a file of any size is checked in bounded memory.
    let verdict = Scanner::check_reader(std::fs::File::open(file).map_err(read_failed)?)
        .map_err(read_failed)?
        .and_then(|summary| {
            // The orchestrator refuses a month that has not begun: so does the check.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let current = iea_dsn::Month::in_paris_at(now);
            match summary.declaration.month_not_begun(current) {
                Some(p) => Err(p.into()),
                None => Ok(summary),
            }
        });
    match verdict {
        Ok(summary) => {
            let d = &summary.declaration;
            if ctx.json {
                print_json(&json!({
                    "ok": true,
                    "problems": [],
                    "declaration": {
                        "siret": d.siret(),
                        "month": d.month.to_string(),
                        "nature": d.nature,
                        "kind": d.kind.name(),
                        "fraction": d.fraction,
                        "test_or_real": d.test_or_real.name(),
                        "employees": summary.employees,
                    },
                }));
            } else {
                say!(
                    "Fichier DSN conforme aux contrôles avant envoi : {}",
                    file.display()
                );
                say!(
                    "  SIRET {} · mois {} · {} · {} · fraction {} · {} · {}",
                    d.siret(),
                    iea_fr_time::de(&iea_fr_time::month_year(d.month.year, d.month.month)),
                    kind_fr(&d.kind),
                    match d.test_or_real {
                        TestOrReal::Test => "essai",
                        TestOrReal::Real => "réel",
                    },
                    d.fraction,
                    count(summary.employees as u64, "salarié", "salariés"),
                    count(summary.lines as u64, "ligne", "lignes"),
                );
                say!("Rien n'a été envoyé.");
            }
            Ok(())
        }
        Err(problems) => {
            if ctx.json {
                let list: Vec<_> = problems
                    .iter()
                    .map(|p| json!({"line": p.line, "code": p.code(), "message": p.message}))
                    .collect();
                print_json(&json!({
                    "ok": false,
                    "problems": list,
                    "omitted": problems.omitted(),
                    "omitted_message": problems.omitted_sentence(),
                    "declaration": null,
                }));
            } else {
                say!(
                    "Fichier DSN refusé avant envoi, {} {} : {}",
                    iea_dsn::group_thousands(problems.total()),
                    if problems.total() > 1 {
                        "problèmes"
                    } else {
                        "problème"
                    },
                    file.display()
                );
                for p in &problems {
                    say!("  {p}");
                }
                if let Some(sentence) = problems.omitted_sentence() {
                    say!("  {sentence}");
                }
                say!("Rien n'a été envoyé.");
            }
            // Printed above, on stdout, each flushed: only the exit code is left to give.
            std::process::exit(i32::from(EXIT_INVALID))
        }
    }
}

fn kind_fr(kind: &DeclarationKind) -> String {
    match kind {
        DeclarationKind::Normal => "déclaration normale".to_owned(),
        DeclarationKind::CancelsAndReplaces => "annule et remplace".to_owned(),
        DeclarationKind::Other(code) => format!("type {code}"),
    }
}

fn write_sample(ctx: &Ctx, args: DsnSampleArgs) -> CliResult {
    let siret = args.siret.trim();
    if siret.len() != 14
        || !siret.bytes().all(|b| b.is_ascii_digit())
        || !iea_dsn::siret_key_is_valid(siret)
    {
        return Err(CliError::new(
            "invalid_siret",
            format!(
                "SIRET « {} » invalide : 14 chiffres attendus, dont la clé de contrôle est \
                 juste (SIREN puis NIC, sans espace)",
                args.siret
            ),
        ));
    }
    let month: Month = args
        .month
        .parse()
        .map_err(|e: iea_dsn::MonthError| CliError::new("invalid_month", format!("{e}.")))?;
    if args.employees > MAX_EMPLOYEES {
        return Err(CliError::new(
            "invalid_employees",
            format!("Au plus {MAX_EMPLOYEES} salariés par fichier d'exemple."),
        ));
    }
    let spec = SampleSpec {
        siret: siret.to_owned(),
        month,
        employees: args.employees,
        test_or_real: if args.test {
            TestOrReal::Test
        } else {
            TestOrReal::Real
        },
        kind: match args.kind {
            DsnKindArg::Normal => DeclarationKind::Normal,
            DsnKindArg::CancelsAndReplaces => DeclarationKind::CancelsAndReplaces,
        },
        seed: args.seed,
    };
    let bytes = iea_dsn::sample(&spec);
    iea_runtime::pki::write_file(&args.out, &bytes, true).map_err(|e| {
        CliError::new(
            "write_failed",
            format!(
                "Le fichier {} n'a pas pu être écrit : {e:#}",
                args.out.display()
            ),
        )
    })?;
    if ctx.json {
        print_json(&json!({
            "file": args.out,
            "bytes": bytes.len(),
            "siret": spec.siret,
            "month": month.to_string(),
            "employees": spec.employees,
            "test_or_real": spec.test_or_real.name(),
            "kind": spec.kind.name(),
        }));
    } else {
        say!(
            "Fichier DSN d'exemple écrit : {} ({}, {}, {}, {})",
            args.out.display(),
            count(spec.employees as u64, "salarié", "salariés"),
            iea_fr_time::month_year(month.year, month.month),
            if args.test { "essai" } else { "réel" },
            iea_fr_time::size(bytes.len() as u64)
        );
    }
    Ok(())
}

#[cfg(test)]
mod board_tests {
    use super::*;

    #[test]
    fn the_board_reads_as_french_sentences() {
        let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let r = BoardReport {
            rows: vec![BoardRow {
                siret: "78214563500010".into(),
                month: "2026-11".into(),
                // 15 December 2026 at noon, Paris.
                due: at(1_797_332_400),
                days_left: 14,
                due_words: "déposée à temps".into(),
                deposit_id: 3,
                deposit_state: "accepted".into(),
                deposited_at: at(1_796_120_404),
                conformity: "ko".into(),
                anomalies: 1,
                ..Default::default()
            }],
            alerts: vec![BoardAlert {
                code: "conformity_ko".into(),
                message: "La DSN de novembre 2026 n'est pas conforme.".into(),
                urgency: 2,
                ..Default::default()
            }],
            computed_at: at(1_796_120_404),
        };
        assert_eq!(
            board_lines(&r),
            [
                "Tableau des échéances DSN, au 1er décembre 2026 à 11 h 20",
                "SIRET 78214563500010 — novembre 2026 : échéance le 15 décembre 2026 à 12 h 00 (déposée à temps)",
                "  dépôt n° 3 accepté le 1er décembre 2026 à 11 h 20 · non conforme (1 anomalie) · CRM PAS attendu",
                "Alertes (1), la plus urgente d'abord :",
                "  1. La DSN de novembre 2026 n'est pas conforme.",
            ]
        );
    }
}

#[cfg(test)]
mod deposit_tests {
    use super::*;

    #[test]
    fn a_wait_shows_each_new_state_or_sentence_once_and_not_the_end() {
        let at = |state: &str, message: &str, settled| DsnDeposit {
            id: 4,
            state: state.into(),
            message: message.into(),
            settled,
            ..Default::default()
        };
        let mut p = Progress::default();
        assert_eq!(
            p.line(&at("queued", "", false)).as_deref(),
            Some("Dépôt DSN n° 4 : en file d'attente")
        );
        assert_eq!(p.line(&at("queued", "", false)), None, "nothing new");
        assert_eq!(
            p.line(&at("sending", "", false)).as_deref(),
            Some("Dépôt DSN n° 4 : en cours d'envoi")
        );
        let retry = "La DSN n'a pas été déposée. Nouvel essai automatique dans 30 s.";
        assert_eq!(
            p.line(&at("queued", retry, false)).as_deref(),
            Some(
                "Dépôt DSN n° 4 : en file d'attente — La DSN n'a pas été déposée. Nouvel essai automatique dans 30 s."
            )
        );
        assert_eq!(p.line(&at("queued", retry, false)), None);
        assert_eq!(p.line(&at("accepted", "", true)), None, "printed in full");
    }

    fn rejected(kept: usize, omitted: u64) -> DsnDeposit {
        DsnDeposit {
            id: 7,
            state: "rejected".into(),
            siret: "78214563500010".into(),
            month: "2026-11".into(),
            anomalies: (0..kept)
                .map(|i| DsnAnomaly {
                    code: format!("A{i}"),
                    message: format!("anomalie {i}"),
                })
                .collect(),
            anomalies_omitted: omitted,
            ..Default::default()
        }
    }

    /// A program reading `--json` knows the list of anomalies is incomplete, and by how
    /// many; a person reads it after the list.
    #[test]
    fn a_deposit_says_how_many_anomalies_were_left_out() {
        let d = rejected(100, 4_900);
        let v = deposit_json(&d);
        assert_eq!(v["anomalies"].as_array().unwrap().len(), 100);
        assert_eq!(v["anomalies_omitted"], 4_900);
        let lines = deposit_lines(&d);
        assert_eq!(
            lines[0],
            "Dépôt DSN n° 7 : rejeté — SIRET 78214563500010, mois de novembre 2026"
        );
        assert_eq!(lines[100], "  Anomalie A99 : anomalie 99");
        assert_eq!(
            lines[101],
            "  … et 4\u{202f}900 autres anomalies (seules les 100 premières sont conservées)"
        );
        assert_eq!(
            deposit_lines(&rejected(100, 1))[101],
            "  … et 1 autre anomalie (seules les 100 premières sont conservées)"
        );
        // All there: 0 in JSON, nothing more for a person.
        let whole = rejected(2, 0);
        assert_eq!(deposit_json(&whole)["anomalies_omitted"], 0);
        assert_eq!(deposit_lines(&whole).len(), 3);
    }

    /// A deposit left to a person lists the flux that may be its own, each with its date
    /// in words; `--json` keeps the listing's form for programs.
    #[test]
    fn a_deposit_to_check_lists_its_candidates_with_their_dates_in_words() {
        let d = DsnDeposit {
            id: 8,
            state: "to_check".into(),
            siret: "78214563500010".into(),
            month: "2026-11".into(),
            candidates: vec![DsnDepositCandidate {
                idflux: "0123456789012345678901A".into(),
                date: "20261201112004".into(),
                statut: "OK".into(),
            }],
            ..Default::default()
        };
        assert!(
            deposit_lines(&d).contains(
                &"  Flux possible : 0123456789012345678901A (1er décembre 2026 à 11 h 20, OK)"
                    .to_owned()
            ),
            "{:?}",
            deposit_lines(&d)
        );
        assert_eq!(deposit_json(&d)["candidates"][0]["date"], "20261201112004");
    }
}
