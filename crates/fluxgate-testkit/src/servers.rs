//! Real database servers for tests, started from the machine's own binaries (Debian's
//! `redis-server`, installed by `scripts/deps.sh test`) on a free loopback port with their data
//! in a temporary directory, and stopped when dropped.

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
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn redis_binary() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = PathBuf::from(dir).join("redis-server");
        if p.exists() {
            return p;
        }
    }
    panic!("redis-server is not installed; run `scripts/deps.sh test` (it installs Debian's redis-server)")
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
        };
        server.start_again();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port (with no data: as a restarted cache would).
    pub fn start_again(&mut self) {
        self.stop();
        let child = Command::new(redis_binary())
            .arg(self.dir.path().join("redis.conf"))
            .arg("--port")
            .arg(self.port.to_string())
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
