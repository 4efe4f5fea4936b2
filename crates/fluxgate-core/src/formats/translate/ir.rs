//! The common shape every dialect is decoded into and encoded from.
//!
//! A request, a complete response and a stream of deltas, with just the concepts the four
//! dialects share. A translator for a (client, upstream) pair is the client dialect's decoder
//! followed by the upstream dialect's encoder (and back for responses), so each concept is
//! mapped once per dialect instead of once per pair. Nothing here does I/O.

use serde_json::Value;

/// Which dialect produced a reasoning artefact (signature, encrypted content). An artefact is
/// only ever sent back to the dialect that made it; anywhere else it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Anthropic,
    Responses,
    Gemini,
    /// DeepSeek-style `reasoning_content` on OpenAI Chat.
    Chat,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    Url(String),
    Base64 { media_type: String, data: String },
}

impl ImageSource {
    /// A `data:` URL for dialects that only take URLs.
    pub fn to_url(&self) -> String {
        match self {
            ImageSource::Url(u) => u.clone(),
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }

    /// Parses `data:...;base64,...` into its parts; any other URL stays a URL.
    pub fn from_url(url: &str) -> ImageSource {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                if let Some(mt) = meta.strip_suffix(";base64") {
                    return ImageSource::Base64 {
                        media_type: mt.to_string(),
                        data: data.to_string(),
                    };
                }
            }
        }
        ImageSource::Url(url.to_string())
    }
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(ImageSource),
    /// A tool call made by the assistant. `arguments` is the JSON text of the arguments.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// The result of a tool call, sent by the user side.
    ToolResult {
        id: String,
        content: Vec<Part>,
        is_error: bool,
    },
    /// Model reasoning. `text` may be empty (encrypted or redacted reasoning).
    Thinking {
        text: String,
        /// An opaque artefact (Anthropic signature, Responses encrypted content, Gemini
        /// thought signature) and the dialect that made it.
        artefact: Option<(Origin, String)>,
        /// Anthropic `redacted_thinking` data.
        redacted: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Value,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: Option<bool>,
    },
}

/// Reasoning controls: an effort word (`minimal`..`high`) and/or a token budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reasoning {
    pub effort: Option<String>,
    pub budget_tokens: Option<u64>,
    /// Reasoning explicitly off.
    pub disabled: bool,
}

impl Reasoning {
    /// A budget for dialects that take one, from the effort word when no budget was given.
    pub fn budget(&self) -> Option<u64> {
        if self.disabled {
            return None;
        }
        self.budget_tokens
            .or_else(|| match self.effort.as_deref()? {
                "minimal" => Some(1024),
                "low" => Some(2048),
                "medium" => Some(8192),
                "high" => Some(24576),
                _ => None,
            })
    }

    /// An effort word for dialects that take one, from the budget when no word was given.
    pub fn effort(&self) -> Option<String> {
        if self.disabled {
            return None;
        }
        self.effort.clone().or_else(|| {
            let b = self.budget_tokens?;
            Some(
                match b {
                    0..=1535 => "minimal",
                    1536..=4095 => "low",
                    4096..=16383 => "medium",
                    _ => "high",
                }
                .to_string(),
            )
        })
    }
}

/// A request, whatever dialect it came in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// System, developer and `instructions` texts, in order.
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub response_format: Option<ResponseFormat>,
    pub reasoning: Option<Reasoning>,
    /// An end-user id (`user`, `metadata.user_id`, `safety_identifier`).
    pub user: Option<String>,
    /// Whether the client asked for a stream (set by the caller; Gemini says it in the URL).
    pub stream: bool,
    /// Things in the request that the target cannot express, for the log.
    pub dropped: Vec<String>,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    StopSequence,
    /// The upstream stopped for a reason with no equivalent (reported as a plain stop).
    Other,
}

/// Token counts, with the parts the dialects break out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, cached ones included.
    pub input: u64,
    pub output: u64,
    /// Input tokens read from the provider's prompt cache (part of `input`).
    pub cached_input: u64,
    /// Input tokens written to the cache (Anthropic; part of `input`).
    pub cache_write: u64,
    /// Reasoning tokens (part of `output`).
    pub reasoning: u64,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: String,
    pub model: String,
    pub parts: Vec<Part>,
    pub finish: Finish,
    pub usage: Option<Usage>,
    pub created: u64,
}

/// One step of a streamed response. Decoders emit them; encoders turn them into the client's
/// events. Indices of tool calls are per response, counted from 0 in order of appearance.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// The response has started.
    Start {
        id: String,
        model: String,
    },
    Text(String),
    Thinking(String),
    /// An artefact for the reasoning block being streamed.
    ThinkingArtefact(Origin, String),
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolCallArgs {
        index: usize,
        fragment: String,
    },
    /// Token counts; later reports replace earlier ones field by field (non-zero wins).
    Usage(Usage),
    Finish(Finish),
    /// The upstream's success terminator: the encoder closes everything it opened.
    End,
}

/// Merges a later usage report into an earlier one: non-zero fields win.
pub fn merge_usage(into: &mut Usage, later: &Usage) {
    for (a, b) in [
        (&mut into.input, later.input),
        (&mut into.output, later.output),
        (&mut into.cached_input, later.cached_input),
        (&mut into.cache_write, later.cache_write),
        (&mut into.reasoning, later.reasoning),
    ] {
        if b != 0 {
            *a = b;
        }
    }
}

/// Text of the parts that are text, joined.
pub fn text_of(parts: &[Part]) -> String {
    let mut s = String::new();
    for p in parts {
        if let Part::Text(t) = p {
            s.push_str(t);
        }
    }
    s
}
