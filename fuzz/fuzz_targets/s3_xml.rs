//! Fuzz target `s3_xml`: feeds each input to [`kelp_fuzz::s3_xml`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kelp_fuzz::s3_xml(data));
