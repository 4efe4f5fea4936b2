//! A private certificate authority for tests of encrypted connections: a CA and a server
//! certificate for `127.0.0.1` and `localhost` it signed, written as PEM files in a
//! temporary directory (what a team's own CA would hand its Redis and PostgreSQL).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA and one server certificate it signed.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes a new CA (its own key) and a server certificate for `127.0.0.1` and `localhost`.
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Fluxgate test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("the CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("a server key");
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "fluxgate test server");
        let cert = server
            .signed_by(&key, &issuer)
            .expect("the server certificate");
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).expect("ca.pem");
        std::fs::write(dir.path().join("server.pem"), cert.pem()).expect("server.pem");
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).expect("server.key");
        TestCa { dir }
    }

    /// The CA's certificate (what a client is told to trust).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate and key (what a server presents).
    pub fn server_files(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("server.pem"),
            self.dir.path().join("server.key"),
        )
    }

    /// Copies the server's certificate and key into `dir` (owner-only, as PostgreSQL
    /// requires), returning their paths.
    pub fn copy_server_files(&self, dir: &Path) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let (cert, key) = self.server_files();
        let (c, k) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::copy(cert, &c).expect("copy the certificate");
        std::fs::copy(key, &k).expect("copy the key");
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        (c, k)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}
