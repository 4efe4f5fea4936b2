//! A client chooses a model name, not an upstream path, query or method (RELIABILITY.md 29):
//! Gemini's and Azure's URLs take the model as exactly one encoded path segment, dot-segments
//! are refused before anything is sent, and method-override headers stay behind.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use common::Harness;

const PATH_CONFIG: &str = r#"
[providers.ge]
kind = "gemini"
base_url = "{FAKE}"
keys = [{ id = "g1" }]

[providers.az]
kind = "azure-openai"
base_url = "{FAKE}"
keys = [{ id = "z1" }]

[routes.gem]
targets = ["ge/gemini-2.5-pro"]
"#;

/// RELIABILITY.md 29: the model name goes into Gemini's and Azure's URLs as exactly one path
/// segment; dot-segments are refused before anything is sent; method overrides stay behind.
#[tokio::test]
async fn no_request_can_choose_the_upstream_path_query_or_method() {
    let h = Harness::start(PATH_CONFIG, &["ge/g1", "az/z1"], &[]).await;
    let chat = |model: &str| {
        h.http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&h.token)
            .header("x-http-method-override", "DELETE")
            .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "x"}]}))
    };
    // Dot-segments would resolve to another path: refused, nothing sent.
    for model in ["ge/..", "az/..", "ge/.", "az/."] {
        let resp = chat(model).send().await.expect("send");
        assert_eq!(resp.status(), 400, "{model}");
        let body = resp.text().await.expect("body");
        assert!(body.contains("upstream URL"), "{model}: {body}");
    }
    assert!(h.fake.log().is_empty(), "{:#?}", h.fake.log());
    // Anything else is encoded into the one segment: the path keeps its shape.
    for model in [
        "ge/../../v1beta/files?key=x#f",
        "ge/m:streamGenerateContent?alt=json",
        "az/prod/../../../openai/files?api-version=1#",
    ] {
        let resp = chat(model).send().await.expect("send");
        // The fake answers the encoded name as an unknown model or a normal answer; either way
        // the request went to the model path, not elsewhere.
        let _ = resp.status();
    }
    let gemini_path = h
        .http
        .post(h.url("/v1beta/models/ge%2F..%2F..%2Fv1beta%2Ffiles%3Fx:generateContent"))
        .header("x-goog-api-key", &h.token)
        .header("x-http-method-override", "GET")
        .json(&serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}))
        .send()
        .await
        .expect("send");
    let _ = gemini_path.status();
    let log = h.fake.log();
    assert_eq!(log.len(), 4, "{log:#?}");
    for a in &log {
        let (path, query) = a.path.split_once('?').unwrap_or((a.path.as_str(), ""));
        assert!(
            path.starts_with("/v1beta/models/") || path.starts_with("/openai/deployments/"),
            "{}",
            a.path
        );
        let segments: Vec<&str> = path.split('/').collect();
        if path.starts_with("/v1beta/models/") {
            assert_eq!(segments.len(), 4, "one segment after models/: {}", a.path);
            assert!(
                path.ends_with(":generateContent") || path.ends_with(":streamGenerateContent"),
                "{}",
                a.path
            );
            assert!(query.is_empty() || query == "alt=sse", "{}", a.path);
        } else {
            assert_eq!(segments.len(), 6, "one deployment segment: {}", a.path);
            assert!(path.ends_with("/chat/completions"), "{}", a.path);
            assert_eq!(query, "api-version=2024-10-21", "{}", a.path);
        }
        assert!(!a.path.contains('#'));
        assert!(
            !a.headers.contains_key("x-http-method-override"),
            "a method override went upstream: {a:?}"
        );
    }
}
