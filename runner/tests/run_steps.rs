//! End-to-end: the built `dbops` binary runs pipelines of the real
//! `test-step` cdylib against an in-process sandbox. Proves loading real
//! plugins, outputs flowing between steps, `when`, retries of transient
//! errors only, timeouts (cooperative and hard stop), panics, `always`
//! steps, reverse-order compensation, the journal, Events and the lock
//! release.

use crate::common;

use common::{World, header, states, text};
use serde_json::Value;

#[test]
fn runs_real_plugins_passes_outputs_and_skips_by_when() {
    let w = World::start();
    w.seed_target("ok", "db1");
    let p = w.pipeline(
        "ok",
        &(header("ok", "db1", "rollback")
            + r#"
[[step]]
id = "a"
uses = "test-step"
with = { outputs = { value = "blue", count = 3 }, record = "calls" }

[[step]]
id = "b"
uses = "test-step"
with = { outputs = { value = "${steps.a.outputs.value}" }, record = "calls" }

[[step]]
id = "c"
uses = "test-step"
when = "steps.a.outputs.count == 4"
with = { record = "calls" }
"#),
    );
    let out = w.run(&p, "ok-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.calls("ok", "calls"), ["run a 1", "run b 1"]);

    let journal = w.journal("ok", "ok-1").expect("journal written");
    assert_eq!(journal["outcome"], "succeeded");
    assert_eq!(
        states(&journal),
        [
            ("a".into(), "succeeded".into(), 1),
            ("b".into(), "succeeded".into(), 1),
            ("c".into(), "skipped".into(), 0),
        ]
    );
    assert_eq!(journal["steps"][1]["outputs"]["value"], "blue");
    let trace_id = journal["trace_id"].as_str().expect("trace id").to_owned();
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, "0".repeat(32));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&trace_id),
        "trace id printed: {}",
        text(&out)
    );

    // Events on the target carry the run's trace id.
    let events = w
        .sandbox
        .list("v1", "Event", Some("ok"))
        .expect("list events");
    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e.pointer("/metadata/annotations/dbops.io~1run-id")
                .and_then(Value::as_str)
                == Some("ok-1")
        })
        .collect();
    assert!(
        ours.iter().any(|e| e["reason"] == "RunSucceeded"),
        "events: {events:?}"
    );
    assert!(
        ours.iter().any(|e| e["reason"] == "TestStepDone"),
        "plugin events: {events:?}"
    );
    // Events are written in the background, in the order they happened,
    // and all of them before the process exits.
    let mut written: Vec<(u64, &str)> = ours
        .iter()
        .map(|e| {
            let rv = e
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|rv| rv.parse().ok())
                .unwrap_or(0);
            (rv, e["reason"].as_str().unwrap_or_default())
        })
        .collect();
    written.sort();
    let reasons: Vec<&str> = written.iter().map(|(_, reason)| *reason).collect();
    assert_eq!(reasons.first(), Some(&"RunStarted"), "{reasons:?}");
    assert_eq!(reasons.last(), Some(&"RunSucceeded"), "{reasons:?}");
    let plugin_event = reasons.iter().position(|r| *r == "TestStepDone");
    let step_done = reasons.iter().rposition(|r| *r == "StepSucceeded");
    assert!(
        plugin_event.is_some() && step_done.is_some() && plugin_event < step_done,
        "a step's own Event comes before the last step's outcome: {reasons:?}"
    );
    for e in &ours {
        assert_eq!(
            e.pointer("/metadata/annotations/dbops.io~1trace-id")
                .and_then(Value::as_str),
            Some(trace_id.as_str())
        );
        assert_eq!(
            e.pointer("/involvedObject/name").and_then(Value::as_str),
            Some("db1")
        );
        assert!(
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&trace_id)
        );
    }

    // The lock was released: the Lease exists without a holder.
    let lease = w
        .sandbox
        .get("coordination.k8s.io/v1", "Lease", "ok", "dbops-lock-db1")
        .expect("get lease")
        .expect("lease exists");
    assert!(
        lease
            .pointer("/spec/holderIdentity")
            .is_none_or(Value::is_null),
        "{lease}"
    );
}

