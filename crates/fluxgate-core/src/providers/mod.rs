//! Upstream kinds: one trait, one module per kind.
//!
//! A provider knows its URLs, how to put a key into a request, which endpoints it serves
//! natively, and what a cheap retest looks like. It does not send anything and does not
//! classify errors (that is `health`'s job); the executor does the I/O.

mod anthropic;
pub mod balance;
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
    /// deployments): the URL of one attempt. `Ok(None)` means [`Provider::url`] serves. The
    /// model becomes exactly one path segment ([`path_segment`]) or the attempt is refused:
    /// a client never chooses the upstream path, query or fragment.
    fn attempt_url(
        &self,
        endpoint: Endpoint,
        model: &str,
        stream: bool,
    ) -> Result<Option<String>, BadModelName> {
        let _ = (endpoint, model, stream);
        Ok(None)
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

/// A model name that cannot be one segment of an upstream URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model name cannot be used in an upstream URL: {0}")]
pub struct BadModelName(&'static str);

/// The longest model name put into a URL.
const MAX_MODEL_IN_PATH: usize = 256;

/// `model` as one URL path segment: every byte outside the unreserved set (`A-Z a-z 0-9 - .
/// _ ~`) percent-encoded, so `/`, `?`, `#`, `:` and `%` cannot change the path, the query or
/// the method part of a Gemini URL; `.` and `..` (dot-segments, which resolve to another
/// path), empty names, control characters and names over 256 bytes are refused.
pub fn path_segment(model: &str) -> Result<String, BadModelName> {
    if model.is_empty() {
        return Err(BadModelName("it is empty"));
    }
    if model == "." || model == ".." {
        return Err(BadModelName("`.` and `..` would name another path"));
    }
    if model.len() > MAX_MODEL_IN_PATH {
        return Err(BadModelName("it is longer than 256 bytes"));
    }
    if model.chars().any(char::is_control) {
        return Err(BadModelName("it holds control characters"));
    }
    let mut out = String::with_capacity(model.len());
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_is_one_path_segment_or_refused() {
        assert_eq!(
            path_segment("gemini-2.5-pro").as_deref(),
            Ok("gemini-2.5-pro")
        );
        assert_eq!(
            path_segment("my_deploy.v2~x").as_deref(),
            Ok("my_deploy.v2~x")
        );
        for (model, encoded) in [
            ("../../v1/files", "..%2F..%2Fv1%2Ffiles"),
            ("m?key=x", "m%3Fkey%3Dx"),
            ("m#frag", "m%23frag"),
            ("m:streamGenerateContent", "m%3AstreamGenerateContent"),
            ("m%2F..", "m%252F.."),
            ("a b", "a%20b"),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(path_segment(model).as_deref(), Ok(encoded), "{model}");
        }
        for bad in ["", ".", "..", "m\nx", "m\u{7f}"] {
            assert!(path_segment(bad).is_err(), "{bad:?}");
        }
        assert!(path_segment(&"m".repeat(257)).is_err());
    }

    #[test]
    fn gemini_and_azure_urls_keep_their_shape_whatever_the_model() {
        let g = Gemini::new("https://g.example".into());
        assert_eq!(
            g.attempt_url(Endpoint::GenerateContent, "../../x?y#z", true),
            Ok(Some(
                "https://g.example/v1beta/models/..%2F..%2Fx%3Fy%23z:streamGenerateContent?alt=sse"
                    .into()
            ))
        );
        assert!(g
            .attempt_url(Endpoint::GenerateContent, "..", false)
            .is_err());
        assert!(g
            .attempt_url(Endpoint::GenerateContent, "models/..", false)
            .is_err());
        let a = OpenAi::new("https://a.example".into(), Quirks::azure(None));
        assert_eq!(
            a.attempt_url(Endpoint::ChatCompletions, "prod/../../x", false),
            Ok(Some(
                "https://a.example/openai/deployments/prod%2F..%2F..%2Fx/chat/completions?api-version=2024-10-21".into()
            ))
        );
        assert!(a
            .attempt_url(Endpoint::ChatCompletions, "..", false)
            .is_err());
        let o = OpenAi::new("https://o.example/v1".into(), Quirks::openai());
        assert_eq!(
            o.attempt_url(Endpoint::ChatCompletions, "..", false),
            Ok(None)
        );
    }
}
