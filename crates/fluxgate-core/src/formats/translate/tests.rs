//! Golden tables per pair and direction, artefact rules, and property tests over streams:
//! whatever dialect an upstream streams in, the client's concatenated deltas equal the
//! translated complete message, tool arguments reassemble exactly, and usage and the
//! terminator are reported once.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::ir::*;
use super::*;
use crate::formats::sse::SseParser;

fn target(model: &str, vendor: Vendor) -> Target<'_> {
    Target {
        model,
        stream: false,
        vendor,
        now: 1_700_000_000,
    }
}

fn translate(client: Dialect, upstream: Dialect, body: Value, t: &Target) -> Value {
    let out = Pair { client, upstream }
        .request(body.to_string().as_bytes(), t)
        .expect("translates");
    serde_json::from_slice(&out.body).expect("json")
}

#[test]
fn the_table_covers_every_pair() {
    let r = TranslatorRegistry::builtin();
    for c in DIALECTS {
        for u in DIALECTS {
            let codec = r.codec(main_endpoint(c), main_endpoint(u));
            match codec {
                Some(Codec::Passthrough) => assert_eq!(c, u),
                Some(Codec::Translated(_)) => assert_ne!(c, u),
                None => panic!("no codec for {c:?} -> {u:?}"),
            }
        }
    }
    assert!(r.codec(Endpoint::Embeddings, Endpoint::Messages).is_none());
}

fn claude_code_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are Claude Code."}, {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "sig-abc"},
                {"type": "text", "text": "I will list the files."},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls", "timeout": 5}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "a.txt\nb.txt"}]},
                {"type": "text", "text": "Now read a.txt"}
            ]}
        ],
        "tools": [
            {"name": "Bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}}, "required": ["command"]}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 1,
        "metadata": {"user_id": "user_42"},
        "stream": true
    })
}

#[test]
fn golden_anthropic_to_chat_request() {
    let mut t = target("gpt-4.1", Vendor::OpenAi);
    t.stream = true;
    let out = translate(
        Dialect::Anthropic,
        Dialect::OpenaiChat,
        claude_code_request(),
        &t,
    );
    let expected = json!({
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are Claude Code.\n\nBe brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": "I will list the files.", "tool_calls": [
                {"id": "toolu_01", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\",\"timeout\":5}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "a.txt\nb.txt"},
            {"role": "user", "content": "Now read a.txt"}
        ],
        "max_completion_tokens": 32000,
        "temperature": 1.0,
        "stop": ["\n\nHuman:"],
        "tools": [{"type": "function", "function": {"name": "Bash", "parameters": {"type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}}, "required": ["command"]}, "description": "Run a command"}}],
        "parallel_tool_calls": false,
        "tool_choice": "auto",
        "user": "user_42",
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    assert_eq!(
        out,
        expected,
        "{}",
        serde_json::to_string_pretty(&out).unwrap_or_default()
    );
}

#[test]
fn golden_anthropic_to_gemini_and_responses_requests() {
    let g = translate(
        Dialect::Anthropic,
        Dialect::Gemini,
        claude_code_request(),
        &target("gemini-2.5-pro", Vendor::Gemini),
    );
    assert_eq!(
        g["systemInstruction"],
        json!({"parts": [{"text": "You are Claude Code.\n\nBe brief."}]})
    );
    assert_eq!(
        g["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    );
    // The Anthropic signature is not Gemini's: the thinking is dropped, not sent.
    assert_eq!(
        g["contents"][1],
        json!({"role": "model", "parts": [
            {"text": "I will list the files."},
            {"functionCall": {"name": "Bash", "args": {"command": "ls", "timeout": 5}}}
        ]})
    );
    assert_eq!(
        g["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "Bash", "response": {"result": "a.txt\nb.txt"}}})
    );
    assert_eq!(g["tools"][0]["functionDeclarations"][0]["name"], "Bash");
    assert_eq!(g["generationConfig"]["maxOutputTokens"], 32000);
    assert_eq!(
        g["generationConfig"]["stopSequences"],
        json!(["\n\nHuman:"])
    );

    let r = translate(
        Dialect::Anthropic,
        Dialect::OpenaiResponses,
        claude_code_request(),
        &target("gpt-5", Vendor::OpenAi),
    );
    assert_eq!(r["instructions"], "You are Claude Code.\n\nBe brief.");
    assert_eq!(
        r["input"][1],
        json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "I will list the files.", "annotations": []}]})
    );
    assert_eq!(
        r["input"][2],
        json!({"type": "function_call", "call_id": "toolu_01", "name": "Bash", "arguments": "{\"command\":\"ls\",\"timeout\":5}"})
    );
    assert_eq!(
        r["input"][3],
        json!({"type": "function_call_output", "call_id": "toolu_01", "output": "a.txt\nb.txt"})
    );
    assert_eq!(r["max_output_tokens"], 32000);
    // gpt-5 is a reasoning model: temperature goes, store is off.
    assert!(r.get("temperature").is_none());
    assert_eq!(r["store"], false);
}

#[test]
fn golden_chat_to_anthropic_request() {
    let body = json!({
        "model": "route",
        "messages": [
            {"role": "developer", "content": "Answer in JSON."},
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "24C"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "max_tokens": 300,
        "temperature": 1.5,
        "stop": "END",
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"}
    });
    let out = translate(
        Dialect::OpenaiChat,
        Dialect::Anthropic,
        body,
        &target("claude-sonnet-4-5", Vendor::Anthropic),
    );
    let expected = json!({
        "model": "claude-sonnet-4-5",
        // Thinking is off: the tool choice is forced (Anthropic refuses both together).
        "max_tokens": 300,
        "system": "Answer in JSON.\n\nRespond with a single JSON object and nothing else.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather in Paris and Rome?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "18C"}]},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "24C"}]}
            ]}
        ],
        "temperature": 1.0,
        "stop_sequences": ["END"],
        "tools": [{"name": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "any"}
    });
    assert_eq!(
        out,
        expected,
        "{}",
        serde_json::to_string_pretty(&out).unwrap_or_default()
    );
}

#[test]
fn golden_codex_responses_to_chat_request() {
    let body = json!({
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: workspace-write"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "I should call shell."}], "encrypted_content": "gAAAA-opaque"},
            {"type": "function_call", "call_id": "call_a", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "README.md"},
            {"type": "custom_tool_call", "call_id": "call_b", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "call_b", "output": "Done"}
        ],
        "tools": [
            {"type": "function", "name": "shell", "description": "Runs a command", "strict": false, "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}},
            {"type": "custom", "name": "apply_patch", "description": "Apply a patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: patch"}},
            {"type": "web_search"}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc"
    });
    let mut t = target("deepseek-chat", Vendor::DeepSeek);
    t.stream = true;
    let tr = Pair {
        client: Dialect::OpenaiResponses,
        upstream: Dialect::OpenaiChat,
    }
    .request(body.to_string().as_bytes(), &t)
    .expect("translates");
    assert_eq!(tr.hints.custom_tools, vec!["apply_patch".to_string()]);
    assert!(
        tr.notes.iter().any(|n| n.contains("web_search")),
        "{:?}",
        tr.notes
    );
    let out: Value = serde_json::from_slice(&tr.body).expect("json");
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": "You are Codex.\n\nsandbox: workspace-write"})
    );
    assert_eq!(
        out["messages"][1],
        json!({"role": "user", "content": "list files"})
    );
    // The Responses reasoning item is OpenAI's; DeepSeek gets none of it.
    assert_eq!(
        out["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "shell", "arguments": "{\"command\":[\"ls\"]}"}}
        ]})
    );
    assert_eq!(
        out["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_a", "content": "README.md"})
    );
    assert_eq!(
        out["messages"][4]["tool_calls"][0]["function"],
        json!({"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"})
    );
    assert_eq!(out["tools"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        out["tools"][1]["function"]["parameters"]["required"],
        json!(["input"])
    );
    assert!(out["tools"][1]["function"]["description"]
        .as_str()
        .unwrap_or("")
        .contains("start: patch"));
    assert_eq!(out["max_tokens"], Value::Null);
    assert!(
        out.get("reasoning_effort").is_none(),
        "deepseek-chat is not a reasoning model"
    );
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
}