#[test]
fn retries_transient_errors_but_not_permanent_ones() {
    let w = World::start();
    let p = w.pipeline(
        "retry",
        &(header("rt", "db1", "halt")
            + r#"
[[step]]
id = "heals"
uses = "test-step"
retry = { attempts = 3, initial_backoff = "10ms", max_backoff = "20ms" }
with = { transient_failures = 2, record = "calls" }

[[step]]
id = "permanent"
uses = "test-step"
retry = { attempts = 3, initial_backoff = "10ms", max_backoff = "20ms" }
with = { fail = "broken on purpose", record = "calls" }
"#),
    );
    let out = w.run(&p, "rt-1", &[]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "halt -> FAILED_NOT_ROLLED_BACK: {}",
        text(&out)
    );
    assert_eq!(
        w.calls("rt", "calls"),
        [
            "run heals 1",
            "run heals 2",
            "run heals 3",
            "run permanent 1"
        ]
    );
    let journal = w.journal("rt", "rt-1").expect("journal");
    assert_eq!(journal["outcome"], "failed");
    assert_eq!(
        states(&journal),
        [
            ("heals".into(), "succeeded".into(), 3),
            ("permanent".into(), "failed".into(), 1),
        ]
    );
    assert_eq!(journal["steps"][0]["outputs"]["attempt"], 3);
    // Each retry is visible on the target as a Warning Event.
    let events = w
        .sandbox
        .list("v1", "Event", Some("rt"))
        .expect("list events");
    let retries = events
        .iter()
        .filter(|e| e["reason"] == "TestTransient" && e["type"] == "Warning")
        .count();
    assert_eq!(retries, 2, "{events:?}");
    assert_eq!(journal["steps"][1]["reason"], "TestFailed");
}

#[test]
fn transient_errors_stop_at_the_retry_budget() {
    let w = World::start();
    let p = w.pipeline(
        "budget",
        &(header("bu", "db1", "halt")
            + r#"
[[step]]
id = "flaky"
uses = "test-step"
retry = { attempts = 2, initial_backoff = "10ms", max_backoff = "20ms" }
with = { transient_failures = 5, record = "calls" }
"#),
    );
    let out = w.run(&p, "bu-1", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(w.calls("bu", "calls"), ["run flaky 1", "run flaky 2"]);
    let journal = w.journal("bu", "bu-1").expect("journal");
    assert_eq!(journal["steps"][0]["reason"], "TestTransient");
}

#[test]
fn panicking_plugin_fails_its_step_and_always_steps_still_run() {
    let w = World::start();
    let p = w.pipeline(
        "panic",
        &(header("pa", "db1", "halt")
            + r#"
[[step]]
id = "explodes"
uses = "test-step"
with = { panic = "kaboom in the plugin", record = "calls" }

[[step]]
id = "never"
uses = "test-step"
with = { record = "calls" }

[[step]]
id = "resume"
uses = "test-step"
always = true
with = { record = "calls" }
"#),
    );
    let out = w.run(&p, "pa-1", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(w.calls("pa", "calls"), ["run explodes 1", "run resume 1"]);
    let journal = w.journal("pa", "pa-1").expect("journal");
    assert_eq!(
        states(&journal),
        [
            ("explodes".into(), "failed".into(), 1),
            ("never".into(), "skipped".into(), 0),
            ("resume".into(), "succeeded".into(), 1),
        ]
    );
    assert_eq!(journal["steps"][0]["reason"], "PluginPanicked");
    assert!(
        journal["steps"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("kaboom in the plugin")
    );
}

#[test]
fn rollback_compensates_completed_steps_in_reverse_order_then_runs_always_steps() {
    let w = World::start();
    let p = w.pipeline(
        "rollback",
        &(header("rb", "db1", "rollback")
            + r#"
[[step]]
id = "a"
uses = "test-step"
with = { record = "calls" }

[[step]]
id = "b"
uses = "test-step"
with = { record = "calls" }

[[step]]
id = "c"
uses = "test-step"
with = { record = "calls" }

[[step]]
id = "d"
uses = "test-step"
with = { fail = "d fails", record = "calls" }

[[step]]
id = "e"
uses = "test-step"
always = true
with = { record = "calls" }

[[step]]
id = "reroll"
uses = "test-step"
always = true
when = "run.rolled_back && run.failed && !run.interrupted"
with = { record = "calls" }

[[step]]
id = "only-on-success"
uses = "test-step"
always = true
when = "!run.failed"
with = { record = "calls" }
"#),
    );
    let out = w.run(&p, "rb-1", &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "FAILED_ROLLED_BACK: {}",
        text(&out)
    );
    assert_eq!(
        w.calls("rb", "calls"),
        [
            "run a 1",
            "run b 1",
            "run c 1",
            "run d 1",
            "compensate c",
            "compensate b",
            "compensate a",
            "run e 1",
            "run reroll 1"
        ]
    );
    let journal = w.journal("rb", "rb-1").expect("journal");
    assert_eq!(journal["outcome"], "failed-rolled-back");
    let st: Vec<String> = states(&journal).into_iter().map(|s| s.1).collect();
    assert_eq!(
        st,
        [
            "compensated",
            "compensated",
            "compensated",
            "failed",
            "succeeded",
            "succeeded",
            "skipped"
        ]
    );
}

#[test]
fn a_failed_compensation_means_not_rolled_back() {
    let w = World::start();
    let p = w.pipeline(
        "badcomp",
        &(header("bc", "db1", "rollback")
            + r#"
[[step]]
id = "a"
uses = "test-step"
with = { record = "calls" }

[[step]]
id = "b"
uses = "test-step"
with = { record = "calls", fail_compensate = true }

[[step]]
id = "c"
uses = "test-step"
with = { fail = "c fails", record = "calls" }
"#),
    );
    let out = w.run(&p, "bc-1", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(
        w.calls("bc", "calls"),
        [
            "run a 1",
            "run b 1",
            "run c 1",
            "compensate b",
            "compensate a"
        ]
    );
    let journal = w.journal("bc", "bc-1").expect("journal");
    let st: Vec<String> = states(&journal).into_iter().map(|s| s.1).collect();
    assert_eq!(st, ["compensated", "succeeded", "failed"]);
}

#[test]
fn a_step_past_its_deadline_fails_cooperatively_or_by_hard_stop() {
    let w = World::start();
    let p = w.pipeline(
        "timeout",
        &(header("to", "db1", "halt")
            + r#"
[[step]]
id = "polite"
uses = "test-step"
timeout = "1s"
with = { sleep = "1h", record = "calls" }

[[step]]
id = "cleanup"
uses = "test-step"
always = true
with = { record = "calls" }
"#),
    );
    let out = w.run(&p, "to-1", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let journal = w.journal("to", "to-1").expect("journal");
    assert_eq!(journal["steps"][0]["state"], "failed");
    assert_eq!(journal["steps"][0]["reason"], "DeadlineExceeded");
    assert_eq!(journal["steps"][1]["state"], "succeeded");

    // A plugin that ignores cancellation is abandoned; the run goes on.
    let p = w.pipeline(
        "hang",
        &(header("hs", "db1", "halt")
            + r#"
[[step]]
id = "stubborn"
uses = "test-step"
timeout = "1s"
with = { block = "1h", record = "calls" }

[[step]]
id = "cleanup"
uses = "test-step"
always = true
with = { record = "calls" }
"#),
    );
    let out = w.run(&p, "hs-1", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let journal = w.journal("hs", "hs-1").expect("journal");
    assert_eq!(journal["steps"][0]["reason"], "DeadlineExceeded");
    assert!(
        journal["steps"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("abandoned"),
        "{journal}"
    );
    assert_eq!(w.calls("hs", "calls"), ["run stubborn 1", "run cleanup 1"]);
}

#[test]
fn dry_run_writes_nothing() {
    let w = World::start();
    let p = w.pipeline(
        "dry",
        &(header("dr", "db1", "halt")
            + r#"
[[step]]
id = "writer"
uses = "test-step"
with = { record = "calls" }
"#),
    );
    let out = w.run(&p, "dr-1", &["--dry-run"]);
    // The plugin's write is refused, so the step fails; nothing exists afterwards.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("dry run: refused"), "{}", text(&out));
    assert!(w.journal("dr", "dr-1").is_none());
    assert!(w.calls("dr", "calls").is_empty());
    let lease = w
        .sandbox
        .get("coordination.k8s.io/v1", "Lease", "dr", "dbops-lock-db1")
        .expect("get lease");
    assert!(lease.is_none());
}

#[test]
fn plugins_watch_the_cluster_through_the_host() {
    let w = World::start();
    let p = w.pipeline(
        "watch",
        &(header("wa", "db1", "halt")
            + r#"
[[step]]
id = "waits"
uses = "test-step"
timeout = "2m"
with = { record = "calls", wait_for = "signal" }
"#),
    );
    let mut child = w.run_cmd(&p, "wa-1", &[]).spawn().expect("spawn dbops");
    w.wait_for(
        std::time::Duration::from_secs(60),
        "the step to start",
        || (!w.calls("wa", "calls").is_empty()).then_some(()),
    );
    w.sandbox
        .apply(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "signal", "namespace": "wa"},
            "data": {"go": "green"}
        }))
        .expect("create signal");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let journal = w.journal("wa", "wa-1").expect("journal");
    assert_eq!(journal["steps"][0]["outputs"]["value"], "green");
}

#[test]
fn the_host_rides_out_api_server_errors_on_its_own_writes() {
    use dbops_sandbox::{FaultAction, FaultRule};
    let w = World::start();
    let faults = w.sandbox.faults();
    let journal_updates = faults.add(
        FaultRule::new(FaultAction::ServerError)
            .verb("update")
            .resource("configmaps")
            .name("dbops-run-fa-1")
            .times(2),
    );
    let lease_create = faults.add(
        FaultRule::new(FaultAction::ServerError)
            .verb("create")
            .resource("leases")
            .times(1),
    );
    let p = w.pipeline(
        "faults",
        &(header("fa", "db1", "halt")
            + "\n[[step]]\nid = \"a\"\nuses = \"test-step\"\n\n[[step]]\nid = \"b\"\nuses = \"test-step\"\n"),
    );
    let out = w.run(&p, "fa-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(faults.fired(journal_updates), 2);
    assert_eq!(faults.fired(lease_create), 1);
    let journal = w.journal("fa", "fa-1").expect("journal");
    assert_eq!(journal["outcome"], "succeeded");
    assert_eq!(
        states(&journal),
        [
            ("a".into(), "succeeded".into(), 1),
            ("b".into(), "succeeded".into(), 1)
        ]
    );
}

#[test]
fn a_plugin_request_throttled_by_the_api_server_is_retried_without_costing_an_attempt() {
    use dbops_sandbox::{FaultAction, FaultRule};
    let w = World::start();
    let faults = w.sandbox.faults();
    // The step's first request (reading its record ConfigMap) meets 429
    // twice; the client waits (Retry-After) and tries again, as kube's does.
    let throttled = faults.add(
        FaultRule::new(FaultAction::TooManyRequests {
            retry_after_secs: 0,
        })
        .verb("get")
        .resource("configmaps")
        .name("calls")
        .times(2),
    );
    let p = w.pipeline(
        "throttled",
        &(header("th", "db1", "halt")
            + "\n[[step]]\nid = \"a\"\nuses = \"test-step\"\nwith = { record = \"calls\" }\n"),
    );
    let out = w.run(&p, "th-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(faults.fired(throttled), 2);
    let journal = w.journal("th", "th-1").expect("journal");
    assert_eq!(states(&journal), [("a".into(), "succeeded".into(), 1)]);
}
