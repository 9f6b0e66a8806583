//! End-to-end: the other commands around `run` (status, plan), JSON logs,
//! and the lock staying held (renewed) while a run lives.

use crate::common;

use std::time::Duration;

use chrono::DateTime;
use common::{World, header, text};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const ONE_STEP: &str =
    "\n[[step]]\nid = \"only\"\nuses = \"test-step\"\nwith = { outputs = { value = \"v\" } }\n";

#[test]
fn a_quiet_log_filter_still_gives_the_run_a_real_trace_id() {
    let w = World::start();
    let p = w.pipeline("quiet", &(header("quiet", "db1", "halt") + ONE_STEP));
    let out = w
        .run_cmd(&p, "quiet-1", &[])
        .env("DBOPS_LOG", "warn")
        .output()
        .expect("run dbops");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let trace_id = w.journal("quiet", "quiet-1").expect("journal")["trace_id"]
        .as_str()
        .expect("trace id")
        .to_owned();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    assert!(
        trace_id.chars().any(|c| c != '0'),
        "DBOPS_LOG=warn must not blank the trace id: {trace_id}"
    );
}

#[test]
fn status_lists_runs_steps_and_trace_ids_from_the_journals() {
    let w = World::start();
    let p = w.pipeline("st", &(header("st", "db1", "halt") + ONE_STEP));
    let out = w.run(&p, "st-1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let trace_id = w.journal("st", "st-1").expect("journal")["trace_id"]
        .as_str()
        .expect("trace id")
        .to_owned();

    let out = w
        .dbops()
        .args(["status", "--namespace", "st", "--kubeconfig"])
        .arg(&w.kubeconfig)
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("st-1") && stdout.contains("succeeded"),
        "{stdout}"
    );
    assert!(stdout.contains(&trace_id), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("only")),
        "{stdout}"
    );

    let out = w
        .dbops()
        .args(["status", "--target", "someone-else", "--kubeconfig"])
        .arg(&w.kubeconfig)
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no dbops runs"),
        "{}",
        text(&out)
    );
}

#[test]
fn json_logs_are_json_lines_with_the_step_span() {
    let w = World::start();
    let p = w.pipeline("js", &(header("js", "db1", "halt") + ONE_STEP));
    let out = w.run(&p, "js-1", &["--log-format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["span"]["step.id"] == "only"),
        "step logs carry the step span: {stderr}"
    );
    assert!(
        lines.iter().any(|l| l["fields"]["outcome"] == "succeeded"),
        "the summary is a JSON line too: {stderr}"
    );
}

#[test]
fn plan_shows_resolved_steps_without_a_cluster() {
    let w = World::start();
    let p = w.pipeline(
        "pl",
        &(header("pl", "db1", "rollback")
            + ONE_STEP
            + "\n[[step]]\nid = \"next\"\nuses = \"test-step\"\nwith = { outputs = { value = \"${steps.only.outputs.value}-${target.name}\" } }\n"),
    );
    let out = w
        .dbops()
        .arg("plan")
        .arg(&p)
        .arg("--json")
        .output()
        .expect("plan");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(plan["steps"][0]["id"], "only");
    assert_eq!(plan["steps"][0]["compensates"], true);
    assert_eq!(plan["steps"][1]["deferred"][0], "/outputs/value");
    let configmaps = w.sandbox.list("v1", "ConfigMap", Some("pl")).expect("list");
    assert!(configmaps.is_empty(), "plan writes nothing: {configmaps:?}");
}

#[test]
fn the_lock_is_renewed_while_a_run_lives() {
    let w = World::start();
    let p = w.pipeline(
        "lr",
        &(header("lr", "db1", "halt")
            + "\n[[step]]\nid = \"slow\"\nuses = \"test-step\"\ntimeout = \"10m\"\nwith = { sleep = \"1h\", checkpoint = true }\n"),
    );
    let mut child = w
        .run_cmd(&p, "lr-1", &["--lock-duration", "3s"])
        .spawn()
        .expect("spawn");
    // Renewed past its first expiry: renewTime more than 3s after acquireTime.
    w.wait_for(
        Duration::from_secs(60),
        "a lease renewal past the first expiry",
        || {
            let lease = w
                .sandbox
                .get("coordination.k8s.io/v1", "Lease", "lr", "dbops-lock-db1")
                .ok()??;
            let time = |k: &str| {
                lease["spec"][k]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            };
            let (acquired, renewed) = (time("acquireTime")?, time("renewTime")?);
            ((renewed - acquired).num_milliseconds() > 3300).then_some(())
        },
    );
    let out = w.run(&p, "lr-2", &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("lr-1"),
        "names the holder: {}",
        text(&out)
    );
    assert!(w.journal("lr", "lr-2").is_none());

    kill(
        Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        Signal::SIGTERM,
    )
    .expect("SIGTERM");
    assert_eq!(child.wait().expect("wait").code(), Some(6));
}

#[test]
fn in_a_job_the_run_id_is_the_job_uid_and_the_journal_is_owned_by_the_job() {
    let w = World::start();
    let job = w
        .sandbox
        .apply(serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "rotate", "namespace": "jb"},
            "spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "dbops", "image": "dbops:dev"}]
            }}}
        }))
        .expect("create job");
    let uid = job["metadata"]["uid"].as_str().expect("job uid").to_owned();
    let p = w.pipeline("jb", &(header("jb", "db1", "halt") + ONE_STEP));
    let out = w
        .dbops()
        .arg("run")
        .arg(&p)
        .arg("--kubeconfig")
        .arg(&w.kubeconfig)
        .env("JOB_NAME", "rotate")
        .env("JOB_UID", &uid)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cm = w
        .sandbox
        .get("v1", "ConfigMap", "jb", &format!("dbops-run-{uid}"))
        .expect("get")
        .expect("journal named after the Job uid");
    let owner = &cm["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Job");
    assert_eq!(owner["name"], "rotate");
    assert_eq!(owner["uid"], uid.as_str());
    assert_eq!(cm["metadata"]["labels"]["dbops.io/target"], "db1");
}
