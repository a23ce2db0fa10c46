//! Every protocol v2 decoder (block hashes, piece hashes, needs, plans, literal frames) on arbitrary bytes; what decodes re-encodes and decodes the same.
//! The checks live in `core/tests/fuzz_checks`, shared with the regression test.

#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::decode_delta(data));
