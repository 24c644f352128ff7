#![forbid(unsafe_code)]
//! `referral`: parse arguments, load config, hand over to the library.
use clap::Parser;
use std::process::ExitCode;

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
