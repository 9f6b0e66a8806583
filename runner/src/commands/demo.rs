//! `dbops demo`: a complete demonstration against a local sandbox.
//!
//! NOT BUILT YET: another engineer writes the demo (issue 7). Until then the
//! command says so and exits with an error instead of pretending.

use crate::exit;

/// Arguments of `dbops demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// Execute `dbops demo`.
pub async fn demo(_args: DemoArgs) -> i32 {
    eprintln!(
        "dbops demo: not built yet (see issue 7); try `dbops sandbox` and `dbops run` meanwhile"
    );
    exit::INTERNAL
}
