#![forbid(unsafe_code)]
//! `referral`: parse arguments, load config, hand over to the library.
use clap::Parser;
use std::process::ExitCode;

/// glibc's malloc was ~15 % of the edge's CPU under single requests, some of it waiting on
/// its arena locks; mimalloc keeps per-thread free lists (docs/performance.md, stop 32).
/// Built without transparent huge pages (`no_thp`, Cargo.toml): mimalloc 3 asks for them on
/// its arenas, which made each live connection cost 22–31 KiB of resident memory instead of
/// 15–16 for ~5 % of single-request throughput (docs/performance.md, stop 36).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = referral::cli::Cli::parse();
    match referral::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", referral::cli::error_line(&error));
            ExitCode::FAILURE
        }
    }
}
