//! The outbound HTTP client: hyper's pooled client with rustls (webpki roots), HTTP/1.1 and
//! HTTP/2. It follows no redirects (a redirect would carry the key to another host), reads no
//! proxy settings from the environment, and sets a connect timeout. Names are resolved by
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

use crate::config::Timeouts;
use crate::net::CheckedResolver;

pub use super::upstream::{BodyError, BodyStream, Inbound, Outbound, TransportError, Upstream};

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>,
}

impl HttpClient {
    pub fn new(timeouts: &Timeouts) -> Self {
        let mut http = HttpConnector::new_with_resolver(CheckedResolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeouts.connect));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        HttpClient { inner }
    }

    /// Sends a request; resolves when the response head has arrived.
    pub async fn request(&self, out: Outbound) -> Result<Inbound, TransportError> {
        let mut req = Request::new(Full::new(out.body));
        *req.method_mut() = out.method;
        *req.uri_mut() = out.url;
        *req.headers_mut() = out.headers;
        let resp = self.inner.request(req).await.map_err(|e| {
            let mut timed_out = false;
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                timed_out |= s
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
                src = s.source();
            }
            TransportError {
                connect: e.is_connect(),
                timed_out,
                detail: innermost(&e),
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
