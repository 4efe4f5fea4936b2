#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fluxgate_core::fuzzing::run("responses_to_chat", data));
