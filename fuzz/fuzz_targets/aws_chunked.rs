//! Fuzz target `aws_chunked`: feeds each input to [`kelp_fuzz::aws_chunked`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kelp_fuzz::aws_chunked(data));
