//! Start-up and footprint of `dbops run` (issue 8, benchmark 3).
//!
//! Run: `cargo build --release -p dbops -p dbops-plugin-pause -p dbops-plugin-resume -p dbops-plugin-rolling-restart && cargo run --release -p dbops-bench --bin startup`
//! (option: `--samples N`, default 10).
//!
//! Prints: time from spawning `dbops run` to its first API connection (a
//! TCP proxy in front of the sandbox timestamps it), the load time of each
//! plugin library (safety checks + dlopen + descriptor + ABI check; no
//! step pins a digest, so no sha256, which is printed separately: what a
//! `sha256` pin adds), and the peak RSS of full runs (pause, rolling
//! restart of 3 members, resume): the child's VmHWM, polled.
//!
//! Each plugin load is measured in a fresh process of its own (this
//! program re-run with `--load-plugin PATH`), the way `dbops` loads it: cold
//! (the library not mapped yet) and undisturbed by this process's
//! in-process sandbox, whose threads used to inflate the figure.
//! Goals: < 20 ms to the first request, < 1 ms per plugin, < 30 MiB.

use std::time::{Duration, Instant};

use dbops_bench::proxy::Proxy;
use dbops_bench::stats::{ms, quantile};
use dbops_bench::{BenchError, World, pipeline, run_with_peak_rss, stateful_set};
use serde_json::json;

/// Child mode: load one plugin library, print the nanoseconds it took.
const LOAD_PLUGIN: &str = "--load-plugin";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(LOAD_PLUGIN) {
        std::process::exit(load_one(args.get(2).map(String::as_str)));
    }
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
    println!(
        "  plugin load (checks + dlopen + descriptor), cold, each in a fresh process, goal < 1 ms each:"
    );
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
        let loads = match load_in_fresh_processes(&path, samples()) {
            Ok(loads) => loads,
            Err(e) => {
                println!("    {plugin:<16} refused: {e}");
                continue;
            }
        };
        // What a step's `sha256` pin would add: hashing the whole file.
        let start = Instant::now();
        let _ = dbops::plugins::safety::sha256_file(&path);
        let hashing = start.elapsed();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        println!(
            "    {plugin:<16} median {} ms, max {} ms of {} fresh processes ({size:.1} MB file; a sha256 pin would add {} ms)",
            ms(quantile(&loads, 0.5)),
            ms(quantile(&loads, 1.0)),
            loads.len(),
            ms(hashing)
        );
    }
    Ok(())
}

/// Loads `path` once in each of `count` fresh processes (this program in
/// child mode); the load times they report.
fn load_in_fresh_processes(path: &std::path::Path, count: usize) -> Result<Vec<Duration>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut loads = Vec::with_capacity(count);
    for _ in 0..count {
        let out = std::process::Command::new(&exe)
            .arg(LOAD_PLUGIN)
            .arg(path)
            .output()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        let nanos: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("unexpected child output: {e}"))?;
        loads.push(Duration::from_nanos(nanos));
    }
    Ok(loads)
}

/// Child mode: load the plugin at `path` as `dbops` does and print the
/// nanoseconds it took; the exit code.
fn load_one(path: Option<&str>) -> i32 {
    let Some(path) = path else {
        eprintln!("usage: startup {LOAD_PLUGIN} PATH");
        return 2;
    };
    let start = Instant::now();
    let loaded = dbops::plugins::load_file(std::path::Path::new(path), &[]);
    let took = start.elapsed();
    match loaded {
        Ok(_) => {
            println!("{}", took.as_nanos());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
