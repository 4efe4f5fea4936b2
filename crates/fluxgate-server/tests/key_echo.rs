//! A hostile upstream echoes the key it was sent — in its error bodies, its in-band errors
//! (before and after a stream commits) and its headers, bare and wrapped in brackets or
//! quotes — for every status class, every client dialect and every upstream dialect. The key
//! (or 12 characters of it) must reach none of: the client's answer, `/admin/api/keys`, the
//! event stream, `/admin/api/requests`, `/metrics`, the SQLite files (`-wal` included) or the
//! log (RELIABILITY.md 26).
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::Duration;

use common::Harness;
use fluxgate_testkit::Fault;
use futures_util::StreamExt;
use serde_json::json;

const CONFIG: &str = r#"
[retry]
max_attempts = 2
max_wait = 0

[providers.oa]
kind = "openai"
base_url = "{FAKE}/v1"
keys = [{ id = "oa" }]

[providers.an]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "an" }]

[providers.ge]
kind = "gemini"
base_url = "{FAKE}"
keys = [{ id = "ge" }]

[providers.az]
kind = "azure-openai"
base_url = "{FAKE}"
keys = [{ id = "az" }]

[routes.to-oa]
targets = ["oa/gpt-4o"]
[routes.to-an]
targets = ["an/claude-sonnet-4-5"]
[routes.to-ge]
targets = ["ge/gemini-2.5-pro"]
[routes.to-az]
targets = ["az/prod"]
"#;

const UPSTREAMS: [(&str, &str); 4] = [("oa", "oa"), ("an", "an"), ("ge", "ge"), ("az", "az")];

/// How the upstream wraps the key it echoes.
const FORMS: [(&str, &str); 6] = [
    ("", ""),
    ("(", ")"),
    ("[", "]"),
    ("<", ">"),
    ("\"", "\""),
    ("'", "'"),
];

#[derive(Clone, Copy, Debug)]
enum Client {
    Chat,
    Responses,
    Messages,
    Gemini,
}

impl Client {
    fn request(self, h: &Harness, route: &str, stream: bool) -> reqwest::RequestBuilder {
        match self {
            Client::Chat => h.chat(route, stream),
            Client::Responses => h.responses(route, stream),
            Client::Messages => h.messages(route, stream),
            Client::Gemini => {
                let action = if stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                h.http
                    .post(h.url(&format!("/v1beta/models/{route}:{action}")))
                    .header("x-goog-api-key", &h.token)
                    .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
            }
        }
    }
}

