//! The `kelp` binary: parses the command line and runs one subcommand.

mod cmd;
mod flags;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than the C library's allocator: the servers allocate many small,
/// short-lived buffers per request, and glibc's malloc/free showed up at several
/// percent of server CPU in profiles (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// kelp: a distributed object store and file system.
///
/// Masters hand out file ids and place volumes, volume servers store the bytes,
/// the filer maps paths to chunks and serves HTTP REST and S3.
/// Flags may be written -name=value, --name=value or -name value.
#[derive(Debug, Parser)]
#[command(
    name = "kelp",
    version,
    disable_help_subcommand = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (the default) or as one JSON object per line.
    #[arg(long = "logFormat", global = true, default_value = "text",
          value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run master, volume server, filer and S3 gateway in one process.
    #[command(args_override_self = true)]
    Server(cmd::server::Args),
    /// Run a master: assigns file ids and places volumes (Raft-replicated with -peers).
    #[command(args_override_self = true)]
    Master(cmd::master::Args),
    /// Run a volume server: stores needles in volume files.
    #[command(args_override_self = true)]
    Volume(cmd::volume::Args),
    /// Run a filer: paths to chunk lists, HTTP REST and (with -s3) the S3 API.
    #[command(args_override_self = true)]
    Filer(cmd::filer::Args),
    /// Run cluster maintenance commands read from stdin, one per line.
    #[command(args_override_self = true)]
    Shell(cmd::shell::Args),
    /// Measure write and random-read throughput over the HTTP API.
    #[command(args_override_self = true)]
    Benchmark(cmd::benchmark::Args),
    /// Copy a filer namespace from one store to another (redb:DIR, postgres:URL).
    #[command(name = "filer.copy.meta", args_override_self = true)]
    FilerCopyMeta(cmd::copy_meta::Args),
    /// Print a filer's metadata changes as they happen (its change log).
    #[command(name = "filer.meta.tail", args_override_self = true)]
    FilerMetaTail(cmd::follow::TailArgs),
    /// Keep a second filer store up to date from a filer's change log.
    #[command(name = "filer.backup", args_override_self = true)]
    FilerBackup(cmd::follow::BackupArgs),
    /// List, create and rotate the S3 gateway's SSE-S3/SSE-KMS master keys.
    #[command(name = "s3.keys", args_override_self = true)]
    S3Keys(cmd::s3_keys::Args),
    /// Print a commented configuration template (-config=security).
    #[command(args_override_self = true)]
    Scaffold(cmd::scaffold::Args),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let args = flags::normalise(std::env::args());
    let cmd_name = args.get(1).cloned().unwrap_or_default();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            eprintln!(
                "{}",
                flags::one_sentence(&err, cmd_name.trim_start_matches('-'))
            );
            return ExitCode::from(flags::USAGE_EXIT as u8);
        }
    };
    // Lets tests and packaging checks validate a command line without running it.
    if std::env::var_os("KELP_CHECK_FLAGS").is_some() {
        println!("ok");
        return ExitCode::SUCCESS;
    }
    logging::init(cli.log_format == "json");
    let result = match cli.command {
        Command::Server(a) => cmd::server::run(a),
        Command::Master(a) => cmd::master::run(a),
        Command::Volume(a) => cmd::volume::run(a),
        Command::Filer(a) => cmd::filer::run(a),
        Command::Shell(a) => cmd::shell::run(a),
        Command::Benchmark(a) => cmd::benchmark::run(a),
        Command::Scaffold(a) => cmd::scaffold::run(a),
        Command::S3Keys(a) => cmd::s3_keys::run(a),
        Command::FilerCopyMeta(a) => cmd::copy_meta::run(a),
        Command::FilerMetaTail(a) => cmd::follow::run_tail(a),
        Command::FilerBackup(a) => cmd::follow::run_backup(a),
        Command::Version => {
            println!("kelp {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kelp {cmd_name}: {err:#}");
            ExitCode::FAILURE
        }
    }
}
