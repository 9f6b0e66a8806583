//! Private keys and passwords never leave their Secrets: after runs of a
//! representative set of pipelines (ZooKeeper add-tls with a new CA,
//! forced rotation, update-issuer, a reconfigure that sets a keystore
//! password from `${env.*}`, remove-tls; Kafka add-tls and rotation with
//! JVM keystores and their password), with JSON logs and OTLP export to an
//! in-test receiver, every private key (PEM body lines, base64 as stored),
//! keystore, keystore password and the environment password is searched
//! in: stdout/stderr of every run, every exported span (attributes, events,
//! status), every Event, every run journal, and `dbops plan` (text and
//! JSON) of ready pipelines and of one taking a password from `${env.*}`.
//! None may be found.

use std::collections::BTreeMap;

use dbops_reliability::otlp::Receiver;
use dbops_reliability::secrets::{Needle, leaks, needles};
use dbops_reliability::{Db, edited_pipeline, exit, outcome, repo_root};
use serde_json::Value;

const ENV_PASSWORD: &str = "Env-Keystore-Passw0rd-5f1c2e";

/// Collects what a set of runs left behind.
struct Scan {
    needles: Vec<Needle>,
    places: Vec<(String, String)>,
}

impl Scan {
    fn new() -> Scan {
        Scan {
            needles: vec![Needle {
                origin: "env ZK_KS_PASSWORD".into(),
                text: ENV_PASSWORD.into(),
            }],
            places: Vec::new(),
        }
    }

    /// Needles from every Secret of `ns` now (keys, keystores, passwords).
    fn collect_secrets(&mut self, db: &Db, ns: &str) {
        for secret in db
            .sandbox
            .list("v1", "Secret", Some(ns))
            .expect("list secrets")
        {
            let name = secret["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(data) = db.secret(ns, &name) {
                self.needles.extend(needles(&format!("{ns}/{name}"), &data));
            }
        }
    }

    /// A run with JSON logs and OTLP export; records its output.
    fn run(
        &mut self,
        db: &Db,
        receiver: &Receiver,
        pipeline: &str,
        ns: &str,
        run_id: &str,
        sets: &[&str],
    ) {
        let out = outcome(
            db.run_cmd(pipeline, ns, run_id, sets)
                .arg("--log-format")
                .arg("json")
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
                .env("ZK_KS_PASSWORD", ENV_PASSWORD)
                .spawn()
                .expect("spawn"),
        );
        out.expect_code(exit::SUCCESS, run_id);
        db.wait_ready(ns);
        self.places
            .push((format!("stdout of {run_id}"), out.stdout));
        self.places
            .push((format!("stderr of {run_id}"), out.stderr));
        self.collect_secrets(db, ns);
    }

