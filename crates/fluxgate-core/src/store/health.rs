//! The `key_health` table: the SQLite [`HealthBackend`].

use rusqlite::params;

use super::Store;
use crate::clock::now_ms;
use crate::health::{ErrorClass, HealthBackend, KeyStatus, PersistedState};

impl HealthBackend for Store {
    fn load_all(&self) -> Vec<PersistedState> {
        let rows = self.with(|c| {
            let mut stmt = c.prepare("SELECT account, status, reason, last_status, last_message, until_ms, consecutive_failures, ladder, step FROM key_health")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<u16>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, u32>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, u32>(8)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        });
        match rows {
            Ok(rows) => rows
                .into_iter()
                .filter_map(
                    |(
                        account,
                        status,
                        reason,
                        last_status,
                        last_message,
                        until_ms,
                        cf,
                        ladder,
                        step,
                    )| {
                        Some(PersistedState {
                            account,
                            status: KeyStatus::parse(&status)?,
                            reason: reason.as_deref().and_then(ErrorClass::parse),
                            last_status,
                            last_message,
                            until_ms,
                            consecutive_failures: cf,
                            ladder: ladder.as_deref().and_then(ErrorClass::parse),
                            step,
                        })
                    },
                )
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read key health; starting with every key healthy");
                Vec::new()
            }
        }
    }

    fn save(&self, s: PersistedState) {
        let result = self.with(|c| {
            c.execute(
                "INSERT INTO key_health (account, status, reason, last_status, last_message, until_ms, consecutive_failures, ladder, step, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(account) DO UPDATE SET status = ?2, reason = ?3, last_status = ?4, last_message = ?5, until_ms = ?6,
                   consecutive_failures = ?7, ladder = ?8, step = ?9, updated_ms = ?10",
                params![
                    s.account,
                    s.status.as_str(),
                    s.reason.map(|r| r.as_str()),
                    s.last_status,
                    s.last_message,
                    s.until_ms,
                    s.consecutive_failures,
                    s.ladder.map(|r| r.as_str()),
                    s.step,
                    now_ms()
                ],
            )
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot save key health");
        }
    }
}
