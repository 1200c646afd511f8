//! Before each due date (the 5th or the 15th of the month at noon, Paris time, a setting
//! per establishment, default the 15th), the credentials of every account that will
//! deposit are verified once (`verify_days_before` days ahead, default 3), so that a
//! wrong or expired password is found before the deadline, not on it. The verification
//! is the credentials module's own (one attempt, never retried, counted in the budget);
//! its result is shown with the account (`iea dsn accounts list`) and, when refused, in
//! the status (`iea status` with a session).

use super::{DepositSettings, Deposits};
use crate::sessions::{self, Principal};
use crate::users::Role;

/// The next due date after `now` (Unix seconds) for an establishment whose day is
/// `day`: that day of this month or the next, at noon in Paris.
pub fn next_due(now: i64, day: u8) -> i64 {
    let paris = iea_fr_time::paris();
    let today = iea_fr_time::paris_datetime(iea_fr_time::from_unix(now));
    let at = |year: i16, month: i8| -> Option<i64> {
        let dt = today
            .with()
            .year(year)
            .month(month)
            .day(day as i8)
            .hour(12)
            .minute(0)
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        paris.to_timestamp(dt).ok().map(|t| t.as_second())
    };
    let (y, m) = (today.year(), today.month());
    match at(y, m) {
        Some(t) if t > now => t,
        _ => {
            let (y2, m2) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            at(y2, m2).unwrap_or(now + 31 * 86_400)
        }
    }
}

impl DepositSettings {
    /// Whether the due days can be used: `due_day` and each of `due_days` 5 or 15, each
    /// key of `due_days` a valid SIRET written as 14 digits. Checked before the
    /// orchestrator starts: a day of 10 or a SIRET typed wrong would otherwise be ignored,
    /// and the due dates, the board and the verifications before them silently wrong.
    pub fn check(&self) -> anyhow::Result<()> {
        let day_ok = |d: u8| d == 5 || d == 15;
        anyhow::ensure!(
            day_ok(self.due_day),
            "deposits.due_day is {}: a due day is 5 or 15",
            self.due_day
        );
        for (siret, day) in &self.due_days {
            anyhow::ensure!(
                iea_declarant::siret(siret).as_deref() == Ok(siret.as_str()),
                "deposits.due_days: {siret:?} is not a valid SIRET of 14 digits"
            );
            anyhow::ensure!(
                day_ok(*day),
                "deposits.due_days.{siret} is {day}: a due day is 5 or 15"
            );
        }
        Ok(())
    }

    /// The due day of `siret`'s declarations.
    pub fn due_day(&self, siret: &str) -> u8 {
        // Valid days only ([`Self::check`]).
        self.due_days.get(siret).copied().unwrap_or(self.due_day)
    }
}

/// An account that deposits, with its next due date and its last verification.
#[derive(Debug, Clone)]
pub struct AccountDue {
    pub siret: String,
    pub user: String,
    pub next_due: i64,
    /// The last verification of its identity: (valid, French sentence, when).
    pub last_check: Option<(bool, String, i64)>,
}

impl Deposits {
    /// Every designated account, with its next due date and last verification (what
    /// `iea dsn accounts list` shows).
    pub async fn accounts_due(&self) -> anyhow::Result<Vec<AccountDue>> {
        self.due(false).await
    }

    /// Every account that will deposit: the designated ones, and, as the deposit queue
    /// routes a file of an establishment nobody is designated for to the one account
    /// that has credentials, that account for its identity's SIRET when no one is
    /// designated for it.
    pub async fn depositors_due(&self) -> anyhow::Result<Vec<AccountDue>> {
        self.due(true).await
    }

