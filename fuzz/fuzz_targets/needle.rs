//! Fuzz target `needle`: feeds each input to [`kelp_fuzz::needle`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kelp_fuzz::needle(data));
