//! Fuzz target `chat_request`: a thin wrapper; the body and its invariants are
//! `lobstah::fuzzing::chat_request`, which `tests/it/fuzz_corpus.rs` also runs over the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lobstah::fuzzing::chat_request(data));
