//! Fuzz target `index`: feeds each input to [`kelp_fuzz::index`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kelp_fuzz::index(data));
