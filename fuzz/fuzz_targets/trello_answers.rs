//! cargo fuzz target: the properties of `webriskops_fuzzing::trello_answers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webriskops_fuzzing::trello_answers(data));
