//! Crash anywhere, lose nothing: `dbops run` of the ZooKeeper rotate-TLS and
//! reconfigure pipelines is killed with SIGKILL at every kill point, then
//! run again with the same run id (what the Job controller does with a
//! killed pod). Kill points, for every step: `running` (its attempt is in
//! the journal, the plugin works), `effect` (the plugin's change is visible
//! in the cluster but its success is not yet recorded: the window a crash
//! is most dangerous in; steps with a visible change only). There is no
//! kill point between two steps: a step's success is written in the same
//! PUT as the next step's attempt (or the run's outcome), so the journal
//! never shows "finished, next not started"; that moment is the next
//! step's `running` point.
//!
//! To make every window observable without timing luck, the killed run's
//! requests on its own journal ConfigMap are slowed down by the sandbox's
//! fault injection (latency 150 ms): every journal write is then visible
//! at least 150 ms before the runner can move on. The resumed run has no
//! faults.
//!
//! After each resume: exit 0; outcome `succeeded`; every step finished
//! before the kill keeps its attempts, end time and outputs (not repeated),
//! and its effect is not redone (no second certificate, no second restart,
//! no second config write); the killed step got exactly one more attempt;
//! no step has two `StepSucceeded` Events; the target is resumed; and the
//! members are all new: every member serves the new certificate of the
//! Secret (rotate) or runs the new configuration file (reconfigure).
//!
//! Each kill point gets its own namespace (database) in one sandbox; four
//! kill points run at once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use dbops_reliability::{Db, exit, outcome, state, step, wait_for};
use dbops_sandbox::faults::{FaultAction, FaultRule};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const WORKERS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    Running,
    Effect,
}

#[derive(Debug, Clone, Copy)]
struct KillPoint {
    step: &'static str,
    moment: Moment,
}

impl std::fmt::Display for KillPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}", self.step, self.moment)
    }
}

/// The pipeline under test and how to prepare and check one iteration.
#[derive(Clone, Copy)]
struct Scenario {
    pipeline: &'static str,
    steps: [&'static str; 5],
    sets: &'static [&'static str],
}

const ROTATE: Scenario = Scenario {
    pipeline: "zookeeper-rotate-tls.toml",
    steps: ["pause", "cert", "restart", "health", "resume"],
    sets: &["force=true"],
};

const RECONFIGURE: Scenario = Scenario {
    pipeline: "zookeeper-reconfigure.toml",
    steps: ["pause", "config", "restart", "health", "resume"],
    sets: &["mode=merge"],
};

impl Scenario {
    fn kill_points(&self) -> Vec<KillPoint> {
        let mut points = Vec::new();
        for step in self.steps {
            points.push(KillPoint {
                step,
                moment: Moment::Running,
            });
            if step != "health" {
                points.push(KillPoint {
                    step,
                    moment: Moment::Effect,
                });
            }
        }
        points
    }
}

/// What the cluster looked like at some moment.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    config: String,
    tls_crt: Option<Vec<u8>>,
    uids: BTreeMap<String, String>,
    paused: bool,
}

fn snapshot(db: &Db, ns: &str) -> Snapshot {
    Snapshot {
        config: db.config(ns),
        tls_crt: db.tls_secret(ns).map(|s| s["tls.crt"].clone()),
        uids: db.pod_uids(ns),
        paused: db.paused(ns),
    }
}

/// Whether the change `step` makes is visible (relative to `before`).
fn effect_seen(db: &Db, ns: &str, step: &str, before: &Snapshot) -> bool {
    match step {
        "pause" => db.paused(ns),
        "resume" => !db.paused(ns),
        "cert" => db.tls_secret(ns).map(|s| s["tls.crt"].clone()) != before.tls_crt,
        "config" => db.config(ns) != before.config,
        "restart" => db.pod_uids(ns) != before.uids,
        _ => false,
    }
}

fn finished(state: &str) -> bool {
    state == "succeeded" || state == "skipped"
}

/// Whether the run is at `point` now.
fn at_point(db: &Db, ns: &str, journal: &Value, point: KillPoint, before: &Snapshot) -> bool {
    let s = state(journal, point.step);
    match point.moment {
        Moment::Running => s == "running",
        Moment::Effect => s == "running" && effect_seen(db, ns, point.step, before),
    }
}

