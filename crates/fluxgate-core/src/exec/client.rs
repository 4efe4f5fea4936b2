//! The outbound HTTP client: hyper's pooled client with rustls (webpki roots), HTTP/1.1 and
//! HTTP/2. It follows no redirects (a redirect would carry the key to another host), reads no
//! proxy settings from the environment, and sets a connect timeout. Names are resolved by
//! [`crate::net::CheckedResolver`] (no link-local, unspecified or multicast address, loopback
//! only for `localhost`). Response bodies are read as a stream of data chunks.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::Timeouts;
use crate::net::CheckedResolver;

/// A response body as data chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, hyper::Error>> + Send>>;

/// Why a request got no response.
#[derive(Debug)]
pub struct TransportError {
    /// The connection could not be made (refused, DNS, TLS, connect timeout).
    pub connect: bool,
    /// The cause was a timeout (the connect timeout, for a connection error).
    pub timed_out: bool,
    /// The innermost cause, without any URL.
    pub detail: String,
}

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
    pub async fn send(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, TransportError> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        self.inner.request(req).await.map_err(|e| {
            let mut detail = e.to_string();
            let mut timed_out = false;
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                detail = s.to_string();
                timed_out |= s
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
                src = s.source();
            }
            TransportError {
                connect: e.is_connect(),
                timed_out,
                detail,
            }
        })
    }
}

/// The body of a response as a stream of data chunks (trailers are dropped).
pub fn body_stream(resp: Response<Incoming>) -> BodyStream {
    Box::pin(BodyDataStream::new(resp.into_body()))
}
