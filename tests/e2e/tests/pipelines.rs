//! Every ready pipeline of every engine, run by the built `dbops` binary as
//! the deploy/ ServiceAccount (RBAC enforced) against a fake database in
//! the sandbox, in the order a database lives through them:
//! reconfigure (merge) -> remove custom config -> add TLS -> rotate (not
//! due: nothing restarts) -> rotate (forced) -> update issuer -> remove TLS.
//! After each run: exit code, the objects (ConfigMap, Secrets), which pods
//! restarted and in which order (journal), the certificate each member
//! serves, the target resumed, the trace id in the journal.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use dbops_e2e::world::Engine;
use dbops_e2e::{Env, cluster, rbac};
use serde_json::{Value, json};

struct Case {
    env: Env,
    engine: Engine,
    namespace: String,
    kubeconfig: PathBuf,
    runs: u32,
}

impl Case {
    fn new(engine: &str) -> Case {
        let env = Env::start();
        let engine = Engine::named(engine);
        let namespace = format!("e2e-{}", engine.engine);
        for object in engine.objects(&namespace) {
            env.sandbox.apply(object).expect("fake database created");
        }
        rbac::apply(&env.sandbox, &namespace);
        let kubeconfig = env.service_account_kubeconfig(&namespace, rbac::SERVICE_ACCOUNT);
        cluster::wait_ready(&env.admin_kubeconfig, &namespace, engine.name);
        Case {
            env,
            engine,
            namespace,
            kubeconfig,
            runs: 0,
        }
    }

    /// Run `operation` with extra sets; check the common promises; return
    /// the journal and the pods restarted (by uid change).
    fn run(&mut self, operation: &str, extra: &[&str]) -> (Value, Vec<String>) {
        self.runs += 1;
        let run_id = format!("{}-{}-{}", self.engine.engine, operation, self.runs);
        let mut sets = self.engine.sets(&self.namespace, operation);
        sets.extend(extra.iter().map(|s| (*s).to_owned()));
        let pods = self.engine.pods();
        let before = cluster::pod_uids(&self.env.sandbox, &self.namespace, &pods);
        let outcome = self.env.run(
            &self.engine.pipeline(operation),
            &self.kubeconfig,
            &run_id,
            &sets,
        );
        outcome.expect_code(0, &format!("{} {operation}", self.engine.engine));
        cluster::wait_ready(
            &self.env.admin_kubeconfig,
            &self.namespace,
            self.engine.name,
        );
        let after = cluster::pod_uids(&self.env.sandbox, &self.namespace, &pods);
        let restarted: Vec<String> = pods
            .iter()
            .filter(|p| before[*p] != after[*p])
            .cloned()
            .collect();

        let journal = cluster::journal(&self.env.sandbox, &self.namespace, &run_id);
        assert_eq!(journal["outcome"], "succeeded", "{journal}");
        let trace = journal["trace_id"].as_str().unwrap_or_default();
        assert!(
            trace.len() == 32 && trace.chars().all(|c| c.is_ascii_hexdigit()),
            "trace id {trace:?}"
        );
        assert!(
            outcome.stderr.contains(trace),
            "the run summary names trace {trace}"
        );
        assert!(
            !cluster::paused(&self.env.sandbox, &self.namespace, self.engine.name),
            "{operation}: the target is resumed"
        );
        assert_eq!(cluster::step(&journal, "resume")["state"], "succeeded");
        self.assert_no_secret_leaked(operation, &outcome);
        (journal, restarted)
    }

