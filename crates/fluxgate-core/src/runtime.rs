//! How the CLI knows it is talking to the Fluxgate it means before it sends the admin token.
//!
//! A running server writes `DATA_DIR/runtime.json` (owner-only, replaced atomically, removed
//! when it stops): its address, process id and a random nonce made at start. The CLI reads the
//! file (only the data directory's owner can), connects to that address and sends a random
//! challenge; the server answers `HMAC-SHA256(nonce, "fluxgate-server-proof:" || challenge)`.
//! Anything else listening there (a stale file after a crash, another user's process on the
//! port) cannot answer, so the CLI stops before it sends the admin token or opens a URL.
//! The nonce never leaves the file and the server's memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::tokens::{constant_time_eq, random_hex};

/// The file's name in the data directory.
pub const RUNTIME_FILE: &str = "runtime.json";
const PROOF_CONTEXT: &[u8] = b"fluxgate-server-proof:";

/// What a running server says about itself in [`RUNTIME_FILE`].
#[derive(Clone, Serialize, Deserialize)]
pub struct RuntimeFile {
    pub addr: SocketAddr,
    pub pid: u32,
    nonce: String,
}

impl std::fmt::Debug for RuntimeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeFile")
            .field("addr", &self.addr)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// Why the running server could not be found or trusted.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no Fluxgate is running with the data directory {0} (start the desktop app or `fluxgate serve`, or pass --data-dir)")]
    NotRunning(PathBuf),
    #[error("{path} cannot be used: {reason}")]
    Unusable { path: PathBuf, reason: String },
}

/// The server's side: the nonce, and the proof it answers a challenge with.
pub struct ServerIdentity {
    nonce: String,
}

fn proof(nonce: &str, challenge: &str) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(nonce.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(PROOF_CONTEXT);
    mac.update(challenge.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl ServerIdentity {
    /// A new identity, not yet announced.
    pub fn new() -> Self {
        ServerIdentity {
            nonce: random_hex(32),
        }
    }

    /// Writes `DATA_DIR/runtime.json` for a server listening on `addr`.
    pub fn announce(&self, data_dir: &Path, addr: SocketAddr) -> std::io::Result<()> {
        let file = RuntimeFile {
            addr,
            pid: std::process::id(),
            nonce: self.nonce.clone(),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        crate::files::replace_atomically(&data_dir.join(RUNTIME_FILE), &text)
    }

    /// Removes the file, if it is still this server's (a newer server may have replaced it).
    pub fn withdraw(&self, data_dir: &Path) {
        let path = data_dir.join(RUNTIME_FILE);
        if let Ok(f) = read_file(&path) {
            if constant_time_eq(f.nonce.as_bytes(), self.nonce.as_bytes()) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// The answer to a client's challenge.
    pub fn prove(&self, challenge: &str) -> String {
        proof(&self.nonce, challenge)
    }
}

impl Default for ServerIdentity {
    fn default() -> Self {
        Self::new()
    }
}

fn read_file(path: &Path) -> Result<RuntimeFile, RuntimeError> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            RuntimeError::NotRunning(path.parent().unwrap_or(path).to_path_buf())
        }
        _ => RuntimeError::Unusable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    serde_json::from_str(&text).map_err(|e| RuntimeError::Unusable {
        path: path.to_path_buf(),
        reason: format!("not a Fluxgate runtime file ({e})"),
    })
}

impl RuntimeFile {
    /// The running server's file in `data_dir`. Refused unless only its owner can read it
    /// (a file others could read or write proves nothing).
    pub fn read(data_dir: &Path) -> Result<RuntimeFile, RuntimeError> {
        let path = data_dir.join(RUNTIME_FILE);
        #[cfg(unix)]
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let mine = std::fs::metadata(data_dir).map(|d| d.uid()).ok();
            if !meta.file_type().is_file()
                || meta.permissions().mode() & 0o077 != 0
                || Some(meta.uid()) != mine
            {
                return Err(RuntimeError::Unusable {
                    path,
                    reason: "it must be a regular file readable by its owner only, owned by the \
                             data directory's owner; delete it and restart Fluxgate"
                        .into(),
                });
            }
        }
        read_file(&path)
    }

    /// A new random challenge for [`RuntimeFile::verify`].
    pub fn challenge() -> String {
        random_hex(32)
    }

    /// Whether `answer` proves knowledge of this file's nonce for `challenge`.
    pub fn verify(&self, challenge: &str, answer: &str) -> bool {
        constant_time_eq(proof(&self.nonce, challenge).as_bytes(), answer.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_announcing_server_can_answer_a_challenge() {
        let dir = tempfile::tempdir().expect("dir");
        let server = ServerIdentity::new();
        let addr: SocketAddr = "127.0.0.1:8414".parse().expect("addr");
        server.announce(dir.path(), addr).expect("announce");
        let file = RuntimeFile::read(dir.path()).expect("read");
        assert_eq!(file.addr, addr);
        let c = RuntimeFile::challenge();
        assert!(file.verify(&c, &server.prove(&c)));
        let stranger = ServerIdentity::new();
        assert!(!file.verify(&c, &stranger.prove(&c)));
        assert!(!file.verify(&c, &server.prove("another challenge")));
        assert!(!file.verify(&c, ""));
        // A newer server's file is not removed by the old one.
        stranger.announce(dir.path(), addr).expect("announce");
        server.withdraw(dir.path());
        assert!(dir.path().join(RUNTIME_FILE).exists());
        stranger.withdraw(dir.path());
        assert!(matches!(
            RuntimeFile::read(dir.path()),
            Err(RuntimeError::NotRunning(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        ServerIdentity::new()
            .announce(dir.path(), "127.0.0.1:1".parse().expect("addr"))
            .expect("announce");
        let path = dir.path().join(RUNTIME_FILE);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            RuntimeFile::read(dir.path()),
            Err(RuntimeError::Unusable { .. })
        ));
    }
}
