//! The HTTP side of retests: a models list for a dead key, a one-token completion for a key
//! whose quota ran out (when a model is known), sent with the key itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::{read_limited, transport_failure, Executor};
use crate::health::{self, ErrorClass, Failure, FailureKind, Retester, TimeoutPhase};

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
            let Some((provider_name, key_id)) = account.split_once('/') else {
                return Ok(());
            };
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
                .map_err(|e| Failure {
                    class: reason.unwrap_or(ErrorClass::UpstreamUnavailable),
                    kind: FailureKind::Connect,
                    status: None,
                    message: format!("the key could not be read for its retest: {e}"),
                    retry_hint: None,
                })?;
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
            let send = exec
                .client()
                .send(req.method, uri, headers, req.body.unwrap_or_default());
            let resp = match tokio::time::timeout(RETEST_TIMEOUT, send).await {
                Err(_) => {
                    return Err(Failure::transport(
                        FailureKind::Timeout(TimeoutPhase::FirstByte),
                        "the retest timed out",
                    ))
                }
                Ok(Err(e)) => return Err(transport_failure(&e)),
                Ok(Ok(r)) => r,
            };
            let status = resp.status().as_u16();
            let redactor = secret.redactor();
            let up_headers = super::headers::redact(resp.headers(), redactor);
            let deadline = tokio::time::Instant::now() + RETEST_TIMEOUT;
            let body = read_limited(resp, 256 * 1024, RETEST_TIMEOUT, deadline)
                .await
                .map(|b| redactor.owned(b))
                .unwrap_or_default();
            if (200..300).contains(&status) {
                return Ok(());
            }
            let mut f = health::classify_status(status, &up_headers, &body, SystemTime::now());
            super::redact_failure(&mut f, &secret);
            Err(f)
        })
    }
}