#[test]
fn a_forced_builtin_tool_is_a_clear_error() {
    let body = json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}});
    let err = Pair {
        client: Dialect::OpenaiResponses,
        upstream: Dialect::Anthropic,
    }
    .request(
        body.to_string().as_bytes(),
        &target("claude", Vendor::Anthropic),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("web_search"), "{err}");
    assert!(responses::is_builtin("web_search"));
}

#[test]
fn golden_gemini_to_chat_request() {
    let body = json!({
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}, {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}}]},
            {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}, "thoughtSignature": "gsig"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"temp": -3}}}]}
        ],
        "tools": [{"functionDeclarations": [{"name": "weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}, {"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
        "generationConfig": {"maxOutputTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["x"], "responseMimeType": "application/json"}
    });
    let out = translate(
        Dialect::Gemini,
        Dialect::OpenaiChat,
        body,
        &target("gpt-4o", Vendor::OpenAi),
    );
    let expected = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1_weather", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1_weather", "content": "{\"temp\":-3}"}
        ],
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["x"],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {"type": "json_object"}
    });
    assert_eq!(
        out,
        expected,
        "{}",
        serde_json::to_string_pretty(&out).unwrap_or_default()
    );
}

#[test]
fn golden_chat_to_gemini_request_cleans_schemas() {
    let body = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "strict": true, "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
            "properties": {"a": {"type": ["string", "null"], "description": "d"}, "b": {"type": "array", "items": {"type": "integer", "examples": [1]}}},
            "required": ["a"]}}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": false}}}
    });
    let out = translate(
        Dialect::OpenaiChat,
        Dialect::Gemini,
        body,
        &target("gemini-2.5-flash", Vendor::Gemini),
    );
    assert_eq!(
        out["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({"type": "object", "properties": {"a": {"type": "string", "nullable": true, "description": "d"}, "b": {"type": "array", "items": {"type": "integer"}}}, "required": ["a"]})
    );
    assert_eq!(
        out["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(
        out["generationConfig"]["responseSchema"],
        json!({"type": "object", "properties": {"x": {"type": "string"}}})
    );
}

#[test]
fn mistral_gets_nine_character_tool_ids_that_still_match() {
    let body = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01ABCDEFG", "name": "t", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01ABCDEFG", "content": "ok"}]}
    ]});
    let mut t = target("mistral-large-latest", Vendor::Mistral);
    t.stream = true;
    let out = translate(Dialect::Anthropic, Dialect::OpenaiChat, body, &t);
    let call = out["messages"][1]["tool_calls"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(call.len(), 9);
    assert!(call.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(out["messages"][2]["tool_call_id"], call.as_str());
    assert_eq!(out["max_tokens"], 10);
    assert!(out.get("stream_options").is_none());
}

#[test]
fn golden_responses() {
    // An OpenAI Chat answer with a tool call, for an Anthropic client.
    let chat = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Checking.",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "prompt_tokens_details": {"cached_tokens": 60}}});
    let pair = Pair {
        client: Dialect::Anthropic,
        upstream: Dialect::OpenaiChat,
    };
    let out: Value = serde_json::from_slice(
        &pair
            .response(chat.to_string().as_bytes(), &ClientHints::default())
            .expect("ok"),
    )
    .expect("json");
    assert_eq!(
        out,
        json!({
            "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o",
            "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "call_9", "name": "weather", "input": {"city": "Oslo"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 40, "output_tokens": 20, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 0}
        })
    );

    // An Anthropic answer with thinking, for a Chat client and for a Responses client.
    let msg = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "thinking", "thinking": "hmm", "signature": "SIG"}, {"type": "text", "text": "Hello"}],
        "stop_reason": "max_tokens", "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 90}});
    let chat_out: Value = serde_json::from_slice(
        &Pair {
            client: Dialect::OpenaiChat,
            upstream: Dialect::Anthropic,
        }
        .response(msg.to_string().as_bytes(), &ClientHints::default())
        .expect("ok"),
    )
    .expect("json");
    assert_eq!(chat_out["choices"][0]["message"]["content"], "Hello");
    assert_eq!(
        chat_out["choices"][0]["message"]["reasoning_content"],
        "hmm"
    );
    assert_eq!(chat_out["choices"][0]["finish_reason"], "length");
    assert_eq!(chat_out["usage"]["prompt_tokens"], 100);
    assert_eq!(
        chat_out["usage"]["prompt_tokens_details"]["cached_tokens"],
        90
    );

    let hints = ClientHints {
        custom_tools: vec![],
        ..ClientHints::default()
    };
    let resp_out: Value = serde_json::from_slice(
        &Pair {
            client: Dialect::OpenaiResponses,
            upstream: Dialect::Anthropic,
        }
        .response(msg.to_string().as_bytes(), &hints)
        .expect("ok"),
    )
    .expect("json");
    assert_eq!(resp_out["object"], "response");
    assert_eq!(resp_out["status"], "incomplete");
    assert_eq!(
        resp_out["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(resp_out["output"][0]["type"], "reasoning");
    assert_eq!(resp_out["output"][0]["summary"][0]["text"], "hmm");
    // The Anthropic signature travels wrapped, marked with its origin.
    assert_eq!(
        resp_out["output"][0]["encrypted_content"],
        "fgx1.anthropic.SIG"
    );
    assert_eq!(resp_out["output"][1]["content"][0]["text"], "Hello");
    assert!(resp_out["id"].as_str().unwrap_or("").starts_with("resp_fg"));

    // A Gemini answer with a function call, for a Chat client.
    let gem = json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "TS"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3, "thoughtsTokenCount": 4}, "modelVersion": "gemini-2.5-pro", "responseId": "r1"});
    let out: Value = serde_json::from_slice(
        &Pair {
            client: Dialect::OpenaiChat,
            upstream: Dialect::Gemini,
        }
        .response(gem.to_string().as_bytes(), &ClientHints::default())
        .expect("ok"),
    )
    .expect("json");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"][0]["function"],
        json!({"name": "f", "arguments": "{\"a\":1}"})
    );
    assert_eq!(out["usage"]["completion_tokens"], 7);
    assert_eq!(
        out["usage"]["completion_tokens_details"]["reasoning_tokens"],
        4
    );
}

