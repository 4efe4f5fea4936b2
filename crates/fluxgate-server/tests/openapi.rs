//! `docs/openapi.json` documents every admin route the server registers, and nothing else.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

use std::collections::BTreeSet;

#[test]
fn the_openapi_file_lists_every_admin_route() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let app = std::fs::read_to_string(root.join("src/app.rs")).expect("app.rs");
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("../../docs/openapi.json")).expect("openapi.json"),
    )
    .expect("valid JSON");
    // Every quoted path in app.rs that is an admin route.
    let registered: BTreeSet<String> = app
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("/admin/api/") || *s == "/metrics")
        .map(str::to_string)
        .collect();
    let documented: BTreeSet<String> = spec["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    assert!(registered.len() >= 10, "{registered:?}");
    assert_eq!(registered, documented);
    assert_eq!(spec["openapi"], "3.1.0");
}
