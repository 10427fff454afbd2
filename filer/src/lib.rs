//! The kelp filer role (under construction).
