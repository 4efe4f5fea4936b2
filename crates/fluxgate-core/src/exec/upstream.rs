//! The executor's one way out. An [`Upstream`] sends a prepared request and resolves with the
//! response head and its body as a stream of chunks; it knows nothing of keys, dialects or
//! failover. [`super::client::HttpClient`] is the real one (hyper over real sockets); the
//! executor's unit tests script one, so every failover rule runs on paused time.
//!
//! An `Upstream` refuses nothing and retries nothing: a connection that cannot be made is a
//! [`TransportError`], a body that breaks is a [`BodyError`] item, and what those mean for the
//! key is decided in [`crate::health::transport`].

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, Method, Uri};

pub use crate::health::{BodyError, TransportError};

/// A response body as data chunks (trailers are dropped).
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// A request ready to send: the key is already in `headers`.
pub struct Outbound {
    pub method: Method,
    pub url: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The proxy to go through; `None`: straight to the upstream.
    pub via: Option<super::egress::Via>,
}

/// A response head and its body, as the upstream sent them (nothing redacted yet).
pub struct Inbound {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: BodyStream,
}

/// What the executor, the retester and the CLI's key probe send through.
pub trait Upstream: Send + Sync {
    /// Sends `req`; resolves when the response head has arrived.
    fn send(
        &self,
        req: Outbound,
    ) -> Pin<Box<dyn Future<Output = Result<Inbound, TransportError>> + Send + '_>>;
}
