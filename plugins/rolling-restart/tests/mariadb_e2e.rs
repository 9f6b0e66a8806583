//! End-to-end with a real MariaDB server (Debian's mariadb-server) run by the
//! sandbox kubelet, serving TLS from a Secret:
//! 1. after the certificate in the Secret changes, health-check's mysql probe
//!    still sees the old certificate (and says so at its deadline); after
//!    rolling-restart it sees the new one, logs in and runs `SELECT 1`;
//! 2. with a configuration MariaDB refuses (an unknown option in my.cnf),
//!    the restarted member never becomes Ready and rolling-restart fails at
//!    its member deadline with a clear error naming the member and its state.

use crate::support;

use std::time::Duration;

use dbops_plugin_health_check::HealthCheck;
use dbops_plugin_rolling_restart::RollingRestart;
use dbops_plugin_sdk::protocol::RunResponse;
use dbops_plugin_sdk::serde_json::json;
use dbops_plugin_sdk::testing::TestHost;
use dbops_probes::testing::manifests::{self, PodSet};
use dbops_probes::testing::{self, TestCa};

use support::{World, outputs, target, text};

const NS: &str = "db";
const NAME: &str = "maria";
const GOOD_CNF: &str = "[mysqld]\nmax_connections = 50\n";
const BAD_CNF: &str = "[mysqld]\nmax_connections = 50\nno_such_option_dbops = 1\n";

fn probe_with_serial(serial: &str, deadline: &str) -> dbops_plugin_sdk::protocol::RunRequest {
    TestHost::request(
        "health",
        target("perconaxtradb", NS, NAME),
        json!({
            "probe": "mysql",
            "deadline": deadline,
            "timeout": "3s",
            "interval": "1s",
            "credentials": {"secret": "maria-auth"},
            "tls": {"ca_secret": "maria-tls", "expected_serial": serial},
        }),
    )
}

#[test]
fn mysql_probe_sees_the_new_certificate_and_a_server_that_cannot_start_fails_the_restart() {
    if !testing::real_server_available(testing::MARIADBD, "mariadb-server") {
        return;
    }
    let world = World::start();
    let set = PodSet {
        namespace: NS,
        name: NAME,
        replicas: 1,
        update_strategy: "OnDelete",
        data_root: world.data.path(),
    };
    let ca = TestCa::new("dbops mariadb test CA").expect("CA");
    let names = manifests::member_dns_names(&set);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let old = ca.issue("maria", &names).expect("certificate");
    let users = vec![("dbops_probe".to_string(), "pr0be-secret".to_string())];
    world.apply([
        manifests::namespace(NS),
        manifests::tls_secret(NS, "maria-tls", &old, &ca.cert_pem),
        manifests::auth_secret(NS, "maria-auth", &users[0].0, &users[0].1),
    ]);
    world.apply(manifests::mariadb(&set, GOOD_CNF, &users, "maria-tls"));
    let host = world.host(Duration::from_secs(300));
    support::wait_all_ready(&host, NS, NAME, 1, Duration::from_secs(120));
    outputs(host.run::<HealthCheck>(&probe_with_serial(&old.serial, "90s")));

    // New certificate in the Secret: the running server still serves the old one.
    let new = ca.issue("maria", &names).expect("new certificate");
    world.apply([manifests::tls_secret(NS, "maria-tls", &new, &ca.cert_pem)]);
    match host.run::<HealthCheck>(&probe_with_serial(&new.serial, "4s")) {
        RunResponse::Error {
            reason, message, ..
        } => {
            assert_eq!(reason, "HealthCheckFailed");
            assert!(message.contains(&format!("{NAME}-0")), "{message}");
            assert!(
                message.contains(&new.serial),
                "names the expected serial: {message}"
            );
        }
        RunResponse::Ok { outputs, .. } => panic!("old certificate accepted: {outputs:?}"),
    }

    let restart = TestHost::request(
        "restart",
        target("perconaxtradb", NS, NAME),
        json!({"member_timeout": "2m", "probe": {"credentials": {"secret": "maria-auth"}}}),
    );
    let restarted = outputs(host.run::<RollingRestart>(&restart));
    assert_eq!(text(&restarted, "order"), format!("{NAME}-0"));
    let checked = outputs(host.run::<HealthCheck>(&probe_with_serial(&new.serial, "90s")));
    assert_eq!(
        text(&checked, "serials"),
        format!("{NAME}-0={}", new.serial)
    );
    let report = text(&checked, "report");
    assert!(report.contains("\"select_one\":\"true\""), "{report}");

    // A configuration the server refuses: the restart fails at the member deadline.
    world.apply([manifests::config_map(
        NS,
        &format!("{NAME}-config"),
        "my.cnf",
        BAD_CNF,
    )]);
    let failing = world.host(Duration::from_secs(120));
    let restart = TestHost::request(
        "restart",
        target("perconaxtradb", NS, NAME),
        json!({"member_timeout": "15s", "pre_check": "none"}),
    );
    match failing.run::<RollingRestart>(&restart) {
        RunResponse::Error {
            reason, message, ..
        } => {
            eprintln!("the failing restart said: {reason}: {message}");
            assert_eq!(reason, "MemberNotReady", "{message}");
            assert!(
                message.contains(&format!(
                    "member {NS}/{NAME}-0 was not back Ready within 15s"
                )),
                "{message}"
            );
        }
        RunResponse::Ok { outputs, .. } => panic!("a server that cannot start passed: {outputs:?}"),
    }
    let spans = failing.spans.lock().expect("spans");
    let member = spans
        .iter()
        .find(|s| s.name == "restart-member")
        .expect("member span");
    assert!(
        member
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not back Ready"))
    );
    drop(spans);
    let events = failing.events.lock().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "Warning" && e.reason == "MemberNotReady")
    );
}
