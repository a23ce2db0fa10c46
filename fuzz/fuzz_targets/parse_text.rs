//! `parse_text` on arbitrary text with a small block size and bounded file size taken from the first bytes; what parses must survive `to_text`.
//! The checks live in `core/tests/fuzz_checks`, shared with the regression test.

#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::parse_text(data));