#[test]
fn artefacts_return_to_their_maker_and_nowhere_else() {
    // Codex (Responses) got a reasoning item carrying an Anthropic signature; it sends it back.
    let codex = json!({"model": "m", "input": [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}], "encrypted_content": "fgx1.anthropic.SIG"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
        {"type": "message", "role": "user", "content": "again"}
    ]});
    // To Anthropic: the thinking block is restored with its own signature.
    let a = translate(
        Dialect::OpenaiResponses,
        Dialect::Anthropic,
        codex.clone(),
        &target("claude-x", Vendor::Anthropic),
    );
    assert_eq!(
        a["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "hmm", "signature": "SIG"})
    );
    // To Gemini and Chat: dropped.
    let g = translate(
        Dialect::OpenaiResponses,
        Dialect::Gemini,
        codex.clone(),
        &target("gemini-2.5-pro", Vendor::Gemini),
    );
    assert_eq!(
        g["contents"][1],
        json!({"role": "model", "parts": [{"text": "Hello"}]})
    );
    let c = translate(
        Dialect::OpenaiResponses,
        Dialect::OpenaiChat,
        codex.clone(),
        &target("gpt-4o", Vendor::OpenAi),
    );
    assert_eq!(
        c["messages"][1],
        json!({"role": "assistant", "content": "Hello"})
    );

    // Passthrough to OpenAI Responses: the foreign reasoning item is removed before sending.
    let stripped = strip_foreign_artefacts(Dialect::OpenaiResponses, codex.to_string().as_bytes())
        .expect("changed");
    let v: Value = serde_json::from_slice(&stripped).expect("json");
    assert_eq!(v["input"].as_array().map(Vec::len), Some(3));
    // Nothing foreign: untouched, not even parsed.
    let own = json!({"model": "m", "input": [{"type": "reasoning", "summary": [], "encrypted_content": "gAAAA"}]});
    assert!(
        strip_foreign_artefacts(Dialect::OpenaiResponses, own.to_string().as_bytes()).is_none()
    );

    // Claude Code got a thinking block from a Gemini upstream; on failover to Anthropic the
    // block is removed, while Anthropic's own blocks stay.
    let cc = json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": "fgx1.gemini.TS"},
            {"type": "thinking", "thinking": "real", "signature": "REAL"},
            {"type": "text", "text": "ok"}]},
        {"role": "user", "content": "more"}]});
    let s: Value = serde_json::from_slice(
        &strip_foreign_artefacts(Dialect::Anthropic, cc.to_string().as_bytes()).expect("changed"),
    )
    .expect("json");
    assert_eq!(
        s["messages"][1]["content"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(s["messages"][1]["content"][0]["signature"], "REAL");
    // ...and to Gemini the Gemini signature comes back on the next part.
    let g = translate(
        Dialect::Anthropic,
        Dialect::Gemini,
        json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": "fgx1.gemini.TS"},
            {"type": "tool_use", "id": "c1", "name": "f", "input": {}}]}]}),
        &target("gemini-3-pro-preview", Vendor::Gemini),
    );
    assert_eq!(g["contents"][1]["parts"][0]["thoughtSignature"], "TS");
}