    /// No private key or password held in the namespace's Secrets appears in
    /// the run's output (logs, summary), any journal or any Event: checked
    /// after every pipeline of every engine.
    fn assert_no_secret_leaked(&self, operation: &str, outcome: &dbops_e2e::Outcome) {
        let secrets = self
            .env
            .sandbox
            .list("v1", "Secret", Some(&self.namespace))
            .expect("list secrets");
        let mut needles: Vec<(String, String)> = Vec::new();
        for secret in &secrets {
            let name = secret["metadata"]["name"].as_str().unwrap_or_default();
            let Some(data) = secret["data"].as_object() else {
                continue;
            };
            for (key, value) in data {
                let sensitive = key.ends_with(".key") || key.contains("password");
                let Some(encoded) = value.as_str().filter(|_| sensitive) else {
                    continue;
                };
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&bytes);
                // A PEM key: its longest base64 line; a password: itself.
                let needle = text
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .max_by_key(|l| l.len())
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                if needle.len() >= 8 {
                    needles.push((format!("{name}/{key}"), needle));
                    needles.push((format!("{name}/{key} (base64)"), encoded.to_owned()));
                }
            }
        }
        if operation == "add-tls" {
            assert!(
                needles.iter().any(|(what, _)| what.ends_with("tls.key")),
                "add-tls: the leak check has the new private key to look for"
            );
        }
        let mut haystacks = vec![
            ("stdout".to_owned(), outcome.stdout.clone()),
            ("stderr".to_owned(), outcome.stderr.clone()),
        ];
        for kind in ["ConfigMap", "Event"] {
            for object in self
                .env
                .sandbox
                .list("v1", kind, Some(&self.namespace))
                .expect("list")
            {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                if kind == "ConfigMap" && !name.starts_with("dbops-run-") {
                    continue;
                }
                haystacks.push((format!("{kind} {name}"), object.to_string()));
            }
        }
        for (what, needle) in &needles {
            for (place, haystack) in &haystacks {
                assert!(
                    !haystack.contains(needle.as_str()),
                    "{operation}: secret {what} appears in {place}"
                );
            }
        }
    }

    fn config(&self) -> String {
        cluster::config_file(
            &self.env.sandbox,
            &self.namespace,
            &format!("{}-config", self.engine.name),
            self.engine.file,
        )
        .expect("the configuration exists")
    }

    fn tls_secret(&self) -> Option<BTreeMap<String, Vec<u8>>> {
        cluster::secret(
            &self.env.sandbox,
            &self.namespace,
            &format!("{}-tls", self.engine.name),
        )
    }

    /// Every member serves the certificate of the Secret, chained to its ca.crt.
    fn assert_members_serve_secret(&self) -> String {
        let secret = self.tls_secret().expect("the TLS Secret exists");
        let serial = cluster::serial_of(&secret["tls.crt"]);
        for pod in self.engine.pods() {
            let ip = cluster::pod_ip(&self.env.sandbox, &self.namespace, &pod);
            let name = format!("{pod}.{}-pods.{}.svc", self.engine.name, self.namespace);
            let served = cluster::served_serial(
                &format!("{ip}:{}", self.engine.tls_port),
                &secret["ca.crt"],
                &name,
            )
            .unwrap_or_else(|e| panic!("{pod} serves a certificate chained to ca.crt: {e}"));
            assert_eq!(
                cluster::hex(&served),
                cluster::hex(&serial),
                "{pod} serves the certificate in the Secret"
            );
        }
        serial
    }
}

/// The restart step ran and restarted every member once, in the journal's order.
fn assert_rolled(case: &Case, journal: &Value, step: &str, restarted: &[String]) {
    let record = cluster::step(journal, step);
    assert_eq!(record["state"], "succeeded", "{step}: {record}");
    let order: Vec<String> = record["outputs"]["order"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        case.engine.pods(),
        "{step}: every member restarted exactly once: {order:?}"
    );
    assert_eq!(restarted, case.engine.pods(), "every pod was replaced");
}

fn custom_config_secret(case: &Case) {
    let data = base64::engine::general_purpose::STANDARD.encode(case.engine.custom.0);
    case.env
        .sandbox
        .apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{}-custom-config", case.engine.name), "namespace": case.namespace},
            "data": {case.engine.file: data}}))
        .expect("config secret");
}

