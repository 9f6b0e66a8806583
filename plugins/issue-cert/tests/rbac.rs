//! Least privilege: every action, with the built-in CA and with
//! cert-manager, succeeds as a ServiceAccount granted only the issue-cert
//! rules of deploy/base/role.yaml (RBAC enforced by the sandbox).

use crate::support;

use dbops_plugin_sdk::testing::TestHost;
use serde_json::{Value, json};
use support::{Host, NS, World, out, run};

/// The issue-cert rules of deploy/base/role.yaml, nothing else.
fn grant_issue_cert_rules(world: &World) {
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| json!({"apiGroups": groups, "resources": resources, "verbs": verbs});
    let rules: Vec<Value> = vec![
        rule(
            &[""],
            &["secrets"],
            &["get", "list", "create", "update", "delete"],
        ),
        rule(&["apps"], &["statefulsets"], &["get"]),
        rule(
            &["cert-manager.io"],
            &["certificates"],
            &["get", "list", "watch", "create", "patch", "delete"],
        ),
        rule(&["cert-manager.io"], &["certificates/status"], &["patch"]),
        rule(&["cert-manager.io"], &["issuers"], &["get"]),
    ];
    world
        .sandbox
        .apply(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": "issue-cert", "namespace": NS}, "rules": rules}),
        )
        .expect("role");
    world
        .sandbox
        .apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                      "metadata": {"name": "issue-cert", "namespace": NS},
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "issue-cert"},
                      "subjects": [{"kind": "ServiceAccount", "name": "dbops", "namespace": NS}]}))
        .expect("rolebinding");
}

fn least_privileged(world: &World, run_id: &str) -> Host {
    let token = world.sandbox.service_account_token(NS, "dbops");
    Host {
        host: TestHost::new(&world.sandbox.url(), Some(&token)),
        run_id: run_id.into(),
    }
}

#[test]
fn every_action_works_with_only_the_documented_rules() {
    let world = World::start(&[]);
    grant_issue_cert_rules(&world);
    let ca = json!({"kind": "ca", "name": "zk-ca", "create_if_missing": true});
    let denied = support::try_run(
        &world.host_as_nobody(),
        "zookeeper",
        json!({"action": "add", "issuer": ca}),
    )
    .expect_err("an identity without rules is refused");
    assert_eq!(denied.0, "Forbidden", "{denied:?}");

    let steps = [
        json!({"action": "add", "issuer": ca}),
        json!({"action": "rotate", "force": true, "issuer": ca}),
        json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2", "create_if_missing": true}}),
        json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2"}}),
        json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2"}}),
        json!({"action": "remove"}),
    ];
    for (i, with) in steps.into_iter().enumerate() {
        let outputs = run(
            &least_privileged(&world, &format!("rbac-{i}")),
            "zookeeper",
            with,
        );
        assert_eq!(outputs["changed"], json!(true), "step {i}");
    }

    // cert-manager with a namespaced Issuer.
    let issuer_ca = dbops_certs::Ca::create(&dbops_certs::CaSpec {
        subject: dbops_certs::Subject {
            common_name: "rbac issuer".into(),
            ..Default::default()
        },
        validity: std::time::Duration::from_secs(86_400),
        algorithm: dbops_certs::KeyAlgorithm::EcdsaP256,
    })
    .expect("CA");
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    world
        .sandbox
        .apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "issuer-ca", "namespace": NS},
                      "data": {"tls.crt": b64(&issuer_ca.cert_pem()), "tls.key": b64(&issuer_ca.key().pkcs8_pem())}}))
        .expect("issuer CA secret");
    world
        .sandbox
        .apply(json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
                      "metadata": {"name": "issuer", "namespace": NS}, "spec": {"ca": {"secretName": "issuer-ca"}}}))
        .expect("issuer");
    let cm = json!({"kind": "Issuer", "name": "issuer"});
    let outputs = run(
        &least_privileged(&world, "rbac-cm-1"),
        "kafka",
        json!({"action": "add", "issuer": cm, "wait_timeout": "60s"}),
    );
    assert!(!out(&outputs, "serial").is_empty());
    run(
        &least_privileged(&world, "rbac-cm-2"),
        "kafka",
        json!({"action": "rotate", "force": true, "issuer": cm, "wait_timeout": "60s"}),
    );
    run(
        &least_privileged(&world, "rbac-cm-3"),
        "kafka",
        json!({"action": "remove"}),
    );
}