#[test]
fn gemini_three_gets_a_placeholder_signature_for_foreign_calls() {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "r"}]});
    let g3 = translate(
        Dialect::OpenaiChat,
        Dialect::Gemini,
        body.clone(),
        &target("gemini-3-pro-preview", Vendor::Gemini),
    );
    assert_eq!(
        g3["contents"][1]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    let g25 = translate(
        Dialect::OpenaiChat,
        Dialect::Gemini,
        body,
        &target("gemini-2.5-pro", Vendor::Gemini),
    );
    assert!(g25["contents"][1]["parts"][0]
        .get("thoughtSignature")
        .is_none());
}

#[test]
fn bad_requests_are_typed_errors() {
    for c in DIALECTS {
        for u in DIALECTS {
            if c == u {
                continue;
            }
            let p = Pair {
                client: c,
                upstream: u,
            };
            let t = target("m", Vendor::Other);
            assert!(matches!(
                p.request(b"not json", &t),
                Err(TranslateError::Request(_))
            ));
            assert!(matches!(
                p.response(b"[1,2]", &ClientHints::default()),
                Err(TranslateError::Response(_))
            ));
        }
    }
}

#[test]
fn local_token_estimate() {
    let n = estimate::count(
        Dialect::Anthropic,
        claude_code_request().to_string().as_bytes(),
    )
    .expect("counts");
    // Two short texts, one image, one tool call and result, one tool definition.
    assert!((1_650..1_800).contains(&n), "{n}");
    assert_eq!(estimate::text_tokens("abcdefgh"), 2);
    assert_eq!(estimate::text_tokens("日本語"), 3);
}

// ---- streams ----

/// What a client finally holds after a stream or a complete response.
#[derive(Debug, Default, PartialEq)]
struct Assembled {
    text: String,
    thinking: String,
    tools: Vec<(String, String, Value)>,
    finish: Option<Finish>,
    input: u64,
    output: u64,
    cached: u64,
    ends: usize,
}

fn assemble(deltas: &[Delta]) -> Assembled {
    let mut a = Assembled::default();
    let mut args: Vec<String> = Vec::new();
    for d in deltas {
        match d {
            Delta::Text(t) => a.text.push_str(t),
            Delta::Thinking(t) => a.thinking.push_str(t),
            Delta::ToolCallStart { index, id, name } => {
                assert_eq!(*index, a.tools.len(), "tool indices count from 0 in order");
                a.tools.push((id.clone(), name.clone(), Value::Null));
                args.push(String::new());
            }
            Delta::ToolCallArgs { index, fragment } => args[*index].push_str(fragment),
            Delta::Usage(u) => {
                let mut cur = Usage {
                    input: a.input,
                    output: a.output,
                    cached_input: a.cached,
                    ..Usage::default()
                };
                merge_usage(&mut cur, u);
                (a.input, a.output, a.cached) = (cur.input, cur.output, cur.cached_input);
            }
            Delta::Finish(f) => a.finish = Some(*f),
            Delta::End => a.ends += 1,
            Delta::Start { .. } | Delta::ThinkingArtefact(..) => {}
        }
    }
    for (t, s) in a.tools.iter_mut().zip(args) {
        t.2 = serde_json::from_str(&s).unwrap_or(Value::String(s));
    }
    a
}

fn assemble_response(r: &Response) -> Assembled {
    let mut a = Assembled::default();
    for p in &r.parts {
        match p {
            Part::Text(t) => a.text.push_str(t),
            Part::Thinking { text, .. } => a.thinking.push_str(text),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => a.tools.push((
                id.clone(),
                name.clone(),
                serde_json::from_str(arguments).unwrap_or(Value::Null),
            )),
            _ => {}
        }
    }
    a.finish = Some(r.finish);
    if let Some(u) = r.usage {
        (a.input, a.output, a.cached) = (u.input, u.output, u.cached_input);
    }
    a.ends = 1;
    a
}

/// One piece of generated model output.
#[derive(Debug, Clone)]
enum Item {
    Text(Vec<String>),
    Thinking(Vec<String>),
    Tool {
        name: String,
        args: Vec<(String, i64)>,
        cuts: Vec<usize>,
    },
}

fn item() -> impl Strategy<Value = Item> {
    let chunks = proptest::collection::vec("[a-zA-Z0-9 .,\"\\\\\n\t\x01{}é日]{1,12}", 1..5);
    prop_oneof![
        3 => chunks.clone().prop_map(Item::Text),
        1 => chunks.prop_map(Item::Thinking),
        2 => ("[a-z_]{1,10}", proptest::collection::vec(("[a-z]{1,6}", any::<i64>()), 0..4), proptest::collection::vec(0usize..40, 0..4))
            .prop_map(|(name, args, cuts)| Item::Tool { name, args, cuts }),
    ]
}

