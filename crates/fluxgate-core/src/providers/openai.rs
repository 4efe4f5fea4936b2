//! OpenAI, Azure OpenAI and every OpenAI-compatible vendor (DeepSeek, OpenRouter, Groq,
//! Mistral, Ollama, LM Studio, ...): one implementation with small per-vendor quirks. Body
//! quirks (token-limit field, tool-call ids, `stream_options`) live in the Chat translator,
//! keyed on [`Vendor`].

use http::{HeaderMap, Method};

use super::{
    one_token_completion, path_segment, set_secret_header, BadModelName, Provider, RetestRequest,
};
use crate::config::ProviderKind;
use crate::formats::translate::Vendor;
use crate::formats::Endpoint;
use crate::health::ErrorClass;
use crate::secrets::SecretValue;

const OPENAI_ENDPOINTS: &[Endpoint] = &[
    Endpoint::ChatCompletions,
    Endpoint::Responses,
    Endpoint::Embeddings,
];
/// Compatible vendors speak Chat Completions; few serve the Responses API, so Responses
/// clients reach them through the translator.
const COMPATIBLE_ENDPOINTS: &[Endpoint] = &[Endpoint::ChatCompletions, Endpoint::Embeddings];
/// Azure deployments serve Chat Completions and embeddings at
/// `{base}/openai/deployments/{deployment}/...?api-version=...`; the target's model names the
/// deployment.
const AZURE_ENDPOINTS: &[Endpoint] = &[Endpoint::ChatCompletions, Endpoint::Embeddings];
/// The GA `api-version` used when the config names none.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// What differs between vendors that all speak OpenAI Chat.
#[derive(Debug, Clone)]
pub struct Quirks {
    kind: ProviderKind,
    endpoints: &'static [Endpoint],
    vendor: Vendor,
    api_version: Option<String>,
}

impl Quirks {
    pub fn openai() -> Self {
        Quirks {
            kind: ProviderKind::Openai,
            endpoints: OPENAI_ENDPOINTS,
            vendor: Vendor::OpenAi,
            api_version: None,
        }
    }
    pub fn compatible(vendor: Vendor) -> Self {
        Quirks {
            kind: ProviderKind::OpenaiCompatible,
            endpoints: COMPATIBLE_ENDPOINTS,
            vendor,
            api_version: None,
        }
    }
    pub fn azure(api_version: Option<String>) -> Self {
        Quirks {
            kind: ProviderKind::AzureOpenai,
            endpoints: AZURE_ENDPOINTS,
            vendor: Vendor::Azure,
            api_version: Some(api_version.unwrap_or_else(|| AZURE_DEFAULT_API_VERSION.into())),
        }
    }
}

pub struct OpenAi {
    base_url: String,
    quirks: Quirks,
}

impl OpenAi {
    pub fn new(base_url: String, quirks: Quirks) -> Self {
        OpenAi { base_url, quirks }
    }
}

impl Provider for OpenAi {
    fn kind(&self) -> ProviderKind {
        self.quirks.kind
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        self.quirks.endpoints
    }

    fn url(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.base_url, endpoint.path())
    }

    fn attempt_url(
        &self,
        endpoint: Endpoint,
        model: &str,
        _stream: bool,
    ) -> Result<Option<String>, BadModelName> {
        let Some(version) = self.quirks.api_version.as_deref() else {
            return Ok(None);
        };
        Ok(Some(format!(
            "{}/openai/deployments/{}{}?api-version={version}",
            self.base_url,
            path_segment(model)?,
            endpoint.path()
        )))
    }

    fn vendor(&self) -> Vendor {
        self.quirks.vendor
    }

    fn authorize(&self, headers: &mut HeaderMap, secret: &SecretValue) {
        if self.quirks.kind == ProviderKind::AzureOpenai {
            set_secret_header(headers, "api-key", secret.expose());
        } else {
            set_secret_header(
                headers,
                "authorization",
                &format!("Bearer {}", secret.expose()),
            );
        }
    }

    fn models_url(&self) -> String {
        match &self.quirks.api_version {
            Some(v) => format!("{}/openai/models?api-version={v}", self.base_url),
            None => format!("{}/models", self.base_url),
        }
    }

    fn retest(&self, reason: Option<ErrorClass>, model: Option<&str>) -> RetestRequest {
        match (reason, model) {
            (Some(ErrorClass::QuotaExhausted), Some(model)) => {
                match self.attempt_url(Endpoint::ChatCompletions, model, false) {
                    Ok(url) => one_token_completion(
                        url.unwrap_or_else(|| self.url(Endpoint::ChatCompletions)),
                        model,
                    ),
                    // A deployment name that cannot be a path: the models list proves the key.
                    Err(_) => RetestRequest {
                        method: Method::GET,
                        url: self.models_url(),
                        body: None,
                    },
                }
            }
            _ => RetestRequest {
                method: Method::GET,
                url: self.models_url(),
                body: None,
            },
        }
    }
}
