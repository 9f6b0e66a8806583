//! The ready pipelines, run by the built `dbops` binary as the deploy/
//! ServiceAccount (RBAC enforced), against REAL database servers that the
//! sandbox kubelet runs as pod processes on loopback pod IPs (Debian's
//! `zookeeper` on `default-jre-headless`, and `mariadb-server`; the test
//! command installs them, see .ci/apt-packages.txt):
//!
//! - `pipelines/zookeeper-rotate-tls.toml` on a 3-member ensemble: while it
//!   runs, a prober asks every member `ruok`/`srvr` every ~100 ms and
//!   records which pod was replaced when. The two followers are replaced
//!   first and the leader ZooKeeper named before the run last, a majority
//!   answers at every moment, and afterwards every member serves the new
//!   certificate of the Secret.
//! - `pipelines/perconaxtradb-rotate-tls.toml` on two MariaDB servers: the
//!   mysql probe (handshake, TLS upgrade, login, `SELECT 1`) sees the new
//!   certificate on every member. Then `perconaxtradb-reconfigure.toml` with
//!   an option MariaDB refuses: the restarted member never comes back, the
//!   restart fails at `member_timeout`, the run rolls back (exit 3), the
//!   configuration is restored byte for byte, the `reroll` step brings the
//!   member back on it, and the database is resumed and serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use dbops_e2e::{Env, cluster, rbac};
use dbops_probes::Endpoint;
use dbops_probes::mysql::{self, Credentials, MysqlCheck, Password};
use dbops_probes::testing::manifests::{self, MYSQL_PORT, PodSet, ZK_CLIENT_PORT, ZK_SECURE_PORT};
use dbops_probes::testing::zk_watch::{self, PodView, Sample};
use dbops_probes::testing::{self, TestCa};
use dbops_probes::tls::TlsOptions;
use dbops_sandbox::Sandbox;
use serde_json::{Value, json};

fn pod_view(sandbox: &Sandbox, namespace: &str, pod: &str) -> Option<PodView> {
    let object = sandbox.get("v1", "Pod", namespace, pod).ok()??;
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Some(PodView {
        uid: text("/metadata/uid").unwrap_or_default(),
        ip: text("/status/podIP"),
        deleting: object.pointer("/metadata/deletionTimestamp").is_some(),
    })
}

fn names(set: &PodSet<'_>) -> Vec<String> {
    (0..set.replicas)
        .map(|i| format!("{}-{i}", set.name))
        .collect()
}

fn issue(ca: &TestCa, set: &PodSet<'_>) -> testing::IssuedCert {
    let names = manifests::member_dns_names(set);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    ca.issue(set.name, &names).expect("certificate issued")
}

fn apply(env: &Env, objects: impl IntoIterator<Item = Value>) {
    for object in objects {
        env.sandbox.apply(object).expect("object created");
    }
}

