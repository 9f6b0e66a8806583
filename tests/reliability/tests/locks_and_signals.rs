//! The per-target lock and signals, with the real pipelines:
//! two runners started at once on one target (exactly one proceeds, the
//! other exits LOCK_HELD and writes nothing); a holder killed with SIGKILL
//! keeps the target locked until its lease expires, then another run takes
//! it over; SIGTERM in the middle of a rolling restart runs the `always`
//! steps (resume), writes the journal, flushes the trace and exits
//! INTERRUPTED, and the same run id then finishes the rotation.
//! (runner/tests/run_lock.rs covers seeded live and expired leases.)

use std::time::{Duration, SystemTime};

use dbops_reliability::otlp::Receiver;
use dbops_reliability::{Db, exit, outcome, state, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn signal(child: &std::process::Child, sig: Signal) {
    kill(Pid::from_raw(i32::try_from(child.id()).expect("pid")), sig).expect("signal");
}

#[test]
fn two_runners_at_once_exactly_one_proceeds() {
    let db = Db::start("zookeeper", &["tw".to_owned()]);
    db.custom_config("tw", "tickTime=2600\n");
    let config_before = db.config("tw");
    let a = db.spawn("zookeeper-reconfigure.toml", "tw", "tw-a", &["mode=merge"]);
    let b = db.spawn("zookeeper-reconfigure.toml", "tw", "tw-b", &["mode=merge"]);
    let (a, b) = (outcome(a), outcome(b));
    let mut codes = [a.code, b.code];
    codes.sort_unstable();
    assert_eq!(
        codes,
        [exit::SUCCESS, exit::LOCK_HELD],
        "exactly one proceeds:\n--- a\n{}\n--- b\n{}",
        a.stderr,
        b.stderr
    );
    let (winner, loser, lost) = if a.code == exit::SUCCESS {
        ("tw-a", "tw-b", &b)
    } else {
        ("tw-b", "tw-a", &a)
    };
    assert!(
        lost.stderr.contains(winner),
        "the loser names the holder {winner}: {}",
        lost.stderr
    );
    assert!(
        db.journal("tw", loser).is_none(),
        "the loser wrote no journal"
    );
    assert!(
        db.events("tw", loser).is_empty(),
        "the loser emitted no Events"
    );
    assert_eq!(
        db.journal("tw", winner).expect("journal")["outcome"],
        "succeeded"
    );
    let config = db.config("tw");
    assert_ne!(config, config_before);
    assert_eq!(
        config.matches("tickTime=").count(),
        1,
        "changed once: {config}"
    );
}

#[test]
fn a_dead_holders_lock_is_taken_over_only_after_expiry() {
    let db = Db::start("zookeeper", &["dh".to_owned()]);
    db.custom_config("dh", "tickTime=2700\n");
    // The holder dies (SIGKILL) while the members restart.
    let mut holder = db
        .run_cmd(
            "zookeeper-reconfigure.toml",
            "dh",
            "dh-dead",
            &["mode=merge"],
        )
        .args(["--lock-duration", "4s"])
        .spawn()
        .expect("spawn");
    wait_for(Duration::from_secs(60), "the restart step", || {
        let journal = db.journal("dh", "dh-dead")?;
        (state(&journal, "restart") == "running").then_some(())
    });
    signal(&holder, Signal::SIGKILL);
    holder.wait().expect("reap");
    let lease = db
        .sandbox
        .get("coordination.k8s.io/v1", "Lease", "dh", "dbops-lock-zk")
        .expect("get")
        .expect("the dead holder's lease");
    assert_eq!(lease["spec"]["holderIdentity"], "dh-dead");

    // Another run is refused while the lease lives, and writes nothing.
    let mut refused = 0;
    let took_over = loop {
        let started = SystemTime::now();
        let out = db.run(
            "zookeeper-reconfigure.toml",
            "dh",
            "dh-other",
            &["mode=merge"],
        );
        let lease = db
            .sandbox
            .get("coordination.k8s.io/v1", "Lease", "dh", "dbops-lock-zk")
            .expect("get")
            .expect("lease");
        if out.code == exit::LOCK_HELD {
            refused += 1;
            assert!(
                out.stderr.contains("dh-dead"),
                "names the holder: {}",
                out.stderr
            );
            assert!(db.journal("dh", "dh-other").is_none(), "nothing written");
            assert_eq!(lease["spec"]["holderIdentity"], "dh-dead");
            continue;
        }
        break (out, started);
    };
    let (out, started) = took_over;
    assert!(refused >= 1, "the live lease was respected at least once");
    // The dead run's target is still paused by it: the other run refuses to
    // act on a target another run paused (or completes if it may); either
    // way it took the lock only after the dead holder's lease expired.
    let renew = lease_renew_time(&lease);
    assert!(
        started >= renew + Duration::from_secs(4) - Duration::from_millis(1100),
        "taken over only after expiry (renewed {renew:?} + 4s, started {started:?})"
    );
    println!(
        "refused {refused} times before the lease expired; then exit {}",
        out.code
    );
    assert_ne!(out.code, exit::LOCK_HELD);
}

fn lease_renew_time(lease: &serde_json::Value) -> SystemTime {
    let text = lease["spec"]["renewTime"].as_str().expect("renewTime");
    let parsed = chrono_like(text);
    SystemTime::UNIX_EPOCH + parsed
}

/// RFC 3339 `YYYY-MM-DDTHH:MM:SS[.frac]Z` to a duration since the epoch.
fn chrono_like(text: &str) -> Duration {
    let (date, time) = text
        .trim_end_matches('Z')
        .split_once('T')
        .expect("RFC 3339");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().expect("date")).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<u64> = hms.split(':').map(|x| x.parse().expect("time")).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).expect("after 1970");
    let nanos: u64 = format!("{frac:0<9}")[..9].parse().expect("fraction");
    Duration::from_secs(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
        + Duration::from_nanos(nanos)
}

