//! Real database servers for tests, started from the machine's own binaries (Debian's
//! `redis-server` and `postgresql`, installed by `scripts/deps.sh test`) on a free loopback port
//! with their data in a temporary directory, and stopped when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of its own. `stop` and `start_again` (same port, empty data) let a test
/// take it away in the middle of a run.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Listens with TLS only (`rediss://`).
    tls: bool,
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A program from one of Debian's packages, which `scripts/deps.sh test` installs.
pub(crate) fn debian_binary(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = PathBuf::from(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed; run `scripts/deps.sh test` (it installs Debian's package)")
}

/// Kills a test server's process at once (as a crash would) and reaps it.
pub(crate) fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl RedisServer {
    /// Starts a server without a password.
    pub fn start() -> RedisServer {
        Self::start_with(None)
    }

    /// Starts a server that requires `password` (written to its config file, never to its
    /// command line).
    pub fn start_with(password: Option<&str>) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut conf =
            String::from("bind 127.0.0.1\nsave \"\"\nappendonly no\nprotected-mode no\n");
        if let Some(p) = password {
            conf.push_str(&format!("requirepass {p}\n"));
        }
        std::fs::write(dir.path().join("redis.conf"), conf).expect("redis.conf");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            tls: false,
        };
        server.start_again();
        server
    }

    /// Starts a server that speaks TLS only, with a certificate `ca` signed (clients are not
    /// asked for certificates).
    pub fn start_tls(ca: &crate::tls::TestCa) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (cert, key) = ca.server_files();
        let conf = format!(
            "bind 127.0.0.1\nsave \"\"\nappendonly no\nprotected-mode no\n\
             tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\n",
            cert.display(),
            key.display(),
            ca.ca_path().display()
        );
        std::fs::write(dir.path().join("redis.conf"), conf).expect("redis.conf");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            tls: true,
        };
        server.start_again();
        server
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (as a crash would).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server again on the same port (with no data: as a restarted cache would).
    pub fn start_again(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let ports: [&str; 4] = if self.tls {
            ["--port", "0", "--tls-port", &port]
        } else {
            ["--port", &port, "--tls-port", "0"]
        };
        let child = Command::new(debian_binary("redis-server"))
            .arg(self.dir.path().join("redis.conf"))
            .args(ports)
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                if self.tls {
                    // Listening is all that can be seen without a handshake.
                    return;
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 16];
                // PONG, or NOAUTH when a password is set: either way it answers.
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server did not answer on port {} within 10 s",
            self.port
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL server of its own (Debian's `postgresql`, installed by `scripts/deps.sh
/// test`): a new cluster in a temporary directory, a superuser `fluxgate` with a password
/// (scram-sha-256 on loopback TCP), listening on a free port. When the tests run as root the
/// server runs as the `postgres` user (PostgreSQL refuses to run as root). `stop` and
/// `start_again` keep the data, as a restarted database would.
pub struct PostgresServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    /// The certificate and key it presents, when it takes TLS connections only.
    tls: Option<(PathBuf, PathBuf)>,
}

/// The user the server's processes run as, and the password the tests connect with.
pub const POSTGRES_USER: &str = "fluxgate";
pub const POSTGRES_PASSWORD: &str = "pg-test-password-5b1e";

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed; run `scripts/deps.sh test` (it installs Debian's postgresql)"
        ),
    }
}

/// `(uid, gid)` of the `postgres` user when this process is root, from `/etc/passwd`.
fn postgres_account() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid_line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let euid: u32 = uid_line.split_whitespace().nth(2)?.parse().ok()?;
    if euid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"));
    let Some(line) = line else {
        panic!("the tests run as root and there is no `postgres` user to run PostgreSQL as; run `scripts/deps.sh test`")
    };
    let mut f = line.split(':').skip(2);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

impl PostgresServer {
    /// Creates a cluster and starts it.
    pub fn start() -> PostgresServer {
        Self::start_with(None)
    }

    /// Creates a cluster that takes TLS connections only (`hostssl` in `pg_hba.conf`), with
    /// a certificate `ca` signed, and starts it.
    pub fn start_tls(ca: &crate::tls::TestCa) -> PostgresServer {
        Self::start_with(Some(ca))
    }

    fn start_with(ca: Option<&crate::tls::TestCa>) -> PostgresServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let run_as = postgres_account();
        let bin = postgres_bin();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, POSTGRES_PASSWORD).expect("password file");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown");
        }
        let out = Self::command(&bin.join("initdb"), run_as, dir.path())
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", POSTGRES_USER, "--auth=scram-sha-256", "-E", "UTF8"])
            .args(["--no-locale", "--no-sync", "--no-instructions"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tls = ca.map(|ca| {
            let files = ca.copy_server_files(dir.path());
            if let Some((uid, gid)) = run_as {
                for f in [&files.0, &files.1] {
                    std::os::unix::fs::chown(f, Some(uid), Some(gid)).expect("chown");
                }
            }
            let hba = dir.path().join("data").join("pg_hba.conf");
            let text = std::fs::read_to_string(&hba).expect("pg_hba.conf");
            let text: String = text
                .lines()
                .map(|l| match l.strip_prefix("host ") {
                    Some(rest) => format!("hostssl {rest}\n"),
                    None => format!("{l}\n"),
                })
                .collect();
            std::fs::write(&hba, text).expect("pg_hba.conf");
            files
        });
        let mut server = PostgresServer {
            child: None,
            port: free_port(),
            dir,
            bin,
            run_as,
            tls,
        };
        server.start_again();
        server
    }

    fn command(
        program: &std::path::Path,
        run_as: Option<(u32, u32)>,
        cwd: &std::path::Path,
    ) -> Command {
        let mut c = Command::new(program);
        c.current_dir(cwd).env_remove("PGPASSWORD");
        if let Some((uid, gid)) = run_as {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        c
    }

    /// `postgres://fluxgate@127.0.0.1:PORT/postgres` (the password is [`POSTGRES_PASSWORD`]).
    pub fn url(&self) -> String {
        format!(
            "postgres://{POSTGRES_USER}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's files (tables, write-ahead log).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server at once ("immediate" shutdown: no checkpoint, as after a crash; the
    /// next start recovers from the log).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&mut self) {
        self.stop();
        let log = self.dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("server log");
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).expect("chown");
        }
        let child = Self::command(&self.bin.join("postgres"), self.run_as, self.dir.path())
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "max_connections=50"])
            .args(self.tls.iter().flat_map(|(cert, key)| {
                [
                    "-c".to_string(),
                    "ssl=on".to_string(),
                    "-c".to_string(),
                    format!("ssl_cert_file={}", cert.display()),
                    "-c".to_string(),
                    format!("ssl_key_file={}", key.display()),
                ]
            }))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("ready to accept connections") {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("postgres exited ({status}): {text}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "postgres did not accept connections on port {} within 30 s",
            self.port
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}
