//! cargo fuzz target: the properties of `webriskops_fuzzing::findings_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webriskops_fuzzing::findings_reader(data));
