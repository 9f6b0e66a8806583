//! health-check against the sandbox: three pods serving the certificate of
//! their mounted Secret with the kubelet's built-in TLS endpoint, each
//! probed through its own pod IP (status.podIP) and through a Service
//! address. Proves: per-member reports, the expected-serial check (a wrong
//! serial fails at the deadline naming every member), CA verification, and
//! clear errors for missing Secrets. The real-server probes (ZooKeeper,
//! MariaDB) are covered end to end in plugins/rolling-restart/tests.

use std::time::Duration;

use dbops_plugin_health_check::HealthCheck;
use dbops_plugin_sdk::k8s_openapi::api::core::v1::Pod;
use dbops_plugin_sdk::kube::Kube;
use dbops_plugin_sdk::protocol::{Outputs, RunResponse, Target, Workload};
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::testing::TestHost;
use dbops_plugin_sdk::wait;
use dbops_probes::testing::TestCa;
use dbops_probes::testing::manifests::{self, PodSet};
use dbops_sandbox::{Sandbox, SandboxConfig};

const NS: &str = "web";
const NAME: &str = "edge";
const PORT: u16 = 8443;

struct Fixture {
    sandbox: Sandbox,
    serial: String,
    _data: tempfile::TempDir,
}

fn start() -> Fixture {
    let sandbox = Sandbox::start_background(SandboxConfig::default()).expect("sandbox starts");
    let data = manifests::data_root().expect("temporary directory");
    let set = PodSet {
        namespace: NS,
        name: NAME,
        replicas: 3,
        update_strategy: "OnDelete",
        data_root: data.path(),
    };
    let ca = TestCa::new("edge CA").expect("CA");
    let other_ca = TestCa::new("someone else's CA").expect("CA");
    let names = manifests::member_dns_names(&set);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let cert = ca.issue("edge", &names).expect("certificate");
    let mut objects = vec![
        manifests::namespace(NS),
        manifests::tls_secret(NS, "edge-tls", &cert, &ca.cert_pem),
        manifests::tls_secret(NS, "other-ca", &cert, &other_ca.cert_pem),
    ];
    objects.extend(manifests::tls_endpoints(&set, "edge-tls", PORT));
    for object in objects {
        sandbox.apply(object).expect("apply");
    }
    let fixture = Fixture {
        sandbox,
        serial: cert.serial,
        _data: data,
    };
    let host = fixture.host(Duration::from_secs(60));
    let pods = Kube::new(&host).api::<Pod>(Some(NS));
    for i in 0..3 {
        pods.wait_until(
            &format!("{NAME}-{i}"),
            wait::pod_is_ready(),
            Duration::from_secs(60),
        )
        .expect("pod Ready");
    }
    fixture
}

impl Fixture {
    fn host(&self, timeout: Duration) -> TestHost {
        let host = TestHost::new(&self.sandbox.url(), Some(&self.sandbox.admin_token()));
        host.set_deadline(Some(timeout));
        host
    }

    fn run(&self, with: Value) -> (RunResponse, TestHost) {
        let host = self.host(Duration::from_secs(60));
        let target = Target {
            engine: "generic".into(),
            namespace: NS.into(),
            name: NAME.into(),
            workload: Workload {
                kind: "StatefulSet".into(),
                name: NAME.into(),
                api_version: "apps/v1".into(),
            },
            database: None,
        };
        let response = host.run::<HealthCheck>(&TestHost::request("health", target, with));
        (response, host)
    }

    fn pod_ip(&self, name: &str) -> String {
        let host = self.host(Duration::from_secs(5));
        let pod = Kube::new(&host)
            .api::<Pod>(Some(NS))
            .get(name)
            .expect("pod");
        pod.status.and_then(|s| s.pod_ip).expect("pod IP")
    }
}

