//! The console's TypeScript types, generated from the Rust types the admin API and the event
//! stream serialise (`ui/src/generated/api.ts`). The test below fails when the committed file
//! differs from what the types say; `FLUXGATE_WRITE_TS=1 cargo test -p fluxgate-core
//! typescript` rewrites it. Only built for tests: the release binary carries no TypeScript.

use ts_rs::TS;

/// Every exported declaration, in a stable order.
fn declarations() -> Vec<String> {
    vec![
        crate::vocab::KeyStatus::decl(),
        crate::vocab::ErrorClass::decl(),
        crate::vocab::ErrorCode::decl(),
        crate::vocab::BalanceSource::decl(),
        crate::health::KeyBalance::decl(),
        crate::health::KeyHealth::decl(),
        crate::health::ProxyHealth::decl(),
        crate::record::AttemptOutcome::decl(),
        crate::record::AttemptRecord::decl(),
        crate::record::RequestRecord::decl(),
        crate::store::Bucket::decl(),
        crate::store::Segment::decl(),
        crate::store::KeyStrip::decl(),
        crate::store::KeptBodies::decl(),
        crate::events::Event::decl(),
        crate::gateway::KeyTest::decl(),
    ]
}

fn file() -> String {
    let mut out = String::from(
        "// Generated from the Rust types by crates/fluxgate-core/src/typescript.rs; do not edit.\n\
         // Regenerate: FLUXGATE_WRITE_TS=1 cargo test -p fluxgate-core typescript\n",
    );
    for d in declarations() {
        out.push('\n');
        out.push_str("export ");
        out.push_str(d.trim());
        out.push('\n');
    }
    out.push_str("\n/** The names of the events on `/admin/api/events` (besides `snapshot`). */\n");
    out.push_str("export type EventName = Event[\"type\"];\n");
    out
}

#[test]
fn the_console_types_match_the_rust_types() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/generated/api.ts");
    let want = file();
    if std::env::var_os("FLUXGATE_WRITE_TS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, &want).expect("write");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "ui/src/generated/api.ts is stale; run FLUXGATE_WRITE_TS=1 cargo test -p fluxgate-core typescript\n--- want\n{want}"
    );
}
