//! Real outbound proxies for tests, from the machine's own binaries (Debian's `tinyproxy` for
//! HTTP `CONNECT` and `microsocks` for SOCKS5, installed by `scripts/deps.sh test`), on a free
//! loopback port, stopped when dropped. Each keeps a log of the tunnels it opened, so a test
//! can tell that a request really went through it.

use std::net::TcpStream;
use std::path::PathBuf;

use crate::servers::{debian_binary, free_port, kill};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_listening(name: &str, port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited at start ({status})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} did not listen on port {port} within 10 s");
}

/// What kind of proxy, and how it is set up.
enum Kind {
    /// tinyproxy; `ports`: the only ports it tunnels to (empty: any).
    Http { ports: Vec<u16> },
    /// microsocks.
    Socks,
}

/// A proxy of its own on a loopback port.
pub struct TestProxy {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    kind: Kind,
    auth: Option<(String, String)>,
    /// For an `https://` proxy: the TLS front's port (clients connect there) and its runtime.
    front: Option<(u16, tokio::runtime::Runtime)>,
}

impl TestProxy {
    /// An HTTP `CONNECT` proxy (tinyproxy), with Basic credentials when `auth` is given.
    pub fn http(auth: Option<(&str, &str)>) -> TestProxy {
        Self::start(Kind::Http { ports: Vec::new() }, auth)
    }

    /// An HTTP proxy that refuses every tunnel except to port 443 (`403 Access violation`).
    pub fn http_refusing() -> TestProxy {
        Self::start(Kind::Http { ports: vec![443] }, None)
    }

    /// An `https://` proxy: tinyproxy behind a TLS front whose certificate `ca` signed (for
    /// `127.0.0.1`), as a corporate proxy with its own CA would be.
    pub fn https(ca: &crate::tls::TestCa, auth: Option<(&str, &str)>) -> TestProxy {
        let mut proxy = Self::start(Kind::Http { ports: Vec::new() }, auth);
        proxy.front = Some(tls_front(ca, proxy.port));
        proxy
    }

    /// A SOCKS5 proxy (microsocks), with a user name and password when `auth` is given.
    pub fn socks5(auth: Option<(&str, &str)>) -> TestProxy {
        Self::start(Kind::Socks, auth)
    }

    fn start(kind: Kind, auth: Option<(&str, &str)>) -> TestProxy {
        let mut proxy = TestProxy {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary directory"),
            kind,
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            front: None,
        };
        proxy.start_again();
        proxy
    }

    /// `127.0.0.1:PORT` (an `https://` proxy's TLS front).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    pub fn port(&self) -> u16 {
        self.front.as_ref().map_or(self.port, |(p, _)| *p)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("proxy.log")
    }

    /// How many tunnels it has opened or been asked for (tinyproxy logs each `CONNECT`
    /// request, microsocks each connection it made).
    pub fn tunnels(&self) -> usize {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let needle = match self.kind {
            Kind::Http { .. } => "Request (file descriptor",
            Kind::Socks => ": connected to ",
        };
        log.lines().filter(|l| l.contains(needle)).count()
    }

    /// Its log as written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills it at once (as a crash would); its port then refuses connections.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port.
    pub fn start_again(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("proxy log");
        let mut cmd = match &self.kind {
            Kind::Http { ports } => {
                let mut conf = format!(
                    "Port {}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nLogLevel Connect\n\
                     LogFile \"{}\"\n",
                    self.port,
                    self.log_path().display()
                );
                if let Some((u, p)) = &self.auth {
                    conf.push_str(&format!("BasicAuth {u} {p}\n"));
                }
                for port in ports {
                    conf.push_str(&format!("ConnectPort {port}\n"));
                }
                let path = self.dir.path().join("tinyproxy.conf");
                std::fs::write(&path, conf).expect("tinyproxy.conf");
                let mut c = Command::new(debian_binary("tinyproxy"));
                c.arg("-d").arg("-c").arg(path);
                c.stdout(Stdio::null());
                drop(log);
                c
            }
            Kind::Socks => {
                let mut c = Command::new(debian_binary("microsocks"));
                c.args(["-i", "127.0.0.1", "-p", &self.port.to_string()]);
                // A test's throwaway credentials; microsocks takes them on its command line.
                if let Some((u, p)) = &self.auth {
                    c.args(["-u", u, "-P", p]);
                }
                // microsocks logs each connection on stderr.
                c.stderr(log.try_clone().expect("log handle"));
                c
            }
        };
        if matches!(self.kind, Kind::Http { .. }) {
            cmd.stderr(Stdio::null());
        } else {
            cmd.stdout(Stdio::null());
        }
        let mut child = cmd.stdin(Stdio::null()).spawn().expect("the proxy starts");
        wait_listening("the test proxy", self.port, &mut child);
        self.child = Some(child);
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.stop();
        if let Some((_, runtime)) = self.front.take() {
            // Not a blocking shutdown: tests drop proxies inside their own runtime.
            runtime.shutdown_background();
        }
    }
}

/// A TLS terminator in front of a plain server on a loopback port (the fake upstream, say):
/// `https://127.0.0.1:PORT` with a certificate the test CA signed. Stopped when dropped.
pub struct TlsFront {
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TlsFront {
    pub fn start(ca: &crate::tls::TestCa, inner: u16) -> TlsFront {
        let (port, runtime) = tls_front(ca, inner);
        TlsFront {
            port,
            runtime: Some(runtime),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(r) = self.runtime.take() {
            r.shutdown_background();
        }
    }
}

/// A TLS terminator on a free port in front of `inner` (a plain proxy), on a runtime of its
/// own: each connection's TLS is ended with the certificate `ca` signed, and its bytes are
/// carried both ways.
fn tls_front(ca: &crate::tls::TestCa, inner: u16) -> (u16, tokio::runtime::Runtime) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = ca.server_files();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .expect("server.pem")
        .map(|c| c.expect("a certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("the server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the TLS front");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the TLS front");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", inner)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, runtime)
}
