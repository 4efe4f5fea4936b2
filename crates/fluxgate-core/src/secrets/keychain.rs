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
    match e {
        keyring::Error::NoEntry => SecretError::NotFound(account.to_string()),
        keyring::Error::NoStorageAccess(inner) => {
            let text = inner.to_string();
            if text.to_ascii_lowercase().contains("lock") {
                SecretError::KeychainLocked
            } else {
                SecretError::KeychainUnavailable(text)
            }
        }
        keyring::Error::PlatformFailure(inner) => {
            let text = inner.to_string();
            if text.to_ascii_lowercase().contains("lock") {
                SecretError::KeychainLocked
            } else {
                SecretError::KeychainUnavailable(text)
            }
        }
        other => SecretError::KeychainUnavailable(other.to_string()),
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
