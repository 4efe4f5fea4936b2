//! Every client dialect through Fluxgate to upstreams of every other dialect, over real HTTP:
//! text, tool calls, streams, failover across dialects, breaks after commit, error shapes,
//! count_tokens, Gemini and Azure URLs.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::Duration;

use common::{body_text, Harness};
use fluxgate_testkit::Fault;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[timeouts]
first_byte = 2
idle = 2
total = 20

[providers.oa]
kind = "openai"
base_url = "{FAKE}/v1"
keys = [{ id = "o1" }]

[providers.ds]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
keys = [{ id = "d1" }]

[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }]

[providers.gem]
kind = "gemini"
base_url = "{FAKE}"
keys = [{ id = "g1" }]

[providers.az]
kind = "azure-openai"
base_url = "{FAKE}"
api_version = "2024-10-21"
keys = [{ id = "z1" }]

[routes.to-chat]
targets = ["ds/deepseek-chat"]

[routes.to-openai]
targets = ["oa/gpt-4o"]

[routes.to-ant]
targets = ["ant/claude-x"]

[routes.to-gem]
targets = ["gem/gemini-2.5-pro"]

[routes.to-azure]
targets = ["az/my-deployment"]

[routes.chain]
targets = ["ant/claude-x", "oa/gpt-4o", "gem/gemini-2.5-pro"]

[routes.ant-then-openai]
targets = ["ant/claude-x", "oa/gpt-4o"]
"#;

const KEYS: &[&str] = &["oa/o1", "ds/d1", "ant/a1", "gem/g1", "az/z1"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    Chat,
    Responses,
    Messages,
    Gemini,
}

const CLIENTS: [Client; 4] = [
    Client::Chat,
    Client::Responses,
    Client::Messages,
    Client::Gemini,
];