/// The error body a vendor would send with `message` in it, in the upstream's own shape.
fn error_body(upstream: &str, status: u16, message: &str) -> String {
    match upstream {
        "an" => json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        "ge" => json!({"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}}),
        _ => json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
    }
    .to_string()
}

fn assert_clean(what: &str, text: &str, key: &str) {
    assert!(!text.contains(key), "{what} carries the key: {text}");
    assert!(
        !text.contains(&key[..12]),
        "{what} carries 12 characters of the key: {text}"
    );
    assert!(
        !text.contains(&key[key.len() - 12..]),
        "{what} carries the key's last 12 characters: {text}"
    );
}

#[tokio::test]
async fn an_echoed_key_never_leaves_the_attempt() {
    let h = Harness::start(CONFIG, &["oa/oa", "an/an", "ge/ge", "az/az"], &[]).await;
    let mut events = Box::pin(h.admin_events().await);

    // (status, stream) cases; 200 means an in-band error (after `after` events when streaming).
    let statuses: [u16; 7] = [400, 404, 422, 401, 402, 429, 500];
    let mut masked = 0usize;
    let mut requests = 0usize;
    for (provider, label) in UPSTREAMS {
        let key = h.keys[label].clone();
        let route = format!("to-{provider}");
        for client in [
            Client::Chat,
            Client::Responses,
            Client::Messages,
            Client::Gemini,
        ] {
            for (i, (open, close)) in FORMS.iter().enumerate() {
                let echoed = format!("Invalid request; it was sent with {open}{{KEY}}{close}.");
                let mut faults: Vec<(Fault, bool)> = statuses
                    .iter()
                    .map(|&s| {
                        let body = error_body(provider, s, &echoed);
                        let f = Fault::status_with(
                            s,
                            &[
                                ("x-echo", &format!("key={open}{{KEY}}{close}")),
                                ("www-authenticate", "Bearer {KEY}"),
                            ],
                            &body,
                        );
                        (f, i % 2 == 0)
                    })
                    .collect();
                let saying = echoed.clone();
                faults.push((
                    Fault::InBandSaying {
                        events: 0,
                        message: saying.clone(),
                    },
                    false,
                ));
                faults.push((
                    Fault::InBandSaying {
                        events: 0,
                        message: saying.clone(),
                    },
                    true,
                ));
                faults.push((
                    Fault::InBandSaying {
                        events: 3,
                        message: saying,
                    },
                    true,
                ));
                for (fault, stream) in faults {
                    h.fake.always(label, fault.clone());
                    let resp = client
                        .request(&h, &route, stream)
                        .send()
                        .await
                        .expect("send");
                    let status = resp.status();
                    let head = format!("{:?}", resp.headers());
                    let body = common::body_text(resp).await;
                    let what = format!(
                        "{client:?} -> {provider} {fault:?} stream={stream}: answer {status}"
                    );
                    assert_clean(&what, &head, &key);
                    assert_clean(&what, &body, &key);
                    assert!(
                        !head.to_ascii_lowercase().contains("www-authenticate"),
                        "{what}: www-authenticate passed through"
                    );
                    // The failure reached the key's health with the key masked: proof that the
                    // echo arrived (a test whose upstream echoed nothing could not fail).
                    let keys = h.admin_keys().await;
                    let last = keys["keys"]
                        .as_array()
                        .and_then(|a| a.iter().find(|k| k["key_id"] == label))
                        .and_then(|k| k["last_message"].as_str())
                        .unwrap_or_default()
                        .to_string();
                    assert!(last.contains("***"), "{what}: last_message {last:?}");
                    assert_clean(&what, &keys.to_string(), &key);
                    if body.contains("***") {
                        masked += 1;
                    }
                    requests += 1;
                    // Put the key back into rotation for the next case.
                    h.admin_post(
                        &format!("/admin/api/keys/{provider}/{label}/revive"),
                        json!({}),
                    )
                    .await;
                }
            }
        }
        h.fake.always(label, Fault::Ok);
        // The key's health shows the (masked) message it last failed with.
        let keys = h.admin_keys().await;
        let text = keys.to_string();
        assert_clean("/admin/api/keys", &text, &key);
    }
    // Rejected requests (400, 404, 422) carry the upstream's own message to the client, masked.
    assert!(
        masked * 4 >= requests,
        "only {masked} of {requests} answers showed a masked key"
    );

    // Leave one key dead with an echoed message, so the snapshot of a new event stream holds one.
    h.fake.always(
        "oa",
        Fault::status_with(401, &[], &error_body("oa", 401, "bad key ({KEY})")),
    );
    let resp = h.chat("to-oa", false).send().await.expect("send");
    assert_eq!(resp.status(), 503);
    let mut snapshot = Box::pin(h.admin_events().await);
    let mut first = String::new();
    while !first.contains("\n\n") {
        match tokio::time::timeout(Duration::from_secs(5), snapshot.next()).await {
            Ok(Some(Ok(chunk))) => first.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(
        first.contains("snapshot") && first.contains("bad key (***)"),
        "{first}"
    );
    assert_clean("the event snapshot", &first, &h.keys["oa"]);

    let keys = h.admin_keys().await.to_string();
    let requests_log = h.admin_json("/admin/api/requests").await.to_string();
    let metrics = h.admin_get("/metrics").await.text().await.expect("metrics");
    let mut seen = String::new();
    while let Ok(Some(Ok(chunk))) =
        tokio::time::timeout(Duration::from_millis(300), events.next()).await
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("key_state_changed"),
        "the event stream saw the failures"
    );
    for label in ["oa", "an", "ge", "az"] {
        let key = &h.keys[label];
        assert_clean("/admin/api/keys", &keys, key);
        assert_clean("/admin/api/requests", &requests_log, key);
        assert_clean("/metrics", &metrics, key);
        assert_clean("the event stream", &seen, key);
    }
    // The database (with its -wal and -shm files, where old row versions live) and the log.
    h.assert_no_canary_leak();
    let files: Vec<_> = std::fs::read_dir(h.dir.path())
        .expect("data dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("-wal")),
        "the scan read the WAL: {files:?}"
    );
}
