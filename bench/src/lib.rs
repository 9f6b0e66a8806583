//! dbops-bench: programs that measure dbops against the sandbox and print
//! figures (BENCHMARKS.md at the repository root lists them, their goals
//! and the latest results). Nothing here asserts on time.
//!
//! Every program runs the BUILT `dbops` binary and plugin libraries found
//! next to its own executable (`target/release` with `--release`), the way
//! a Job runs them. This library holds what they share: [`World`] (a
//! sandbox with a kubeconfig and a scratch dir), StatefulSets whose pods
//! become Ready after a fixed delay ([`stateful_set`]), the benchmark
//! pipeline ([`pipeline`]), a TCP [`proxy`] that timestamps the first
//! connection, the peak RSS of a child ([`run_with_peak_rss`]), CPU
//! time of the sandbox and of the runs ([`cpu`]) and [`stats`].

/// The benchmarks' sandbox (this process) allocates with mimalloc: it
/// stands in for the API server and controllers, and with glibc's malloc
/// it spent a fifth of its CPU in the allocator (BENCHMARKS.md, round 6),
/// CPU that the measured `dbops` processes then lacked on a 2-core machine.
/// `dbops` itself keeps the system allocator: mimalloc raised its peak RSS
/// from 27 to 41 MiB (goal: under 30) for no measurable CPU gain.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod cpu;
pub mod journal;
pub mod proxy;
pub mod stats;
mod world;

pub use world::{BenchError, World, io as world_io, pipeline, run_with_peak_rss, stateful_set};

/// The number after `flag` on the command line (`--targets 500`), else `default`.
pub fn numeric_flag(flag: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == flag)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}
