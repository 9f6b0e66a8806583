//! Fleet scale (issue 8, benchmark 4): one `dbops run --targets-selector`
//! over many 3-member StatefulSets in the sandbox.
//!
//! Run: `cargo build --release -p dbops -p dbops-plugin-pause -p dbops-plugin-resume -p dbops-plugin-rolling-restart && cargo run --release -p dbops-bench --bin fleet`
//! (options: `--targets 500 --concurrency 50 --members 3 --ready-ms 200`).
//!
//! Prints the single-target wall time (median of 3 ordinary runs), the
//! fleet's total wall time next to (targets / concurrency) x single, API
//! requests per target (counted by a zero-latency sandbox fault rule that
//! matches every request of non-system identities), the peak RSS of
//! the fleet process (its VmHWM, polled), each target's run time inside
//! the fleet (from the summary table), and the CPU time of the sandbox
//! (this process) and of the dbops processes next to the wall time: a
//! fleet that keeps every core busy cannot finish sooner than its CPU
//! time divided by the cores. Goals: within 1.2x, RSS < 150 MiB.

use std::process::Command;
use std::time::{Duration, Instant};

use dbops_bench::cpu::{self, CpuTimes};
use dbops_bench::journal::{self, RunTimings, Steps};
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
    let get = dbops_bench::numeric_flag;
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
    let mut single_cpu = Vec::new();
    let mut single_requests = 0;
    for i in 0..3.min(o.targets) {
        let cpu_before = cpu::now();
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
        single_cpu.push(cpu::now().since(cpu_before));
        single_requests = world.sandbox.faults().fired(counter) - before;
    }
    let single = quantile(&single, 0.5);
    let single_cpu = median_cpu(&single_cpu);

    let table = world.dir.path().join("fleet-summary.txt");
    let table_file = std::fs::File::create(&table).map_err(world_io("create the summary file"))?;
    let before = world.sandbox.faults().fired(counter);
    let cpu_before = cpu::now();
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
        .stdout(table_file);
    let (total, code, hwm) = dbops_bench::run_with_peak_rss(cmd)?;
    let fleet_cpu = cpu::now().since(cpu_before);
    let requests = world.sandbox.faults().fired(counter) - before;
    let per_target = target_durations(&table);

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
    println!(
        "  each target's run inside the fleet: median {:.3} s, p90 {:.3} s, max {:.3} s (alone: {:.3} s)",
        quantile(&per_target, 0.5).as_secs_f64(),
        quantile(&per_target, 0.9).as_secs_f64(),
        quantile(&per_target, 1.0).as_secs_f64(),
        single.as_secs_f64()
    );
    // Targets are queued in table order: about the first `concurrency`
    // get a slot at once (started 2 ms apart), each later one when a slot
    // frees.
    let (first_wave, later) = per_target.split_at(o.concurrency.min(per_target.len()));
    println!(
        "  first {} targets of the table (the first wave): median {:.3} s, max {:.3} s; the other {}: median {:.3} s, max {:.3} s",
        first_wave.len(),
        quantile(first_wave, 0.5).as_secs_f64(),
        quantile(first_wave, 1.0).as_secs_f64(),
        later.len(),
        quantile(later, 0.5).as_secs_f64(),
        quantile(later, 1.0).as_secs_f64()
    );
    for (what, prefix) in [
        ("alone", "dbops-run-single-"),
        ("in the fleet", "dbops-run-fleet-"),
    ] {
        let (whole, steps, members) = step_medians(&world, prefix)?;
        let listed: Vec<String> = steps
            .iter()
            .map(|(id, d)| format!("{id} {:.0} ms", d.as_secs_f64() * 1e3))
            .collect();
        println!(
            "  journal, median per run {what}: {:.0} ms from journal creation to end; steps: {}; one member's restart (its DELETE to back Ready): {}",
            whole.as_secs_f64() * 1e3,
            listed.join(", "),
            if members.is_empty() {
                "none recorded".to_owned()
            } else {
                format!(
                    "median {:.0} ms, p90 {:.0} ms",
                    quantile(&members, 0.5).as_secs_f64() * 1e3,
                    quantile(&members, 0.9).as_secs_f64() * 1e3
                )
            }
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "  CPU time (user+system), single target: sandbox {:.0} ms + dbops {:.0} ms = {:.0} ms per target",
        secs(single_cpu.own) * 1e3,
        secs(single_cpu.children) * 1e3,
        secs(single_cpu.own + single_cpu.children) * 1e3
    );
    let fleet_total = secs(fleet_cpu.own + fleet_cpu.children);
    println!(
        "  CPU time, fleet run: sandbox {:.2} s + dbops {:.2} s = {fleet_total:.2} s ({:.1} ms per target) in {:.2} s wall = {:.2} of {cores} cores busy",
        secs(fleet_cpu.own),
        secs(fleet_cpu.children),
        fleet_total * 1e3 / o.targets as f64,
        secs(total),
        fleet_total / secs(total)
    );
    println!(
        "  => no schedule finishes this fleet's CPU work on {cores} cores in under {:.2} s = {:.2} x the ideal",
        fleet_total / cores as f64,
        fleet_total / cores as f64 / ideal
    );
    Ok(())
}

/// Median run time (journal creation to end), median per step and every
/// member restart of the runs whose journal ConfigMap name starts with
/// `prefix`.
fn step_medians(
    world: &World,
    prefix: &str,
) -> Result<(Duration, Steps, Vec<Duration>), BenchError> {
    let runs: Vec<RunTimings> = world
        .sandbox
        .list("v1", "ConfigMap", Some(NS))?
        .iter()
        .filter(|cm| {
            cm.pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .filter_map(journal::timings)
        .collect();
    let whole: Vec<Duration> = runs.iter().filter_map(|r| r.whole).collect();
    let ids: Vec<String> = runs
        .first()
        .map(|r| r.steps.iter().map(|(id, _)| id.clone()).collect())
        .unwrap_or_default();
    let steps = ids
        .into_iter()
        .map(|id| {
            let took: Vec<Duration> = runs
                .iter()
                .filter_map(|r| r.steps.iter().find(|(s, _)| *s == id).map(|(_, d)| *d))
                .collect();
            (id, quantile(&took, 0.5))
        })
        .collect();
    let members = runs.iter().flat_map(|r| r.members.clone()).collect();
    Ok((quantile(&whole, 0.5), steps, members))
}

/// The median CPU times of several runs (each field on its own).
fn median_cpu(samples: &[CpuTimes]) -> CpuTimes {
    let own: Vec<Duration> = samples.iter().map(|c| c.own).collect();
    let children: Vec<Duration> = samples.iter().map(|c| c.children).collect();
    CpuTimes {
        own: quantile(&own, 0.5),
        children: quantile(&children, 0.5),
    }
}

/// The DURATION column (`12.34s`) of the fleet's summary table.
fn target_durations(table: &std::path::Path) -> Vec<Duration> {
    let text = std::fs::read_to_string(table).unwrap_or_default();
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let seconds = line.split_whitespace().nth(2)?.strip_suffix('s')?;
            Duration::try_from_secs_f64(seconds.parse().ok()?).ok()
        })
        .collect()
}