/// Prepare the iteration's change: reconfigure gets a new setting (a
/// static key, so every member must restart).
fn prepare(db: &Db, ns: &str, scenario: &Scenario) {
    if scenario.pipeline.contains("reconfigure") {
        db.custom_config(ns, "tickTime=3000\nmaxClientCnxns=77\n");
    } else {
        db.run(
            "zookeeper-add-tls.toml",
            ns,
            &format!("{ns}-add"),
            &["create_ca=true"],
        )
        .expect_code(exit::SUCCESS, "add-tls before the rotation");
        db.wait_ready(ns);
    }
}

/// One kill point: run, kill at the point, resume, check. Returns a line
/// for the figures.
fn iterate(db: &Db, ns: &str, scenario: &Scenario, point: KillPoint) -> String {
    prepare(db, ns, scenario);
    let before = snapshot(db, ns);
    let run_id = format!("{ns}-run");

    let slow_journal = db.sandbox.faults().add(
        FaultRule::new(FaultAction::Latency(Duration::from_millis(150)))
            .resource("configmaps")
            .namespace(ns)
            .name(&format!("dbops-run-{run_id}")),
    );
    let mut child = db.spawn(scenario.pipeline, ns, &run_id, scenario.sets);
    let reached = wait_for(
        Duration::from_secs(90),
        &format!("kill point {point} in {ns}"),
        || {
            if let Some(status) = child.try_wait().expect("poll child") {
                return Some(Err(status));
            }
            let journal = db.journal(ns, &run_id)?;
            at_point(db, ns, &journal, point, &before).then_some(Ok(()))
        },
    );
    if let Err(status) = reached {
        let out = outcome(child);
        panic!(
            "{ns}: the run ended ({status}) before kill point {point}:\n{}",
            out.stderr
        );
    }
    kill(
        Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("SIGKILL");
    let killed = outcome(child);
    assert_eq!(killed.code, -1, "{ns}: killed by a signal");
    db.sandbox.faults().remove(slow_journal);

    let at_kill = db.journal(ns, &run_id).expect("journal at kill");
    let cluster_at_kill = snapshot(db, ns);
    let killed_state = state(&at_kill, point.step);
    assert_eq!(killed_state, "running", "{ns} {point}: {at_kill}");
    // The step's attempt was written together with the result of every
    // step before it: those are recorded finished, never still running.
    for earlier in scenario.steps.iter().take_while(|id| **id != point.step) {
        assert!(
            finished(&state(&at_kill, earlier)),
            "{ns} {point}: {earlier} is recorded finished once {} runs: {at_kill}",
            point.step
        );
    }
    assert!(
        at_kill.get("outcome").is_none_or(Value::is_null),
        "{at_kill}"
    );

    // The restarted Job pod: same run id, no faults.
    let resumed = db.run(scenario.pipeline, ns, &run_id, scenario.sets);
    resumed.expect_code(
        exit::SUCCESS,
        &format!("{ns}: resume after kill at {point}"),
    );
    db.wait_ready(ns);
    let journal = db.journal(ns, &run_id).expect("journal after resume");
    assert_eq!(journal["outcome"], "succeeded", "{ns} {point}: {journal}");
    let after = snapshot(db, ns);

    for id in scenario.steps {
        let old = step(&at_kill, id).expect("step at kill");
        let new = step(&journal, id).expect("step after resume");
        assert_eq!(new["state"], "succeeded", "{ns} {point}: {id}: {journal}");
        let old_attempts = old["attempts"].as_u64().unwrap_or(0);
        let new_attempts = new["attempts"].as_u64().unwrap_or(0);
        if finished(old["state"].as_str().unwrap_or_default()) {
            for field in ["attempts", "finished_at", "outputs"] {
                assert_eq!(
                    old[field], new[field],
                    "{ns} {point}: finished step {id} was not repeated ({field})"
                );
            }
        } else if old["state"] == "running" {
            assert_eq!(
                new_attempts,
                old_attempts + 1,
                "{ns} {point}: the killed step {id} is re-entered once"
            );
        } else {
            assert_eq!(new_attempts, 1, "{ns} {point}: {id} ran once");
        }
    }
    let done = |id: &str| finished(&state(&at_kill, id));
    if done("cert") {
        assert_eq!(
            after.tls_crt, cluster_at_kill.tls_crt,
            "{ns} {point}: no second certificate"
        );
    }
    if done("config") {
        assert_eq!(
            after.config, cluster_at_kill.config,
            "{ns} {point}: config not rewritten"
        );
    }
    if done("restart") {
        assert_eq!(
            after.uids, cluster_at_kill.uids,
            "{ns} {point}: no second restart"
        );
    }

    let mut succeeded: BTreeMap<String, usize> = BTreeMap::new();
    for event in db.events(ns, &run_id) {
        if event["reason"] == "StepSucceeded" {
            let id = event
                .pointer("/metadata/annotations/dbops.io~1step")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            *succeeded.entry(id).or_default() += 1;
        }
    }
    for id in scenario.steps {
        let n = succeeded.get(id).copied().unwrap_or(0);
        assert!(n <= 1, "{ns} {point}: {n} StepSucceeded Events for {id}");
        if !done(id) {
            assert_eq!(n, 1, "{ns} {point}: step {id} finished in the resumed run");
        }
    }

    assert!(!after.paused, "{ns} {point}: the target is resumed");
    // All new, never mixed: every member was replaced since the start and
    // runs what the cluster now says.
    for pod in db.engine.pods() {
        assert_ne!(
            before.uids[&pod], after.uids[&pod],
            "{ns} {point}: {pod} restarted"
        );
    }
    if scenario.pipeline.contains("reconfigure") {
        assert!(after.config.contains("tickTime=3000"), "{}", after.config);
        for pod in db.engine.pods() {
            assert_eq!(
                db.mounted(ns, &pod, "conf", db.engine.file),
                after.config,
                "{ns} {point}: {pod} runs the new configuration"
            );
        }
    } else {
        assert_ne!(after.tls_crt, before.tls_crt, "{ns} {point}: rotated");
        db.members_serve_secret(ns);
    }
    // A member the killed run had already restarted (and that was back)
    // is not restarted again by the resumed run.
    let restarted_twice: Vec<&String> = after
        .uids
        .iter()
        .filter(|(pod, uid)| {
            let at_kill = &cluster_at_kill.uids[*pod];
            !at_kill.is_empty() && *at_kill != before.uids[*pod] && at_kill != *uid
        })
        .map(|(pod, _)| pod)
        .collect();
    assert!(
        restarted_twice.is_empty(),
        "{ns} {point}: members restarted twice: {restarted_twice:?}"
    );
    let restarted_at_kill = before
        .uids
        .iter()
        .filter(|(pod, uid)| cluster_at_kill.uids[*pod] != **uid)
        .count();
    format!(
        "{ns}: killed at {point} ({restarted_at_kill} members restarted before the kill); resumed, all members new"
    )
}

fn every_kill_point(scenario: Scenario, prefix: &str) {
    let points = scenario.kill_points();
    let namespaces: Vec<String> = (0..points.len()).map(|i| format!("{prefix}-{i}")).collect();
    let db = Db::start("zookeeper", &namespaces);
    let queue = Mutex::new(points.iter().copied().enumerate().collect::<Vec<_>>());
    let lines = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("queue").pop();
                    let Some((i, point)) = next else { break };
                    let line = iterate(&db, &namespaces[i], &scenario, point);
                    lines.lock().expect("lines").push(line);
                }
            });
        }
    });
    let lines = lines.into_inner().expect("lines");
    assert_eq!(lines.len(), points.len(), "every kill point survived");
    println!(
        "{} kill points survived:\n{}",
        lines.len(),
        lines.join("\n")
    );
}

#[test]
fn zookeeper_rotate_tls_survives_sigkill_at_every_kill_point() {
    every_kill_point(ROTATE, "kr");
}

#[test]
fn zookeeper_reconfigure_survives_sigkill_at_every_kill_point() {
    every_kill_point(RECONFIGURE, "kc");
}
