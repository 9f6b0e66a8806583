//! The Role in deploy/base is sufficient and minimal: a sequence of
//! pipelines that together use every permission (built-in CA and
//! cert-manager issuers, configuration changes, restarts, TLS removal)
//! succeeds as the ServiceAccount `dbops` with RBAC enforced, and fails
//! with a clear "forbidden" message as soon as any single rule is removed.
//!
//! Each variation gets its own namespace (its own fake ZooKeeper, Role and
//! RoleBinding) in one sandbox.

use base64::Engine as _;
use dbops_certs::{Ca, CaSpec, KeyAlgorithm, Subject};
use dbops_e2e::world::Engine;
use dbops_e2e::{Env, cluster, rbac};
use serde_json::{Value, json};

/// The pipelines that exercise every permission, in order.
const SEQUENCE: [(&str, &[&str]); 7] = [
    (
        "add-tls",
        &["issuer_kind=Issuer", "issuer_name=corp-issuer"],
    ),
    (
        "rotate-tls",
        &[
            "issuer_kind=Issuer",
            "issuer_name=corp-issuer",
            "force=true",
        ],
    ),
    (
        "update-issuer",
        &["new_issuer_kind=Issuer", "new_issuer_name=corp-issuer-2"],
    ),
    ("remove-tls", &[]),
    ("reconfigure", &["mode=merge"]),
    ("add-tls", &["create_ca=true"]),
    ("rotate-tls", &["force=true"]),
];

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A cert-manager CA Issuer `name` with its CA Secret `name`-ca.
fn issuer(namespace: &str, name: &str) -> [Value; 2] {
    let ca = Ca::create(&CaSpec {
        subject: Subject {
            common_name: format!("{name} CA"),
            ..Default::default()
        },
        validity: std::time::Duration::from_secs(86_400 * 365),
        algorithm: KeyAlgorithm::EcdsaP256,
    })
    .expect("CA");
    [
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
               "metadata": {"name": format!("{name}-ca"), "namespace": namespace},
               "data": {"tls.crt": b64(&ca.cert_pem()), "tls.key": b64(ca.key().pkcs8_pem().as_str())}}),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": name, "namespace": namespace},
               "spec": {"ca": {"secretName": format!("{name}-ca")}}}),
    ]
}

/// Two cert-manager CA Issuers and the configSecret.
fn seed_extras(env: &Env, namespace: &str, engine: &Engine) {
    let config = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{}-custom-config", engine.name), "namespace": namespace},
        "data": {engine.file: b64(engine.custom.0)}});
    let objects = issuer(namespace, "corp-issuer")
        .into_iter()
        .chain(issuer(namespace, "corp-issuer-2"))
        .chain([config]);
    for object in objects {
        env.sandbox.apply(object).expect("seeded");
    }
}

/// Run the sequence in a fresh namespace with `rules`; Err(output) of the
/// first run that fails.
fn exercise(env: &Env, namespace: &str, rules: Vec<Value>) -> Result<(), String> {
    let engine = Engine::named("zookeeper");
    for object in engine.objects(namespace) {
        env.sandbox.apply(object).expect("fake database created");
    }
    seed_extras(env, namespace, &engine);
    rbac::apply_with_rules(&env.sandbox, namespace, rules);
    let kubeconfig = env.service_account_kubeconfig(namespace, rbac::SERVICE_ACCOUNT);
    cluster::wait_ready(&env.admin_kubeconfig, namespace, engine.name);
    let mut previous = String::new();
    for (index, (operation, extra)) in SEQUENCE.iter().enumerate() {
        let mut sets = engine.sets(namespace, operation);
        sets.extend(extra.iter().map(|s| (*s).to_owned()));
        let run_id = format!("{namespace}-{index}");
        let outcome = env.run(&engine.pipeline(operation), &kubeconfig, &run_id, &sets);
        // A denied request the runner tolerates (an Event, releasing the
        // lock) still shows up as a warning naming the permission.
        if outcome.code != 0 || outcome.stderr.to_lowercase().contains("forbidden") {
            return Err(format!(
                "{operation} (exit {}):\n{}\n--- the run before said:\n{previous}",
                outcome.code, outcome.stderr
            ));
        }
        // Events are best effort for the runner (a run does not fail
        // without them) but part of what it promises.
        if cluster::events_of(&env.sandbox, namespace, &run_id).is_empty() {
            return Err(format!(
                "{operation} emitted no Events:\n{}",
                outcome.stderr
            ));
        }
        cluster::wait_ready(&env.admin_kubeconfig, namespace, engine.name);
        previous = outcome.stderr;
    }
    Ok(())
}

#[test]
fn the_role_is_sufficient_for_every_kind_of_pipeline() {
    let env = Env::start();
    exercise(&env, "rbac-full", rbac::rules())
        .unwrap_or_else(|failure| panic!("with the full Role: {failure}"));
}

#[test]
fn removing_any_rule_makes_a_pipeline_fail_with_a_permission_error() {
    let env = Env::start();
    let rules = rbac::rules();
    let mut unneeded = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let mut fewer = rules.clone();
        fewer.remove(index);
        match exercise(&env, &format!("rbac-without-{index}"), fewer) {
            Ok(()) => unneeded.push(rbac::describe(rule)),
            Err(failure) => assert!(
                failure.to_lowercase().contains("forbidden"),
                "without rule {} a pipeline failed, but not with a clear permission error:\n{failure}",
                rbac::describe(rule)
            ),
        }
    }
    assert!(
        unneeded.is_empty(),
        "rules no pipeline needs (remove them from deploy/base/role.yaml): {unneeded:#?}"
    );
}

/// Verbs only failure paths use, which no quick pipeline reaches; each
/// with the reason it stays in the Role.
const FAILURE_PATH_VERBS: [(&str, &str, &str); 1] = [(
    "pods",
    "get",
    "rolling-restart reads a member that is not back Ready at its deadline to say why; members of workloads without a selector are read one by one",
)];

#[test]
fn removing_any_single_verb_makes_a_pipeline_fail_with_a_permission_error() {
    let env = Env::start();
    let rules = rbac::rules();
    let mut unneeded = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let verbs: Vec<Value> = rule["verbs"].as_array().cloned().unwrap_or_default();
        if verbs.len() < 2 {
            continue; // the rule test above already removed it whole
        }
        for verb in &verbs {
            let exempt = FAILURE_PATH_VERBS
                .iter()
                .any(|(resource, v, _)| rule["resources"][0] == *resource && verb == *v);
            if exempt {
                continue;
            }
            let mut fewer = rules.clone();
            fewer[index]["verbs"] =
                Value::Array(verbs.iter().filter(|v| *v != verb).cloned().collect());
            let namespace = format!("rbac-{index}-no-{}", verb.as_str().unwrap_or("verb"));
            match exercise(&env, &namespace, fewer) {
                Ok(()) => unneeded.push(format!("{verb} in {}", rbac::describe(rule))),
                Err(failure) => assert!(
                    failure.to_lowercase().contains("forbidden"),
                    "without {verb} in {} a pipeline failed, but not with a clear permission error:\n{failure}",
                    rbac::describe(rule)
                ),
            }
        }
    }
    assert!(
        unneeded.is_empty(),
        "verbs no pipeline needs (remove them from deploy/base/role.yaml): {unneeded:#?}"
    );
}
