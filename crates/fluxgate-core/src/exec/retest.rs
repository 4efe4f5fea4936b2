//! The HTTP side of retests: a models list for a dead key, a one-token completion for a key
//! whose quota ran out (when a model is known), sent with the key itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;
use std::time::Duration;

use http::HeaderMap;

use super::probe::probe;
use super::upstream::Outbound;
use super::Executor;
use crate::health::{transport, ErrorClass, Failure, FailureKind, Retester};
use crate::vocab::KeyRef;

const RETEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Retests keys over HTTP with the executor's client, config and secrets.
pub struct HttpRetester {
    executor: Weak<Executor>,
}

impl HttpRetester {
    pub fn new(executor: Weak<Executor>) -> Self {
        HttpRetester { executor }
    }
}

impl Retester for HttpRetester {
    fn retest(
        &self,
        account: String,
        reason: Option<ErrorClass>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>> {
        let executor = self.executor.clone();
        Box::pin(async move {
            let Some(exec) = executor.upgrade() else {
                return Ok(());
            };
            let router = exec.router();
            let config = router.config().clone();
            let Some(key_ref) = KeyRef::parse(&account) else {
                return Ok(());
            };
            let (provider_name, key_id) = (key_ref.provider.as_str(), key_ref.key_id.as_str());
            let (Some(pc), Some(upstream)) = (
                config.provider(provider_name),
                router.provider(provider_name),
            ) else {
                return Ok(());
            };
            let Some(key) = pc.keys.iter().find(|k| k.id == key_id) else {
                return Ok(());
            };
            let secret = exec
                .secrets()
                .resolve(&account, &key.secret)
                .map_err(|e| transport::unreadable_key(reason, e))?;
            let model = config
                .routes
                .iter()
                .flat_map(|r| &r.targets)
                .find(|t| t.provider == provider_name)
                .map(|t| t.model.clone())
                .or_else(|| pc.models.first().cloned());
            let req = upstream.retest(reason, model.as_deref());
            let mut headers = HeaderMap::new();
            upstream.authorize(&mut headers, &secret);
            if req.body.is_some() {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
            }
            let uri: http::Uri = match req.url.parse() {
                Ok(u) => u,
                Err(_) => return Ok(()),
            };
            tracing::debug!(provider = provider_name, key = key_id, "retesting key");
            let via = super::egress::via(&key.egress, exec.secrets())?;
            let proxy = via.as_ref().map(|v| v.endpoint.label.clone());
            let out = Outbound {
                method: req.method,
                url: uri,
                headers,
                body: req.body.unwrap_or_default(),
                via,
            };
            let result = probe(exec.upstream(), out, &secret, RETEST_TIMEOUT)
                .await
                .map(|_| ());
            if let Some(proxy) = proxy {
                let proxy_failure = result
                    .as_ref()
                    .err()
                    .filter(|f| f.kind == FailureKind::Proxy);
                exec.health().report_proxy(&proxy, proxy_failure);
            }
            result
        })
    }
}
