//! The kelp s3 role (under construction).
