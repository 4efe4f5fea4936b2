//! Console sessions: one-time login codes and the sessions they open, behind
//! [`SessionStore`]; [`ConsoleSessions`] keeps them in this process's memory.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::tokens::{constant_time_eq, random_hex};

/// Where console logins live. In-process: [`ConsoleSessions`].
///
/// A shared implementation keeps only digests (never a code, id or secret), makes
/// [`SessionStore::redeem`] atomic (a code works once across the fleet) and makes
/// [`SessionStore::end`] visible to `valid` on every replica within a second. When it is
/// unreachable, `valid` answers false (the console asks to sign in again); it never admits.
pub trait SessionStore: Send + Sync {
    /// A new one-time login code.
    fn new_code(&self) -> String;
    /// Exchanges a login code for a session; `None` when the code is unknown, used or
    /// expired.
    fn redeem(&self, code: &str) -> Option<NewSession>;
    /// Whether the cookie's `id` and the header's `secret` belong to one live session.
    fn valid(&self, id: &str, secret: &str) -> bool;
    /// Ends one session (sign out), named by its cookie.
    fn end(&self, id: &str);
}

/// Console logins: one-time login codes (valid [`LOGIN_CODE_TTL`], usable once) that a
/// browser exchanges for a session. Codes and sessions live in memory only and are kept as
/// SHA-256 digests; a restart signs every console out (open it again from the tray or with
/// `fluxgate console`).
///
/// A session is two values, both required on every request: an id in an `HttpOnly` cookie,
/// and a secret the console's script keeps in its origin's storage and sends as the
/// [`SESSION_HEADER`] header. Browsers send cookies to every port of 127.0.0.1, so any local
/// listener the browser visits receives the cookie; it never receives the header, which only
/// the console's own origin (this scheme, host and port) can read and send.
pub struct ConsoleSessions {
    codes: parking_lot::Mutex<Vec<([u8; 32], Instant)>>,
    sessions: parking_lot::Mutex<Vec<Session>>,
}

struct Session {
    id: [u8; 32],
    secret: [u8; 32],
    started: Instant,
}

/// A new console session: the cookie's value and the script's secret.
pub struct NewSession {
    pub id: String,
    pub secret: String,
}

/// How long a login code may wait before it is used.
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(120);
/// How long a console session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The console's session cookie.
pub const SESSION_COOKIE: &str = "fluxgate_console";
/// The header that carries the session's secret.
pub const SESSION_HEADER: &str = "x-fluxgate-session";

pub(crate) fn digest32(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl ConsoleSessions {
    pub fn new() -> Self {
        Self {
            codes: parking_lot::Mutex::new(Vec::new()),
            sessions: parking_lot::Mutex::new(Vec::new()),
        }
    }
}

impl SessionStore for ConsoleSessions {
    fn new_code(&self) -> String {
        let code = random_hex(24);
        let now = Instant::now();
        let mut codes = self.codes.lock();
        codes.retain(|(_, t)| now.duration_since(*t) < LOGIN_CODE_TTL);
        codes.push((digest32(&code), now));
        code
    }

    /// Exchanges a login code for a session; `None` when the code is unknown, used or
    /// expired.
    fn redeem(&self, code: &str) -> Option<NewSession> {
        let d = digest32(code);
        let now = Instant::now();
        let mut codes = self.codes.lock();
        let i = codes.iter().position(|(c, t)| {
            constant_time_eq(c, &d) && now.duration_since(*t) < LOGIN_CODE_TTL
        })?;
        codes.remove(i);
        drop(codes);
        let new = NewSession {
            id: random_hex(32),
            secret: random_hex(32),
        };
        let mut s = self.sessions.lock();
        s.retain(|x| now.duration_since(x.started) < SESSION_TTL);
        s.push(Session {
            id: digest32(&new.id),
            secret: digest32(&new.secret),
            started: now,
        });
        Some(new)
    }

    /// Whether the cookie's `id` and the header's `secret` belong to one live session.
    fn valid(&self, id: &str, secret: &str) -> bool {
        let (id, secret) = (digest32(id), digest32(secret));
        let now = Instant::now();
        self.sessions.lock().iter().any(|s| {
            constant_time_eq(&s.id, &id)
                & constant_time_eq(&s.secret, &secret)
                & (now.duration_since(s.started) < SESSION_TTL)
        })
    }

    /// Ends one session (sign out), named by its cookie.
    fn end(&self, id: &str) {
        let d = digest32(id);
        self.sessions
            .lock()
            .retain(|s| !constant_time_eq(&s.id, &d));
    }
}

impl Default for ConsoleSessions {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_code_works_once() {
        let s = ConsoleSessions::new();
        let code = s.new_code();
        let session = s.redeem(&code).expect("first use");
        assert!(s.valid(&session.id, &session.secret));
        assert!(s.redeem(&code).is_none(), "a code is single-use");
        assert!(s.redeem("0000").is_none());
        s.end(&session.id);
        assert!(!s.valid(&session.id, &session.secret));
    }

    #[test]
    fn a_session_needs_its_cookie_and_its_secret_together() {
        let s = ConsoleSessions::new();
        let a = s.redeem(&s.new_code()).expect("a");
        let b = s.redeem(&s.new_code()).expect("b");
        assert!(s.valid(&a.id, &a.secret) && s.valid(&b.id, &b.secret));
        assert!(!s.valid(&a.id, ""), "the cookie alone");
        assert!(!s.valid("", &a.secret), "the secret alone");
        assert!(!s.valid(&a.id, &b.secret), "another session's secret");
        assert!(!s.valid(&a.id, &a.id));
    }
}
