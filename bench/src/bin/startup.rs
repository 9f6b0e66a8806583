//! Start-up and footprint of `dbops run` (issue 8, benchmark 3).
//!
//! Run: `cargo build --release -p dbops -p dbops-plugin-pause -p dbops-plugin-resume -p dbops-plugin-rolling-restart && cargo run --release -p dbops-bench --bin startup`
//! (option: `--samples N`, default 10).
//!
//! Prints: time from spawning `dbops run` to its first API connection (a
//! TCP proxy in front of the sandbox timestamps it), the load time of each
//! plugin library (safety checks + dlopen + descriptor + ABI check, cold,
//! in this process; no step pins a digest, so no sha256, which is printed
//! separately: what a `sha256` pin adds), and the peak RSS of full runs (pause, rolling
//! restart of 3 members, resume): the child's VmHWM, polled.
//! Goals: < 20 ms to the first request, < 1 ms per plugin, < 30 MiB.

use std::time::{Duration, Instant};

use dbops_bench::proxy::Proxy;
use dbops_bench::stats::{ms, quantile};
use dbops_bench::{BenchError, World, pipeline, run_with_peak_rss, stateful_set};
use serde_json::json;

fn main() {
    if let Err(e) = run() {
        eprintln!("startup: {e}");
        std::process::exit(1);
    }
}

fn samples() -> usize {
    dbops_bench::numeric_flag("--samples", 10) as usize
}

fn run() -> Result<(), BenchError> {
    let world = World::start()?;
    let set = stateful_set(
        "bench",
        "db",
        3,
        Duration::from_millis(100),
        "OnDelete",
        json!({}),
    );
    world.seed("bench", vec![set], 3)?;
    let upstream = world
        .sandbox
        .https_url()
        .trim_start_matches("https://")
        .parse()
        .map_err(|e| BenchError::Io {
            what: "parse the sandbox address".into(),
            source: std::io::Error::other(e),
        })?;
    let proxy = Proxy::start(upstream).map_err(dbops_bench::world_io("start the proxy"))?;
    let kubeconfig = world.kubeconfig_via(proxy.addr)?;
    let file = world.write("restart.toml", &pipeline("bench", "db", "delete"))?;

    let mut first_request = Vec::new();
    let mut whole = Vec::new();
    let mut rss = 0f64;
    for i in 0..samples() {
        proxy.reset();
        let mut cmd = world.dbops();
        cmd.arg("run")
            .arg(&file)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--run-id")
            .arg(format!("startup-{i}"));
        let start = Instant::now();
        let (took, code, peak) = run_with_peak_rss(cmd)?;
        whole.push(took);
        rss = rss.max(peak);
        if code != Some(0) {
            eprintln!("startup: run {i} exited with {code:?}");
        }
        if let Some(first) = proxy.first_connection() {
            first_request.push(first.duration_since(start));
        }
    }

    let mut version = Vec::new();
    for _ in 0..samples() {
        let start = Instant::now();
        let _ = world.dbops().arg("--version").output();
        version.push(start.elapsed());
    }

    println!(
        "start-up and footprint ({} samples, full runs: pause, restart 3 members, resume)",
        whole.len()
    );
    println!(
        "  spawn -> first API connection: median {} ms, p99 {} ms (goal < 20 ms)",
        ms(quantile(&first_request, 0.5)),
        ms(quantile(&first_request, 0.99))
    );
    println!(
        "  `dbops --version` (exec + exit):  median {} ms",
        ms(quantile(&version, 0.5))
    );
    println!("  whole run: median {} ms", ms(quantile(&whole, 0.5)));
    println!("  peak RSS of a full run: {rss:.1} MiB (goal < 30 MiB)");
    println!("  plugin load (checks + dlopen + descriptor), cold, goal < 1 ms each:");
    for plugin in [
        "pause",
        "resume",
        "rolling-restart",
        "health-check",
        "issue-cert",
        "patch-config",
    ] {
        let path = world
            .bin_dir
            .join(format!("libdbops_plugin_{}.so", plugin.replace('-', "_")));
        if !path.exists() {
            println!("    {plugin:<16} not built");
            continue;
        }
        let start = Instant::now();
        let loaded = dbops::plugins::load_file(&path, &[]);
        let took = start.elapsed();
        // What a step's `sha256` pin would add: hashing the whole file.
        let start = Instant::now();
        let _ = dbops::plugins::safety::sha256_file(&path);
        let hashing = start.elapsed();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        match loaded {
            Ok(_) => println!(
                "    {plugin:<16} {} ms ({size:.1} MB file; a sha256 pin would add {} ms)",
                ms(took),
                ms(hashing)
            ),
            Err(e) => println!("    {plugin:<16} refused: {e}"),
        }
    }
    Ok(())
}