impl Client {
    fn request(
        self,
        h: &Harness,
        model: &str,
        stream: bool,
        prompt: &str,
        tools: bool,
    ) -> reqwest::RequestBuilder {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
        match self {
            Client::Chat => {
                let mut b = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]});
                if tools {
                    b["tools"] = json!([{"type": "function", "function": {"name": "weather", "parameters": schema}}]);
                }
                h.post("/v1/chat/completions", b)
            }
            Client::Responses => {
                let mut b = json!({"model": model, "stream": stream, "input": prompt});
                if tools {
                    b["tools"] =
                        json!([{"type": "function", "name": "weather", "parameters": schema}]);
                }
                h.post("/v1/responses", b)
            }
            Client::Messages => {
                let mut b = json!({"model": model, "stream": stream, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]});
                if tools {
                    b["tools"] = json!([{"name": "weather", "input_schema": schema}]);
                }
                h.post("/v1/messages", b)
            }
            Client::Gemini => {
                let action = if stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                let mut b = json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}]});
                if tools {
                    b["tools"] = json!([{"functionDeclarations": [{"name": "weather", "parameters": schema}]}]);
                }
                h.http
                    .post(h.url(&format!("/v1beta/models/{model}:{action}")))
                    .header("x-goog-api-key", &h.token)
                    .json(&b)
            }
        }
    }

    /// Text and tool calls (name, parsed arguments) of a complete response.
    fn read(self, v: &Value) -> (String, Vec<(String, Value)>) {
        let mut text = String::new();
        let mut tools = Vec::new();
        match self {
            Client::Chat => {
                let m = &v["choices"][0]["message"];
                text.push_str(m["content"].as_str().unwrap_or(""));
                for t in m["tool_calls"].as_array().into_iter().flatten() {
                    let args =
                        serde_json::from_str(t["function"]["arguments"].as_str().unwrap_or(""))
                            .unwrap_or(Value::Null);
                    tools.push((
                        t["function"]["name"].as_str().unwrap_or("").to_string(),
                        args,
                    ));
                }
            }
            Client::Responses => {
                assert_eq!(v["object"], "response", "{v}");
                for it in v["output"].as_array().into_iter().flatten() {
                    match it["type"].as_str() {
                        Some("message") => {
                            text.push_str(it["content"][0]["text"].as_str().unwrap_or(""))
                        }
                        Some("function_call") => {
                            let args = serde_json::from_str(it["arguments"].as_str().unwrap_or(""))
                                .unwrap_or(Value::Null);
                            tools.push((it["name"].as_str().unwrap_or("").to_string(), args));
                        }
                        _ => {}
                    }
                }
            }
            Client::Messages => {
                assert_eq!(v["type"], "message", "{v}");
                for b in v["content"].as_array().into_iter().flatten() {
                    match b["type"].as_str() {
                        Some("text") => text.push_str(b["text"].as_str().unwrap_or("")),
                        Some("tool_use") => tools.push((
                            b["name"].as_str().unwrap_or("").to_string(),
                            b["input"].clone(),
                        )),
                        _ => {}
                    }
                }
            }
            Client::Gemini => {
                for p in v["candidates"][0]["content"]["parts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let Some(t) = p["text"].as_str() {
                        text.push_str(t);
                    }
                    if let Some(fc) = p.get("functionCall") {
                        tools.push((
                            fc["name"].as_str().unwrap_or("").to_string(),
                            fc["args"].clone(),
                        ));
                    }
                }
            }
        }
        (text, tools)
    }

    /// Text and tool calls of a stream, and whether it ended with the success terminator.
    fn read_stream(self, body: &str) -> (String, Vec<(String, Value)>, bool) {
        let mut text = String::new();
        let mut tools: Vec<(String, String)> = Vec::new();
        let mut done = false;
        for frame in body.split("\n\n").filter(|f| !f.trim().is_empty()) {
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            assert!(!frame.contains("event: error"), "error event in {body}");
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let v: Value =
                serde_json::from_str(&data).unwrap_or_else(|_| panic!("not JSON: {frame}"));
            match self {
                Client::Chat => {
                    let d = &v["choices"][0]["delta"];
                    text.push_str(d["content"].as_str().unwrap_or(""));
                    for t in d["tool_calls"].as_array().into_iter().flatten() {
                        if let Some(n) = t["function"]["name"].as_str() {
                            tools.push((n.to_string(), String::new()));
                        }
                        if let (Some(a), Some(last)) =
                            (t["function"]["arguments"].as_str(), tools.last_mut())
                        {
                            last.1.push_str(a);
                        }
                    }
                }
                Client::Responses => match v["type"].as_str().unwrap_or("") {
                    "response.output_text.delta" => {
                        text.push_str(v["delta"].as_str().unwrap_or(""))
                    }
                    "response.output_item.added" if v["item"]["type"] == "function_call" => tools
                        .push((
                            v["item"]["name"].as_str().unwrap_or("").to_string(),
                            String::new(),
                        )),
                    "response.function_call_arguments.delta" => {
                        if let Some(last) = tools.last_mut() {
                            last.1.push_str(v["delta"].as_str().unwrap_or(""));
                        }
                    }
                    "response.completed" => done = true,
                    _ => {}
                },
                Client::Messages => match v["type"].as_str().unwrap_or("") {
                    "content_block_start" if v["content_block"]["type"] == "tool_use" => tools
                        .push((
                            v["content_block"]["name"]
                                .as_str()
                                .unwrap_or("")
                                .to_string(),
                            String::new(),
                        )),
                    "content_block_delta" => {
                        text.push_str(v["delta"]["text"].as_str().unwrap_or(""));
                        if let (Some(a), Some(last)) =
                            (v["delta"]["partial_json"].as_str(), tools.last_mut())
                        {
                            last.1.push_str(a);
                        }
                    }
                    "message_stop" => done = true,
                    _ => {}
                },
                Client::Gemini => {
                    let c = &v["candidates"][0];
                    for p in c["content"]["parts"].as_array().into_iter().flatten() {
                        text.push_str(p["text"].as_str().unwrap_or(""));
                        if let Some(fc) = p.get("functionCall") {
                            tools.push((
                                fc["name"].as_str().unwrap_or("").to_string(),
                                fc["args"].to_string(),
                            ));
                        }
                    }
                    if c.get("finishReason").is_some() {
                        done = true;
                    }
                }
            }
        }
        let tools = tools
            .into_iter()
            .map(|(n, a)| (n, serde_json::from_str(&a).unwrap_or(Value::Null)))
            .collect();
        (text, tools, done)
    }
}