fn to_deltas(items: &[Item], finish: Finish, usage: Usage) -> (Vec<Delta>, Response) {
    let mut d = vec![Delta::Start {
        id: "up_1".into(),
        model: "up-model".into(),
    }];
    let mut parts = Vec::new();
    let mut tools = 0usize;
    let mut last_text = false;
    for it in items {
        match it {
            Item::Text(chunks) => {
                for c in chunks {
                    d.push(Delta::Text(c.clone()));
                }
                let t: String = chunks.concat();
                match parts.last_mut() {
                    Some(Part::Text(prev)) if last_text => prev.push_str(&t),
                    _ => parts.push(Part::Text(t)),
                }
                last_text = true;
            }
            Item::Thinking(chunks) => {
                for c in chunks {
                    d.push(Delta::Thinking(c.clone()));
                }
                parts.push(Part::Thinking {
                    text: chunks.concat(),
                    artefact: None,
                    redacted: false,
                });
                last_text = false;
            }
            Item::Tool { name, args, cuts } => {
                let mut obj = serde_json::Map::new();
                for (k, v) in args {
                    obj.insert(k.clone(), json!(v));
                }
                let s = Value::Object(obj).to_string();
                let id = format!("call_{tools}");
                d.push(Delta::ToolCallStart {
                    index: tools,
                    id: id.clone(),
                    name: name.clone(),
                });
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (s.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut prev = 0;
                for c in cuts.into_iter().chain([s.len()]) {
                    if c > prev && s.is_char_boundary(c) && s.is_char_boundary(prev) {
                        d.push(Delta::ToolCallArgs {
                            index: tools,
                            fragment: s[prev..c].to_string(),
                        });
                        prev = c;
                    }
                }
                parts.push(Part::ToolCall {
                    id,
                    name: name.clone(),
                    arguments: s,
                });
                tools += 1;
                last_text = false;
            }
        }
    }
    let finish = if tools > 0 && finish == Finish::Stop {
        Finish::ToolCalls
    } else {
        finish
    };
    d.push(Delta::Usage(usage));
    d.push(Delta::Finish(finish));
    d.push(Delta::End);
    let resp = Response {
        id: "up_1".into(),
        model: "up-model".into(),
        parts,
        finish,
        usage: Some(usage),
        created: 1,
    };
    (d, resp)
}

/// Bytes an upstream of dialect `d` would stream for these deltas.
fn upstream_bytes(d: Dialect, deltas: &[Delta]) -> Vec<u8> {
    let mut enc = encoder(
        d,
        &ClientHints {
            include_usage: true,
            model: "up-model".into(),
            ..ClientHints::default()
        },
    );
    let mut out = Vec::new();
    for x in deltas {
        enc.delta(x.clone(), &mut out).expect("encodes");
    }
    out.concat()
}

fn parse_all(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut evs = Vec::new();
    let mut prev = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts.into_iter().chain([bytes.len()]) {
        if c >= prev {
            evs.extend(p.feed(&bytes[prev..c]).expect("parses"));
            prev = c;
        }
    }
    evs.extend(p.finish());
    evs
}

fn decode_all(d: Dialect, evs: &[SseEvent]) -> Vec<Delta> {
    let mut dec = decoder(d);
    let mut out = Vec::new();
    for e in evs {
        dec.event(e, &mut out).expect("decodes");
    }
    out
}

fn usage_reports(d: Dialect, evs: &[SseEvent]) -> usize {
    evs.iter()
        .filter(|e| match d {
            Dialect::OpenaiChat => e.data.contains("\"usage\""),
            Dialect::Anthropic => e.event.as_deref() == Some("message_delta"),
            Dialect::OpenaiResponses => {
                e.event.as_deref() == Some("response.completed")
                    || e.event.as_deref() == Some("response.incomplete")
            }
            Dialect::Gemini => e.data.contains("usageMetadata"),
        })
        .count()
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![
        Just(Dialect::OpenaiChat),
        Just(Dialect::OpenaiResponses),
        Just(Dialect::Anthropic),
        Just(Dialect::Gemini),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Upstream in any dialect, client in any other: the client's stream, however it is cut,
    /// reassembles to the same message as the translated complete response.
    #[test]
    fn streams_reassemble_to_the_complete_message(
        client in dialect(),
        upstream in dialect(),
        items in proptest::collection::vec(item(), 0..6),
        length in any::<bool>(),
        input in 1u64..100_000,
        output in 1u64..10_000,
        cached in 0u64..1_000,
        cuts in proptest::collection::vec(0usize..100_000, 0..8),
    ) {
        prop_assume!(client != upstream);
        let finish = if length { Finish::Length } else { Finish::Stop };
        let usage = Usage { input: input + cached, output, cached_input: cached, ..Usage::default() };
        let (deltas, resp) = to_deltas(&items, finish, usage);
        let pair = Pair { client, upstream };
        let hints = ClientHints { include_usage: true, model: "m".into(), ..ClientHints::default() };

        // Stream path.
        let up_events = parse_all(&upstream_bytes(upstream, &deltas), &cuts);
        let mut st = pair.stream(&hints);
        let mut client_bytes = Vec::new();
        for e in &up_events {
            for b in st.event(e).expect("translates") {
                client_bytes.extend_from_slice(&b);
            }
        }
        let client_events = parse_all(&client_bytes, &cuts);
        let streamed = assemble(&decode_all(client, &client_events));

        // Complete path.
        let up_body = encode_response(upstream, &resp, &hints).to_string();
        let client_body = pair.response(up_body.as_bytes(), &hints).expect("translates");
        let v: Value = serde_json::from_slice(&client_body).expect("json");
        let complete = assemble_response(&decode_response(client, &v).expect("decodes"));

        prop_assert_eq!(&streamed.text, &complete.text);
        prop_assert_eq!(&streamed.thinking, &complete.thinking);
        prop_assert_eq!(&streamed.tools, &complete.tools);
        prop_assert_eq!(streamed.finish, complete.finish);
        prop_assert_eq!((streamed.input, streamed.output, streamed.cached), (complete.input, complete.output, complete.cached));
        prop_assert_eq!(streamed.ends, 1, "one terminator");
        prop_assert_eq!(usage_reports(client, &client_events), 1, "usage reported once");

        // And both equal what the model produced.
        let original = assemble_response(&resp);
        prop_assert_eq!(&complete.text, &original.text);
        prop_assert_eq!(&complete.tools, &original.tools);
        prop_assert_eq!(&complete.thinking, &original.thinking);
        prop_assert_eq!(complete.finish, original.finish);
        prop_assert_eq!((complete.input, complete.output), (original.input, original.output));

        // Responses clients see strictly increasing sequence numbers from 0.
        if client == Dialect::OpenaiResponses {
            let seqs: Vec<u64> = client_events.iter()
                .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok()?.get("sequence_number")?.as_u64())
                .collect();
            prop_assert_eq!(seqs, (0..client_events.len() as u64).collect::<Vec<_>>());
        }
    }

    /// Decoding never panics on arbitrary JSON, in any dialect, as request, response or event.
    #[test]
    fn decoders_never_panic(d in dialect(), s in "\\PC{0,200}") {
        let _ = estimate::count(d, s.as_bytes());
        let ev = SseEvent { event: Some("content_block_delta".into()), data: s.clone(), raw: bytes::Bytes::new() };
        let mut out = Vec::new();
        let _ = decoder(d).event(&ev, &mut out);
        if let Ok(v) = serde_json::from_str::<Value>(&s) {
            let _ = decode_request(d, &v);
            let _ = decode_response(d, &v);
        }
    }
}

// ---- golden files: every pair, both directions ----

/// The same conversation in each dialect: a system prompt, a user turn with an image, an
/// assistant tool call, its result, a follow-up, one tool, and the common sampling fields.
fn canonical_request(d: Dialect) -> Value {
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    match d {
        Dialect::OpenaiChat => json!({
            "model": "client-model", "max_tokens": 256, "temperature": 0.5, "stop": ["END"],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather here?"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "-3C"},
                {"role": "user", "content": "Thanks. And tomorrow?"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather by city", "parameters": schema}}],
            "tool_choice": "auto"
        }),
        Dialect::OpenaiResponses => json!({
            "model": "client-model", "max_output_tokens": 256, "temperature": 0.5, "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather here?"}, {"type": "input_image", "image_url": "https://example.com/a.png"}]},
                {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "-3C"},
                {"role": "user", "content": "Thanks. And tomorrow?"}
            ],
            "tools": [{"type": "function", "name": "weather", "description": "Weather by city", "parameters": schema}],
            "tool_choice": "auto"
        }),
        Dialect::Anthropic => json!({
            "model": "client-model", "max_tokens": 256, "temperature": 0.5, "stop_sequences": ["END"], "system": "Be brief.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather here?"}, {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "-3C"}, {"type": "text", "text": "Thanks. And tomorrow?"}]}
            ],
            "tools": [{"name": "weather", "description": "Weather by city", "input_schema": schema}],
            "tool_choice": {"type": "auto"}
        }),
        Dialect::Gemini => json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Weather here?"}, {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}}]},
                {"role": "model", "parts": [{"functionCall": {"id": "call_1", "name": "weather", "args": {"city": "Oslo"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"id": "call_1", "name": "weather", "response": {"result": "-3C"}}}, {"text": "Thanks. And tomorrow?"}]}
            ],
            "tools": [{"functionDeclarations": [{"name": "weather", "description": "Weather by city", "parameters": schema}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {"maxOutputTokens": 256, "temperature": 0.5, "stopSequences": ["END"]}
        }),
    }
}