fn sets(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

/// The serial of the certificate in Secret `name`'s `tls.crt`, and its `ca.crt`.
fn secret_serial(env: &Env, namespace: &str, name: &str) -> (String, Vec<u8>) {
    let secret = cluster::secret(&env.sandbox, namespace, name).expect("the TLS Secret exists");
    (
        cluster::hex(&cluster::serial_of(&secret["tls.crt"])),
        secret["ca.crt"].clone(),
    )
}

// ---------------------------------------------------------------- ZooKeeper

const ZK_NS: &str = "real-zk";

fn look(sandbox: &Sandbox, pods: &[String]) -> Sample {
    zk_watch::look(pods, ZK_CLIENT_PORT, |pod| pod_view(sandbox, ZK_NS, pod))
}

/// The leader, once exactly one member leads and every member serves.
fn leader(sandbox: &Sandbox, pods: &[String]) -> Result<String, String> {
    zk_watch::whole_quorum_leader(&look(sandbox, pods), pods.len())
}

#[test]
fn zookeeper_rotate_tls_pipeline_replaces_followers_then_the_leader_of_a_real_ensemble() {
    if !testing::zookeeper_available() {
        return;
    }
    let env = Env::start();
    let data = manifests::data_root().expect("data directory");
    let set = PodSet {
        namespace: ZK_NS,
        name: "zk",
        replicas: 3,
        update_strategy: "OnDelete",
        data_root: data.path(),
    };
    let pods = names(&set);
    let ca = TestCa::new("dbops e2e zookeeper CA").expect("CA");
    let old = issue(&ca, &set);
    let quorum = manifests::zk_quorum_addresses(3).expect("quorum addresses");
    apply(
        &env,
        [
            manifests::namespace(ZK_NS),
            manifests::ca_secret(ZK_NS, "zk-ca", &ca),
            manifests::tls_secret(ZK_NS, "zk-tls", &old, &ca.cert_pem),
        ],
    );
    apply(&env, manifests::zookeeper(&set, &quorum, Some("zk-tls")));
    rbac::apply(&env.sandbox, ZK_NS);
    let kubeconfig = env.service_account_kubeconfig(ZK_NS, rbac::SERVICE_ACCOUNT);
    let leader_before = testing::wait_for(Duration::from_secs(180), "zookeeper quorum", || {
        leader(&env.sandbox, &pods)
    })
    .expect("the ensemble elects a leader");
    let uids_before = cluster::pod_uids(&env.sandbox, ZK_NS, &pods);

    let stop = AtomicBool::new(false);
    let (outcome, samples) = thread::scope(|scope| {
        let prober = scope.spawn(|| {
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                samples.push(look(&env.sandbox, &pods));
                thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        let outcome = env.run(
            "zookeeper-rotate-tls.toml",
            &kubeconfig,
            "zk-rotate",
            &sets(&[
                &format!("namespace={ZK_NS}"),
                "force=true",
                "pre_check=auto",
                "member_timeout=3m",
            ]),
        );
        stop.store(true, Ordering::SeqCst);
        (outcome, prober.join().expect("prober thread"))
    });
    outcome.expect_code(0, "zookeeper-rotate-tls on a real ensemble");

    // The order: the journal's, and the one the prober saw, followers first.
    let journal = cluster::journal(&env.sandbox, ZK_NS, "zk-rotate");
    assert_eq!(journal["outcome"], "succeeded", "{journal}");
    let restart = cluster::step(&journal, "restart");
    let journal_order: Vec<String> = restart["outputs"]["order"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(str::to_owned)
        .collect();
    let seen_order = zk_watch::replacement_order(&uids_before, &samples);
    eprintln!(
        "leader before: {leader_before}; journal order {journal_order:?}; seen {seen_order:?}; {} samples",
        samples.len()
    );
    assert_eq!(
        seen_order.len(),
        3,
        "every member was replaced: {seen_order:?}"
    );
    assert_eq!(
        seen_order, journal_order,
        "the journal tells the order that happened"
    );
    assert_eq!(
        seen_order[2], leader_before,
        "the leader (as ZooKeeper named it before the run) is replaced last"
    );

    // Quorum at every moment: a majority answers; while the leader's pod
    // is the original, the ensemble has a leader and a serving majority.
    zk_watch::assert_quorum_kept(&samples, 3, &leader_before, &uids_before[&leader_before]);

    // A new certificate, served by every member, and a whole quorum again.
    let (serial, ca_pem) = secret_serial(&env, ZK_NS, "zk-tls");
    assert_ne!(
        serial,
        cluster::hex(&old.serial),
        "the certificate was rotated"
    );
    for pod in &pods {
        let ip = cluster::pod_ip(&env.sandbox, ZK_NS, pod);
        let served = cluster::served_serial(
            &format!("{ip}:{ZK_SECURE_PORT}"),
            &ca_pem,
            &format!("{pod}.zk-pods.{ZK_NS}.svc"),
        )
        .unwrap_or_else(|e| panic!("{pod} serves TLS: {e}"));
        assert_eq!(
            cluster::hex(&served),
            serial,
            "{pod} serves the new certificate"
        );
    }
    testing::wait_for(
        Duration::from_secs(60),
        "zookeeper quorum after the run",
        || leader(&env.sandbox, &pods),
    )
    .expect("the ensemble is whole after the run");
    assert!(!cluster::paused(&env.sandbox, ZK_NS, "zk"), "resumed");
}

// ---------------------------------------------------------------- MariaDB

const PXC_NS: &str = "real-pxc";
const PROBE_USER: &str = "dbops_probe";
const PROBE_PASSWORD: &str = "pr0be-Secret-e2e";
const GOOD_CNF: &str = "# my.cnf of the e2e MariaDB servers\n[mysqld]\nmax_connections = 50\n";
const REFUSED_CNF: &str = "[mysqld]\nno_such_option_dbops = 1\n";

/// The mysql probe of one member: log in over TLS verified against `ca_pem`;
/// the serial of the certificate it served.
fn mysql_serial(env: &Env, pod: &str, ca_pem: &[u8]) -> Result<String, String> {
    let ip = pod_view(&env.sandbox, PXC_NS, pod)
        .and_then(|v| v.ip)
        .ok_or(format!("{pod} has no IP"))?;
    let tls = TlsOptions::verify(ca_pem.to_vec(), format!("{pod}.pxc-pods.{PXC_NS}.svc"));
    let endpoint =
        Endpoint::plain(format!("{ip}:{MYSQL_PORT}"), Duration::from_secs(5)).with_tls(tls);
    let check = MysqlCheck {
        credentials: Some(Credentials {
            user: PROBE_USER.to_owned(),
            password: Password::new(PROBE_PASSWORD),
        }),
        ..MysqlCheck::default()
    };
    let report = mysql::probe(&endpoint, &check).map_err(|e| e.to_string())?;
    if !report.select_one {
        return Err(format!("{pod}: SELECT 1 failed"));
    }
    let session = report.tls.ok_or(format!("{pod}: no TLS session"))?;
    Ok(cluster::hex(&session.leaf.serial))
}

/// Every member answers the mysql probe with the certificate `serial`.
fn wait_members_serve(env: &Env, pods: &[String], serial: &str, ca_pem: &[u8]) {
    for pod in pods {
        let served = testing::wait_for(Duration::from_secs(180), &format!("MariaDB {pod}"), || {
            mysql_serial(env, pod, ca_pem)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(served, serial, "{pod} serves the certificate of the Secret");
    }
}

#[test]
fn perconaxtradb_pipelines_rotate_tls_and_roll_back_a_configuration_mariadb_refuses() {
    if !testing::real_server_available(testing::MARIADBD, "mariadb-server") {
        return;
    }
    let env = Env::start();
    let data = manifests::data_root().expect("data directory");
    let set = PodSet {
        namespace: PXC_NS,
        name: "pxc",
        replicas: 2,
        update_strategy: "OnDelete",
        data_root: data.path(),
    };
    let pods = names(&set);
    let ca = TestCa::new("dbops e2e MariaDB CA").expect("CA");
    let old = issue(&ca, &set);
    let users = vec![(PROBE_USER.to_owned(), PROBE_PASSWORD.to_owned())];
    apply(
        &env,
        [
            manifests::namespace(PXC_NS),
            manifests::ca_secret(PXC_NS, "pxc-ca", &ca),
            manifests::tls_secret(PXC_NS, "pxc-tls", &old, &ca.cert_pem),
            manifests::auth_secret(PXC_NS, "pxc-auth", PROBE_USER, PROBE_PASSWORD),
        ],
    );
    apply(&env, manifests::mariadb(&set, GOOD_CNF, &users, "pxc-tls"));
    rbac::apply(&env.sandbox, PXC_NS);
    let kubeconfig = env.service_account_kubeconfig(PXC_NS, rbac::SERVICE_ACCOUNT);
    wait_members_serve(
        &env,
        &pods,
        &cluster::hex(&old.serial),
        ca.cert_pem.as_bytes(),
    );

    // Rotation: the new certificate reaches every member.
    env.run(
        "perconaxtradb-rotate-tls.toml",
        &kubeconfig,
        "pxc-rotate",
        &sets(&[
            &format!("namespace={PXC_NS}"),
            "force=true",
            "member_timeout=3m",
        ]),
    )
    .expect_code(0, "perconaxtradb-rotate-tls on real MariaDB");
    let (serial, ca_pem) = secret_serial(&env, PXC_NS, "pxc-tls");
    assert_ne!(
        serial,
        cluster::hex(&old.serial),
        "the certificate was rotated"
    );
    let journal = cluster::journal(&env.sandbox, PXC_NS, "pxc-rotate");
    let order = cluster::step(&journal, "restart")["outputs"]["order"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut restarted: Vec<&str> = order.split(',').collect();
    restarted.sort_unstable();
    assert_eq!(
        restarted,
        ["pxc-0", "pxc-1"],
        "every member restarted once: {order}"
    );
    wait_members_serve(&env, &pods, &serial, &ca_pem);

    // A configuration MariaDB refuses to start with: rolled back, exit 3.
    let config_before =
        cluster::config_file(&env.sandbox, PXC_NS, "pxc-config", "my.cnf").expect("my.cnf exists");
    apply(
        &env,
        [json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "pxc-custom-config", "namespace": PXC_NS},
                "data": {"my.cnf": base64::engine::general_purpose::STANDARD.encode(REFUSED_CNF)}})],
    );
    let outcome = env.run(
        "perconaxtradb-reconfigure.toml",
        &kubeconfig,
        "pxc-refused",
        &sets(&[&format!("namespace={PXC_NS}"), "member_timeout=20s"]),
    );
    outcome.expect_code(3, "a configuration MariaDB refuses is rolled back");
    assert!(
        outcome.stderr.contains("was not back Ready within 20s"),
        "the run says which member did not come back and after how long:\n{}",
        outcome.stderr
    );
    let journal = cluster::journal(&env.sandbox, PXC_NS, "pxc-refused");
    eprintln!("journal of the refused run: {journal}");
    assert_eq!(
        cluster::step(&journal, "restart")["state"],
        "failed",
        "{journal}"
    );
    assert_eq!(
        cluster::step(&journal, "config")["state"],
        "compensated",
        "{journal}"
    );
    assert_eq!(
        cluster::step(&journal, "reroll")["state"],
        "succeeded",
        "{journal}"
    );
    assert_eq!(
        cluster::step(&journal, "resume")["state"],
        "succeeded",
        "{journal}"
    );
    assert_eq!(
        cluster::config_file(&env.sandbox, PXC_NS, "pxc-config", "my.cnf").as_deref(),
        Some(config_before.as_str()),
        "my.cnf is restored byte for byte"
    );
    assert!(!cluster::paused(&env.sandbox, PXC_NS, "pxc"), "resumed");
    // The member that could not start runs again, on the restored file.
    wait_members_serve(&env, &pods, &serial, &ca_pem);
}
