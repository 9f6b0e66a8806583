//! Fleet scale (issue 8, benchmark 4): one `dbops run --targets-selector`
//! over many 3-member StatefulSets in the sandbox.
//!
//! Run: `cargo build --release -p dbops -p dbops-plugin-pause -p dbops-plugin-resume -p dbops-plugin-rolling-restart && cargo run --release -p dbops-bench --bin fleet`
//! (options: `--targets 500 --concurrency 50 --members 3 --ready-ms 200`).
//!
//! Prints the single-target wall time (median of 3 ordinary runs), the
//! fleet's total wall time next to (targets / concurrency) x single, API
//! requests per target (counted by a zero-latency sandbox fault rule that
//! matches every request of non-system identities) and the peak RSS of
//! the fleet process (its VmHWM, polled). Goals: within 1.2x,
//! RSS < 150 MiB.

use std::process::Command;
use std::time::{Duration, Instant};

use dbops_bench::stats::quantile;
use dbops_bench::{BenchError, World, pipeline, stateful_set, world_io};
use dbops_sandbox::{FaultAction, FaultRule};
use serde_json::json;

const NS: &str = "fleet";

struct Options {
    targets: usize,
    concurrency: usize,
    members: u32,
    ready_ms: u64,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str, default: u64| {
        args.windows(2)
            .find(|w| w[0] == flag)
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(default)
    };
    Options {
        targets: get("--targets", 500) as usize,
        concurrency: get("--concurrency", 50) as usize,
        members: get("--members", 3) as u32,
        ready_ms: get("--ready-ms", 200),
    }
}

fn main() {
    if let Err(e) = run(options()) {
        eprintln!("fleet: {e}");
        std::process::exit(1);
    }
}

fn timed(mut cmd: Command) -> Result<(Duration, Option<i32>), BenchError> {
    let start = Instant::now();
    let status = cmd.status().map_err(world_io("run dbops"))?;
    Ok((start.elapsed(), status.code()))
}

fn run(o: Options) -> Result<(), BenchError> {
    let world = World::start()?;
    let ready = Duration::from_millis(o.ready_ms);
    let sets = (0..o.targets)
        .map(|i| {
            let labels = json!({"fleet": "bench"});
            stateful_set(
                NS,
                &format!("db-{i:04}"),
                o.members,
                ready,
                "OnDelete",
                labels,
            )
        })
        .collect();
    let seeding = Instant::now();
    world.seed(NS, sets, o.targets * o.members as usize)?;
    eprintln!(
        "fleet: seeded {} StatefulSets x {} members in {:.1}s",
        o.targets,
        o.members,
        seeding.elapsed().as_secs_f64()
    );
    let file = world.write("restart.toml", &pipeline(NS, "db-0000", "delete"))?;
    let counter = world
        .sandbox
        .faults()
        .add(FaultRule::new(FaultAction::Latency(Duration::ZERO)));

    let mut single = Vec::new();
    let mut single_requests = 0;
    for i in 0..3.min(o.targets) {
        let before = world.sandbox.faults().fired(counter);
        let mut cmd = world.dbops();
        cmd.arg("run")
            .arg(&file)
            .arg("--kubeconfig")
            .arg(&world.kubeconfig)
            .args(["--run-id", &format!("single-{i}"), "--set"])
            .arg(format!("target.name=db-{i:04}"));
        let (took, code) = timed(cmd)?;
        if code != Some(0) {
            eprintln!("fleet: single run {i} exited with {code:?}");
        }
        single.push(took);
        single_requests = world.sandbox.faults().fired(counter) - before;
    }
    let single = quantile(&single, 0.5);

    let before = world.sandbox.faults().fired(counter);
    let mut cmd = world.dbops();
    cmd.arg("run")
        .arg(&file)
        .arg("--kubeconfig")
        .arg(&world.kubeconfig)
        .args(["--run-id", "fleet", "--targets-selector", "fleet=bench"])
        .args([
            "--namespace",
            NS,
            "--concurrency",
            &o.concurrency.to_string(),
        ])
        .stdout(std::process::Stdio::null());
    let (total, code, hwm) = dbops_bench::run_with_peak_rss(cmd)?;
    let requests = world.sandbox.faults().fired(counter) - before;

    // The same single-target run once more, now that the sandbox holds the
    // fleet's journals, Events and Leases: separates sandbox growth from
    // the fleet process itself.
    let mut cmd = world.dbops();
    cmd.arg("run")
        .arg(&file)
        .arg("--kubeconfig")
        .arg(&world.kubeconfig)
        .args(["--run-id", "single-after", "--set", "target.name=db-0000"]);
    let (after, _) = timed(cmd)?;

    let waves = o.targets.div_ceil(o.concurrency) as f64;
    let ideal = single.as_secs_f64() * waves;
    println!(
        "fleet: {} targets x {} members (Ready {} ms after start), concurrency {}",
        o.targets, o.members, o.ready_ms, o.concurrency
    );
    println!(
        "  single target (own process, median of 3): {:.3} s, {single_requests} API requests",
        single.as_secs_f64()
    );
    println!(
        "  fleet run: {:.2} s, exit code {code:?}",
        total.as_secs_f64()
    );
    println!(
        "  single target again, after the fleet run: {:.3} s",
        after.as_secs_f64()
    );
    println!(
        "  (targets / concurrency) x single = {waves} x {:.3} s = {ideal:.2} s; ratio {:.2} (goal <= 1.2)",
        single.as_secs_f64(),
        total.as_secs_f64() / ideal
    );
    println!(
        "  API requests: {requests} in total, {:.1} per target",
        requests as f64 / o.targets as f64
    );
    println!("  peak RSS of the fleet process (its VmHWM, polled): {hwm:.1} MiB (goal < 150 MiB)");
    Ok(())
}
