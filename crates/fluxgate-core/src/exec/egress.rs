//! Connections through an outbound proxy: an HTTP `CONNECT` tunnel (over TLS for an
//! `https://` proxy) or SOCKS5 (RFC 1928, with RFC 1929 user name and password), as a
//! connector under hyper-rustls, so TLS to the upstream runs end to end inside the tunnel and
//! the proxy never sees the key.
//!
//! Everything that goes wrong before the tunnel is open is a [`ProxyFailure`], which the
//! client reports as the proxy's failure, not the key's: a proxy that is down, refuses the
//! credentials, or cannot reach the upstream. The proxy's own address is resolved and checked
//! like an upstream's ([`crate::net::allowed_addrs`]); with `socks5` the upstream's name is
//! resolved and checked here too, with `socks5h` and HTTP proxies the proxy resolves it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::config::proxy::{Egress, ProxyEndpoint, ProxyPassword, ProxyScheme};
use crate::health::{Failure, FailureKind};
use crate::secrets::{SecretValue, Secrets};

/// The proxy a request goes through, with its password read.
#[derive(Clone, Debug)]
pub struct Via {
    pub endpoint: Arc<ProxyEndpoint>,
    pub password: Option<SecretValue>,
}

/// Why a connection through a proxy could not be made. Says which proxy and what it did;
/// never a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyFailure {
    /// The proxy's label (its `[proxies]` name or its address).
    pub proxy: String,
    pub detail: String,
    pub timed_out: bool,
}

impl std::fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proxy {}: {}", self.proxy, self.detail)
    }
}

impl std::error::Error for ProxyFailure {}

/// The proxy a key's requests go through, with its password read (`None`: direct). A password
/// that cannot be read fails like the proxy itself: the key is not blamed.
pub fn via(egress: &Egress, secrets: &Secrets) -> Result<Option<Via>, Failure> {
    let Some(endpoint) = egress.proxy() else {
        return Ok(None);
    };
    let password = match &endpoint.password {
        None => None,
        Some(ProxyPassword::Inline(v)) => Some(v.clone()),
        Some(ProxyPassword::Secret(r)) => {
            Some(secrets.resolve(&endpoint.account(), r).map_err(|e| {
                Failure::transport(
                    FailureKind::Proxy,
                    format!("proxy {}: cannot read its password: {e}", endpoint.label),
                )
            })?)
        }
    };
    Ok(Some(Via {
        endpoint: endpoint.clone(),
        password,
    }))
}

/// A connector that opens a tunnel through one proxy to the requested host.
#[derive(Clone)]
pub struct ProxyConnector {
    via: Arc<Via>,
    /// For the whole of reaching the proxy and opening the tunnel.
    timeout: Duration,
    tls: tokio_rustls::TlsConnector,
}