    async fn due(&self, with_default: bool) -> anyhow::Result<Vec<AccountDue>> {
        let now = sessions::now();
        let store = &self.inner.store;
        let mut depositors = Vec::new();
        for (siret, user) in store.deposit_accounts().await? {
            let row = match store.user_by_name(&user).await? {
                Some(u) => store.credential(u.id).await?,
                None => None,
            };
            depositors.push((siret, user, row));
        }
        if with_default
            && let [(id, user)] = store.accounts_with_credentials().await?.as_slice()
            && let Some(row) = store.credential(*id).await?
            && !depositors.iter().any(|(siret, _, _)| *siret == row.siret)
        {
            depositors.push((row.siret.clone(), user.clone(), Some(row)));
        }
        Ok(depositors
            .into_iter()
            .map(|(siret, user, row)| AccountDue {
                next_due: next_due(now, self.inner.settings.due_day(&siret)),
                last_check: row.and_then(|c| c.last).map(|(r, at)| {
                    (
                        r.outcome == crate::credentials::Outcome::Valid,
                        r.message,
                        at,
                    )
                }),
                siret,
                user,
            })
            .collect())
    }

    /// The depositing accounts whose last verification was refused, as `caller` may see
    /// them (an administrator every one, another account only itself): what the status
    /// shows, so that a wrong or expired password is found before the due date.
    pub async fn refused_accounts(&self, caller: &Principal) -> anyhow::Result<Vec<AccountDue>> {
        Ok(self
            .depositors_due()
            .await?
            .into_iter()
            .filter(|a| a.last_check.as_ref().is_some_and(|c| !c.0))
            .filter(|a| caller.role == Role::Administrator || a.user == caller.name)
            .collect())
    }

    /// Verifies, once per period, each depositing account whose due date is near.
    pub(super) async fn check_before_due(&self) -> anyhow::Result<()> {
        let Some(credentials) = &self.inner.credentials else {
            return Ok(());
        };
        let s = &self.inner.settings;
        let now = sessions::now();
        let ahead = i64::from(s.verify_days_before) * 86_400;
        let system = Principal {
            user_id: 0,
            name: "vérification avant échéance".into(),
            role: Role::Administrator,
        };
        for a in self.depositors_due().await? {
            let window_start = a.next_due - ahead;
            let checked_in_window = a.last_check.as_ref().is_some_and(|c| c.2 >= window_start);
            if now < window_start || checked_in_window {
                continue;
            }
            match credentials.verify(&system, &a.user).await {
                Ok(v) => tracing::info!(
                    user = %a.user,
                    siret = %a.siret,
                    outcome = v.result.outcome.code(),
                    "credentials verified before the due date"
                ),
                Err(e) => {
                    tracing::warn!(user = %a.user, error = ?e, "credentials not verified before the due date")
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::next_due;
    use crate::deposits::DepositSettings;
    use time::macros::datetime;

    #[test]
    fn due_days_are_5_or_15_for_valid_sirets_or_the_settings_are_refused() {
        let with = |day: u8, siret: &str, its: u8| {
            let mut s = DepositSettings {
                due_day: day,
                ..Default::default()
            };
            s.due_days.insert(siret.into(), its);
            s.check().map_err(|e| e.to_string())
        };
        assert_eq!(with(15, "73282932000074", 5), Ok(()));
        assert_eq!(with(5, "73282932000074", 15), Ok(()));
        assert!(DepositSettings::default().check().is_ok());
        let refused = [
            (with(10, "73282932000074", 5), "deposits.due_day is 10"),
            (
                with(15, "73282932000074", 10),
                "due_days.73282932000074 is 10",
            ),
            (
                with(15, "73282932000075", 5),
                "\"73282932000075\" is not a valid SIRET",
            ),
            (
                with(15, "732 829 320 00074", 5),
                "\"732 829 320 00074\" is not a valid",
            ),
        ];
        for (got, want) in refused {
            let e = got.expect_err(want);
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn the_due_date_is_noon_in_paris_this_month_or_the_next() {
        let at = |t: time::OffsetDateTime| t.unix_timestamp();
        // Winter: noon in Paris is 11:00 UTC.
        assert_eq!(
            next_due(at(datetime!(2026-12-01 10:00 UTC)), 15),
            at(datetime!(2026-12-15 11:00 UTC))
        );
        // Past noon on the day: next month, across the year.
        assert_eq!(
            next_due(at(datetime!(2026-12-15 11:30 UTC)), 15),
            at(datetime!(2027-01-15 11:00 UTC))
        );
        // Summer: 10:00 UTC; the 5th.
        assert_eq!(
            next_due(at(datetime!(2026-07-01 00:00 UTC)), 5),
            at(datetime!(2026-07-05 10:00 UTC))
        );
    }
}
