//! The Responses API over a WebSocket, as Codex CLI's built-in `openai` provider speaks it
//! first: `GET /v1/responses` upgraded, then per turn one text frame
//! `{"type": "response.create", …the Responses request…}` from the client, answered by the
//! Responses stream's events, one JSON text frame each, until `response.completed`. Failures
//! are one frame `{"type": "error", "status": N, "error": {…}}`.
//!
//! Each turn goes through the executor exactly as `POST /v1/responses` with `stream: true`
//! does (routing, failover, the commit rule, translation), after the same Host, Origin and
//! token checks (the upgrade request passes the same layers). What the socket adds is the
//! server-side conversation a WebSocket client relies on: a turn that names the connection's
//! last response in `previous_response_id` sends only its new items, so they are appended to
//! that response's input and output here, and the request goes on complete. A turn with
//! `generate: false` (Codex warms a connection with one) is answered at once without an
//! upstream call. `response.processed` acknowledgements are read and ignored.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use fluxgate_core::exec::ProxyResponse;
use fluxgate_core::formats::errors::ErrorCode;
use fluxgate_core::formats::sse::SseParser;
use fluxgate_core::formats::Endpoint;
use serde_json::{json, Map, Value};

use crate::security::ClientName;
use crate::state::AppState;

/// `GET /v1/responses` with `Upgrade: websocket`.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    client: ClientName,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let max = state.gateway.config().max_body_bytes;
    let mut kept = headers;
    let names: Vec<_> = kept
        .keys()
        .filter(|n| n.as_str().starts_with("sec-websocket-"))
        .cloned()
        .collect();
    for n in names {
        kept.remove(n);
    }
    ws.max_message_size(max)
        .on_upgrade(move |socket| session(state, client, kept, socket))
}

/// The last response on this connection: its id, and the whole conversation it ended
/// (input items, then output items).
struct Last {
    id: String,
    items: Vec<Value>,
}

async fn session(state: Arc<AppState>, client: ClientName, headers: HeaderMap, mut ws: WebSocket) {
    tracing::info!(client = %client.0.name, "Responses WebSocket opened");
    let mut last: Option<Last> = None;
    let mut turns = 0u32;
    while let Some(Ok(msg)) = ws.recv().await {
        turns += 1;
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                let e = error_frame(ErrorCode::InvalidRequest, "send JSON text frames");
                if send(&mut ws, e).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let frames = turn(&state, &client, &headers, text.as_str(), &mut last, &mut ws).await;
        if frames.is_err() {
            break;
        }
    }
    tracing::info!(client = %client.0.name, frames = turns, "Responses WebSocket closed");
}