/// The same answer from each dialect: text, a tool call, usage with cached tokens.
fn canonical_response(d: Dialect) -> Value {
    match d {
        Dialect::OpenaiChat => {
            json!({"id": "up-1", "object": "chat.completion", "created": 7, "model": "up-model",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Checking.",
                "tool_calls": [{"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\",\"day\":1}"}}]}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150, "prompt_tokens_details": {"cached_tokens": 100}}})
        }
        Dialect::OpenaiResponses => {
            json!({"id": "up-1", "object": "response", "created_at": 7, "model": "up-model", "status": "completed",
            "output": [
                {"type": "message", "id": "m1", "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "id": "f1", "call_id": "call_2", "name": "weather", "arguments": "{\"city\":\"Oslo\",\"day\":1}", "status": "completed"}],
            "usage": {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150, "input_tokens_details": {"cached_tokens": 100}, "output_tokens_details": {"reasoning_tokens": 0}}})
        }
        Dialect::Anthropic => {
            json!({"id": "up-1", "type": "message", "role": "assistant", "model": "up-model",
            "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Oslo", "day": 1}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 20, "cache_read_input_tokens": 100, "output_tokens": 30}})
        }
        Dialect::Gemini => json!({"responseId": "up-1", "modelVersion": "up-model",
            "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [{"text": "Checking."}, {"functionCall": {"id": "call_2", "name": "weather", "args": {"city": "Oslo", "day": 1}}}]}}],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30, "cachedContentTokenCount": 100, "totalTokenCount": 150}}),
    }
}

fn name(d: Dialect) -> &'static str {
    match d {
        Dialect::OpenaiChat => "chat",
        Dialect::OpenaiResponses => "responses",
        Dialect::Anthropic => "anthropic",
        Dialect::Gemini => "gemini",
    }
}

/// Compares with the committed golden file; `UPDATE_GOLDEN=1` rewrites it instead.
fn golden(file: &str, actual: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/formats/translate/golden")
        .join(file);
    let text = serde_json::to_string_pretty(actual).expect("json") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing {}: run with UPDATE_GOLDEN=1 and review it",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&expected).expect("golden json");
    assert_eq!(&expected, actual, "{file} differs; got:\n{text}");
}

#[test]
fn golden_files_for_every_pair_and_direction() {
    for c in DIALECTS {
        for u in DIALECTS {
            if c == u {
                continue;
            }
            let pair = Pair {
                client: c,
                upstream: u,
            };
            let vendor = match u {
                Dialect::Anthropic => Vendor::Anthropic,
                Dialect::Gemini => Vendor::Gemini,
                _ => Vendor::OpenAi,
            };
            let t = target("upstream-model", vendor);
            let tr = pair
                .request(canonical_request(c).to_string().as_bytes(), &t)
                .expect("translates");
            let body: Value = serde_json::from_slice(&tr.body).expect("json");
            golden(&format!("{}_to_{}.request.json", name(c), name(u)), &body);
            let resp = pair
                .response(canonical_response(u).to_string().as_bytes(), &tr.hints)
                .expect("translates");
            let resp: Value = serde_json::from_slice(&resp).expect("json");
            golden(&format!("{}_to_{}.response.json", name(u), name(c)), &resp);
        }
    }
}

