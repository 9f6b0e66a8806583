//! Overhead per run (issue 8, benchmark 1): a 3-member StatefulSet whose
//! pods become Ready a fixed delay after they start; `dbops run` (pause,
//! rolling-restart, resume) next to the equivalent kubectl script
//! (annotate, rollout restart, rollout status, wait, patch) against the
//! same sandbox in the same process.
//!
//! Run: `cargo build --release -p dbops -p dbops-plugin-pause -p dbops-plugin-resume -p dbops-plugin-rolling-restart && cargo run --release -p dbops-bench --bin overhead`
//! (options: `--ready-ms 500 --repeats 3`). Needs kubectl on PATH.
//!
//! Both tools are checked to have really restarted every member when
//! they return (each member a new pod, Ready), so a tool that returns
//! early cannot look fast. The kubectl script is what a careful user
//! writes: `kubectl rollout status` waits for the controller to observe
//! the new generation and for every replica to be updated and Ready.
//!
//! Overhead = wall time minus the sum of the Ready delays (members x
//! delay); it includes the sandbox controllers' own work (pod deletion,
//! re-creation), which both tools pay alike. Per step from the run journal
//! (started_at/finished_at). Goal: dbops < 50 ms per member restart and
//! < 5% of the kubectl script's overhead.

use std::process::Command;
use std::time::{Duration, Instant};

use dbops_bench::journal::{self, Steps};
use dbops_bench::stats::{ms, quantile};
use dbops_bench::{BenchError, World, pipeline, stateful_set, world_io};
use serde_json::json;

const NS: &str = "bench";
const NAME: &str = "db";
const MEMBERS: u32 = 3;

fn main() {
    let get = dbops_bench::numeric_flag;
    if let Err(e) = run(
        Duration::from_millis(get("--ready-ms", 500)),
        get("--repeats", 3),
    ) {
        eprintln!("overhead: {e}");
        std::process::exit(1);
    }
}

fn run(ready: Duration, repeats: u64) -> Result<(), BenchError> {
    let world = World::start()?;
    let set = stateful_set(NS, NAME, MEMBERS, ready, "RollingUpdate", json!({}));
    world.seed(NS, vec![set], MEMBERS as usize)?;
    let floor = ready * MEMBERS;
    let mut dbops_runs: Vec<(&str, Vec<Duration>, Vec<Steps>)> =
        vec![("delete", vec![], vec![]), ("template", vec![], vec![])];
    let mut kubectl_runs: Vec<Duration> = Vec::new();
    let mut kubectl_steps: Vec<Steps> = Vec::new();
    // Runs that returned before every member had been replaced by a new,
    // Ready pod: such a run measured less than a restart.
    let mut early: Vec<String> = Vec::new();
    for r in 0..repeats {
        for (mode, walls, steps) in dbops_runs.iter_mut() {
            let before = pod_uids(&world)?;
            let file = world.write(&format!("{mode}.toml"), &pipeline(NS, NAME, mode))?;
            let id = format!("overhead-{mode}-{r}");
            let start = Instant::now();
            let status = world
                .dbops()
                .arg("run")
                .arg(&file)
                .arg("--kubeconfig")
                .arg(&world.kubeconfig)
                .args(["--run-id", &id])
                .status()
                .map_err(world_io("run dbops"))?;
            walls.push(start.elapsed());
            if !status.success() {
                eprintln!("overhead: dbops ({mode}) exited with {status}");
            }
            if let Some(missing) = not_restarted(&world, &before)? {
                early.push(format!("dbops ({mode}) run {r}: {missing}"));
            }
            world.wait_ready(NS, MEMBERS as usize, Duration::from_secs(60))?;
            steps.push(journal_steps(&world, &id)?);
        }
        let before = pod_uids(&world)?;
        let (wall, steps) = kubectl_script(&world)?;
        if let Some(missing) = not_restarted(&world, &before)? {
            early.push(format!("kubectl script run {r}: {missing}"));
        }
        kubectl_runs.push(wall);
        kubectl_steps.push(steps);
        world.wait_ready(NS, MEMBERS as usize, Duration::from_secs(60))?;
    }

    println!(
        "overhead per run: {MEMBERS} members, Ready {} ms after start (sum of Ready delays {} ms), median of {repeats}",
        ready.as_millis(),
        floor.as_millis()
    );
    let kubectl_wall = quantile(&kubectl_runs, 0.5);
    let kubectl_over = kubectl_wall.saturating_sub(floor);
    // annotate, rollout restart, patch: pure client cost, no waiting.
    let fixed: Vec<Duration> = kubectl_steps
        .iter()
        .map(|s| {
            [0, 1, 4]
                .iter()
                .filter_map(|&i| s.get(i).map(|x| x.1))
                .sum()
        })
        .collect();
    let kubectl_fixed = quantile(&fixed, 0.5);
    if early.is_empty() {
        println!(
            "  every run of both tools returned only once all {MEMBERS} members were new, Ready pods"
        );
    }
    for run in &early {
        println!("  NOTE: returned before all members were new, Ready pods: {run}");
    }
    for (mode, walls, steps) in &dbops_runs {
        let wall = quantile(walls, 0.5);
        let over = wall.saturating_sub(floor);
        println!(
            "  dbops (rolling-restart mode {mode}): wall {} ms, overhead {} ms = {} ms per member restart (goal < 50); {} of the kubectl script's overhead (goal < 5%); {} of its non-waiting commands' time",
            ms(wall),
            ms(over),
            ms(over / MEMBERS),
            percent(over, kubectl_over),
            percent(over, kubectl_fixed)
        );
        for (i, (step, _)) in steps[0].iter().enumerate() {
            let durations: Vec<Duration> =
                steps.iter().filter_map(|s| s.get(i).map(|x| x.1)).collect();
            let d = quantile(&durations, 0.5);
            let extra = if step == "restart" {
                d.saturating_sub(floor)
            } else {
                d
            };
            println!(
                "      step {step:<8} {} ms (overhead {} ms)",
                ms(d),
                ms(extra)
            );
        }
        let in_steps: Duration = steps[0].iter().map(|s| s.1).sum();
        println!(
            "      outside steps (start-up, validation, plugins, lock, journal, exit): ~{} ms",
            ms(wall.saturating_sub(in_steps))
        );
    }
    println!(
        "  kubectl script: wall {} ms, overhead {} ms = {} ms per member restart",
        ms(kubectl_wall),
        ms(kubectl_over),
        ms(kubectl_over / MEMBERS)
    );
    println!(
        "      non-waiting commands (annotate, rollout restart, patch): {} ms",
        ms(kubectl_fixed)
    );
    for (i, (cmd, _)) in kubectl_steps[0].iter().enumerate() {
        let durations: Vec<Duration> = kubectl_steps
            .iter()
            .filter_map(|s| s.get(i).map(|x| x.1))
            .collect();
        println!("      {cmd:<40} {} ms", ms(quantile(&durations, 0.5)));
    }
    Ok(())
}

