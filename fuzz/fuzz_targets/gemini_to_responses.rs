#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fluxgate_core::fuzzing::run("gemini_to_responses", data));
