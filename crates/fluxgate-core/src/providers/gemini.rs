//! Google Gemini. The key travels in `x-goog-api-key`, never in the URL. The model and the
//! stream mode are part of the URL (`models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` for SSE), so each attempt builds its own.

use http::HeaderMap;

use super::{path_segment, set_secret_header, BadModelName, Provider};
use crate::config::ProviderKind;
use crate::formats::translate::Vendor;
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
        &[Endpoint::GenerateContent]
    }

    fn url(&self, _endpoint: Endpoint) -> String {
        self.models_url()
    }

    fn attempt_url(
        &self,
        _endpoint: Endpoint,
        model: &str,
        stream: bool,
    ) -> Result<Option<String>, BadModelName> {
        let model = path_segment(model.strip_prefix("models/").unwrap_or(model))?;
        Ok(Some(if stream {
            format!(
                "{}/v1beta/models/{model}:streamGenerateContent?alt=sse",
                self.base_url
            )
        } else {
            format!("{}/v1beta/models/{model}:generateContent", self.base_url)
        }))
    }

    fn vendor(&self) -> Vendor {
        Vendor::Gemini
    }

    fn authorize(&self, headers: &mut HeaderMap, secret: &SecretValue) {
        set_secret_header(headers, "x-goog-api-key", secret.expose());
    }

    fn models_url(&self) -> String {
        format!("{}/v1beta/models", self.base_url)
    }
}
