//! The request inspector end to end: every request's attempts (key, status, error class, the
//! upstream's scrubbed error text, times), the filters, following with a cursor, one request
//! whole, the JSON-lines export, typed errors for bad filters, and `fluxgate log` against the
//! real binary.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use common::{Harness, RouterProcess};
use fluxgate_testkit::{FakeUpstream, Fault};
use serde_json::Value;

const CONFIG: &str = r#"
[providers.p]
kind = "openai"
base_url = "{FAKE}/v1"
keys = [{ id = "a1" }, { id = "a2" }]

[routes.fast]
targets = ["p/m"]
"#;

fn rows(v: &Value) -> &Vec<Value> {
    v["requests"].as_array().expect("requests")
}

#[tokio::test]
async fn each_attempt_is_logged_filtered_followed_and_exported_without_the_key() {
    let h = Harness::start(CONFIG, &["p/a1", "p/a2"], &[]).await;
    let a1 = h.keys["a1"].clone();
    // a1 is rate-limited, and its error text quotes the key it was sent.
    h.fake.script(
        "a1",
        [Fault::status_with(
            429,
            &[("retry-after", "60")],
            &format!(r#"{{"error":{{"message":"Rate limit reached for key {a1} on model m"}}}}"#),
        )],
    );
    let first = h.chat("fast", false).send().await.expect("send");
    assert_eq!(first.status(), 200);
    let plain = h.chat("fast", false).send().await.expect("send");
    assert_eq!(plain.status(), 200);
    let none = h.chat("no-such-model", false).send().await.expect("send");
    assert!(none.status().is_client_error());

    // Newest first: the unmatched model, the plain answer, the failover.
    let all = h.admin_json("/admin/api/requests").await;
    assert_eq!(all["source"], "local");
    let list = rows(&all);
    assert_eq!(list.len(), 3, "{all}");
    let (nomatch, served, failover) = (&list[0], &list[1], &list[2]);
    assert_eq!(nomatch["route"], Value::Null, "no route matched");
    assert_eq!(nomatch["attempt_log"], serde_json::json!([]));
    assert_eq!(served["attempt_log"].as_array().expect("log").len(), 1);
    let log = failover["attempt_log"].as_array().expect("attempt log");
    assert_eq!(log.len(), 2, "{failover}");
    assert_eq!(failover["attempts"], 2);
    assert_eq!(log[0]["key_id"], "a1");
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["status"], 429);
    assert_eq!(log[0]["error_class"], "rate_limited");
    let text = log[0]["error"].as_str().expect("the upstream's error text");
    assert!(text.contains("Rate limit reached"), "{text}");
    assert!(!text.contains(&a1), "the key is scrubbed: {text}");
    assert_eq!(log[1]["key_id"], "a2");
    assert_eq!(log[1]["outcome"], "served");
    assert_eq!(log[1]["status"], 200);
    assert!(log[1]["first_byte_ms"].is_number());
    assert!(
        log[1]["at_ms"].as_u64() >= log[0]["at_ms"].as_u64(),
        "in order"
    );
    let seqs: Vec<i64> = list
        .iter()
        .map(|r| r["seq"].as_i64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert_eq!(all["head"].as_i64(), Some(seqs[0]));

    // Filters.
    let failed = h.admin_json("/admin/api/requests?failed=true").await;
    assert_eq!(rows(&failed).len(), 1);
    assert_eq!(rows(&failed)[0]["model"], "no-such-model");
    let retried = h.admin_json("/admin/api/requests?retried").await;
    assert_eq!(rows(&retried).len(), 1);
    assert_eq!(rows(&retried)[0]["request_id"], failover["request_id"]);
    let route = h.admin_json("/admin/api/requests?route=fast&limit=1").await;
    assert_eq!(rows(&route).len(), 1);
    assert_eq!(rows(&route)[0]["request_id"], served["request_id"]);
    let paged = h
        .admin_json(&format!(
            "/admin/api/requests?route=fast&before={}",
            seqs[1]
        ))
        .await;
    assert_eq!(rows(&paged).len(), 1);
    assert_eq!(rows(&paged)[0]["request_id"], failover["request_id"]);
    let key = h.admin_json("/admin/api/requests?provider=p&key=a2").await;
    assert_eq!(rows(&key).len(), 2);

    // Following: nothing after head, then exactly the new request, oldest first.
    let head = all["head"].as_i64().expect("head");
    let quiet = h
        .admin_json(&format!("/admin/api/requests?after={head}"))
        .await;
    assert!(rows(&quiet).is_empty());
    assert_eq!(quiet["head"].as_i64(), Some(head));
    h.chat("fast", true)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("stream");
    // The stream's pump records it just after the client saw its end.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    h.chat("fast", false).send().await.expect("send");
    let new = h
        .admin_json(&format!("/admin/api/requests?after={head}"))
        .await;
    let new_rows = rows(&new);
    assert_eq!(new_rows.len(), 2);
    assert_eq!(new_rows[0]["stream"], true, "oldest first");
    assert_eq!(new_rows[0]["attempt_log"][0]["outcome"], "served");
    assert!(new_rows[0]["attempt_log"][0]["first_byte_ms"].is_number());

    // One request whole; an unknown one is a typed 404.
    let id = failover["request_id"].as_str().expect("id");
    let one = h.admin_json(&format!("/admin/api/requests/{id}")).await;
    assert_eq!(one["request"]["attempt_log"], failover["attempt_log"]);
    let (status, body) = h
        .admin_call(reqwest::Method::GET, "/admin/api/requests/nope", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "not_found");

    // A bad filter says which and what the filters are.
    for bad in ["failed=maybe", "colour=red", "limit=lots"] {
        let (status, body) = h
            .admin_call(
                reqwest::Method::GET,
                &format!("/admin/api/requests?{bad}"),
                None,
            )
            .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["type"], "invalid_request");
        let m = body["error"]["message"].as_str().expect("message");
        assert!(m.contains("filters are failed"), "{m}");
    }

    // The export: JSON lines, every row, the key nowhere.
    let resp = h
        .admin_get("/admin/api/requests/export?route=fast&limit=3")
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().expect("type"),
        "application/x-ndjson"
    );
    let text = resp.text().await.expect("export");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["route"] == "fast"));
    assert!(!text.contains(&a1));
    let all_export = h.admin_get("/admin/api/requests/export").await;
    assert_eq!(all_export.text().await.expect("export").lines().count(), 5);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn a_stream_that_breaks_after_it_started_is_logged_as_broken() {
    let h = Harness::start(CONFIG, &["p/a1", "p/a2"], &[]).await;
    // Chat's preamble is one event, and paced events make the reset come after content
    // reached the client (data and a reset in one read surface as a reset first).
    h.fake.set_chunk_delay(std::time::Duration::from_millis(40));
    h.fake.script("a1", [Fault::ResetAfter { events: 3 }]);
    let _ = h
        .chat("fast", true)
        .send()
        .await
        .expect("send")
        .text()
        .await;
    // The stream's pump records it just after the client saw its end.
    let mut all = Value::Null;
    for _ in 0..100 {
        all = h.admin_json("/admin/api/requests?failed=1").await;
        if !rows(&all).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = &rows(&all)[0];
    assert_eq!(r["error_code"], "stream_interrupted", "{r}");
    let last = r["attempt_log"]
        .as_array()
        .and_then(|l| l.last())
        .expect("an attempt");
    assert_eq!(last["outcome"], "broke", "{r}");
    assert!(last["error"].is_string());
    assert!(last["first_byte_ms"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fluxgate_log_prints_requests_and_their_attempts() {
    let fake = FakeUpstream::start().await;
    let (k1, k2) = (common::canary(), common::canary());
    fake.add_key("k1", &k1);
    fake.add_key("k2", &k2);
    fake.script("k1", [Fault::status_with(503, &[], "upstream overloaded")]);
    let dir = common::tempdir();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.oa]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nkeys = [{{ id = \"k1\", secret = \"env:FG_LOG_K1\" }}, {{ id = \"k2\", secret = \"env:FG_LOG_K2\" }}]\n\n[routes.m]\ntargets = [\"oa/m\"]\n",
            fake.url()
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let token = RouterProcess::cli(dir.path(), &data, &["token", "new", "logtest"]);
    let token = token.lines().last().expect("token").trim().to_string();
    let router = RouterProcess::start(
        dir.path(),
        &config,
        &data,
        &[("FG_LOG_K1", &k1), ("FG_LOG_K2", &k2)],
        None,
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let chat = |content: &str| {
        http.post(format!("{}/v1/chat/completions", router.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": content}]}))
            .send()
    };
    let resp = chat("hi").await.expect("send");
    assert_eq!(resp.status(), 200);
    let out = RouterProcess::cli(
        dir.path(),
        &data,
        &["log", "--config", config.to_str().expect("utf-8")],
    );
    assert!(out.contains("✓ 200 m → oa/k2"), "{out}");
    assert!(
        out.contains("failed oa/k1 (m) 503 upstream_unavailable"),
        "{out}"
    );
    assert!(out.contains("served oa/k2 (m) 200"), "{out}");
    assert!(out.contains("logtest"), "the client: {out}");
    let json = RouterProcess::cli(dir.path(), &data, &["log", "--json", "--retried"]);
    let line: Value = serde_json::from_str(json.lines().next().expect("a line")).expect("json");
    assert_eq!(line["attempts"], 2);
    assert!(!out.contains(&k1) && !json.contains(&k1));

    // --follow prints what finishes after it started, and only that.
    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["log", "--follow", "--json", "-n", "0", "--data-dir"])
        .arg(&data)
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("fluxgate log --follow");
    let stdout = follow.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.expect("a line")).is_err() {
                break;
            }
        }
    });
    // Give it time to read the head before the request.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let resp = chat("followed").await.expect("send");
    let id = resp.headers()["x-fluxgate-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the followed request within 10 s");
    let _ = follow.kill();
    let _ = follow.wait();
    let followed: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(followed["request_id"], id.as_str());
    assert!(rx.try_recv().is_err(), "nothing older was printed");
}

#[tokio::test]
async fn a_route_that_keeps_bodies_keeps_them_cut_and_scrubbed_and_others_keep_none() {
    let config = format!(
        "{CONFIG}\n[routes.kept]\ntargets = [\"p/m\"]\nkeep_bodies_hours = 1\nkeep_bodies_kb = 1\n"
    );
    let h = Harness::start(&config, &["p/a1", "p/a2"], &[]).await;
    // A prompt that quotes something key-shaped, and is longer than the 1 KiB kept.
    let pasted = "sk-proj-Zx81Kq0Lm29Vb7Nc64Xd53Ws42Ea31Rf";
    let prompt = format!("my key is {pasted} {}", "lorem ipsum ".repeat(200));
    let body =
        serde_json::json!({"model": "kept", "messages": [{"role": "user", "content": prompt}]});
    let resp = h
        .post("/v1/chat/completions", body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let answer = resp.text().await.expect("answer");
    let streamed = h
        .post(
            "/v1/chat/completions",
            serde_json::json!({"model": "kept", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("stream");
    h.chat("fast", false).send().await.expect("send");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let list = h.admin_json("/admin/api/requests").await;
    assert_eq!(
        list["keeping_bodies"],
        serde_json::json!([{"route": "kept", "hours": 1, "max_bytes": 1024}])
    );
    let ids: Vec<String> = rows(&list)
        .iter()
        .map(|r| r["request_id"].as_str().expect("id").to_string())
        .collect();
    let (fast_id, stream_id, plain_id) = (&ids[0], &ids[1], &ids[2]);

    let plain = h
        .admin_json(&format!("/admin/api/requests/{plain_id}"))
        .await;
    let b = &plain["bodies"];
    let request = b["request"].as_str().expect("request body kept");
    assert!(request.starts_with("{\"model\":\"kept\""), "{request}");
    assert!(
        !request.contains(pasted),
        "key-shaped words are blanked: {request}"
    );
    assert!(request.contains("my key is ***"), "{request}");
    assert_eq!(b["request_cut"], true);
    assert!(b["request_bytes"].as_u64() > Some(2000));
    assert!(request.len() <= 1024);
    assert_eq!(b["response_cut"], false);
    assert_eq!(b["response"].as_str(), Some(answer.as_str()));
    let expires = b["expires_ms"].as_i64().expect("expiry");
    let ts = plain["request"]["ts_ms"].as_i64().expect("ts");
    assert_eq!(expires - ts, 3_600_000);

    let stream = h
        .admin_json(&format!("/admin/api/requests/{stream_id}"))
        .await;
    let kept = stream["bodies"]["response"].as_str().expect("stream kept");
    assert!(kept.starts_with("data: "), "{kept}");
    assert!(streamed.starts_with(kept) || kept.len() == 1024, "{kept}");

    let fast = h
        .admin_json(&format!("/admin/api/requests/{fast_id}"))
        .await;
    assert_eq!(
        fast["bodies"],
        Value::Null,
        "a route that does not keep bodies"
    );
    h.assert_no_canary_leak();
}
