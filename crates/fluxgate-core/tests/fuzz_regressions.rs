//! Replays every input kept under `fuzz/regressions/<target>/` (crashes found by `cargo fuzz`,
//! and seeds) through the same entry points the fuzz targets use, on stable Rust, so a fixed
//! crash stays fixed.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

use std::path::Path;

#[test]
fn saved_fuzz_inputs_do_not_crash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut replayed = 0;
    for target in fluxgate_core::fuzzing::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).expect("readable");
            fluxgate_core::fuzzing::run(target, &data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no saved inputs under {}", root.display());
}
