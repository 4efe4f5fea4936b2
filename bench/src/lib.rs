//! Benchmark helpers live in `src/bin` (the relay and the streaming probe) and `benches/`.
