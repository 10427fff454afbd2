//! The kelp master role (under construction).