impl ProxyConnector {
    /// A connector for `via`; an error (naming the file) when its CA cannot be read.
    pub fn new(via: Via, timeout: Duration) -> Result<Self, ProxyFailure> {
        let roots = match &via.endpoint.ca {
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            Some(path) => crate::net::read_ca(path)
                .map(|(_, roots)| roots)
                .map_err(|detail| ProxyFailure {
                    proxy: via.endpoint.label.clone(),
                    detail,
                    timed_out: false,
                })?,
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| ProxyFailure {
            proxy: via.endpoint.label.clone(),
            detail: format!("cannot set up TLS: {e}"),
            timed_out: false,
        })?;
        Ok(ProxyConnector {
            via: Arc::new(via),
            timeout,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

impl tower::Service<Uri> for ProxyConnector {
    type Response = ProxyIo;
    type Error = ProxyFailure;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyIo, ProxyFailure>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ProxyFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let fail = |detail: String, timed_out: bool| ProxyFailure {
                proxy: this.via.endpoint.label.clone(),
                detail,
                timed_out,
            };
            match tokio::time::timeout(this.timeout, this.open(&dst)).await {
                Ok(Ok(io)) => Ok(io),
                Ok(Err(detail)) => Err(fail(detail, false)),
                Err(_) => Err(fail(
                    format!(
                        "no tunnel within {:.1} s (the connect timeout)",
                        this.timeout.as_secs_f64()
                    ),
                    true,
                )),
            }
        })
    }
}

impl ProxyConnector {
    /// Reaches the proxy and opens a tunnel to `dst`; the error says what failed.
    async fn open(&self, dst: &Uri) -> Result<ProxyIo, String> {
        let ep = &self.via.endpoint;
        let host = dst.host().ok_or("the upstream URL has no host")?;
        let port = dst
            .port_u16()
            .unwrap_or(if dst.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        let tcp = connect_tcp(&ep.host, ep.port)
            .await
            .map_err(|e| format!("cannot connect to the proxy at {}: {e}", ep.address()))?;
        let _ = tcp.set_nodelay(true);
        let mut stream = match ep.scheme {
            ProxyScheme::Https => {
                let name = rustls::pki_types::ServerName::try_from(
                    ep.host.trim_matches(['[', ']']).to_string(),
                )
                .map_err(|_| format!("`{}` is not a name TLS can check", ep.host))?;
                let tls =
                    self.tls.connect(name, tcp).await.map_err(|e| {
                        format!("TLS with the proxy at {} failed: {e}", ep.address())
                    })?;
                Stream::Tls(Box::new(tls))
            }
            _ => Stream::Plain(tcp),
        };
        let user = ep.username.as_deref();
        let pass = self.via.password.as_ref().map(SecretValue::expose);
        match ep.scheme {
            ProxyScheme::Http | ProxyScheme::Https => {
                http_connect(&mut stream, host, port, user, pass).await?
            }
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
                let target = if ep.scheme == ProxyScheme::Socks5 {
                    Target::Addr(resolve_upstream(host, port).await?)
                } else {
                    Target::parse(host, port)
                };
                socks5_connect(&mut stream, &target, user, pass).await?
            }
        }
        Ok(ProxyIo(TokioIo::new(stream)))
    }
}

/// A TCP connection to the proxy: its addresses resolved and checked, tried in order.
async fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let bare = host.trim_matches(['[', ']']);
    let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port)).await?.collect();
    let kept = crate::net::allowed_addrs(bare, found);
    if kept.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{host} resolves to no address Fluxgate connects to"),
        ));
    }
    let mut last = None;
    for addr in kept {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no address")))
}

/// With `socks5`, the upstream's address as Fluxgate resolves and checks it.
async fn resolve_upstream(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host.trim_matches(['[', ']']);
    let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| format!("cannot resolve {bare} for the proxy: {e}"))?
        .collect();
    crate::net::allowed_addrs(bare, found)
        .into_iter()
        .next()
        .ok_or_else(|| format!("{bare} resolves to no address Fluxgate connects to"))
}

/// Where a SOCKS5 tunnel goes.
enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

impl Target {
    fn parse(host: &str, port: u16) -> Self {
        match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            Ok(ip) => Target::Addr(SocketAddr::new(ip, port)),
            Err(_) => Target::Name(host.to_string(), port),
        }
    }
}

/// The largest proxy response head read.
const MAX_HEAD: usize = 16 * 1024;

/// `CONNECT host:port`; Ok once the proxy answered 2xx.
async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
    port: u16,
    user: Option<&str>,
    pass: Option<&str>,
) -> Result<(), String> {
    let authority = format!("{host}:{port}");
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(user) = user {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", pass.unwrap_or("")));
        head.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| format!("the proxy closed the connection: {e}"))?;
    // Read the response head a byte at a time: nothing after it may be consumed, it belongs
    // to the tunnel.
    let mut buf = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s
            .read(&mut byte)
            .await
            .map_err(|e| format!("the proxy broke the connection: {e}"))?;
        if n == 0 {
            return Err("the proxy closed the connection before answering CONNECT".into());
        }
        buf.push(byte[0]);
        if buf.len() > MAX_HEAD {
            return Err("the proxy's answer to CONNECT is too large".into());
        }
    }
    let line = String::from_utf8_lossy(buf.split(|b| *b == b'\n').next().unwrap_or_default());
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or("the proxy did not answer CONNECT with HTTP")?;
    let reason: String = parts
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    match status {
        200..=299 => Ok(()),
        // Some proxies (tinyproxy) answer wrong credentials with 401 rather than 407.
        401 | 407 if user.is_some() => Err(format!(
            "refused the user name and password ({status} {reason})"
        )),
        401 | 407 => Err(format!(
            "asks for credentials ({status} {reason}); give the proxy a `username` and \
             `password` under `[proxies.NAME]`"
        )),
        _ => Err(format!(
            "refused the tunnel to {authority}: {status} {reason}"
        )),
    }
}