async fn start() -> Harness {
    Harness::start(CONFIG, KEYS, &[]).await
}

#[tokio::test]
async fn every_client_reaches_every_upstream_kind() {
    let h = start().await;
    let routes = [
        ("to-chat", "d1", "/v1/chat/completions"),
        ("to-ant", "a1", "/v1/messages"),
        ("to-gem", "g1", "/v1beta/models/gemini-2.5-pro:"),
        ("to-openai", "o1", "/v1/"),
    ];
    for client in CLIENTS {
        for (route, label, path) in routes {
            for stream in [false, true] {
                h.fake.clear_log();
                let resp = client
                    .request(&h, route, stream, "hi", false)
                    .send()
                    .await
                    .expect("send");
                let status = resp.status();
                let body = body_text(resp).await;
                assert_eq!(status, 200, "{client:?} -> {route} stream={stream}: {body}");
                let text = if stream {
                    let (text, _, done) = client.read_stream(&body);
                    assert!(done, "{client:?} -> {route}: no terminator in {body}");
                    text
                } else {
                    client.read(&serde_json::from_str(&body).expect("json")).0
                };
                assert_eq!(
                    text,
                    format!("ok from {label}"),
                    "{client:?} -> {route} stream={stream}"
                );
                let log = h.fake.log();
                assert_eq!(log.len(), 1);
                assert!(
                    log[0].path.starts_with(path),
                    "{client:?} -> {route}: {}",
                    log[0].path
                );
                if route == "to-gem" {
                    let action = if stream {
                        "streamGenerateContent?alt=sse"
                    } else {
                        "generateContent"
                    };
                    assert!(log[0].path.ends_with(action), "{}", log[0].path);
                }
            }
        }
    }
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn tool_calls_cross_dialects_both_ways() {
    let h = start().await;
    let prompt = r#"check [[call:weather {"city":"Oslo"}]]"#;
    for client in CLIENTS {
        for route in ["to-chat", "to-ant", "to-gem"] {
            for stream in [false, true] {
                let resp = client
                    .request(&h, route, stream, prompt, true)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), 200);
                let body = body_text(resp).await;
                let tools = if stream {
                    let (_, tools, done) = client.read_stream(&body);
                    assert!(done, "{body}");
                    tools
                } else {
                    let v: Value = serde_json::from_str(&body).expect("json");
                    match client {
                        Client::Chat => {
                            assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}")
                        }
                        Client::Messages => assert_eq!(v["stop_reason"], "tool_use", "{v}"),
                        _ => {}
                    }
                    client.read(&v).1
                };
                assert_eq!(
                    tools,
                    vec![("weather".to_string(), json!({"city": "Oslo"}))],
                    "{client:?} -> {route} stream={stream}: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_tool_result_turn_translates_back() {
    let h = start().await;
    // Claude Code's second turn: the tool result goes to an OpenAI-compatible upstream.
    let body = json!({"model": "to-chat", "max_tokens": 64, "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"}]}
    ]});
    let v: Value = h
        .post("/v1/messages", body)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["content"][0]["text"], "tool said: 18C and sunny", "{v}");
    let sent: Value = serde_json::from_str(&h.fake.log()[0].body).expect("json");
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "toolu_1");
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "18C and sunny"})
    );

    // Codex's second turn to Anthropic.
    let body = json!({"model": "to-ant", "input": [
        {"type": "message", "role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "-3C"}]});
    let v: Value = h
        .post("/v1/responses", body)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        v["output"][0]["content"][0]["text"], "tool said: -3C",
        "{v}"
    );
}

#[tokio::test]
async fn failover_crosses_dialects_invisibly() {
    let h = start().await;
    h.fake.always("a1", Fault::status(529));
    h.fake.always("o1", Fault::status(500));
    for client in CLIENTS {
        for stream in [false, true] {
            let resp = client
                .request(&h, "chain", stream, "hi", false)
                .send()
                .await
                .expect("send");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["x-fluxgate-provider"], "gem");
            if client != Client::Gemini {
                assert_eq!(
                    resp.headers()["x-fluxgate-translated"],
                    format!(
                        "{}->gemini",
                        ["openai", "responses", "anthropic"][client as usize]
                    )
                );
            } else {
                assert!(resp.headers().get("x-fluxgate-translated").is_none());
            }
            let body = body_text(resp).await;
            let text = if stream {
                client.read_stream(&body).0
            } else {
                client.read(&serde_json::from_str(&body).expect("json")).0
            };
            assert_eq!(text, "ok from g1", "{client:?} stream={stream}");
        }
    }
}

#[tokio::test]
async fn a_translated_stream_that_breaks_ends_with_the_clients_error_event() {
    let h = start().await;
    h.fake.set_chunk_delay(Duration::from_millis(30));
    // Messages client, Chat upstream: cut after the role chunk and two words.
    h.fake.script("d1", [Fault::ResetAfter { events: 3 }]);
    let body = body_text(
        Client::Messages
            .request(&h, "to-chat", true, "hi", false)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(body.contains("event: message_start"), "{body}");
    assert!(body.contains("event: error"), "{body}");
    assert!(body.contains("stream_interrupted"), "{body}");
    assert!(!body.contains("message_stop"), "{body}");

    // Responses client, Anthropic upstream: the error continues the sequence numbers.
    h.fake.script("a1", [Fault::ResetAfter { events: 4 }]);
    let body = body_text(
        Client::Responses
            .request(&h, "to-ant", true, "hi", false)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(!body.contains("response.completed"), "{body}");
    let seqs: Vec<u64> = body
        .split("\n\n")
        .filter_map(|f| f.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter_map(|d| {
            serde_json::from_str::<Value>(d)
                .ok()?
                .get("sequence_number")?
                .as_u64()
        })
        .collect();
    assert!(seqs.len() >= 3, "{body}");
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "{body}");
    let last = body
        .split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .last()
        .unwrap_or("");
    assert!(last.starts_with("event: error"), "{last}");

    // Gemini client, Anthropic upstream: an in-band error after content.
    h.fake.script("a1", [Fault::InBandErrorAfter { events: 3 }]);
    let body = body_text(
        Client::Gemini
            .request(&h, "to-ant", true, "hi", false)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(body.contains("stream_interrupted"), "{body}");
    assert!(!body.contains("finishReason"), "{body}");
}

#[tokio::test]
async fn upstream_errors_reach_the_client_in_its_own_shape() {
    let h = start().await;
    h.fake.always(
        "a1",
        Fault::status_with(400, &[], r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}"#),
    );
    let resp = Client::Gemini
        .request(&h, "to-ant", false, "hi", false)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("roles must alternate"),
        "{v}"
    );

    let resp = Client::Chat
        .request(&h, "to-ant", false, "hi", false)
        .send()
        .await
        .expect("send");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "request_invalid", "{v}");

    // A dead key on a translated route is classified like any other: out of rotation.
    h.fake.always("g1", Fault::status_with(400, &[], r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#));
    let resp = Client::Messages
        .request(&h, "to-gem", false, "hi", false)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 503);
    let keys = h.admin_keys().await;
    let g1 = keys["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["key_id"] == "g1")
        .cloned()
        .unwrap_or_default();
    assert_eq!(g1["reason"], "auth_failed", "{keys}");
}

#[tokio::test]
async fn count_tokens_never_burns_a_completion() {
    let h = start().await;
    let body = json!({"model": "to-chat", "messages": [{"role": "user", "content": "How many tokens is this sentence, roughly?"}],
        "tools": [{"name": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]});
    let resp = h
        .post("/v1/messages/count_tokens", body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-fluxgate-estimate"], "local");
    let n = resp.json::<Value>().await.expect("json")["input_tokens"]
        .as_u64()
        .unwrap_or(0);
    assert!((20..80).contains(&n), "{n}");
    assert!(h.fake.log().is_empty(), "no upstream call for an estimate");

    // An Anthropic route asks Anthropic.
    let mut body = body;
    body["model"] = json!("to-ant");
    let resp = h
        .post("/v1/messages/count_tokens", body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-fluxgate-estimate").is_none());
    assert_eq!(
        resp.json::<Value>().await.expect("json")["input_tokens"],
        11
    );
    assert_eq!(h.fake.log()[0].path, "/v1/messages/count_tokens");

    // Gemini's countTokens is estimated too.
    let resp = h
        .http
        .post(h.url("/v1beta/models/to-gem:countTokens"))
        .header("x-goog-api-key", &h.token)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.json::<Value>().await.expect("json")["totalTokens"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
}

#[tokio::test]
async fn gemini_keys_stay_out_of_urls_and_azure_uses_deployments() {
    let h = start().await;
    let resp = Client::Chat
        .request(&h, "to-gem", false, "hi", false)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let log = h.fake.log();
    assert_eq!(log[0].path, "/v1beta/models/gemini-2.5-pro:generateContent");
    assert!(!log[0].path.contains("key="));
    assert_eq!(log[0].key, "g1", "the key went in x-goog-api-key");

    h.fake.clear_log();
    for client in CLIENTS {
        let resp = client
            .request(&h, "to-azure", false, "hi", false)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "{client:?}");
    }
    let log = h.fake.log();
    assert_eq!(log.len(), 4);
    for l in log {
        assert_eq!(
            l.path,
            "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(l.key, "z1", "the key went in api-key");
        assert!(!l.foreign_auth);
    }
}

#[tokio::test]
async fn foreign_reasoning_never_reaches_an_upstream_that_would_reject_it() {
    let h = start().await;
    // Codex carries a reasoning item that an Anthropic upstream produced earlier; this turn
    // goes to OpenAI's own Responses API (passthrough), which would reject the foreign item.
    let body = json!({"model": "to-openai", "input": [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "reasoning", "summary": [], "encrypted_content": "fgx1.anthropic.SIG"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
        {"type": "message", "role": "user", "content": "again"}]});
    let resp = h.post("/v1/responses", body).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    let sent = &h.fake.log()[0].body;
    assert!(!sent.contains("fgx1"), "{sent}");
    assert!(sent.contains("\"again\""), "{sent}");
}

#[tokio::test]
async fn previous_response_id_works_on_upstreams_without_a_responses_api() {
    let h = start().await;
    let first: Value = h
        .post(
            "/v1/responses",
            json!({"model": "to-ant", "instructions": "Be brief.", "input": "hi"}),
        )
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let id = first["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("resp_fg"), "{first}");

    // Continued with a stream; the upstream sees the whole conversation.
    let body = body_text(
        h.post("/v1/responses", json!({"model": "to-ant", "previous_response_id": id, "input": "again", "stream": true}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(body.contains("response.completed"), "{body}");
    let sent: Value = serde_json::from_str(&h.fake.log().last().expect("sent").body).expect("json");
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok from a1"}]},
            {"role": "user", "content": [{"type": "text", "text": "again"}]}
        ])
    );
    // Instructions are not carried over (as with OpenAI).
    assert!(sent.get("system").is_none(), "{sent}");
    let second_id = body
        .split("\n\n")
        .filter_map(|f| f.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["type"] == "response.completed")
        .and_then(|v| v["response"]["id"].as_str().map(str::to_string))
        .expect("completed id");

    // The chain survives a restart, and goes on from the streamed response.
    let h = h.restart().await;
    let resp = h
        .post(
            "/v1/responses",
            json!({"model": "to-chat", "previous_response_id": second_id, "input": "third"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let sent: Value = serde_json::from_str(&h.fake.log().last().expect("sent").body).expect("json");
    let texts: Vec<&str> = sent["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(texts, ["hi", "ok from a1", "again", "ok from a1", "third"]);

    // Unknown, unstored and foreign ids are clear 400s; nothing is sent.
    let n = h.fake.log().len();
    let r = h
        .post(
            "/v1/responses",
            json!({"model": "to-ant", "store": false, "input": "x"}),
        )
        .send()
        .await
        .expect("send");
    let unstored: Value = r.json().await.expect("json");
    for (prev, needle) in [
        ("resp_fgnope", "not found"),
        (unstored["id"].as_str().unwrap_or(""), "not found"),
        ("resp_67abc", "OpenAI's Responses API"),
    ] {
        let resp = h
            .post(
                "/v1/responses",
                json!({"model": "to-ant", "previous_response_id": prev, "input": "x"}),
            )
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 400, "{prev}");
        let v: Value = resp.json().await.expect("json");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(needle),
            "{v}"
        );
    }
    assert_eq!(
        h.fake.log().len(),
        n + 1,
        "only the unstored request was sent"
    );
}

#[tokio::test]
async fn a_request_one_dialect_cannot_take_goes_to_a_candidate_that_can() {
    let h = start().await;
    // An OpenAI-made previous_response_id: Anthropic cannot continue it, OpenAI's own
    // Responses API (passthrough) can.
    let body =
        json!({"model": "ant-then-openai", "previous_response_id": "resp_67abc", "input": "more"});
    let resp = h
        .post("/v1/responses", body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-fluxgate-provider"], "oa");
    let log = h.fake.log();
    assert_eq!(log.len(), 1, "nothing was sent to Anthropic");
    assert_eq!(log[0].path, "/v1/responses");
    assert!(log[0].body.contains("resp_67abc"));
    // A forced built-in tool likewise.
    let body = json!({"model": "ant-then-openai", "input": "search", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}});
    let resp = h.post("/v1/responses", body).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-fluxgate-provider"], "oa");
}

/// A Gemini client on a route Anthropic serves with thinking on (issue 18): the thoughts are
/// shown, and the next tool-result turn — sent as Gemini CLI sends it, without the thought
/// parts — reaches Anthropic with its thinking block and signature, streamed or not.
#[tokio::test]
async fn a_gemini_client_keeps_anthropic_thinking_across_a_tool_turn() {
    use fluxgate_testkit::{FAKE_SIGNATURE, FAKE_THINKING};
    let h = start().await;
    let tools = json!([{"functionDeclarations": [{"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}]);
    let think = json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 2048}});
    let ask = json!({"role": "user", "parts": [{"text": "[[call:weather {\"city\":\"Oslo\"}]]"}]});
    for stream in [false, true] {
        let action = if stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        let resp = h
            .http
            .post(h.url(&format!("/v1beta/models/to-ant:{action}")))
            .header("x-goog-api-key", &h.token)
            .json(&json!({"contents": [ask], "tools": tools, "generationConfig": think}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let text = body_text(resp).await;
        let parts: Vec<Value> = if stream {
            text.lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .flat_map(|d| {
                    let v: Value = serde_json::from_str(d).expect("json chunk");
                    v["candidates"][0]["content"]["parts"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        } else {
            let v: Value = serde_json::from_str(&text).expect("json");
            v["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let shown: String = parts
            .iter()
            .filter(|p| p["thought"] == true)
            .filter_map(|p| p["text"].as_str())
            .collect();
        assert_eq!(shown, FAKE_THINKING, "stream {stream}: {parts:?}");
        let call = parts
            .iter()
            .find(|p| p.get("functionCall").is_some())
            .expect("a call");
        assert!(
            call["thoughtSignature"]
                .as_str()
                .is_some_and(|s| s.starts_with("fgx1.anthropic.")),
            "{call}"
        );
        // Gemini CLI's history keeps no thought part.
        let kept: Vec<Value> = parts
            .iter()
            .filter(|p| p["thought"] != true && p != &&json!({"text": ""}))
            .cloned()
            .collect();
        let next = json!({"contents": [ask, {"role": "model", "parts": kept},
            {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"output": "18C"}}}]}],
            "tools": tools, "generationConfig": think});
        let v: Value = h
            .http
            .post(h.url("/v1beta/models/to-ant:generateContent"))
            .header("x-goog-api-key", &h.token)
            .json(&next)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(
            v["candidates"][0]["content"]["parts"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["thought"] != true))
                .map(|p| p["text"].clone()),
            Some(json!("tool said: 18C")),
            "{v}"
        );
        let log = h.fake.log();
        let sent: Value = serde_json::from_str(&log.last().expect("sent").body).expect("json");
        assert_eq!(sent["thinking"]["type"], "enabled", "{sent}");
        assert_eq!(
            sent["messages"][1]["content"][0],
            json!({"type": "thinking", "thinking": FAKE_THINKING, "signature": FAKE_SIGNATURE}),
            "stream {stream}: {sent}"
        );
        assert_eq!(sent["messages"][1]["content"][1]["type"], "tool_use");
    }
}
