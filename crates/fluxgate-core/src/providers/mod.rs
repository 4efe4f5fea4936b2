//! Upstream kinds: one trait, one module per kind.
//!
//! A provider knows its URLs, how to put a key into a request, which endpoints it serves
//! natively, and what a cheap retest looks like. It does not send anything and does not
//! classify errors (that is `health`'s job); the executor does the I/O.

mod anthropic;
mod gemini;
mod openai;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method};

pub use anthropic::Anthropic;
pub use gemini::Gemini;
pub use openai::{OpenAi, Quirks};

use crate::config::{ProviderConfig, ProviderKind};
use crate::formats::translate::Vendor;
use crate::formats::Endpoint;
use crate::health::ErrorClass;
use crate::secrets::SecretValue;

/// A cheap request that tells whether a key works again.
#[derive(Debug, Clone)]
pub struct RetestRequest {
    pub method: Method,
    pub url: String,
    pub body: Option<Bytes>,
}

/// One upstream kind.
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// The endpoints this upstream serves natively.
    fn endpoints(&self) -> &'static [Endpoint];

    /// The upstream endpoint to use for a client endpoint: the same one when served natively,
    /// else this upstream's main endpoint (to be reached through a translator).
    fn upstream_endpoint(&self, client: Endpoint) -> Option<Endpoint> {
        let native = self.endpoints();
        if native.contains(&client) {
            return Some(client);
        }
        match client {
            Endpoint::ChatCompletions | Endpoint::Responses | Endpoint::Messages => {
                native.first().copied()
            }
            Endpoint::GenerateContent => native.first().copied(),
            Endpoint::CountTokens | Endpoint::Embeddings => None,
        }
    }

    /// The full URL for an endpoint.
    fn url(&self, endpoint: Endpoint) -> String;

    /// For upstreams whose URL names the model or the stream mode (Gemini, Azure
    /// deployments): the URL of one attempt. `None` means [`Provider::url`] serves.
    fn attempt_url(&self, endpoint: Endpoint, model: &str, stream: bool) -> Option<String> {
        let _ = (endpoint, model, stream);
        None
    }

    /// The vendor, for the translators' per-vendor quirks.
    fn vendor(&self) -> Vendor;

    /// Puts the key into the outbound headers (marked sensitive) and adds required headers
    /// the client did not send.
    fn authorize(&self, headers: &mut HeaderMap, secret: &SecretValue);

    /// A models-list request (the cheapest authenticated call).
    fn models_url(&self) -> String;

    /// The retest for a key that is out for `reason`; `model` is one this key serves.
    fn retest(&self, reason: Option<ErrorClass>, model: Option<&str>) -> RetestRequest {
        let _ = (reason, model);
        RetestRequest {
            method: Method::GET,
            url: self.models_url(),
            body: None,
        }
    }
}

/// A one-token completion on `model`, in the shape both OpenAI Chat and Anthropic Messages
/// accept: the cheapest request that proves a key can spend again.
pub(crate) fn one_token_completion(url: String, model: &str) -> RetestRequest {
    let body = serde_json::json!({
        "model": model,
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "ping"}],
    });
    RetestRequest {
        method: Method::POST,
        url,
        body: Some(Bytes::from(body.to_string())),
    }
}

/// Builds the provider implementation for a configured provider.
pub fn build(config: &ProviderConfig) -> Arc<dyn Provider> {
    let base = config.base_url.clone();
    match config.kind {
        ProviderKind::Openai => Arc::new(OpenAi::new(base, Quirks::openai())),
        ProviderKind::OpenaiCompatible => {
            let vendor = Vendor::detect(config.kind, &base);
            Arc::new(OpenAi::new(base, Quirks::compatible(vendor)))
        }
        ProviderKind::AzureOpenai => {
            Arc::new(OpenAi::new(base, Quirks::azure(config.api_version.clone())))
        }
        ProviderKind::Anthropic => Arc::new(Anthropic::new(base)),
        ProviderKind::Gemini => Arc::new(Gemini::new(base)),
    }
}

/// Inserts a header value marked sensitive, so it never appears in debug output.
pub(crate) fn set_secret_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(mut v) = http::HeaderValue::from_str(value) {
        v.set_sensitive(true);
        headers.insert(name, v);
    }
}
