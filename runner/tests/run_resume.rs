//! End-to-end: durable runs. A `dbops run` killed with SIGKILL mid-step is
//! resumed by a new process with the same run id: finished steps are not
//! repeated, the killed step is re-entered with its saved state and the
//! next attempt number. SIGTERM stops the current step, runs `always`
//! steps, records `interrupted` and exits INTERRUPTED; the run then resumes.

use crate::common;

use std::time::Duration;

use common::{World, header, states, text};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const PIPELINE: &str = r#"
[[step]]
id = "first"
uses = "test-step"
with = { record = "calls" }

[[step]]
id = "slow"
uses = "test-step"
timeout = "10m"
with = { record = "calls", checkpoint = true, sleep = "1h" }

[[step]]
id = "last"
uses = "test-step"
always = true
with = { record = "calls" }
"#;

fn pid(child: &std::process::Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("pid fits"))
}

/// Wait until the `slow` step has saved its checkpoint in the journal.
fn wait_for_checkpoint(w: &World, ns: &str, run_id: &str) {
    w.wait_for(
        Duration::from_secs(60),
        "the slow step's checkpoint",
        || {
            w.journal(ns, run_id)
                .filter(|j| !j["steps"][1]["plugin_state"].is_null())
                .map(|_| ())
        },
    );
}

#[test]
fn a_killed_run_resumes_without_repeating_finished_steps() {
    let w = World::start();
    let p = w.pipeline("kill", &(header("kl", "db1", "rollback") + PIPELINE));
    let mut child = w.run_cmd(&p, "kl-1", &[]).spawn().expect("spawn dbops");
    wait_for_checkpoint(&w, "kl", "kl-1");
    kill(pid(&child), Signal::SIGKILL).expect("kill -9");
    child.wait().expect("reap");

    let journal = w.journal("kl", "kl-1").expect("journal");
    assert_eq!(journal["steps"][1]["state"], "running");
    assert!(journal.get("outcome").is_none_or(Value::is_null));
    let first_trace = journal["trace_id"].as_str().expect("trace id").to_owned();

    // Same run id: a restarted Job pod. The lease is ours, so no waiting.
    let out = w.run(&p, "kl-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        w.calls("kl", "calls"),
        ["run first 1", "run slow 1", "run slow 2", "run last 1"]
    );
    let journal = w.journal("kl", "kl-1").expect("journal");
    assert_eq!(journal["outcome"], "succeeded");
    assert_eq!(
        states(&journal),
        [
            ("first".into(), "succeeded".into(), 1),
            ("slow".into(), "succeeded".into(), 2),
            ("last".into(), "succeeded".into(), 1),
        ]
    );
    assert_eq!(journal["steps"][1]["outputs"]["resumed_from_attempt"], 1);
    assert_eq!(journal["previous_trace_ids"][0], first_trace.as_str());
}

#[test]
fn sigterm_interrupts_runs_always_steps_and_the_run_resumes() {
    let w = World::start();
    let p = w.pipeline("term", &(header("tm", "db1", "rollback") + PIPELINE));
    let mut child = w.run_cmd(&p, "tm-1", &[]).spawn().expect("spawn dbops");
    wait_for_checkpoint(&w, "tm", "tm-1");
    kill(pid(&child), Signal::SIGTERM).expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(6), "INTERRUPTED");
    assert_eq!(
        w.calls("tm", "calls"),
        ["run first 1", "run slow 1", "run last 1"]
    );
    let journal = w.journal("tm", "tm-1").expect("journal");
    assert_eq!(journal["outcome"], "interrupted");
    assert_eq!(journal["steps"][1]["state"], "interrupted");
    // The interrupted run keeps the target locked for its own resumption.
    let lease = w
        .sandbox
        .get("coordination.k8s.io/v1", "Lease", "tm", "dbops-lock-db1")
        .expect("get lease")
        .expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], "tm-1");
    let other = w.run(&p, "tm-other", &[]);
    assert_eq!(other.status.code(), Some(5), "{}", text(&other));

    let out = w.run(&p, "tm-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        w.calls("tm", "calls"),
        [
            "run first 1",
            "run slow 1",
            "run last 1",
            "run slow 2",
            "run last 2"
        ]
    );
    let journal = w.journal("tm", "tm-1").expect("journal");
    assert_eq!(journal["outcome"], "succeeded");
    assert_eq!(journal["steps"][1]["outputs"]["resumed_from_attempt"], 1);
}

#[test]
fn a_finished_run_is_not_run_again() {
    let w = World::start();
    let p = w.pipeline(
        "done",
        &(header("dn", "db1", "halt")
            + "\n[[step]]\nid = \"a\"\nuses = \"test-step\"\nwith = { record = \"calls\" }\n"),
    );
    let out = w.run(&p, "dn-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = w.run(&p, "dn-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("already finished"), "{}", text(&out));
    assert_eq!(w.calls("dn", "calls"), ["run a 1"]);
}
