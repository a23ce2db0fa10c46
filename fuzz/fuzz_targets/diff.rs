//! `diff` on two signatures decoded from the two halves of the input: blocks sorted, unique and exactly the changed ones, bytes add up, runs cover the blocks.
//! The checks live in `core/tests/fuzz_checks`, shared with the regression test.

#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::diff(data));
