//! The OS keychain backend (`keyring`; the Secret Service on Linux).
//!
//! Every call runs on its own thread and is abandoned after [`KEYCHAIN_TIMEOUT`]: a broken
//! Secret Service daemon can hang a D-Bus call for seconds, and a request must not wait on it.
//! The backend refuses to start when `keyring` would only keep keys in memory.

use std::sync::mpsc;
use std::time::Duration;

use keyring::credential::CredentialPersistence;

use super::{SecretError, SecretStore, SecretValue, KEYCHAIN_SERVICE};

/// How long any keychain call may take.
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(3);

pub struct KeychainStore {
    timeout: Duration,
}

impl KeychainStore {
    /// Checks that keyring has a persistent backend compiled in.
    pub fn new() -> Result<Self, SecretError> {
        let persistence = keyring::default::default_credential_builder().persistence();
        if !matches!(persistence, CredentialPersistence::UntilDelete) {
            return Err(SecretError::KeychainUnavailable(
                "this build has no persistent keychain backend".into(),
            ));
        }
        Ok(Self {
            timeout: KEYCHAIN_TIMEOUT,
        })
    }

    fn call<T: Send + 'static>(
        &self,
        account: &str,
        op: impl FnOnce(keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<T, SecretError> {
        let (tx, rx) = mpsc::channel();
        let account_owned = account.to_string();
        let spawned = std::thread::Builder::new()
            .name("fluxgate-keychain".into())
            .spawn(move || {
                let result = keyring::Entry::new(KEYCHAIN_SERVICE, &account_owned).and_then(op);
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            return Err(SecretError::KeychainUnavailable(format!(
                "cannot start a thread: {e}"
            )));
        }
        match rx.recv_timeout(self.timeout) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_error(account, e)),
            Err(_) => Err(SecretError::KeychainTimeout(self.timeout.as_secs())),
        }
    }
}

fn map_error(account: &str, e: keyring::Error) -> SecretError {
    let text = match e {
        keyring::Error::NoEntry => return SecretError::NotFound(account.to_string()),
        keyring::Error::NoStorageAccess(inner) | keyring::Error::PlatformFailure(inner) => {
            inner.to_string()
        }
        other => other.to_string(),
    };
    let lower = text.to_ascii_lowercase();
    if lower.contains("lock") {
        SecretError::KeychainLocked
    } else {
        SecretError::KeychainUnavailable(explain(&lower).map_or(text, str::to_string))
    }
}

/// Says what to do about the D-Bus failures a user is most likely to meet.
fn explain(lower: &str) -> Option<&'static str> {
    if lower.contains("autolaunch") || lower.contains("dbus_session_bus_address") {
        Some("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set); run Fluxgate inside your desktop session, or name the key's secret as `env:VAR` or `file:PATH` in the config")
    } else if lower.contains("org.freedesktop.secrets") {
        Some("no Secret Service is running on the session bus; install and start gnome-keyring (or KeePassXC with its Secret Service), or name the key's secret as `env:VAR` or `file:PATH`")
    } else {
        None
    }
}

impl SecretStore for KeychainStore {
    fn get(&self, account: &str) -> Result<SecretValue, SecretError> {
        self.call(account, |e| e.get_password())
            .map(SecretValue::new)
    }

    fn set(&self, account: &str, value: &SecretValue) -> Result<(), SecretError> {
        let v = value.expose().to_string();
        self.call(account, move |e| e.set_password(&v))
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.call(account, |e| e.delete_credential())
    }

    fn name(&self) -> &'static str {
        "keychain"
    }
}

#[cfg(test)]
mod explain_tests {
    #[test]
    fn common_dbus_failures_say_what_to_do() {
        let bus = super::explain(
            "dbus error: unable to autolaunch a dbus-daemon without a $display for x11",
        );
        assert!(bus.is_some_and(|m| m.contains("session bus") && m.contains("env:VAR")));
        let svc = super::explain(
            "dbus error: the name org.freedesktop.secrets was not provided by any .service files",
        );
        assert!(svc.is_some_and(|m| m.contains("gnome-keyring")));
        assert_eq!(super::explain("something else"), None);
    }
}
