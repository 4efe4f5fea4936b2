//! The translator slot: one converter per (client endpoint, upstream endpoint) pair, looked up
//! in one table. The executor asks for a [`Codec`] per attempt, so a route can fail over from a
//! same-dialect target (passthrough) to a target of another dialect (translated).
//!
//! Passthrough is not a translator: it forwards the client's bytes with only the model
//! rewritten, and upstream events byte for byte. Translators are pure functions over bytes and
//! typed values; they never do I/O.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::sse::SseEvent;
use super::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot translate this request: {0}")]
    Request(String),
    #[error("cannot translate the upstream response: {0}")]
    Response(String),
}

/// Converts requests and responses between two endpoints.
pub trait Translator: Send + Sync {
    /// The upstream request body for `target_model`.
    fn request(&self, client_body: &[u8], target_model: &str) -> Result<Bytes, TranslateError>;
    /// The client's response body from the upstream's.
    fn response(&self, upstream_body: &[u8]) -> Result<Bytes, TranslateError>;
    /// A fresh state machine for one streamed response.
    fn stream(&self) -> Box<dyn StreamTranslator>;
}

/// Turns upstream stream events into client stream events, one event at a time.
pub trait StreamTranslator: Send {
    /// The client events (complete SSE frames) produced by one upstream event.
    fn event(&mut self, upstream: &SseEvent) -> Result<Vec<Bytes>, TranslateError>;
}

/// How one attempt's bodies are handled.
#[derive(Clone)]
pub enum Codec {
    /// Same endpoint on both sides: rewrite the model, forward bytes.
    Passthrough,
    Translated(Arc<dyn Translator>),
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Codec::Passthrough => f.write_str("Passthrough"),
            Codec::Translated(_) => f.write_str("Translated"),
        }
    }
}

/// Every translator Fluxgate knows, by (client, upstream) endpoint.
#[derive(Default, Clone)]
pub struct TranslatorRegistry {
    table: HashMap<(Endpoint, Endpoint), Arc<dyn Translator>>,
}

impl TranslatorRegistry {
    /// The built-in table.
    pub fn builtin() -> Self {
        Self::default()
    }

    pub fn register(&mut self, client: Endpoint, upstream: Endpoint, t: Arc<dyn Translator>) {
        self.table.insert((client, upstream), t);
    }

    /// The codec for an attempt, or `None` when no translator covers the pair.
    pub fn codec(&self, client: Endpoint, upstream: Endpoint) -> Option<Codec> {
        if client == upstream {
            return Some(Codec::Passthrough);
        }
        self.table
            .get(&(client, upstream))
            .cloned()
            .map(Codec::Translated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Upper;
    impl Translator for Upper {
        fn request(&self, b: &[u8], _m: &str) -> Result<Bytes, TranslateError> {
            Ok(Bytes::from(b.to_ascii_uppercase()))
        }
        fn response(&self, b: &[u8]) -> Result<Bytes, TranslateError> {
            Ok(Bytes::copy_from_slice(b))
        }
        fn stream(&self) -> Box<dyn StreamTranslator> {
            struct S;
            impl StreamTranslator for S {
                fn event(&mut self, e: &SseEvent) -> Result<Vec<Bytes>, TranslateError> {
                    Ok(vec![e.raw.clone()])
                }
            }
            Box::new(S)
        }
    }

    #[test]
    fn lookup() {
        let mut r = TranslatorRegistry::builtin();
        assert!(matches!(
            r.codec(Endpoint::Messages, Endpoint::Messages),
            Some(Codec::Passthrough)
        ));
        assert!(r
            .codec(Endpoint::Messages, Endpoint::ChatCompletions)
            .is_none());
        r.register(
            Endpoint::Messages,
            Endpoint::ChatCompletions,
            Arc::new(Upper),
        );
        assert!(matches!(
            r.codec(Endpoint::Messages, Endpoint::ChatCompletions),
            Some(Codec::Translated(_))
        ));
    }
}
