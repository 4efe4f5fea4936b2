#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fluxgate_core::fuzzing::run("chat_to_anthropic", data));