/// The uids of the target's pods that exist now.
fn pod_uids(world: &World) -> Result<Vec<String>, BenchError> {
    Ok(world
        .sandbox
        .list("v1", "Pod", Some(NS))?
        .iter()
        .filter_map(|p| p.pointer("/metadata/uid")?.as_str().map(str::to_owned))
        .collect())
}

/// None when every member is a Ready pod that did not exist `before`;
/// else what is missing.
fn not_restarted(world: &World, before: &[String]) -> Result<Option<String>, BenchError> {
    let fresh_ready = world
        .sandbox
        .list("v1", "Pod", Some(NS))?
        .iter()
        .filter(|p| {
            p.pointer("/metadata/uid")
                .and_then(|u| u.as_str())
                .is_some_and(|u| !before.iter().any(|b| b == u))
                && p.pointer("/metadata/deletionTimestamp").is_none()
                && p.pointer("/status/conditions")
                    .and_then(|c| c.as_array())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
        })
        .count();
    Ok((fresh_ready < MEMBERS as usize)
        .then(|| format!("{fresh_ready} of {MEMBERS} members were new and Ready")))
}

/// (step id, finished - started) from the run's journal.
fn journal_steps(world: &World, run_id: &str) -> Result<Steps, BenchError> {
    let cm = world
        .sandbox
        .get("v1", "ConfigMap", NS, &format!("dbops-run-{run_id}"))?
        .unwrap_or_default();
    Ok(journal::timings(&cm).map(|t| t.steps).unwrap_or_default())
}

/// The kubectl equivalent, one timed process per command.
fn kubectl_script(world: &World) -> Result<(Duration, Steps), BenchError> {
    let sts = format!("statefulset/{NAME}");
    let commands: Vec<Vec<String>> = vec![
        vec![
            "annotate".into(),
            sts.clone(),
            "dbops.io/paused=true".into(),
            "--overwrite".into(),
        ],
        vec!["rollout".into(), "restart".into(), sts.clone()],
        vec![
            "rollout".into(),
            "status".into(),
            sts.clone(),
            "--timeout=120s".into(),
        ],
        vec![
            "wait".into(),
            "pod".into(),
            "-l".into(),
            format!("app={NAME}"),
            "--for=condition=Ready".into(),
            "--timeout=120s".into(),
        ],
        vec![
            "patch".into(),
            sts,
            "--type".into(),
            "merge".into(),
            "-p".into(),
            r#"{"metadata":{"annotations":{"dbops.io/paused":null}}}"#.into(),
        ],
    ];
    let start = Instant::now();
    let mut steps = Vec::new();
    for args in commands {
        let t = Instant::now();
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&world.kubeconfig)
            .args(["-n", NS])
            .args(&args)
            .output()
            .map_err(world_io("run kubectl (is it installed?)"))?;
        if !out.status.success() {
            eprintln!(
                "overhead: kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        steps.push((format!("kubectl {}", args[..2].join(" ")), t.elapsed()));
    }
    Ok((start.elapsed(), steps))
}

/// `part` as a percentage of `whole`, or n/a when `whole` is zero.
fn percent(part: Duration, whole: Duration) -> String {
    if whole.is_zero() {
        "n/a".into()
    } else {
        // One decimal: "5%" rounded from 5.4% would read as the goal met.
        format!("{:.1}%", 100.0 * part.as_secs_f64() / whole.as_secs_f64())
    }
}
