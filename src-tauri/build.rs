#![allow(clippy::expect_used, clippy::print_stderr)] // a build script: cargo shows its output and its panics
fn main() {
    tauri_build::build();
}
