//! A whole protocol v2 exchange in memory between the two halves of the input: the old file and the plan rebuild the new file exactly.
//! The checks live in `core/tests/fuzz_checks`, shared with the regression test.

#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::delta_sync(data));
