//! The `dbops` command line; see [`dbops::commands`].

use clap::Parser;

fn main() {
    let cli = dbops::commands::Cli::parse();
    std::process::exit(dbops::commands::main(cli));
}
