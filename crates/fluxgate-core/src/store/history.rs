//! The `key_history` table: every change of a key's state, for the dashboard's health strip
//! (when each key was cooling or dead, and why), kept [`KEEP_MS`]. Rows are written by the
//! gateway's history task as the changes are announced; [`segments`] turns them into the
//! stretches of time each key spent out of rotation.

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::vocab::{ErrorClass, KeyStatus};

/// How long a change is kept.
pub const KEEP_MS: i64 = 31 * 86_400_000;

/// One state change of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyChange {
    pub ts_ms: i64,
    pub provider: String,
    pub key_id: String,
    pub status: KeyStatus,
    pub reason: Option<ErrorClass>,
}

/// A stretch of time a key was not healthy.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    #[cfg_attr(test, ts(type = "number"))]
    pub from_ms: i64,
    /// When it ended (`now` for one still going).
    #[cfg_attr(test, ts(type = "number"))]
    pub to_ms: i64,
    pub status: KeyStatus,
    pub reason: Option<ErrorClass>,
}

/// One key's stretches out of rotation within a window.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyStrip {
    pub provider: String,
    pub key_id: String,
    pub segments: Vec<Segment>,
}

pub(super) fn write(c: &Connection, change: &KeyChange) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO key_history (ts_ms, provider, key_id, status, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            change.ts_ms,
            change.provider,
            change.key_id,
            change.status.as_str(),
            change.reason.map(ErrorClass::as_str)
        ],
    )?;
    c.execute(
        "DELETE FROM key_history WHERE ts_ms < ?1",
        params![change.ts_ms - KEEP_MS],
    )?;
    Ok(())
}

/// The changes since `since_ms`, and each key's last change before it (its state when the
/// window opens), oldest first.
pub(super) fn read(c: &Connection, since_ms: i64) -> rusqlite::Result<Vec<KeyChange>> {
    let mut stmt = c.prepare(
        "SELECT ts_ms, provider, key_id, status, reason FROM key_history h
         WHERE ts_ms >= ?1
            OR ts_ms = (SELECT MAX(ts_ms) FROM key_history p
                        WHERE p.provider = h.provider AND p.key_id = h.key_id AND p.ts_ms < ?1)
         ORDER BY ts_ms, rowid",
    )?;
    let rows = stmt.query_map(params![since_ms], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (ts_ms, provider, key_id, status, reason) = row?;
        let Some(status) = KeyStatus::parse(&status) else {
            continue;
        };
        out.push(KeyChange {
            ts_ms,
            provider,
            key_id,
            status,
            reason: reason.as_deref().and_then(ErrorClass::parse),
        });
    }
    Ok(out)
}

/// Each key's stretches out of rotation within `[since_ms, now_ms]`, from its changes
/// (oldest first; a change before the window gives the state it opens with). Healthy and
/// disabled time is the background and makes no segment.
pub fn segments(changes: &[KeyChange], since_ms: i64, now_ms: i64) -> Vec<KeyStrip> {
    let mut strips: Vec<KeyStrip> = Vec::new();
    // Per key: the state it is in and since when.
    let mut open: Vec<(usize, i64, KeyStatus, Option<ErrorClass>)> = Vec::new();
    let out_of_rotation = |s: KeyStatus| !matches!(s, KeyStatus::Healthy | KeyStatus::Disabled);
    for ch in changes {
        let i = match strips
            .iter()
            .position(|s| s.provider == ch.provider && s.key_id == ch.key_id)
        {
            Some(i) => i,
            None => {
                strips.push(KeyStrip {
                    provider: ch.provider.clone(),
                    key_id: ch.key_id.clone(),
                    segments: Vec::new(),
                });
                strips.len() - 1
            }
        };
        let at = ch.ts_ms.clamp(since_ms, now_ms);
        if let Some(o) = open.iter_mut().find(|o| o.0 == i) {
            if out_of_rotation(o.2) && at > o.1 {
                strips[i].segments.push(Segment {
                    from_ms: o.1,
                    to_ms: at,
                    status: o.2,
                    reason: o.3,
                });
            }
            *o = (i, at, ch.status, ch.reason);
        } else {
            open.push((i, at, ch.status, ch.reason));
        }
    }
    for (i, from, status, reason) in open {
        if out_of_rotation(status) && now_ms > from {
            strips[i].segments.push(Segment {
                from_ms: from,
                to_ms: now_ms,
                status,
                reason,
            });
        }
    }
    strips
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(ts_ms: i64, key: &str, status: KeyStatus, reason: Option<ErrorClass>) -> KeyChange {
        KeyChange {
            ts_ms,
            provider: "p".into(),
            key_id: key.into(),
            status,
            reason,
        }
    }

    #[test]
    fn changes_become_the_stretches_each_key_spent_out_of_rotation() {
        let rl = Some(ErrorClass::RateLimited);
        let auth = Some(ErrorClass::AuthFailed);
        let changes = [
            // `a` was cooling when the window opened, came back, then died and still is.
            ch(50, "a", KeyStatus::Cooling, rl),
            ch(150, "a", KeyStatus::Healthy, None),
            ch(300, "a", KeyStatus::Dead, auth),
            // `b` cooled and came back inside the window.
            ch(200, "b", KeyStatus::Cooling, rl),
            ch(250, "b", KeyStatus::Healthy, None),
            // `c` was disabled: background, no segment.
            ch(120, "c", KeyStatus::Disabled, None),
        ];
        let strips = segments(&changes, 100, 400);
        let seg = |from_ms, to_ms, status, reason| Segment {
            from_ms,
            to_ms,
            status,
            reason,
        };
        assert_eq!(strips.len(), 3);
        assert_eq!(
            strips[0].segments,
            vec![
                seg(100, 150, KeyStatus::Cooling, rl),
                seg(300, 400, KeyStatus::Dead, auth)
            ]
        );
        assert_eq!(
            strips[1].segments,
            vec![seg(200, 250, KeyStatus::Cooling, rl)]
        );
        assert!(strips[2].segments.is_empty());
    }
}