#[test]
fn sigterm_mid_restart_resumes_the_target_flushes_the_trace_and_the_run_finishes_later() {
    let db = Db::start("zookeeper", &["st".to_owned()]);
    db.run(
        "zookeeper-add-tls.toml",
        "st",
        "st-add",
        &["create_ca=true"],
    )
    .expect_code(exit::SUCCESS, "add-tls");
    db.wait_ready("st");
    let before = db.pod_uids("st");
    let old_crt = db.tls_secret("st").expect("secret")["tls.crt"].clone();
    let receiver = Receiver::start();
    let child = db
        .run_cmd("zookeeper-rotate-tls.toml", "st", "st-1", &["force=true"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .spawn()
        .expect("spawn");
    wait_for(Duration::from_secs(60), "a member restarted", || {
        let journal = db.journal("st", "st-1")?;
        (state(&journal, "restart") == "running" && db.pod_uids("st") != before).then_some(())
    });
    signal(&child, Signal::SIGTERM);
    let out = outcome(child);
    out.expect_code(exit::INTERRUPTED, "SIGTERM mid-step");

    let journal = db.journal("st", "st-1").expect("journal");
    assert_eq!(journal["outcome"], "interrupted", "{journal}");
    assert_eq!(state(&journal, "restart"), "interrupted", "{journal}");
    assert_eq!(
        state(&journal, "resume"),
        "succeeded",
        "the always step ran: {journal}"
    );
    assert!(!db.paused("st"), "the target is resumed");
    let trace_id = journal["trace_id"].as_str().expect("trace id").to_owned();
    let spans = receiver.spans();
    let root = spans
        .iter()
        .find(|s| s.name == "dbops.run")
        .unwrap_or_else(|| {
            panic!(
                "the root span was flushed before exit: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        hex(&root.trace_id),
        trace_id,
        "the journal names the exported trace"
    );
    assert!(
        receiver.text().contains("resume"),
        "the resume step's span was exported"
    );

    let resumed = db.run("zookeeper-rotate-tls.toml", "st", "st-1", &["force=true"]);
    resumed.expect_code(exit::SUCCESS, "the same run id finishes the rotation");
    db.wait_ready("st");
    let journal = db.journal("st", "st-1").expect("journal");
    assert_eq!(journal["outcome"], "succeeded", "{journal}");
    assert_eq!(state(&journal, "cert"), "succeeded");
    assert_eq!(
        journal["steps"][1]["attempts"], 1,
        "the certificate was issued once: {journal}"
    );
    assert_ne!(db.tls_secret("st").expect("secret")["tls.crt"], old_crt);
    db.members_serve_secret("st");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
