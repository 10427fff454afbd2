//! The kelp volume role (under construction).
