//! Fuzz target `filer_path`: feeds each input to [`kelp_fuzz::filer_path`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kelp_fuzz::filer_path(data));
