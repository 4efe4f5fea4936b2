//! Google Gemini. The key travels in `x-goog-api-key`, never in the URL. Its
//! `generateContent` endpoints are reached through translators, which arrive with the
//! translation work; until then a Gemini provider holds keys, is retested, and serves no
//! proxied endpoint (routes skip it with a reason).

use http::HeaderMap;

use super::{set_secret_header, Provider};
use crate::config::ProviderKind;
use crate::formats::Endpoint;
use crate::secrets::SecretValue;

pub struct Gemini {
    base_url: String,
}

impl Gemini {
    pub fn new(base_url: String) -> Self {
        Gemini { base_url }
    }
}

impl Provider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        &[]
    }

    fn url(&self, endpoint: Endpoint) -> String {
        format!("{}/v1beta{}", self.base_url, endpoint.path())
    }

    fn authorize(&self, headers: &mut HeaderMap, secret: &SecretValue) {
        set_secret_header(headers, "x-goog-api-key", secret.expose());
    }

    fn models_url(&self) -> String {
        format!("{}/v1beta/models", self.base_url)
    }
}
