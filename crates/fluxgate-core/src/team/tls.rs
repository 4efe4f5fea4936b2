//! A private CA for an engine's TLS (`redis_ca`, `postgres_ca`): the PEM file of CA
//! certificates trusted for the server's certificate instead of the public roots. The file
//! is read when the replica connects, so a renewed CA is picked up by a restart.

use std::path::Path;

pub use crate::net::read_ca;

/// The PostgreSQL connector: the public roots, or only the private CA when one is set.
pub fn postgres_connector(
    ca: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let Some(ca) = ca else {
        return Ok(tokio_postgres_rustls::MakeRustlsConnect::with_webpki_roots());
    };
    let (_, roots) = read_ca(ca)?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// An error's text followed by its causes' (`a: b: c`), skipping a cause its text repeats:
/// PostgreSQL's client says "error performing TLS handshake" and keeps why in its source.
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Whether a connection failed because the server's certificate was not trusted (rustls's
/// "invalid peer certificate: …").
pub fn is_certificate_error(text: &str) -> bool {
    text.contains("invalid peer certificate")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_empty_or_not_pem_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.pem");
        assert!(read_ca(&missing)
            .unwrap_err()
            .contains("cannot read the CA file"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        assert!(read_ca(&empty)
            .unwrap_err()
            .contains("holds no certificate"));
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = read_ca(&junk).unwrap_err();
        assert!(e.contains("junk.pem"), "{e}");
    }
}
