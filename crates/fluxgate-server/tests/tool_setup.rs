//! `/admin/api/setup/tools`: the console's one-click tool setup against the real binary with a
//! home of its own: list, preview (a diff, nothing written, no token), apply (the tool's file
//! written owner-only, a token named after the tool), undo (the original back, byte for byte),
//! and a malformed file refused with its line.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::os::unix::fs::PermissionsExt;

use common::BareRouter;

async fn call(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(admin);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin api");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_console_sets_a_tool_up_previews_and_undoes_it() {
    let dir = common::tempdir();
    let codex = dir.path().join("home/.codex/config.toml");
    std::fs::create_dir_all(codex.parent().expect("dir")).expect("dir");
    let original = "# mine\nmodel = \"gpt-5-codex\"\n";
    std::fs::write(&codex, original).expect("write");
    let BareRouter { home, router, .. } = BareRouter::start(dir.path());
    let admin = router.admin_token();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let b = router.base.clone();
    use reqwest::Method;

    let (status, list) = call(
        &http,
        &b,
        &admin,
        Method::GET,
        "/admin/api/setup/tools",
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["claude-code", "codex", "gemini-cli", "opencode"]);
    assert!(list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .all(|t| t["configured"] == false));

    let (status, preview) = call(
        &http,
        &b,
        &admin,
        Method::POST,
        "/admin/api/setup/tools/codex",
        Some(serde_json::json!({"dry_run": true})),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    let diff = preview["diff"].as_str().expect("diff");
    assert!(
        diff.contains("+model_provider = \"fluxgate\"")
            && diff.contains(&format!("+base_url = \"{b}/v1\"")),
        "{diff}"
    );
    assert!(preview["token_name"].is_null());
    assert_eq!(
        std::fs::read_to_string(&codex).expect("read"),
        original,
        "a preview writes nothing"
    );
    let (_, tokens) = call(&http, &b, &admin, Method::GET, "/admin/api/tokens", None).await;
    assert_eq!(
        tokens["tokens"].as_array().map(Vec::len),
        Some(0),
        "{tokens}"
    );

    let (status, done) = call(
        &http,
        &b,
        &admin,
        Method::POST,
        "/admin/api/setup/tools/codex",
        None,
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["token_name"], "codex");
    let text = std::fs::read_to_string(&codex).expect("read");
    assert!(
        text.starts_with("# mine\nmodel = \"gpt-5-codex\"\n")
            && text.contains("experimental_bearer_token = \"fgk_"),
        "{text}"
    );
    // The token went into the tool's file; the answer shows only its last four characters.
    let token = text
        .split('"')
        .find(|w| w.starts_with("fgk_"))
        .expect("the token in the file");
    assert!(!done.to_string().contains(token), "{done}");
    assert!(
        done["diff"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("fgk_…{}", &token[token.len() - 4..]))),
        "{done}"
    );
    assert_eq!(
        std::fs::metadata(&codex)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let (_, list) = call(
        &http,
        &b,
        &admin,
        Method::GET,
        "/admin/api/setup/tools",
        None,
    )
    .await;
    let codex_row = list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["id"] == "codex")
        .cloned()
        .expect("codex");
    assert_eq!(codex_row["configured"], true, "{codex_row}");
    assert_eq!(codex_row["undo"], true);

    let (status, undone) = call(
        &http,
        &b,
        &admin,
        Method::POST,
        "/admin/api/setup/tools/codex/undo",
        None,
    )
    .await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(std::fs::read_to_string(&codex).expect("read"), original);
    let (_, tokens) = call(&http, &b, &admin, Method::GET, "/admin/api/tokens", None).await;
    assert_eq!(
        tokens["tokens"].as_array().map(Vec::len),
        Some(0),
        "the token was revoked: {tokens}"
    );
    let (status, again) = call(
        &http,
        &b,
        &admin,
        Method::POST,
        "/admin/api/setup/tools/codex/undo",
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"]["type"].as_str()),
        (404, Some("nothing_to_undo"))
    );

    let claude = home.join(".claude/settings.json");
    std::fs::create_dir_all(claude.parent().expect("dir")).expect("dir");
    std::fs::write(&claude, "{\n  \"env\": {\n").expect("write");
    let (status, bad) = call(
        &http,
        &b,
        &admin,
        Method::POST,
        "/admin/api/setup/tools/claude-code",
        None,
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 3")),
        "{bad}"
    );
    assert_eq!(
        std::fs::read_to_string(&claude).expect("read"),
        "{\n  \"env\": {\n"
    );
    let (status, _) = call(
        &http,
        &b,
        &admin,
        Method::POST,
        "/admin/api/setup/tools/cursor",
        None,
    )
    .await;
    assert_eq!(status, 404);
}
