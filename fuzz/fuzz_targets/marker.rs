//! cargo fuzz target: the properties of `webriskops_fuzzing::marker_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webriskops_fuzzing::marker_parser(data));