fn lifecycle(engine: &str) {
    let mut case = Case::new(engine);
    let original = case.config();

    // Reconfigure: merge the settings of the configSecret.
    custom_config_secret(&case);
    let (journal, restarted) = case.run("reconfigure", &["mode=merge"]);
    let (_, key, value) = case.engine.custom;
    let merged = case.config();
    assert!(
        merged
            .lines()
            .any(|l| l.replace(' ', "") == format!("{key}={value}")),
        "merged config has {key}={value}:\n{merged}"
    );
    let config = cluster::step(&journal, "config");
    if config["outputs"]["restart_required"] == true {
        assert_rolled(&case, &journal, "restart", &restarted);
    } else {
        assert_eq!(cluster::step(&journal, "restart")["state"], "skipped");
        assert!(
            restarted.is_empty(),
            "a dynamic key restarts nothing: {restarted:?}"
        );
    }

    // Remove the custom configuration: back to the original text.
    case.run("remove-custom-config", &[]);
    assert_eq!(
        case.config(),
        original,
        "remove-custom-config restores the original file"
    );

    // Add TLS with a new built-in CA.
    let (journal, restarted) = case.run("add-tls", &["create_ca=true"]);
    assert!(
        case.config().contains(case.engine.tls_marker),
        "TLS settings added:\n{}",
        case.config()
    );
    let secret = case.tls_secret().expect("add-tls writes the TLS Secret");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(secret.contains_key(key), "{key} in the TLS Secret");
    }
    if case.engine.keystores {
        for key in [
            "keystore.p12",
            "truststore.p12",
            "keystore.jks",
            "truststore.jks",
        ] {
            assert!(secret.contains_key(key), "{key} for a JVM engine");
        }
    }
    assert_rolled(&case, &journal, "restart", &restarted);
    let added = case.assert_members_serve_secret();
    assert_eq!(
        cluster::step(&journal, "health")["outputs"]["healthy"],
        true
    );

    // Rotate, not due: nothing written, nothing restarted.
    let (journal, restarted) = case.run("rotate-tls", &[]);
    assert_eq!(cluster::step(&journal, "cert")["outputs"]["changed"], false);
    assert_eq!(cluster::step(&journal, "restart")["state"], "skipped");
    assert!(
        restarted.is_empty(),
        "nothing restarts when nothing is due: {restarted:?}"
    );
    assert_eq!(case.assert_members_serve_secret(), added);

    // Rotate, forced: a new certificate reaches every member.
    let (journal, restarted) = case.run("rotate-tls", &["force=true"]);
    assert_rolled(&case, &journal, "restart", &restarted);
    let rotated = case.assert_members_serve_secret();
    assert_ne!(rotated, added, "force=true issues a new certificate");

    // Update the issuer to a new built-in CA, in three phases.
    let old_ca = case.tls_secret().expect("secret")["ca.crt"].clone();
    let (journal, _) = case.run(
        "update-issuer",
        &["new_issuer_name=ca-two", "create_ca=true"],
    );
    for step in ["trust", "issue", "drop"] {
        assert_eq!(
            cluster::step(&journal, step)["outputs"]["changed"],
            true,
            "phase {step} changed the Secret"
        );
    }
    let new_ca = cluster::secret(&case.env.sandbox, &case.namespace, "ca-two")
        .expect("the new CA Secret")["tls.crt"]
        .clone();
    let secret = case.tls_secret().expect("secret");
    assert_eq!(
        cluster::serial_of(&secret["ca.crt"]),
        cluster::serial_of(&new_ca),
        "ca.crt holds the new CA"
    );
    assert_ne!(secret["ca.crt"], old_ca);
    let switched = case.assert_members_serve_secret();
    assert_ne!(switched, rotated);

    // Remove TLS: settings gone, members restarted, Secrets deleted.
    let (journal, restarted) = case.run("remove-tls", &[]);
    assert!(
        !case.config().contains(case.engine.tls_marker),
        "TLS settings removed:\n{}",
        case.config()
    );
    assert_rolled(&case, &journal, "restart", &restarted);
    assert!(
        case.tls_secret().is_none(),
        "remove-tls deletes the TLS Secret"
    );
    assert!(
        cluster::secret(
            &case.env.sandbox,
            &case.namespace,
            &format!("{}-ca", case.engine.name)
        )
        .is_some(),
        "the CA is kept"
    );
}

#[test]
fn zookeeper_pipelines() {
    lifecycle("zookeeper");
}

#[test]
fn kafka_pipelines() {
    lifecycle("kafka");
}

#[test]
fn druid_pipelines() {
    lifecycle("druid");
}

#[test]
fn perconaxtradb_pipelines() {
    lifecycle("perconaxtradb");
}
