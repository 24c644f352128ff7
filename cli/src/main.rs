#![forbid(unsafe_code)]
//! `referral`: parse arguments, load config, hand over to the library.
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = referral::cli::Cli::parse();
    referral::cli::run(cli).await
}
