//! One module per `kelp` subcommand: its flags (clap) and its `run`.

pub mod benchmark;
pub mod common;
pub mod copy_meta;
pub mod filer;
pub mod filer_toml;
pub mod follow;
pub mod master;
pub mod s3_keys;
pub mod scaffold;
pub mod server;
pub mod shell;
pub mod volume;
