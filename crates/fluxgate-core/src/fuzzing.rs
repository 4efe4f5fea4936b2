//! Entry points shared by the `cargo fuzz` targets (`fuzz/`) and the regression test that
//! replays every saved crash (`tests/fuzz_regressions.rs`). Each must never panic, whatever
//! the bytes; the properties they check are asserted, so a violation is a crash too.

use crate::config::Config;
use crate::formats::sse::{SseEvent, SseParser};
use crate::formats::translate::{ClientHints, Pair, Target, Translator, Vendor};
use crate::formats::Dialect;

/// Every fuzz target by name, for the regression replay.
pub const TARGETS: &[&str] = &[
    "sse_codec",
    "config",
    "chat_to_responses",
    "chat_to_anthropic",
    "chat_to_gemini",
    "responses_to_chat",
    "responses_to_anthropic",
    "responses_to_gemini",
    "anthropic_to_chat",
    "anthropic_to_responses",
    "anthropic_to_gemini",
    "gemini_to_chat",
    "gemini_to_responses",
    "gemini_to_anthropic",
];

/// Runs the target called `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "sse_codec" => sse_codec(data),
        "config" => config(data),
        other => {
            let Some((c, u)) = other.split_once("_to_") else {
                return;
            };
            if let (Some(c), Some(u)) = (dialect(c), dialect(u)) {
                translator(c, u, data);
            }
        }
    }
}

fn dialect(s: &str) -> Option<Dialect> {
    Some(match s {
        "chat" => Dialect::OpenaiChat,
        "responses" => Dialect::OpenaiResponses,
        "anthropic" => Dialect::Anthropic,
        "gemini" => Dialect::Gemini,
        _ => return None,
    })
}

/// The parser yields the same events however the input is cut.
pub fn sse_codec(data: &[u8]) {
    let whole = parse(data, &[]);
    let cuts: Vec<usize> = data.iter().step_by(7).map(|b| *b as usize).collect();
    let pieces = parse(data, &cuts);
    assert_eq!(whole, pieces, "chunking changed the events");
}

fn parse(data: &[u8], cuts: &[usize]) -> Result<Vec<SseEvent>, ()> {
    let mut p = SseParser::with_limit(64 * 1024);
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts {
        let end = (at + c).min(data.len());
        out.extend(p.feed(&data[at..end]).map_err(|_| ())?);
        at = end;
    }
    out.extend(p.feed(&data[at..]).map_err(|_| ())?);
    out.extend(p.finish());
    Ok(out)
}

/// The config loader returns a value or a typed error.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_toml(text, std::path::Path::new("fuzz.toml"));
    }
}

/// One translator on arbitrary bytes: as a client request, as an upstream response, and as an
/// upstream stream.
pub fn translator(client: Dialect, upstream: Dialect, data: &[u8]) {
    let pair = Pair { client, upstream };
    let target = Target {
        model: "m",
        stream: data.first().is_some_and(|b| b & 1 == 1),
        vendor: Vendor::Other,
        now: 0,
    };
    if let Ok(t) = pair.request(data, &target) {
        // Whatever is produced is JSON.
        assert!(serde_json::from_slice::<serde_json::Value>(&t.body).is_ok());
    }
    let hints = ClientHints {
        include_usage: true,
        ..ClientHints::default()
    };
    if let Ok(b) = pair.response(data, &hints) {
        assert!(serde_json::from_slice::<serde_json::Value>(&b).is_ok());
    }
    let mut st = pair.stream(&hints);
    let mut p = SseParser::with_limit(64 * 1024);
    if let Ok(events) = p.feed(data) {
        for ev in events.iter().chain(p.finish().iter()) {
            if st.event(ev).is_err() {
                break;
            }
        }
    }
}
