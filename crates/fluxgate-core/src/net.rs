//! Which addresses Fluxgate connects to upstream.
//!
//! Never to a link-local address (`169.254.0.0/16`, where cloud metadata services answer,
//! and `fe80::/10`), an unspecified, broadcast or multicast one, whatever name led there; and
//! a `localhost` upstream only ever to loopback. The config refuses such IP literals when a
//! `base_url` is written, and [`CheckedResolver`] filters what names resolve to when a
//! connection is made, so a name that passed validation cannot be re-pointed later (DNS
//! rebinding) at an address that would not have.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// Whether Fluxgate refuses to connect to `ip` as an upstream.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local() || v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Whether `host` (a URL's host) names this machine: `localhost` or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The addresses of `host` that Fluxgate may connect to.
pub fn allowed_addrs(host: &str, addrs: impl IntoIterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let local = host.eq_ignore_ascii_case("localhost");
    addrs
        .into_iter()
        .filter(|a| !forbidden_ip(a.ip()) && (!local || a.ip().is_loopback()))
        .collect()
}

/// The outbound client's resolver: the system's (`getaddrinfo`, off the async runtime), then
/// [`allowed_addrs`]. A name left with no address fails the connection with a message that
/// says why.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckedResolver;

type Resolving = Pin<Box<dyn Future<Output = io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lookup = host.clone();
            let found = tokio::task::spawn_blocking(move || {
                (lookup.as_str(), 0).to_socket_addrs().map(Vec::from_iter)
            })
            .await
            .map_err(io::Error::other)??;
            let kept = allowed_addrs(&host, found);
            if kept.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{host} resolves to no address Fluxgate connects to (link-local, \
                         unspecified and multicast addresses are refused, and localhost must be \
                         loopback)"
                    ),
                ));
            }
            Ok(kept.into_iter())
        })
    }
}

/// Reads a private CA (an engine's or an `https://` proxy's): a PEM file of CA certificates,
/// trusted instead of the public roots. The error names the file and what to do.
pub fn read_ca(path: &std::path::Path) -> Result<(Vec<u8>, rustls::RootCertStore), String> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            format!(
                "the CA file {} is not PEM certificates ({e}); give the CA's certificate \
                 (-----BEGIN CERTIFICATE-----)",
                path.display()
            )
        })?;
        roots.add(cert).map_err(|e| {
            format!(
                "the CA file {} holds an unusable certificate: {e}",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "the CA file {} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok((pem, roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().expect("ip"), 443)
    }

    #[test]
    fn link_local_unspecified_and_multicast_are_refused() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1",
            "febf::1",
            "::",
            "ff02::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(forbidden_ip(bad.parse().expect("ip")), "{bad}");
        }
        for ok in [
            "127.0.0.1",
            "10.0.0.5",
            "93.184.216.34",
            "::1",
            "2606:4700::1111",
            "fec0::1",
        ] {
            assert!(!forbidden_ip(ok.parse().expect("ip")), "{ok}");
        }
    }

    #[test]
    fn localhost_keeps_only_loopback_and_names_lose_forbidden_addresses() {
        let addrs = [
            sa("169.254.169.254"),
            sa("10.1.2.3"),
            sa("127.0.0.1"),
            sa("::1"),
        ];
        assert_eq!(
            allowed_addrs("localhost", addrs),
            [sa("127.0.0.1"), sa("::1")]
        );
        assert_eq!(
            allowed_addrs("api.example", addrs),
            [sa("10.1.2.3"), sa("127.0.0.1"), sa("::1")]
        );
        assert!(allowed_addrs("metadata.example", [sa("169.254.169.254")]).is_empty());
        assert!(is_loopback_host("LOCALHOST") && is_loopback_host("[::1]"));
        assert!(!is_loopback_host("localhost.evil.example"));
    }

    #[tokio::test]
    async fn the_resolver_gives_localhost_only_loopback() {
        use tower::Service;
        let mut r = CheckedResolver;
        let name: Name = "localhost".parse().expect("name");
        let found: Vec<SocketAddr> = r.call(name).await.expect("localhost resolves").collect();
        assert!(!found.is_empty() && found.iter().all(|a| a.ip().is_loopback()));
    }
}
