//! Anthropic Messages.

use http::{HeaderMap, HeaderValue, Method};

use super::{one_token_completion, set_secret_header, Provider, RetestRequest};
use crate::config::ProviderKind;
use crate::formats::translate::Vendor;
use crate::formats::Endpoint;
use crate::health::ErrorClass;
use crate::secrets::SecretValue;

/// Sent when the client did not say which API version it speaks.
pub const DEFAULT_VERSION: &str = "2023-06-01";

const ENDPOINTS: &[Endpoint] = &[Endpoint::Messages, Endpoint::CountTokens];

pub struct Anthropic {
    base_url: String,
}

impl Anthropic {
    pub fn new(base_url: String) -> Self {
        Anthropic { base_url }
    }
}

impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn url(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.base_url, endpoint.path())
    }

    fn vendor(&self) -> Vendor {
        Vendor::Anthropic
    }

    fn authorize(&self, headers: &mut HeaderMap, secret: &SecretValue) {
        set_secret_header(headers, "x-api-key", secret.expose());
        if !headers.contains_key("anthropic-version") {
            headers.insert(
                "anthropic-version",
                HeaderValue::from_static(DEFAULT_VERSION),
            );
        }
    }

    fn models_url(&self) -> String {
        format!("{}/v1/models", self.base_url)
    }

    fn retest(&self, reason: Option<ErrorClass>, model: Option<&str>) -> RetestRequest {
        match (reason, model) {
            (Some(ErrorClass::QuotaExhausted), Some(model)) => {
                one_token_completion(self.url(Endpoint::Messages), model)
            }
            _ => RetestRequest {
                method: Method::GET,
                url: self.models_url(),
                body: None,
            },
        }
    }
}
