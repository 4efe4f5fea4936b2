//! Wire formats: dialects, the SSE codec, request-body surgery, stream inspection, error
//! shapes, and the translator registry. Everything here is pure: no I/O, no clocks.

pub mod body;
pub mod chat_usage;
pub mod errors;
pub mod inspect;
pub mod sse;
pub mod translate;

use serde::Serialize;

/// The API family a client or an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// OpenAI Chat Completions (and the many compatible vendors).
    OpenaiChat,
    /// OpenAI Responses.
    OpenaiResponses,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenaiChat => "openai",
            Dialect::OpenaiResponses => "responses",
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
        }
    }

    pub fn parse(s: &str) -> Option<Dialect> {
        match s {
            "openai" | "chat" => Some(Dialect::OpenaiChat),
            "responses" => Some(Dialect::OpenaiResponses),
            "anthropic" | "messages" => Some(Dialect::Anthropic),
            "gemini" => Some(Dialect::Gemini),
            _ => None,
        }
    }
}

/// A proxied operation. The dialect says how bodies look; the endpoint says what is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    ChatCompletions,
    Responses,
    Messages,
    CountTokens,
    Embeddings,
    /// Gemini `models/{model}:generateContent` (`:streamGenerateContent` when streaming).
    GenerateContent,
}

impl Endpoint {
    pub fn dialect(self) -> Dialect {
        match self {
            Endpoint::ChatCompletions | Endpoint::Embeddings => Dialect::OpenaiChat,
            Endpoint::Responses => Dialect::OpenaiResponses,
            Endpoint::Messages | Endpoint::CountTokens => Dialect::Anthropic,
            Endpoint::GenerateContent => Dialect::Gemini,
        }
    }

    /// The path under the provider's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Responses => "/responses",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
            // The model goes in the path; see `providers::Provider::attempt_url`.
            Endpoint::GenerateContent => "/v1beta/models",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Responses => "responses",
            Endpoint::Messages => "messages",
            Endpoint::CountTokens => "count_tokens",
            Endpoint::Embeddings => "embeddings",
            Endpoint::GenerateContent => "generate_content",
        }
    }

    /// Whether the endpoint can stream at all.
    pub fn streams(self) -> bool {
        matches!(
            self,
            Endpoint::ChatCompletions
                | Endpoint::Responses
                | Endpoint::Messages
                | Endpoint::GenerateContent
        )
    }
}
