//! What each fake endpoint answers: complete bodies and stream events in the vendor's format.

use serde_json::{json, Value};

use crate::model::Answer;

/// The API a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Chat,
    Responses,
    Messages,
    CountTokens,
    Embeddings,
    Models,
    /// Gemini `generateContent` / `streamGenerateContent?alt=sse`.
    Gemini,
}

impl Wire {
    pub fn path(self) -> &'static str {
        match self {
            Wire::Chat => "/v1/chat/completions",
            Wire::Responses => "/v1/responses",
            Wire::Messages => "/v1/messages",
            Wire::CountTokens => "/v1/messages/count_tokens",
            Wire::Embeddings => "/v1/embeddings",
            Wire::Models => "/v1/models",
            Wire::Gemini => "/v1beta/models",
        }
    }

    fn is_anthropic(self) -> bool {
        matches!(self, Wire::Messages | Wire::CountTokens)
    }

    pub fn auth_error_body(self) -> String {
        if self == Wire::Gemini {
            json!({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
                "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}).to_string()
        } else if self.is_anthropic() {
            json!({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}).to_string()
        } else {
            json!({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key","param":null}}).to_string()
        }
    }

    /// The error event a vendor puts in a 200 stream.
    pub fn in_band_error(self) -> Value {
        self.in_band_error_saying(None)
    }

    /// [`Wire::in_band_error`] with its message replaced by `message`.
    pub fn in_band_error_saying(self, message: Option<&str>) -> Value {
        let m = |default: &str| message.unwrap_or(default).to_string();
        if self == Wire::Gemini {
            json!({"error":{"code":503,"message":m("The model is overloaded. Please try again later."),"status":"UNAVAILABLE"}})
        } else if self.is_anthropic() {
            json!({"type":"error","error":{"type":"overloaded_error","message":m("Overloaded")}})
        } else if self == Wire::Responses {
            json!({"type":"error","code":"server_error","message":m("The server had an error"),"sequence_number":0})
        } else {
            json!({"error":{"message":m("The server had an error while processing your request"),"type":"server_error"}})
        }
    }

    /// The in-band error as one SSE frame.
    pub fn in_band_frame(self) -> String {
        self.in_band_frame_saying(None)
    }

    /// [`Wire::in_band_frame`] with its message replaced by `message`.
    pub fn in_band_frame_saying(self, message: Option<&str>) -> String {
        let ev = self.in_band_error_saying(message);
        if self == Wire::Chat || self == Wire::Gemini {
            format!("data: {ev}\n\n")
        } else {
            format!("event: error\ndata: {ev}\n\n")
        }
    }

    /// Marks `n` of a complete answer's 11 input tokens as read from the prompt cache, in the
    /// dialect's own usage fields.
    pub fn report_cached(self, v: &mut Value, n: u64) {
        match self {
            Wire::Chat => v["usage"]["prompt_tokens_details"] = json!({"cached_tokens": n}),
            Wire::Responses => v["usage"]["input_tokens_details"] = json!({"cached_tokens": n}),
            Wire::Messages => {
                // Anthropic counts cache reads apart from `input_tokens`.
                v["usage"]["input_tokens"] = json!(11 - n);
                v["usage"]["cache_read_input_tokens"] = json!(n);
            }
            Wire::Gemini => v["usageMetadata"]["cachedContentTokenCount"] = json!(n),
            _ => {}
        }
    }

    /// The complete answer.
    pub fn complete(self, answer: &Answer, model: &str) -> Value {
        if let Answer::ToolCall { id, name, args } = answer {
            return self.complete_tool(id, name, args, model);
        }
        let text = match answer {
            Answer::Text(t) => t.as_str(),
            Answer::ToolCall { .. } => "",
        };
        match self {
            Wire::Gemini => json!({
                "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18},
                "modelVersion": model, "responseId": "gem_fake"
            }),
            Wire::Chat => json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": null}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
            }),
            Wire::Responses => json!({
                "id": "resp_fake", "object": "response", "created_at": 1_700_000_000, "status": "completed", "model": model,
                "output": [{"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                            "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
                "usage": {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18,
                          "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
            }),
            Wire::Messages => json!({
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 11, "output_tokens": 7}
            }),
            Wire::CountTokens => json!({"input_tokens": 11}),
            Wire::Embeddings => json!({
                "object": "list", "model": model,
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                "usage": {"prompt_tokens": 3, "total_tokens": 3}
            }),
            Wire::Models => json!({
                "object": "list",
                "data": [{"id": "fake-model", "object": "model", "created": 1_700_000_000, "owned_by": "fake", "type": "model", "display_name": "Fake"}],
                "has_more": false, "first_id": "fake-model", "last_id": "fake-model"
            }),
        }
    }

    fn complete_tool(self, id: &str, name: &str, args: &Value, model: &str) -> Value {
        let arguments = args.to_string();
        match self {
            Wire::Chat => json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                    "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
                    "finish_reason": "tool_calls", "logprobs": null}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
            }),
            Wire::Responses => {
                let mut v = Wire::Responses.complete(&Answer::Text(String::new()), model);
                v["output"] = json!([{"type": "function_call", "id": "fc_fake", "call_id": id, "name": name, "arguments": arguments, "status": "completed"}]);
                v
            }
            Wire::Messages => json!({
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "tool_use", "id": id, "name": name, "input": args}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 11, "output_tokens": 7}
            }),
            Wire::Gemini => json!({
                "candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": name, "args": args}}]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18},
                "modelVersion": model, "responseId": "gem_fake"
            }),
            _ => Value::Null,
        }
    }

    /// A streamed tool call: the arguments arrive in two fragments.
    fn stream_tool(self, id: &str, name: &str, args: &Value, model: &str) -> Vec<String> {
        let arguments = args.to_string();
        let cut = arguments.len() / 2;
        let cut = (0..=cut)
            .rev()
            .find(|c| arguments.is_char_boundary(*c))
            .unwrap_or(0);
        let (a1, a2) = arguments.split_at(cut);
        let data = |v: Value| format!("data: {v}\n\n");
        let named = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
        match self {
            Wire::Chat => {
                let chunk = |delta: Value, finish: Value| json!({"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1_700_000_000,"model":model,"choices":[{"index":0,"delta":delta,"finish_reason":finish}]});
                vec![
                    data(chunk(
                        json!({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":id,"type":"function","function":{"name":name,"arguments":""}}]}),
                        Value::Null,
                    )),
                    data(chunk(
                        json!({"tool_calls":[{"index":0,"function":{"arguments":a1}}]}),
                        Value::Null,
                    )),
                    data(chunk(
                        json!({"tool_calls":[{"index":0,"function":{"arguments":a2}}]}),
                        Value::Null,
                    )),
                    data(chunk(json!({}), json!("tool_calls"))),
                    data(
                        json!({"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1_700_000_000,"model":model,"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}),
                    ),
                    "data: [DONE]\n\n".to_string(),
                ]
            }
            Wire::Responses => {
                let mut seq = 0u64;
                let mut ev = |n: &str, mut v: Value| {
                    v["type"] = json!(n);
                    v["sequence_number"] = json!(seq);
                    seq += 1;
                    named(n, v)
                };
                let base = json!({"id":"resp_fake","object":"response","created_at":1_700_000_000,"model":model,"output":[],"status":"in_progress"});
                let item = json!({"type":"function_call","id":"fc_fake","call_id":id,"name":name,"arguments":arguments,"status":"completed"});
                let mut done = self.complete_tool(id, name, args, model);
                done["status"] = json!("completed");
                vec![
                    ev("response.created", json!({"response": base})),
                    ev(
                        "response.output_item.added",
                        json!({"output_index":0,"item":{"type":"function_call","id":"fc_fake","call_id":id,"name":name,"arguments":"","status":"in_progress"}}),
                    ),
                    ev(
                        "response.function_call_arguments.delta",
                        json!({"item_id":"fc_fake","output_index":0,"delta":a1}),
                    ),
                    ev(
                        "response.function_call_arguments.delta",
                        json!({"item_id":"fc_fake","output_index":0,"delta":a2}),
                    ),
                    ev(
                        "response.function_call_arguments.done",
                        json!({"item_id":"fc_fake","output_index":0,"arguments":arguments}),
                    ),
                    ev(
                        "response.output_item.done",
                        json!({"output_index":0,"item":item}),
                    ),
                    ev("response.completed", json!({"response": done})),
                ]
            }
            Wire::Messages => vec![
                named(
                    "message_start",
                    json!({"type":"message_start","message":{"id":"msg_fake","type":"message","role":"assistant","model":model,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":1}}}),
                ),
                named(
                    "content_block_start",
                    json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}}),
                ),
                named(
                    "content_block_delta",
                    json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":a1}}),
                ),
                named(
                    "content_block_delta",
                    json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":a2}}),
                ),
                named(
                    "content_block_stop",
                    json!({"type":"content_block_stop","index":0}),
                ),
                named(
                    "message_delta",
                    json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":7}}),
                ),
                named("message_stop", json!({"type":"message_stop"})),
            ],
            Wire::Gemini => vec![data(self.complete_tool(id, name, args, model))],
            _ => Vec::new(),
        }
    }

    /// The streamed answer as SSE frames; the words of a text answer are the content deltas.
    pub fn stream_events(self, answer: &Answer, model: &str) -> Vec<String> {
        let text = match answer {
            Answer::Text(t) => t.as_str(),
            Answer::ToolCall { id, name, args } => return self.stream_tool(id, name, args, model),
        };
        let words: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
        let data = |v: Value| format!("data: {v}\n\n");
        let named = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
        let mut out = Vec::new();
        match self {
            Wire::Chat => {
                let chunk = |delta: Value, finish: Value| json!({"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1_700_000_000,"model":model,"choices":[{"index":0,"delta":delta,"finish_reason":finish,"logprobs":null}]});
                out.push(data(chunk(
                    json!({"role":"assistant","content":""}),
                    Value::Null,
                )));
                for w in &words {
                    out.push(data(chunk(json!({"content": w}), Value::Null)));
                }
                out.push(data(chunk(json!({}), json!("stop"))));
                out.push(data(json!({"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1_700_000_000,"model":model,"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}})));
                out.push("data: [DONE]\n\n".to_string());
            }
            Wire::Responses => {
                let mut seq = 0u64;
                let mut ev = |name: &str, mut v: Value| {
                    v["type"] = json!(name);
                    v["sequence_number"] = json!(seq);
                    seq += 1;
                    named(name, v)
                };
                let base = json!({"id":"resp_fake","object":"response","created_at":1_700_000_000,"model":model,"output":[],"status":"in_progress","parallel_tool_calls":true,"tool_choice":"auto","tools":[]});
                out.push(ev("response.created", json!({"response": base})));
                out.push(ev("response.in_progress", json!({"response": base})));
                out.push(ev("response.output_item.added", json!({"output_index":0,"item":{"type":"message","id":"msg_fake","status":"in_progress","role":"assistant","content":[]}})));
                out.push(ev("response.content_part.added", json!({"item_id":"msg_fake","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}})));
                for w in &words {
                    out.push(ev(
                        "response.output_text.delta",
                        json!({"item_id":"msg_fake","output_index":0,"content_index":0,"delta":w}),
                    ));
                }
                out.push(ev(
                    "response.output_text.done",
                    json!({"item_id":"msg_fake","output_index":0,"content_index":0,"text":text}),
                ));
                out.push(ev("response.content_part.done", json!({"item_id":"msg_fake","output_index":0,"content_index":0,"part":{"type":"output_text","text":text,"annotations":[]}})));
                let item = json!({"type":"message","id":"msg_fake","status":"completed","role":"assistant","content":[{"type":"output_text","text":text,"annotations":[]}]});
                out.push(ev(
                    "response.output_item.done",
                    json!({"output_index":0,"item":item}),
                ));
                let mut done = Wire::Responses.complete(answer, model);
                done["status"] = json!("completed");
                out.push(ev("response.completed", json!({"response": done})));
            }
            Wire::Messages => {
                out.push(named("message_start", json!({"type":"message_start","message":{"id":"msg_fake","type":"message","role":"assistant","model":model,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":1}}})));
                out.push(named("content_block_start", json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})));
                out.push(named("ping", json!({"type":"ping"})));
                for w in &words {
                    out.push(named("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":w}})));
                }
                out.push(named(
                    "content_block_stop",
                    json!({"type":"content_block_stop","index":0}),
                ));
                out.push(named("message_delta", json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}})));
                out.push(named("message_stop", json!({"type":"message_stop"})));
            }
            Wire::Gemini => {
                for w in &words {
                    out.push(data(json!({"candidates":[{"content":{"role":"model","parts":[{"text":w}]},"index":0}],"modelVersion":model,"responseId":"gem_fake"})));
                }
                out.push(data(json!({"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"STOP","index":0}],
                    "usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":7,"totalTokenCount":18},"modelVersion":model,"responseId":"gem_fake"})));
            }
            Wire::CountTokens | Wire::Embeddings | Wire::Models => {}
        }
        out
    }

    /// How many leading events of [`Wire::stream_events`] carry no content.
    pub fn preamble_len(self) -> usize {
        match self {
            Wire::Chat => 1,
            Wire::Responses => 2,
            Wire::Messages => 1,
            _ => 0,
        }
    }
}

/// The thinking the fake's Anthropic answers open with when thinking is on, and its signature
/// (Anthropic's own signs the text; the fake's is fixed, so a test can see it come back).
pub const FAKE_THINKING: &str = "The user wants an answer; I will give one.";
pub const FAKE_SIGNATURE: &str = "fake-thinking-signature-EqQBCkgI";

/// A complete answer's thinking block.
pub fn thinking_block() -> Value {
    json!({"type": "thinking", "thinking": FAKE_THINKING, "signature": FAKE_SIGNATURE})
}

/// Puts a streamed thinking block (start, two deltas, its signature, stop) at index 0 of an
/// Anthropic event stream, after `message_start`, moving the other blocks up one.
/// OpenAI Chat's stream as the real API sends it: the usage chunk (`"choices": []`) only when
/// the request set `stream_options.include_usage`, and then `"usage": null` on every other
/// chunk.
pub fn chat_usage_as_asked(events: Vec<String>, asked: bool) -> Vec<String> {
    events
        .into_iter()
        .filter_map(|e| {
            let usage_chunk = e.contains("\"choices\":[]");
            match (asked, usage_chunk) {
                (false, true) => None,
                (true, false) => Some(match e.strip_suffix("}\n\n") {
                    Some(head) if e.starts_with("data: {") => {
                        format!("{head},\"usage\":null}}\n\n")
                    }
                    _ => e,
                }),
                _ => Some(e),
            }
        })
        .collect()
}

pub fn stream_thinking_first(events: &mut Vec<String>) {
    let named = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
    let (a, b) = FAKE_THINKING.split_at(FAKE_THINKING.len() / 2);
    for e in events.iter_mut() {
        if let Some(at) = e.find("\"index\":") {
            let rest = &e[at + 8..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(i) = digits.parse::<u32>() {
                *e = format!("{}\"index\":{}{}", &e[..at], i + 1, &rest[digits.len()..]);
            }
        }
    }
    let block = [
        named(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}),
        ),
        named(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":a}}),
        ),
        named(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":b}}),
        ),
        named(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":FAKE_SIGNATURE}}),
        ),
        named(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
    ];
    let at = events
        .iter()
        .position(|e| e.contains("message_start"))
        .map_or(0, |i| i + 1);
    events.splice(at..at, block);
}
