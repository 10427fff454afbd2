//! Fuzz target `ids`: feeds each input to [`kelp_fuzz::ids`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kelp_fuzz::ids(data));