#[test]
fn vendors_are_recognised_and_their_quirks_applied() {
    use crate::config::ProviderKind::*;
    for (url, v) in [
        ("https://api.deepseek.com/v1", Vendor::DeepSeek),
        ("https://openrouter.ai/api/v1", Vendor::OpenRouter),
        ("https://api.groq.com/openai/v1", Vendor::Groq),
        ("https://api.mistral.ai/v1", Vendor::Mistral),
        ("http://127.0.0.1:11434/v1", Vendor::Ollama),
        ("http://localhost:1234/v1", Vendor::LmStudio),
        ("https://llm.internal/v1", Vendor::Other),
    ] {
        assert_eq!(Vendor::detect(OpenaiCompatible, url), v, "{url}");
    }
    assert_eq!(
        Vendor::detect(AzureOpenai, "https://x.openai.azure.com"),
        Vendor::Azure
    );

    // Reasoning text arrives as DeepSeek's `reasoning_content` or OpenRouter/Groq's
    // `reasoning`; both reach an Anthropic client as thinking, never as answer text.
    for field in ["reasoning_content", "reasoning"] {
        let body = json!({"id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "42", field: "Let me think."}}]});
        let out: Value = serde_json::from_slice(
            &Pair {
                client: Dialect::Anthropic,
                upstream: Dialect::OpenaiChat,
            }
            .response(body.to_string().as_bytes(), &ClientHints::default())
            .expect("ok"),
        )
        .expect("json");
        assert_eq!(out["content"][0]["type"], "thinking", "{field}");
        assert_eq!(out["content"][0]["thinking"], "Let me think.");
        assert_eq!(out["content"][1]["text"], "42");
    }
    // ...and is never sent back to the upstream (DeepSeek rejects it in input).
    let back = json!({"model": "m", "max_tokens": 9, "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "Let me think.", "signature": "fgx1.chat."}, {"type": "text", "text": "42"}]},
        {"role": "user", "content": "why?"}]});
    let out = translate(
        Dialect::Anthropic,
        Dialect::OpenaiChat,
        back,
        &target("deepseek-reasoner", Vendor::DeepSeek),
    );
    assert_eq!(
        out["messages"][1],
        json!({"role": "assistant", "content": "42"})
    );
    // Local servers get `max_tokens`, OpenAI gets `max_completion_tokens`.
    let body =
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]});
    let o = translate(
        Dialect::Anthropic,
        Dialect::OpenaiChat,
        body.clone(),
        &target("llama3", Vendor::Ollama),
    );
    assert_eq!(o["max_tokens"], 5);
    let o = translate(
        Dialect::Anthropic,
        Dialect::OpenaiChat,
        body,
        &target("gpt-4o", Vendor::OpenAi),
    );
    assert_eq!(o["max_completion_tokens"], 5);
}

