//! An in-memory [`SecretStore`] for tests and for embedders that bring their own storage.
//! It persists nothing and is never chosen as a fallback for the keychain.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{SecretError, SecretStore, SecretValue};

#[derive(Default)]
pub struct MemoryStore {
    values: Mutex<HashMap<String, SecretValue>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> Result<SecretValue, SecretError> {
        self.values
            .lock()
            .get(account)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(account.to_string()))
    }

    fn set(&self, account: &str, value: &SecretValue) -> Result<(), SecretError> {
        self.values
            .lock()
            .insert(account.to_string(), value.clone());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.values
            .lock()
            .remove(account)
            .map(|_| ())
            .ok_or_else(|| SecretError::NotFound(account.to_string()))
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