fn ok(response: RunResponse) -> Outputs {
    match response {
        RunResponse::Ok { outputs, .. } => outputs,
        RunResponse::Error {
            reason, message, ..
        } => panic!("{reason}: {message}"),
    }
}

fn error(response: RunResponse) -> (String, String) {
    match response {
        RunResponse::Error {
            reason, message, ..
        } => (reason, message),
        RunResponse::Ok { outputs, .. } => panic!("unexpectedly healthy: {outputs:?}"),
    }
}

#[test]
fn tls_probes_every_member_by_pod_ip_and_checks_the_served_serial() {
    let fixture = start();
    let serial = fixture.serial.clone();
    let (response, host) = fixture.run(json!({
        "probe": "tls", "port": PORT,
        "tls": {"ca_secret": "edge-tls", "expected_serial": serial},
    }));
    let outputs = ok(response);
    assert_eq!(outputs["members"], "edge-0=ok,edge-1=ok,edge-2=ok");
    assert_eq!(
        outputs["serials"],
        format!("edge-0={serial},edge-1={serial},edge-2={serial}")
    );
    assert_eq!(outputs["attempts"], 1);
    let report: Value =
        dbops_plugin_sdk::serde_json::from_str(outputs["report"].as_str().expect("report"))
            .expect("JSON");
    let address = report["targets"][1]["address"].as_str().expect("address");
    assert_eq!(address, format!("{}:{PORT}", fixture.pod_ip("edge-1")));
    // One attempt span with a child span per member.
    let spans = host.spans.lock().expect("spans");
    assert_eq!(spans.iter().filter(|s| s.name == "probe").count(), 3);
    drop(spans);
    assert!(
        host.events
            .lock()
            .expect("events")
            .iter()
            .any(|e| e.reason == "HealthCheckPassed")
    );

    // A serial no member serves: retried until the deadline, then every member named.
    let (response, host) = fixture.run(json!({
        "probe": "tls", "port": PORT, "deadline": "3s", "interval": "500ms", "timeout": "1s",
        "tls": {"ca_secret": "edge-tls", "expected_serial": "0badc0ffee"},
    }));
    let (reason, message) = error(response);
    assert_eq!(reason, "HealthCheckFailed");
    assert!(
        message.starts_with("3 of 3 target(s) still unhealthy after "),
        "{message}"
    );
    for i in 0..3 {
        assert!(message.contains(&format!("edge-{i} (")), "{message}");
    }
    assert!(message.contains("expected badc0ffee"), "{message}");
    let attempts = host
        .spans
        .lock()
        .expect("spans")
        .iter()
        .filter(|s| s.name == "health-check.attempt")
        .count();
    assert!(attempts >= 2, "retried: {attempts} attempts");
}

#[test]
fn a_foreign_ca_fails_verification_and_a_missing_secret_is_a_clear_error() {
    let fixture = start();
    let (response, _) = fixture.run(json!({
        "probe": "tls", "port": PORT, "deadline": "2s", "timeout": "1s",
        "tls": {"ca_secret": "other-ca"},
    }));
    let (_, message) = error(response);
    assert!(message.contains("3 of 3"), "{message}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    let (response, _) = fixture.run(json!({
        "probe": "tls", "port": PORT, "tls": {"ca_secret": "nope"},
    }));
    let (reason, message) = error(response);
    assert_eq!(reason, "SecretNotFound");
    assert!(
        message.contains("secret web/nope does not exist"),
        "{message}"
    );
}

#[test]
fn tcp_probes_members_and_the_service_address() {
    let fixture = start();
    let service = format!("{}:{PORT}", fixture.pod_ip("edge-0"));
    let (response, _) = fixture.run(json!({
        "probe": "tcp", "port": PORT, "against": "both", "service": "edge-pods",
        "service_address": service,
    }));
    let outputs = ok(response);
    assert_eq!(
        outputs["members"],
        "edge-0=ok,edge-1=ok,edge-2=ok,service/edge-pods=ok"
    );
}