#[test]
fn anthropic_thinking_is_only_asked_for_when_anthropic_accepts_it() {
    let t = target("claude-sonnet-4-5", Vendor::Anthropic);
    let ask = |extra: Value| {
        let mut b = json!({"model": "m", "reasoning_effort": "high", "messages": [{"role": "user", "content": "q"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]});
        if let (Some(o), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        translate(Dialect::OpenaiChat, Dialect::Anthropic, b, &t)
    };
    assert_eq!(ask(json!({}))["thinking"]["budget_tokens"], 24576);
    // A forced tool choice: no thinking.
    assert!(ask(json!({"tool_choice": "required"}))
        .get("thinking")
        .is_none());
    // The last assistant turn called a tool without Anthropic thinking: no thinking.
    let loop_turn = json!({"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "r"}]});
    assert!(ask(loop_turn).get("thinking").is_none());
}

#[test]
fn gemini_thinking_only_for_models_that_think() {
    let b = json!({"model": "m", "reasoning_effort": "high", "messages": [{"role": "user", "content": "q"}]});
    let g25 = translate(
        Dialect::OpenaiChat,
        Dialect::Gemini,
        b.clone(),
        &target("gemini-2.5-pro", Vendor::Gemini),
    );
    assert_eq!(
        g25["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 24576, "includeThoughts": true})
    );
    let g20 = translate(
        Dialect::OpenaiChat,
        Dialect::Gemini,
        b,
        &target("gemini-2.0-flash", Vendor::Gemini),
    );
    assert!(g20.get("generationConfig").is_none(), "{g20}");
}

#[test]
fn codex_custom_tools_stream_back_as_custom_tool_calls() {
    let deltas = vec![
        Delta::Start {
            id: "c".into(),
            model: "m".into(),
        },
        Delta::ToolCallStart {
            index: 0,
            id: "call_p".into(),
            name: "apply_patch".into(),
        },
        Delta::ToolCallArgs {
            index: 0,
            fragment: "{\"input\":\"*** Begin".into(),
        },
        Delta::ToolCallArgs {
            index: 0,
            fragment: " Patch\\n\"}".into(),
        },
        Delta::Finish(Finish::ToolCalls),
        Delta::End,
    ];
    let up = parse_all(&upstream_bytes(Dialect::OpenaiChat, &deltas), &[]);
    let hints = ClientHints {
        custom_tools: vec!["apply_patch".into()],
        ..ClientHints::default()
    };
    let mut st = Pair {
        client: Dialect::OpenaiResponses,
        upstream: Dialect::OpenaiChat,
    }
    .stream(&hints);
    let mut events: Vec<Value> = Vec::new();
    for e in &up {
        for b in st.event(e).expect("translates") {
            let text = String::from_utf8(b.to_vec()).expect("utf8");
            let data = text
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data");
            events.push(serde_json::from_str(data).expect("json"));
        }
    }
    let added = events
        .iter()
        .find(|e| e["type"] == "response.output_item.added")
        .expect("added");
    assert_eq!(added["item"]["type"], "custom_tool_call");
    let done = events
        .iter()
        .find(|e| e["type"] == "response.custom_tool_call_input.done")
        .expect("input done");
    assert_eq!(done["input"], "*** Begin Patch\n");
    let final_resp = st.final_response().expect("completed");
    assert_eq!(
        final_resp["output"][0],
        json!({"id": final_resp["output"][0]["id"], "type": "custom_tool_call", "status": "completed", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch\n"})
    );
    assert!(!events
        .iter()
        .any(|e| e["type"] == "response.function_call_arguments.delta"));
}

/// Gemini clients carry another dialect's reasoning wrapped with the text it signs, on the
/// part after the thoughts (Gemini CLI keeps no `thought: true` part in its history), so a
/// tool-result turn reaches Anthropic with its thinking block; a Gemini upstream gets Google's
/// placeholder instead, and other upstreams nothing.
#[test]
fn gemini_clients_carry_foreign_thinking_back_to_its_maker() {
    let thinking = "List the files: then read them.";
    let msg = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "thinking", "thinking": thinking, "signature": "EqQBCkgI+/=="},
                    {"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {"dir": "."}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}});
    let pair = Pair {
        client: Dialect::Gemini,
        upstream: Dialect::Anthropic,
    };
    let out: Value = serde_json::from_slice(
        &pair
            .response(msg.to_string().as_bytes(), &ClientHints::default())
            .expect("ok"),
    )
    .expect("json");
    golden("anthropic_thinking_to_gemini.response.json", &out);
    let parts = out["candidates"][0]["content"]["parts"].clone();
    assert_eq!(parts[0], json!({"text": thinking, "thought": true}));
    assert_eq!(parts[1]["functionCall"]["name"], "ls");
    let sig = parts[1]["thoughtSignature"].as_str().expect("a signature");
    assert!(sig.starts_with("fgx1.anthropic."), "{sig}");

    // The same answer streamed: the signature lands on the call's chunk, with the same value.
    let deltas = vec![
        Delta::Start {
            id: "msg_1".into(),
            model: "claude-sonnet-4-5".into(),
        },
        Delta::Thinking("List the files: ".into()),
        Delta::Thinking("then read them.".into()),
        Delta::ThinkingArtefact(Origin::Anthropic, "EqQBCkgI+/==".into()),
        Delta::ToolCallStart {
            index: 0,
            id: "toolu_1".into(),
            name: "ls".into(),
        },
        Delta::ToolCallArgs {
            index: 0,
            fragment: "{\"dir\":\".\"}".into(),
        },
        Delta::Finish(Finish::ToolCalls),
        Delta::End,
    ];
    let up = parse_all(&upstream_bytes(Dialect::Anthropic, &deltas), &[]);
    let mut st = pair.stream(&ClientHints::default());
    let mut streamed: Vec<Value> = Vec::new();
    for e in &up {
        for b in st.event(e).expect("translates") {
            let text = String::from_utf8(b.to_vec()).expect("utf8");
            if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                streamed.extend(
                    serde_json::from_str::<Value>(data).expect("json")["candidates"][0]["content"]
                        ["parts"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    }
    let call = streamed
        .iter()
        .find(|p| p.get("functionCall").is_some())
        .expect("a call");
    assert_eq!(call["thoughtSignature"], sig);
    assert!(streamed
        .iter()
        .filter(|p| p["thought"] == true)
        .all(|p| p.get("thoughtSignature").is_none()));

    // Gemini CLI's next turn: the thought part dropped, the call kept with its signature.
    let next = json!({"contents": [
        {"role": "user", "parts": [{"text": "list them"}]},
        {"role": "model", "parts": [parts[1].clone()]},
        {"role": "user", "parts": [{"functionResponse": {"name": "ls", "response": {"output": "a b"}}}]}
    ], "generationConfig": {"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 2048}}});
    let out = Pair {
        client: Dialect::Gemini,
        upstream: Dialect::Anthropic,
    }
    .request(
        next.to_string().as_bytes(),
        &target("claude-sonnet-4-5", Vendor::Anthropic),
    )
    .expect("translates");
    assert!(
        !out.notes.iter().any(|n| n.contains("thinking off")),
        "{:?}",
        out.notes
    );
    let a: Value = serde_json::from_slice(&out.body).expect("json");
    golden("gemini_thinking_to_anthropic.request.json", &a);
    assert_eq!(a["thinking"]["type"], "enabled", "{a}");
    assert_eq!(
        a["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": thinking, "signature": "EqQBCkgI+/=="})
    );
    assert_eq!(a["messages"][1]["content"][1]["type"], "tool_use");

    // Failover to Gemini itself (passthrough): Google's placeholder instead.
    let g: Value = serde_json::from_slice(
        &strip_foreign_artefacts(Dialect::Gemini, next.to_string().as_bytes()).expect("changed"),
    )
    .expect("json");
    assert_eq!(
        g["contents"][1]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    // To OpenAI Chat: nothing of it.
    let c = translate(
        Dialect::Gemini,
        Dialect::OpenaiChat,
        next,
        &target("gpt-4o", Vendor::OpenAi),
    );
    assert!(!c.to_string().contains("fgx1"), "{c}");

    // A redacted block comes back redacted; thoughts with nothing after them get a part of
    // their own for the signature.
    let redacted = json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "redacted_thinking", "data": "REDACTED-DATA"}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}});
    let out: Value = serde_json::from_slice(
        &pair
            .response(redacted.to_string().as_bytes(), &ClientHints::default())
            .expect("ok"),
    )
    .expect("json");
    let last = out["candidates"][0]["content"]["parts"][0].clone();
    assert_eq!(last["text"], "");
    let back = translate(
        Dialect::Gemini,
        Dialect::Anthropic,
        json!({"contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [last, {"text": "Hello"}]},
            {"role": "user", "parts": [{"text": "again"}]}]}),
        &target("claude-sonnet-4-5", Vendor::Anthropic),
    );
    assert_eq!(
        back["messages"][1]["content"][0],
        json!({"type": "redacted_thinking", "data": "REDACTED-DATA"})
    );
}
