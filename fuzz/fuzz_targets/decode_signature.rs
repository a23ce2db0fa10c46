//! `Signature::decode` and `SignatureHeader::decode` on arbitrary bytes; what decodes must re-encode to the same bytes.
//! The checks live in `core/tests/fuzz_checks`, shared with the regression test.

#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::decode_signature(data));
