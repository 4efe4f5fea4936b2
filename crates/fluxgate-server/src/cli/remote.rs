//! Talking to the running Fluxgate from the CLI, only after it has proved who it is.
//!
//! [`Remote::connect`] reads `DATA_DIR/runtime.json` (see `fluxgate_core::runtime`), opens one
//! HTTP/1.1 connection to the address there (or `--listen`), sends a random challenge to
//! `POST /admin/api/hello` and checks the answer against the file's nonce. Only then, on the
//! same connection, does it send requests with the admin token. A process that took the port,
//! or a stale file after a crash, gets a challenge it cannot answer and never the token.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use fluxgate_core::runtime::RuntimeFile;
use fluxgate_core::tokens::AdminToken;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// An authenticated connection to the running server.
pub struct Remote {
    pub addr: SocketAddr,
    send: SendRequest<Full<Bytes>>,
    token: String,
}

const TIMEOUT: Duration = Duration::from_secs(10);

async fn call(
    send: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value), String> {
    let unreachable = |e: String| format!("lost the connection to Fluxgate at {addr}: {e}");
    let mut req = match body {
        Some(_) => http::Request::post(path),
        None => http::Request::get(path),
    }
    .header(http::header::HOST, addr.to_string())
    .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(
            body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())),
        ))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        send.ready().await.map_err(|e| unreachable(e.to_string()))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok::<_, String>((status, json))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable("no answer within 10 s".into()))?
}

impl Remote {
    /// Finds and authenticates the server that uses `data_dir`.
    pub async fn connect(data_dir: &Path, listen: Option<SocketAddr>) -> Result<Remote, String> {
        let file = RuntimeFile::read(data_dir).map_err(|e| e.to_string())?;
        let addr = listen.unwrap_or(file.addr);
        let stream =
            tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| format!("Fluxgate at {addr} did not accept a connection within 3 s"))?
                .map_err(|e| {
                    format!(
                "cannot reach Fluxgate at {addr} ({e}); is it running? (runtime.json in {} names \
                 {}; it may be left from a crash)",
                data_dir.display(),
                file.addr
            )
                })?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot talk HTTP to {addr}: {e}"))?;
        tokio::spawn(conn);
        let challenge = RuntimeFile::challenge();
        let refused = || {
            format!(
                "the server at {addr} could not prove it is the Fluxgate that uses {}; the admin \
                 token was not sent. If Fluxgate crashed, another program may hold its port: \
                 restart Fluxgate",
                data_dir.display()
            )
        };
        let (status, answer) = call(
            &mut send,
            addr,
            "/admin/api/hello",
            None,
            Some(serde_json::json!({ "challenge": challenge })),
        )
        .await
        .map_err(|_| refused())?;
        let proof = answer["proof"].as_str().unwrap_or("");
        if status != 200 || !file.verify(&challenge, proof) {
            return Err(refused());
        }
        let admin = AdminToken::load_or_create(data_dir).map_err(|e| e.to_string())?;
        let token = admin
            .value()
            .ok_or_else(|| format!("cannot read the admin token in {}", data_dir.display()))?
            .to_string();
        Ok(Remote { addr, send, token })
    }

    /// `POST path` with the admin token; the status and the JSON answer.
    pub async fn post(
        &mut self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(u16, serde_json::Value), String> {
        call(
            &mut self.send,
            self.addr,
            path,
            Some(&self.token),
            Some(body),
        )
        .await
    }

    /// `GET path` with the admin token; the status and the JSON answer.
    pub async fn get(&mut self, path: &str) -> Result<(u16, serde_json::Value), String> {
        call(&mut self.send, self.addr, path, Some(&self.token), None).await
    }
}