/// A SOCKS5 handshake and `CONNECT`; Ok once the proxy reported success.
async fn socks5_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    target: &Target,
    user: Option<&str>,
    pass: Option<&str>,
) -> Result<(), String> {
    let io = |e: io::Error| format!("the proxy broke the SOCKS5 handshake: {e}");
    let greeting: &[u8] = if user.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    s.write_all(greeting).await.map_err(io)?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await.map_err(io)?;
    if reply[0] != 5 {
        return Err("does not speak SOCKS5".into());
    }
    match reply[1] {
        0 => {}
        2 => {
            let (Some(u), p) = (user, pass.unwrap_or("")) else {
                return Err(
                    "asks for a user name and password; give the proxy a `username` and \
                            `password` under `[proxies.NAME]`"
                        .into(),
                );
            };
            if u.len() > 255 || p.len() > 255 {
                return Err("the user name or password is longer than SOCKS5 allows (255)".into());
            }
            let mut auth = vec![1, u.len() as u8];
            auth.extend_from_slice(u.as_bytes());
            auth.push(p.len() as u8);
            auth.extend_from_slice(p.as_bytes());
            s.write_all(&auth).await.map_err(io)?;
            let mut status = [0u8; 2];
            s.read_exact(&mut status).await.map_err(io)?;
            if status[1] != 0 {
                return Err("refused the user name and password".into());
            }
        }
        0xff if user.is_some() => {
            return Err("accepts none of the offered ways to sign in".into());
        }
        0xff => {
            return Err(
                "asks for credentials; give the proxy a `username` and `password` under \
                        `[proxies.NAME]`"
                    .into(),
            );
        }
        m => {
            return Err(format!(
                "chose a sign-in method Fluxgate did not offer ({m})"
            ))
        }
    }
    let mut req = vec![5, 1, 0];
    let (shown, port) = match target {
        Target::Addr(SocketAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.ip().octets());
            (a.ip().to_string(), a.port())
        }
        Target::Addr(SocketAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.ip().octets());
            (format!("[{}]", a.ip()), a.port())
        }
        Target::Name(name, port) => {
            if name.len() > 255 {
                return Err("the upstream's name is longer than SOCKS5 allows (255)".into());
            }
            req.push(3);
            req.push(name.len() as u8);
            req.extend_from_slice(name.as_bytes());
            (name.clone(), *port)
        }
    };
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(io)?;
    if head[1] != 0 {
        let why = match head[1] {
            1 => "a general failure",
            2 => "not allowed by its rules",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            7 => "command not supported",
            8 => "address type not supported",
            _ => "an unknown error",
        };
        return Err(format!(
            "could not open a tunnel to {shown}:{port}: {why} (SOCKS5 reply {})",
            head[1]
        ));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await.map_err(io)?;
            usize::from(len[0]) + 2
        }
        _ => return Err("answered CONNECT with an unknown address type".into()),
    };
    let mut bound = vec![0u8; rest];
    s.read_exact(&mut bound).await.map_err(io)?;
    Ok(())
}

/// A tunnel's stream: plain TCP to the proxy, or TLS to an `https://` proxy.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open tunnel, as hyper reads and writes it.
pub struct ProxyIo(TokioIo<Stream>);

