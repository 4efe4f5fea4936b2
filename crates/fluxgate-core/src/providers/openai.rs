//! OpenAI and every OpenAI-compatible vendor (DeepSeek, OpenRouter, Groq, Mistral, Ollama,
//! LM Studio, ...): one implementation with small per-vendor quirks.

use http::{HeaderMap, Method};

use super::{one_token_completion, set_secret_header, Provider, RetestRequest};
use crate::config::ProviderKind;
use crate::formats::Endpoint;
use crate::health::ErrorClass;
use crate::secrets::SecretValue;

const OPENAI_ENDPOINTS: &[Endpoint] = &[
    Endpoint::ChatCompletions,
    Endpoint::Responses,
    Endpoint::Embeddings,
];
/// Azure deployments need translation of URLs and api-version; they arrive with the
/// translation work, so no endpoint is served natively yet.
const AZURE_ENDPOINTS: &[Endpoint] = &[];

/// What differs between vendors that all speak OpenAI Chat.
#[derive(Debug, Clone)]
pub struct Quirks {
    kind: ProviderKind,
    endpoints: &'static [Endpoint],
}

impl Quirks {
    pub fn openai() -> Self {
        Quirks {
            kind: ProviderKind::Openai,
            endpoints: OPENAI_ENDPOINTS,
        }
    }
    pub fn compatible() -> Self {
        Quirks {
            kind: ProviderKind::OpenaiCompatible,
            endpoints: OPENAI_ENDPOINTS,
        }
    }
    pub fn azure() -> Self {
        Quirks {
            kind: ProviderKind::AzureOpenai,
            endpoints: AZURE_ENDPOINTS,
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
        format!("{}/models", self.base_url)
    }

    fn retest(&self, reason: Option<ErrorClass>, model: Option<&str>) -> RetestRequest {
        match (reason, model) {
            (Some(ErrorClass::QuotaExhausted), Some(model)) => {
                one_token_completion(self.url(Endpoint::ChatCompletions), model)
            }
            _ => RetestRequest {
                method: Method::GET,
                url: self.models_url(),
                body: None,
            },
        }
    }
}