/// One client frame. `Err` when the socket is gone.
async fn turn(
    state: &Arc<AppState>,
    client: &ClientName,
    headers: &HeaderMap,
    text: &str,
    last: &mut Option<Last>,
    ws: &mut WebSocket,
) -> Result<(), axum::Error> {
    let Ok(Value::Object(mut req)) = serde_json::from_str::<Value>(text) else {
        return send(
            ws,
            error_frame(ErrorCode::InvalidRequest, "a frame must be a JSON object"),
        )
        .await;
    };
    match req.remove("type").as_ref().and_then(Value::as_str) {
        Some("response.create") => {}
        // Acknowledgements and anything newer than this transport knows are not turns.
        Some("response.processed") => return Ok(()),
        other => {
            let what = other.unwrap_or("(none)");
            return send(
                ws,
                error_frame(
                    ErrorCode::InvalidRequest,
                    &format!(
                        "frame type `{what}` is not one Fluxgate takes; send `response.create`"
                    ),
                ),
            )
            .await;
        }
    }
    let input = continue_conversation(&mut req, last.as_ref());
    if req.get("generate").and_then(Value::as_bool) == Some(false) {
        let id = format!("resp_fgws_{}", crate::proxy::request_id());
        let model = req.get("model").cloned().unwrap_or(Value::Null);
        let response = json!({"id": id, "object": "response", "status": "completed", "model": model, "output": [], "usage": null});
        send(ws, json!({"type": "response.created", "sequence_number": 0, "response": {"id": id, "object": "response", "status": "in_progress", "model": model, "output": []}})).await?;
        send(
            ws,
            json!({"type": "response.completed", "sequence_number": 1, "response": response}),
        )
        .await?;
        *last = Some(Last { id, items: input });
        return Ok(());
    }
    req.remove("generate");
    req.insert("stream".into(), Value::Bool(true));
    let body = match serde_json::to_vec(&Value::Object(req)) {
        Ok(b) => axum::body::Bytes::from(b),
        Err(e) => return send(ws, error_frame(ErrorCode::InvalidRequest, &e.to_string())).await,
    };
    let proxy_req =
        match crate::proxy::request(Endpoint::Responses, client.clone(), headers, body, None) {
            Ok(r) => r,
            Err((code, message)) => return send(ws, error_frame(code, &message)).await,
        };
    let span =
        tracing::info_span!("request", request_id = %proxy_req.request_id, transport = "websocket");
    let result =
        tracing::Instrument::instrument(Box::pin(state.gateway.executor.execute(proxy_req)), span)
            .await;
    match result {
        Err(e) => send(ws, error_frame(e.code, &e.message)).await,
        Ok(ProxyResponse::Complete { status, body, .. }) => {
            // A stream was asked for; a whole answer here is the upstream's refusal.
            let error = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").cloned())
                .unwrap_or_else(|| json!({"message": String::from_utf8_lossy(&body)}));
            send(
                ws,
                json!({"type": "error", "status": status, "error": error}),
            )
            .await
        }
        Ok(ProxyResponse::Stream { mut body, .. }) => {
            let mut parser = SseParser::new();
            while let Some(chunk) = body.recv().await {
                let events = match parser.feed(&chunk) {
                    Ok(e) => e,
                    Err(e) => {
                        return send(
                            ws,
                            error_frame(ErrorCode::StreamInterrupted, &e.to_string()),
                        )
                        .await
                    }
                };
                for ev in events {
                    if ev.data.is_empty() || ev.data == "[DONE]" {
                        continue;
                    }
                    if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                        if v["type"] == "response.completed" {
                            let mut items = input.clone();
                            if let Some(out) = v["response"]["output"].as_array() {
                                items.extend(out.iter().cloned());
                            }
                            if let Some(id) = v["response"]["id"].as_str() {
                                *last = Some(Last {
                                    id: id.to_string(),
                                    items,
                                });
                            }
                        }
                    }
                    ws.send(Message::Text(ev.data.into())).await?;
                }
            }
            Ok(())
        }
    }
}

/// When the request continues this connection's last response (`previous_response_id`
/// names it), puts that response's conversation before the new items and drops the id, so
/// the request stands on its own; returns the request's whole input. An id from elsewhere is
/// left for the executor (an OpenAI upstream, or Fluxgate's stored conversations).
fn continue_conversation(req: &mut Map<String, Value>, last: Option<&Last>) -> Vec<Value> {
    let new_items: Vec<Value> = match req.get("input") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(text)) => {
            vec![
                json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}),
            ]
        }
        _ => Vec::new(),
    };
    let prev = req
        .get("previous_response_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let items = match (prev, last) {
        (Some(p), Some(l)) if p == l.id => {
            req.remove("previous_response_id");
            let mut all = l.items.clone();
            all.extend(new_items);
            all
        }
        _ => new_items,
    };
    req.insert("input".into(), Value::Array(items.clone()));
    items
}

fn error_frame(code: ErrorCode, message: &str) -> Value {
    json!({
        "type": "error",
        "status": code.status(),
        "error": {"type": code.as_str(), "code": code.as_str(), "message": message},
    })
}

async fn send(ws: &mut WebSocket, v: Value) -> Result<(), axum::Error> {
    ws.send(Message::Text(v.to_string().into())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_on_the_last_response_carries_its_conversation() {
        let last = Last {
            id: "resp_1".into(),
            items: vec![
                json!({"role": "user", "content": "one"}),
                json!({"type": "function_call", "call_id": "c1"}),
            ],
        };
        let mut req = json!({"model": "m", "previous_response_id": "resp_1",
                             "input": [{"type": "function_call_output", "call_id": "c1", "output": "ok"}]});
        let req = req.as_object_mut().expect("object");
        let all = continue_conversation(req, Some(&last));
        assert_eq!(all.len(), 3);
        assert!(req.get("previous_response_id").is_none());
        assert_eq!(req["input"][2]["type"], "function_call_output");
        // Another id stays for the executor; a string input becomes a message.
        let mut other = json!({"previous_response_id": "resp_elsewhere", "input": "hi"});
        let other = other.as_object_mut().expect("object");
        let all = continue_conversation(other, Some(&last));
        assert_eq!(all.len(), 1);
        assert_eq!(other["previous_response_id"], "resp_elsewhere");
        assert_eq!(other["input"][0]["content"][0]["text"], "hi");
    }
}
