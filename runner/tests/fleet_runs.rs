//! Fleet runs (`--targets-selector`) of the built binary against the
//! sandbox: several StatefulSets matched by label, one whose pods never
//! become Ready; the others still succeed, each with its own journal, run
//! id and trace; the summary table and exit code 8; shard selection.

use crate::common;

use std::collections::BTreeSet;

use common::{World, plugin_file};
use serde_json::{Value, json};

const NS: &str = "fleet";

const PIPELINE: &str = r#"[pipeline]
name = "fleet-restart"
operation = "restart"
on_failure = "halt"

[target]
engine = "generic"
namespace = "fleet"
name = "set-by-the-fleet-run"

[defaults]
timeout = "60s"
retry = { attempts = 1, initial_backoff = "10ms", max_backoff = "50ms" }

[[step]]
id = "restart"
uses = "rolling-restart"
with = { member_timeout = "3s", pre_check = "none" }
"#;

fn stateful_set(name: &str, labels: Value, never_ready: bool) -> Value {
    let mut annotations = json!({"sandbox.dbops.io/start-delay": "50ms"});
    if never_ready {
        annotations["sandbox.dbops.io/never-ready"] = json!("true");
    }
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "replicas": 2,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "db", "image": "example/db:1"}]
                }
            }
        }
    })
}

/// db-a, db-b (healthy), db-c (never Ready) carry `rotate=nightly`;
/// other is not selected.
fn fleet_world() -> World {
    plugin_file("rolling-restart");
    let world = World::start();
    let nightly = json!({"rotate": "nightly"});
    for (name, never_ready) in [("db-a", false), ("db-b", false), ("db-c", true)] {
        world
            .sandbox
            .apply(stateful_set(name, nightly.clone(), never_ready))
            .expect("seed statefulset");
    }
    world
        .sandbox
        .apply(stateful_set("other", json!({"rotate": "never"}), false))
        .expect("seed statefulset");
    world
}

/// Target column of the summary rows (`ns/name` -> rest of the line).
fn rows(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{NS}/")))
        .filter_map(|l| {
            l.split_once(char::is_whitespace)
                .map(|(t, rest)| (t.to_owned(), rest.trim().to_owned()))
        })
        .collect()
}

fn fleet(world: &World, extra: &[&str]) -> std::process::Output {
    let pipeline = world.pipeline("fleet", PIPELINE);
    let mut args = vec!["--targets-selector", "rotate=nightly", "--namespace", NS];
    args.extend_from_slice(extra);
    world.run(&pipeline, "nightly", &args)
}

#[test]
fn a_failing_target_does_not_stop_the_others() {
    let world = fleet_world();
    let out = fleet(&world, &["--concurrency", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(8),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("fleet: 3 target(s), 2 succeeded, 1 failed"),
        "{stdout}"
    );
    let rows = rows(&stdout);
    let names: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        ["fleet/db-a", "fleet/db-b", "fleet/db-c"],
        "{stdout}"
    );
    let mut traces = BTreeSet::new();
    for (target, rest) in &rows {
        let outcome = rest.split_whitespace().next().unwrap_or_default();
        let expected = if target.ends_with("db-c") {
            "failed"
        } else {
            "succeeded"
        };
        assert_eq!(outcome, expected, "{target}: {stdout}\n{stderr}");
        let name = target.trim_start_matches("fleet/");
        let run_id = format!("nightly-{NS}-{name}");
        assert!(rest.ends_with(&run_id), "{rest}");
        let journal = world.journal(NS, &run_id).expect("one journal per target");
        assert_eq!(journal["outcome"], json!(expected), "{journal}");
        let trace = rest.split_whitespace().nth(2).unwrap_or_default();
        assert_eq!(
            journal["trace_id"],
            json!(trace),
            "the table shows the run's trace id"
        );
        traces.insert(trace.to_owned());
    }
    assert_eq!(traces.len(), 3, "one trace per target: {traces:?}");
    assert!(
        world.journal(NS, "nightly-fleet-other").is_none(),
        "an unselected StatefulSet is not run"
    );
    assert!(
        stdout.contains("  fleet/db-c: member"),
        "the failure is explained: {stdout}"
    );
}

#[test]
fn shards_split_the_targets_between_indexes() {
    let world = fleet_world();
    let mut seen = Vec::new();
    for index in 0..2 {
        let shard = format!("{index}/2");
        let out = fleet(&world, &["--dry-run", "--shard", &shard]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let part: Vec<String> = rows(&stdout).into_iter().map(|(t, _)| t).collect();
        // A dry run restarts nothing, so db-c succeeds too.
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.extend(part);
    }
    seen.sort();
    assert_eq!(seen, ["fleet/db-a", "fleet/db-b", "fleet/db-c"]);

    // An Indexed Job: JOB_COMPLETION_INDEX + --shard-count pick the same share.
    let pipeline = world.pipeline("fleet", PIPELINE);
    let by_flag = fleet(&world, &["--dry-run", "--shard", "1/2"]);
    let by_env = world
        .run_cmd(
            &pipeline,
            "nightly",
            &[
                "--targets-selector",
                "rotate=nightly",
                "--namespace",
                NS,
                "--dry-run",
                "--shard-count",
                "2",
            ],
        )
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .expect("run dbops");
    let names = |o: &std::process::Output| -> Vec<String> {
        rows(&String::from_utf8_lossy(&o.stdout))
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    };
    assert_eq!(names(&by_flag), names(&by_env));
}

#[test]
fn fleet_flags_are_checked_before_anything_runs() {
    let world = fleet_world();
    let out = fleet(&world, &["--set", "target.name=db-a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be combined with --targets-selector")
    );
    let out = fleet(&world, &["--shard-count", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JOB_COMPLETION_INDEX"));
    assert!(
        world.journal(NS, "nightly-fleet-db-a").is_none(),
        "nothing ran"
    );
}