impl Connection for ProxyIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for ProxyIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `proxy` (a script of what a proxy answers) on one end of a pipe, and a handshake
    /// on the other; returns the handshake's result and what the proxy read.
    async fn against(
        answer: &'static [u8],
        handshake: impl for<'a> FnOnce(
            &'a mut tokio::io::DuplexStream,
        )
            -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>,
    ) -> (Result<(), String>, Vec<u8>) {
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            proxy.write_all(answer).await.expect("answer");
            // Everything the client sends until it hangs up.
            let mut seen = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), proxy.read_to_end(&mut seen)).await;
            seen
        });
        let result = handshake(&mut client).await;
        drop(client);
        (result, server.await.expect("proxy side"))
    }

    #[tokio::test]
    async fn connect_sends_basic_credentials_and_reads_only_the_head() {
        let (r, sent) = against(b"HTTP/1.1 200 Connection established\r\n\r\n", |s| {
            Box::pin(http_connect(
                s,
                "api.example",
                443,
                Some("alice"),
                Some("pw"),
            ))
        })
        .await;
        assert_eq!(r, Ok(()));
        let sent = String::from_utf8(sent).expect("text");
        assert!(sent.starts_with("CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n"));
        assert!(
            sent.contains("Proxy-Authorization: Basic YWxpY2U6cHc=\r\n"),
            "{sent}"
        );
    }

    #[tokio::test]
    async fn connect_refusals_say_what_the_proxy_said() {
        let (r, _) = against(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", |s| {
            Box::pin(http_connect(s, "h", 443, None, None))
        })
        .await;
        assert!(r.expect_err("407").contains("asks for credentials"));
        let (r, _) = against(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", |s| {
            Box::pin(http_connect(s, "h", 443, Some("u"), Some("p")))
        })
        .await;
        assert!(r
            .expect_err("407")
            .contains("refused the user name and password"));
        let (r, _) = against(b"HTTP/1.0 403 Filtered\r\n\r\n", |s| {
            Box::pin(http_connect(s, "h", 443, None, None))
        })
        .await;
        assert_eq!(r, Err("refused the tunnel to h:443: 403 Filtered".into()));
        let (r, _) = against(b"SSH-2.0-OpenSSH\r\n\r\n", |s| {
            Box::pin(http_connect(s, "h", 443, None, None))
        })
        .await;
        assert!(r
            .expect_err("not http")
            .contains("did not answer CONNECT with HTTP"));
    }

    #[tokio::test]
    async fn socks5_signs_in_and_names_the_upstream_for_socks5h() {
        // Method 2 chosen, auth accepted, CONNECT succeeded with an IPv4 bound address.
        let answer: &[u8] = &[5, 2, 1, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];
        let (r, sent) = against(answer, |s| {
            Box::pin(async move {
                let target = Target::Name("api.example".into(), 443);
                socks5_connect(s, &target, Some("bob"), Some("pw")).await
            })
        })
        .await;
        assert_eq!(r, Ok(()));
        let mut want = vec![5, 2, 0, 2, 1, 3, b'b', b'o', b'b', 2, b'p', b'w'];
        want.extend_from_slice(&[5, 1, 0, 3, 11]);
        want.extend_from_slice(b"api.example");
        want.extend_from_slice(&443u16.to_be_bytes());
        assert_eq!(sent, want);
    }

    #[tokio::test]
    async fn socks5_failures_are_named() {
        let cases: [(&'static [u8], Option<&str>, &str); 4] = [
            (&[5, 0xff], None, "asks for credentials"),
            (
                &[5, 2, 1, 1],
                Some("u"),
                "refused the user name and password",
            ),
            (
                &[5, 0, 5, 5, 0, 1],
                None,
                "connection refused (SOCKS5 reply 5)",
            ),
            (&[4, 0], None, "does not speak SOCKS5"),
        ];
        for (answer, user, says) in cases {
            let (r, _) = against(answer, |s| {
                Box::pin(async move {
                    let target = Target::parse("10.0.0.1", 443);
                    socks5_connect(s, &target, user, Some("p")).await
                })
            })
            .await;
            let e = r.expect_err(says);
            assert!(e.contains(says), "{e}");
        }
    }
}
