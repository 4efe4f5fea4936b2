//! The outbound HTTP client: hyper's pooled client with rustls (webpki roots), HTTP/1.1 and
//! HTTP/2. It follows no redirects (a redirect would carry the key to another host), reads no
//! proxy settings from the environment itself (`proxy = "env"` is read with the config), and
//! sets a connect timeout. A request with a proxy goes through a pooled client of that
//! proxy's own ([`super::egress`]), made on first use and kept while the proxy and its
//! password stay the same. Names are resolved by
//! [`crate::net::CheckedResolver`] (no link-local, unspecified or multicast address, loopback
//! only for `localhost`). Response bodies are read as a stream of data chunks. It is the real
//! [`Upstream`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::Request;
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::egress::{ProxyConnector, ProxyFailure, Via};
use crate::config::Timeouts;
use crate::net::CheckedResolver;
use crate::secrets::SecretValue;

pub use super::upstream::{BodyError, BodyStream, Inbound, Outbound, TransportError, Upstream};

type Pooled<C> = Client<HttpsConnector<C>, Full<Bytes>>;

/// The pool of each proxy, by [`proxy_id`], with the password it was made with.
type ProxyPools = HashMap<String, (Option<SecretValue>, Pooled<ProxyConnector>)>;

#[derive(Clone)]
pub struct HttpClient {
    inner: Pooled<HttpConnector<CheckedResolver>>,
    proxied: Arc<Mutex<ProxyPools>>,
    connect_timeout: std::time::Duration,
}

/// What makes two proxies the same pool: label, address, user name and CA file.
fn proxy_id(via: &Via) -> String {
    let ep = &via.endpoint;
    format!(
        "{}\n{}\n{}\n{}",
        ep.label,
        ep.address(),
        ep.username.as_deref().unwrap_or(""),
        ep.ca
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )
}

fn pooled<C>(connector: C) -> Pooled<C>
where
    C: tower::Service<http::Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read
        + hyper::rt::Write
        + hyper_util::client::legacy::connect::Connection
        + Send
        + Unpin
        + 'static,
    C::Future: Send + Unpin + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}

impl HttpClient {
    pub fn new(timeouts: &Timeouts) -> Self {
        let mut http = HttpConnector::new_with_resolver(CheckedResolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeouts.connect));
        HttpClient {
            inner: pooled(http),
            proxied: Arc::default(),
            connect_timeout: timeouts.connect,
        }
    }

    /// The pool for `via`, made anew when the proxy's password changed.
    fn through(&self, via: Via) -> Result<Pooled<ProxyConnector>, ProxyFailure> {
        let id = proxy_id(&via);
        let mut pools = self.proxied.lock();
        if let Some((password, pool)) = pools.get(&id) {
            if *password == via.password {
                return Ok(pool.clone());
            }
        }
        let password = via.password.clone();
        let pool = pooled(ProxyConnector::new(via, self.connect_timeout)?);
        pools.insert(id, (password, pool.clone()));
        Ok(pool)
    }

    /// Sends a request; resolves when the response head has arrived.
    pub async fn request(&self, out: Outbound) -> Result<Inbound, TransportError> {
        let mut req = Request::new(Full::new(out.body));
        *req.method_mut() = out.method;
        *req.uri_mut() = out.url;
        *req.headers_mut() = out.headers;
        let sent = match out.via {
            None => self.inner.request(req).await,
            Some(via) => match self.through(via) {
                Ok(pool) => pool.request(req).await,
                Err(p) => {
                    return Err(TransportError {
                        connect: true,
                        timed_out: false,
                        detail: p.to_string(),
                        proxy: Some(p.proxy),
                    })
                }
            },
        };
        let resp = sent.map_err(|e| {
            let mut timed_out = false;
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                if let Some(p) = s.downcast_ref::<ProxyFailure>() {
                    return TransportError {
                        connect: true,
                        timed_out: p.timed_out,
                        detail: p.to_string(),
                        proxy: Some(p.proxy.clone()),
                    };
                }
                timed_out |= s
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
                src = s.source();
            }
            TransportError {
                connect: e.is_connect(),
                timed_out,
                detail: innermost(&e),
                proxy: None,
            }
        })?;
        let (parts, body) = resp.into_parts();
        Ok(Inbound {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body_stream(body),
        })
    }
}

impl Upstream for HttpClient {
    fn send(
        &self,
        req: Outbound,
    ) -> Pin<Box<dyn Future<Output = Result<Inbound, TransportError>> + Send + '_>> {
        Box::pin(self.request(req))
    }
}

/// The innermost cause of an error (hyper's outer messages say only "client error").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut detail = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        detail = s.to_string();
        src = s.source();
    }
    detail
}

/// A response body as a stream of data chunks (trailers are dropped).
fn body_stream(body: Incoming) -> BodyStream {
    Box::pin(BodyDataStream::new(body).map(|r| {
        r.map_err(|e| BodyError {
            detail: innermost(&e),
        })
    }))
}
