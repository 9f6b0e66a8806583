//! The `dbops` command line.

fn main() {
    std::process::exit(dbops::exit::INTERNAL);
}
