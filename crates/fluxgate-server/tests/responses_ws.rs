//! The Responses API over a WebSocket (Codex's built-in provider speaks it first): the same
//! token and Origin checks as HTTP, each `response.create` answered by the Responses events,
//! a tool-call round trip that continues the connection's last response by
//! `previous_response_id`, a turn translated to an Anthropic upstream, a warm-up turn
//! (`generate: false`) answered without an upstream call, and errors as error frames.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use common::Harness;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const CONFIG: &str = r#"
[providers.oa]
kind = "openai"
base_url = "{FAKE}/v1"
keys = [{ id = "o1" }]

[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }]

[routes.codex]
targets = ["oa/gpt-5-codex"]

[routes.claude]
targets = ["ant/claude-sonnet-4-5"]
"#;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(h: &Harness, token: &str, origin: Option<&str>) -> Result<Socket, u16> {
    let url = h.url("/v1/responses").replacen("http://", "ws://", 1);
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("connect: {e}"),
    }
}

/// Sends one `response.create` and reads events until `response.completed` or an error.
async fn turn(ws: &mut Socket, body: Value) -> Vec<Value> {
    let mut frame = body;
    frame["type"] = json!("response.create");
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
    let mut events = Vec::new();
    while let Some(msg) = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("an event within 10 s")
    {
        let Message::Text(t) = msg.expect("frame") else {
            continue;
        };
        let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
        let done = v["type"] == "response.completed" || v["type"] == "error";
        events.push(v);
        if done {
            break;
        }
    }
    events
}

fn output_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect()
}

#[tokio::test]
async fn a_tool_turn_round_trips_over_one_socket_and_translates_to_anthropic() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1"], &[]).await;
    for route in ["codex", "claude"] {
        let mut ws = open(&h, &h.token, None).await.expect("upgraded");
        // A warm-up turn costs no upstream call.
        let before = h.fake.log().len();
        let warm = turn(
            &mut ws,
            json!({"model": route, "generate": false, "input": [], "tools": []}),
        )
        .await;
        assert_eq!(
            warm.last().map(|e| e["type"].clone()),
            Some(json!("response.completed"))
        );
        assert_eq!(h.fake.log().len(), before);
        let warm_id = warm.last().expect("completed")["response"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let tools = json!([{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}]);
        let first = turn(&mut ws, json!({"model": route, "previous_response_id": warm_id, "tools": tools,
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[[call:shell {\"cmd\":\"echo hi\"}]]"}]}]})).await;
        let done = first.last().expect("events");
        assert_eq!(done["type"], "response.completed", "{route}: {first:?}");
        let call = done["response"]["output"]
            .as_array()
            .expect("output")
            .iter()
            .find(|i| i["type"] == "function_call")
            .cloned()
            .unwrap_or_else(|| panic!("{route}: a function call: {done}"));
        let id = done["response"]["id"].as_str().expect("id").to_string();
        // Only the new item is sent; the socket's last response carries the rest.
        let second = turn(&mut ws, json!({"model": route, "previous_response_id": id, "tools": tools,
            "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "tool said: fluxgate-ws-7"}]})).await;
        assert_eq!(
            second.last().expect("events")["type"],
            "response.completed",
            "{route}: {second:?}"
        );
        assert!(!output_text(&second).is_empty(), "{route}: {second:?}");
        let upstream = h.fake.log().last().cloned().expect("sent");
        assert!(
            upstream.body.contains("fluxgate-ws-7"),
            "the tool result went upstream"
        );
        assert!(
            upstream.body.contains("echo hi"),
            "with the call it answers: {}",
            upstream.body
        );
        let path = if route == "claude" {
            "/v1/messages"
        } else {
            "/v1/responses"
        };
        assert_eq!(upstream.path, path, "{route}");
    }
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn the_socket_has_the_same_checks_as_http_and_errors_are_frames() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1"], &[]).await;
    assert_eq!(open(&h, "not-a-token", None).await.err(), Some(401));
    // A browser page on another site cannot open it.
    assert_eq!(
        open(&h, &h.token, Some("http://evil.example")).await.err(),
        Some(403)
    );
    let mut ws = open(&h, &h.token, None).await.expect("upgraded");
    let e = turn(
        &mut ws,
        json!({"model": "no-such-route-or-model", "input": "hi"}),
    )
    .await;
    let last = e.last().expect("a frame");
    assert_eq!(last["type"], "error");
    assert_eq!(last["status"], 404, "{last}");
    ws.send(Message::Text("{\"type\":\"response.append\"}".into()))
        .await
        .expect("send");
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("a frame")
    };
    assert!(t.as_str().contains("response.create"), "{t}");
    // The socket still serves after errors.
    let ok = turn(&mut ws, json!({"model": "codex", "input": "hello"})).await;
    assert_eq!(ok.last().expect("events")["type"], "response.completed");
}
