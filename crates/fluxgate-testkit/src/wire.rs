//! What each fake endpoint answers: complete bodies and stream events in the vendor's format.

use serde_json::{json, Value};

/// The API a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Chat,
    Responses,
    Messages,
    CountTokens,
    Embeddings,
    Models,
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
        }
    }

    fn is_anthropic(self) -> bool {
        matches!(self, Wire::Messages | Wire::CountTokens)
    }

    pub fn auth_error_body(self) -> String {
        if self.is_anthropic() {
            json!({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}).to_string()
        } else {
            json!({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key","param":null}}).to_string()
        }
    }

    /// The error event a vendor puts in a 200 stream.
    pub fn in_band_error(self) -> Value {
        if self.is_anthropic() {
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})
        } else if self == Wire::Responses {
            json!({"type":"error","code":"server_error","message":"The server had an error","sequence_number":0})
        } else {
            json!({"error":{"message":"The server had an error while processing your request","type":"server_error"}})
        }
    }

    /// The in-band error as one SSE frame.
    pub fn in_band_frame(self) -> String {
        let ev = self.in_band_error();
        if self == Wire::Chat {
            format!("data: {ev}\n\n")
        } else {
            format!("event: error\ndata: {ev}\n\n")
        }
    }

    /// The complete answer.
    pub fn complete(self, text: &str, model: &str) -> Value {
        match self {
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

    /// The streamed answer as SSE frames; the words of `text` are the content deltas.
    pub fn stream_events(self, text: &str, model: &str) -> Vec<String> {
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
                let mut done = Wire::Responses.complete(text, model);
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