    /// Events and journals of `ns`.
    fn cluster_records(&mut self, db: &Db, ns: &str) {
        let events = db.sandbox.list("v1", "Event", Some(ns)).expect("events");
        assert!(!events.is_empty(), "the runs emitted Events");
        self.places
            .push((format!("Events of {ns}"), Value::Array(events).to_string()));
        let journals: Vec<Value> = db
            .sandbox
            .list("v1", "ConfigMap", Some(ns))
            .expect("configmaps")
            .into_iter()
            .filter(|c| {
                c["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("dbops-run-"))
            })
            .collect();
        assert!(!journals.is_empty(), "journals exist");
        self.places.push((
            format!("journals of {ns}"),
            Value::Array(journals).to_string(),
        ));
    }

    fn assert_clean(&self) {
        let mut found = Vec::new();
        for (place, text) in &self.places {
            found.extend(leaks(place, text, &self.needles));
        }
        println!(
            "{} secret values searched in {} places ({} bytes)",
            self.needles.len(),
            self.places.len(),
            self.places.iter().map(|(_, t)| t.len()).sum::<usize>()
        );
        assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    }
}

/// reconfigure whose change sets a keystore password from the environment.
fn env_password_pipeline(db: &Db) -> String {
    edited_pipeline(db.dir.path(), "zookeeper-reconfigure.toml", |text| {
        text.replace(
            "source = { secret = \"${vars.config_secret}\" }",
            "set = { \"ssl.keyStore.password\" = \"${env.ZK_KS_PASSWORD}\", \"tickTime\" = 2100 }",
        )
    })
}

#[test]
fn no_private_key_or_password_in_logs_spans_events_journals() {
    let receiver = Receiver::start();
    let mut scan = Scan::new();

    let zk = Db::start("zookeeper", &["sz".to_owned()]);
    scan.run(
        &zk,
        &receiver,
        "zookeeper-add-tls.toml",
        "sz",
        "sz-add",
        &["create_ca=true"],
    );
    scan.run(
        &zk,
        &receiver,
        "zookeeper-rotate-tls.toml",
        "sz",
        "sz-rotate",
        &["force=true"],
    );
    scan.run(
        &zk,
        &receiver,
        "zookeeper-update-issuer.toml",
        "sz",
        "sz-issuer",
        &["new_issuer_name=ca-two", "create_ca=true"],
    );
    let env_pipeline = env_password_pipeline(&zk);
    scan.run(&zk, &receiver, &env_pipeline, "sz", "sz-env", &[]);
    assert!(
        zk.config("sz").contains(ENV_PASSWORD),
        "the password reached the configuration (the only place it belongs)"
    );
    scan.run(
        &zk,
        &receiver,
        "zookeeper-remove-tls.toml",
        "sz",
        "sz-remove",
        &[],
    );
    scan.cluster_records(&zk, "sz");

    let kafka = Db::start("kafka", &["sk".to_owned()]);
    scan.run(
        &kafka,
        &receiver,
        "kafka-add-tls.toml",
        "sk",
        "sk-add",
        &["create_ca=true"],
    );
    scan.run(
        &kafka,
        &receiver,
        "kafka-rotate-tls.toml",
        "sk",
        "sk-rotate",
        &["force=true"],
    );
    scan.cluster_records(&kafka, "sk");

    let spans = receiver.spans();
    assert!(
        spans.iter().any(|s| s.name == "dbops.run"),
        "spans were exported"
    );
    scan.places.push(("exported spans".into(), receiver.text()));
    let secrets: BTreeMap<&str, usize> = scan.needles.iter().fold(BTreeMap::new(), |mut m, n| {
        *m.entry(n.origin.split('[').next().unwrap_or_default())
            .or_default() += 1;
        m
    });
    assert!(
        secrets
            .keys()
            .any(|k| k.ends_with("-tls-keystore-password"))
            && secrets.keys().any(|k| k.ends_with("zk-ca")),
        "the keystore password and CA key were collected: {secrets:?}"
    );
    scan.assert_clean();
}

#[test]
fn plan_never_shows_a_password_from_the_environment() {
    let db = Db::start("zookeeper", &[]);
    // Ready pipelines (their `with` holds no secrets, but the plan shows
    // it all) and the one whose `with` takes a password from the environment.
    let mut files: Vec<String> = [
        "zookeeper-reconfigure.toml",
        "kafka-add-tls.toml",
        "perconaxtradb-reconfigure.toml",
    ]
    .iter()
    .map(|f| {
        repo_root()
            .join("pipelines")
            .join(f)
            .to_string_lossy()
            .into_owned()
    })
    .collect();
    files.push(env_password_pipeline(&db));
    let mut scan = Scan::new();
    for file in &files {
        for json in [false, true] {
            let mut cmd = db.dbops(&["plan"]);
            cmd.arg(file)
                .args(["--set", "namespace=plan"])
                .env("ZK_KS_PASSWORD", ENV_PASSWORD);
            if json {
                cmd.arg("--json");
            }
            let out = outcome(cmd.spawn().expect("spawn"));
            out.expect_code(exit::SUCCESS, &format!("dbops plan {file}"));
            scan.places
                .push((format!("plan {file} json={json}"), out.stdout + &out.stderr));
        }
    }
    let env_plan = &scan.places.last().expect("plan output").1;
    assert!(
        env_plan.contains("ssl.keyStore.password"),
        "the plan still shows which setting changes: {env_plan}"
    );
    scan.assert_clean();
}
