//! Unit tests of loading and run-time resolution (the corpus of bad
//! pipelines is in runner/tests/pipeline_corpus.rs, plugin checks in
//! runner/tests/pipeline_plugins.rs).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::*;

fn env(name: &str) -> Option<String> {
    (name == "NAMESPACE").then(|| "prod".to_string())
}

fn options(sets: &[(&str, &str)]) -> LoadOptions {
    let overrides = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LoadOptions::with_overrides(overrides).with_env(env)
}

const GOOD: &str = include_str!("../../tests/data/pipelines/good/rotate-tls.toml");

fn good(sets: &[(&str, &str)]) -> Pipeline {
    match load_str(GOOD, Path::new("good.toml"), &options(sets)) {
        Ok(p) => p,
        Err(problems) => panic!("{problems}"),
    }
}

#[test]
fn loads_header_target_defaults_and_variables() {
    let p = good(&[]);
    assert_eq!(
        (p.name.as_str(), p.operation.as_str()),
        ("rotate-zookeeper-tls", "rotate-tls")
    );
    assert_eq!(p.on_failure, OnFailure::Rollback);
    assert_eq!(p.target.namespace, "prod");
    assert_eq!(p.target.workload.kind, "PetSet");
    assert_eq!(p.target.workload.name, "zk");
    assert_eq!(p.target.workload.api_version, "apps.k8s.appscode.com/v1");
    let db = p.target.database.clone().unwrap();
    assert_eq!((db.plural.as_str(), db.name.as_str()), ("zookeepers", "zk"));
    assert_eq!(p.defaults.timeout, Duration::from_secs(300));
    assert_eq!(p.variables["restart"], json!(true));
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["pause", "cert", "restart", "health", "resume"]);
}

#[test]
fn steps_get_defaults_merged_retry_and_expanded_with() {
    let p = good(&[]);
    let cert = &p.steps[1];
    assert_eq!(cert.timeout, Duration::from_secs(600));
    assert_eq!(cert.retry.attempts, 4);
    assert_eq!(cert.with["issuer"]["secret"], json!("zk-ca"));
    assert_eq!(
        cert.with["dns_names"],
        json!(["zk-0.zk-pods.prod.svc", "literal ${not-a-var}"])
    );
    assert_eq!(
        cert.source.values["/issuer/secret"].value.location,
        Location {
            line: 39,
            column: 34
        }
    );
    let restart = &p.steps[2];
    assert_eq!(restart.retry.attempts, 1);
    assert_eq!(restart.retry.max_backoff, Duration::from_secs(60));
    assert_eq!(
        restart.when.as_deref(),
        Some("steps.cert.outputs.changed == true && true")
    );
    assert_eq!(restart.deferred_pointers(), ["/expected_serial", "/note"]);
    let resume = &p.steps[4];
    assert!(resume.always);
    assert_eq!(
        resume.sha256.as_deref(),
        Some("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    );
}

#[test]
fn set_overrides_variables_with_their_type_and_target_fields() {
    let p = good(&[
        ("restart", "false"),
        ("issuer", "other-ca"),
        ("target.namespace", "staging"),
    ]);
    assert_eq!(p.variables["restart"], json!(false));
    assert_eq!(p.steps[1].with["issuer"]["secret"], json!("other-ca"));
    assert_eq!(
        p.steps[2].when.as_deref(),
        Some("steps.cert.outputs.changed == true && false")
    );
    assert_eq!(p.target.namespace, "staging");
    assert_eq!(
        p.steps[1].with["dns_names"][0],
        json!("zk-0.zk-pods.staging.svc")
    );
}

#[test]
fn bad_set_values_are_reported_without_position() {
    let err = load_str(
        GOOD,
        Path::new("good.toml"),
        &options(&[("restart", "maybe"), ("isuer", "x")]),
    )
    .unwrap_err();
    let messages: Vec<&str> = err.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`--set restart=maybe`: variable `restart` must be a boolean (true or false), like its default",
            "`--set isuer=...`: the pipeline declares no variable `isuer`",
        ]
    );
    assert_eq!(err.0[1].help.as_deref(), Some("did you mean `issuer`?"));
}

#[test]
fn resolve_step_fills_outputs_keeping_types() {
    let p = good(&[]);
    let restart = &p.steps[2];
    let mut outputs: BTreeMap<String, Outputs> = BTreeMap::new();
    outputs.insert(
        "cert".into(),
        [
            ("serial".to_string(), json!(42)),
            ("changed".to_string(), json!(true)),
        ]
        .into(),
    );
    let with = resolve_step(restart, &outputs).unwrap();
    assert_eq!(
        with,
        json!({"expected_serial": 42, "note": "serial 42 of zk"})
    );
    assert!(should_run(restart, &outputs).unwrap());
    let unchanged: BTreeMap<String, Outputs> = [(
        "cert".to_string(),
        [("serial".to_string(), json!(1))].into(),
    )]
    .into();
    assert!(!should_run(restart, &unchanged).unwrap());
}

#[test]
fn resolve_step_reports_skipped_steps_at_the_value() {
    let p = good(&[]);
    let problem = resolve_step(&p.steps[2], &BTreeMap::new()).unwrap_err();
    assert_eq!(
        problem.message,
        "step `restart` needs ${steps.cert.outputs.serial}, but step `cert` has no outputs (it was skipped by its `when`, or did not finish)"
    );
    assert_eq!(problem.key, "step[2].with.expected_serial");
    assert_eq!(problem.location.line, 48);
    assert_eq!(problem.file, Path::new("good.toml"));
}

#[test]
fn steps_without_deferred_values_resolve_to_their_with() {
    let p = good(&[]);
    assert_eq!(
        resolve_step(&p.steps[1], &BTreeMap::new()).unwrap(),
        p.steps[1].with
    );
}

#[test]
fn evaluate_when_reports_type_errors() {
    let outputs: BTreeMap<String, Outputs> =
        [("a".to_string(), [("n".to_string(), json!(3))].into())].into();
    assert!(evaluate_when("steps.a.outputs.n == 3", &outputs).unwrap());
    let problem = evaluate_when("steps.a.outputs.n", &outputs).unwrap_err();
    assert!(
        problem.message.contains("not a boolean"),
        "{}",
        problem.message
    );
}

#[test]
fn pipeline_round_trips_through_json_without_its_source() {
    let p = good(&[]);
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains("# Rotate"));
    let back: Pipeline = serde_json::from_str(&text).unwrap();
    assert_eq!(back.steps[2].deferred, p.steps[2].deferred);
}

#[test]
fn the_documented_example_loads() {
    let docs = include_str!("mod.rs");
    let example: String = docs
        .lines()
        .skip_while(|l| *l != "//! ```toml")
        .skip(1)
        .take_while(|l| *l != "//! ```")
        .map(|l| {
            format!(
                "{}\n",
                l.trim_start_matches("//!").strip_prefix(' ').unwrap_or("")
            )
        })
        .collect();
    let example = example.replace("<64 hex digits>", &"ab".repeat(32));
    let p = match load_str(
        &example,
        Path::new("doc.toml"),
        &options(&[("ca_secret", "zk-ca")]),
    ) {
        Ok(p) => p,
        Err(problems) => panic!("{problems}"),
    };
    assert_eq!(p.target.namespace, "default");
    assert_eq!(p.variables["ca_secret"], json!("zk-ca"));
    assert_eq!(p.steps[0].with["config"]["tickTime"], json!(2000));
    assert_eq!(p.steps[1].retry.attempts, 5);
    assert_eq!(
        p.steps[1].with["dns_names"],
        json!(["zk-0.zk-pods.default.svc"])
    );
    let err = load_str(&example, Path::new("doc.toml"), &options(&[])).unwrap_err();
    assert_eq!(
        err.0[0].message,
        "variable `ca_secret` has no default and was not set"
    );
}

#[test]
fn hostile_nesting_and_sizes_do_not_crash() {
    let deep = format!(
        "[pipeline]\nname = \"x\"\n[[step]]\nid = \"a\"\nuses = \"b\"\nwith = {{ v = {}1{} }}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let err = load_str(&deep, Path::new("deep.toml"), &options(&[])).unwrap_err();
    assert_eq!(
        err.0[0].message,
        "invalid TOML: cannot recurse further; max recursion depth met"
    );
    let tables = format!(
        "[pipeline]\nname = \"x\"\n[[step]]\nid = \"a\"\nuses = \"b\"\nwith = {}1{}\n",
        "{ a = ".repeat(5000),
        " }".repeat(5000)
    );
    let err = load_str(&tables, Path::new("deep.toml"), &options(&[])).unwrap_err();
    assert_eq!(
        err.0[0].message,
        "invalid TOML: cannot recurse further; max recursion depth met"
    );
    let many: String = (0..5000).map(|i| format!("k{i} = 1, ")).collect();
    let wide = format!("pipeline = {{ name = \"x\", {many} }}\n");
    let err = load_str(&wide, Path::new("wide.toml"), &options(&[])).unwrap_err();
    assert_eq!(err.len(), 101);
    assert!(
        err.0[100].message.ends_with("more problems are not shown"),
        "{}",
        err.0[100].message
    );
    let huge = " ".repeat(load::MAX_SIZE + 1);
    let err = load_str(&huge, Path::new("huge.toml"), &options(&[])).unwrap_err();
    assert!(err.0[0].message.contains("the limit is 1048576 bytes"));
}

#[test]
fn five_thousand_steps_load_with_their_references() {
    let mut source = String::from(
        "[pipeline]\nname = \"x\"\n[target]\nengine = \"generic\"\nnamespace = \"n\"\nname = \"t\"\n",
    );
    for i in 0..5000 {
        source.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\nuses = \"p\"\nwith = {{ a = \"${{steps.s0.outputs.x}}\", b = [1, 2, {{ c = \"${{target.name}}\" }}] }}\n"
        ));
    }
    source = source.replacen("${steps.s0.outputs.x}", "first", 1);
    let p = match load_str(&source, Path::new("big.toml"), &options(&[])) {
        Ok(p) => p,
        Err(problems) => panic!("{problems}"),
    };
    assert_eq!(p.steps.len(), 5000);
    assert_eq!(p.steps[4999].with["b"][2]["c"], json!("t"));
}

#[test]
fn reconfigure_example_keeps_types_and_literal_dollars() {
    let source = include_str!("../../tests/data/pipelines/good/reconfigure-pxc.toml");
    let p = match load_str(
        source,
        Path::new("r.toml"),
        &options(&[("max_connections", "1000")]),
    ) {
        Ok(p) => p,
        Err(problems) => panic!("{problems}"),
    };
    assert_eq!(p.on_failure, OnFailure::Halt);
    assert_eq!(p.target.namespace, "prod");
    let mysqld = &p.steps[1].with["settings"]["mysqld"];
    assert_eq!(mysqld["max_connections"], json!(1000));
    assert_eq!(mysqld["innodb_buffer_pool_size"], json!("2G"));
    assert_eq!(
        mysqld["comment"],
        json!("literal text with ${braces} and a lone $ sign")
    );
    assert_eq!(p.steps[2].with["note"], json!("restart of PetSet pxc"));
    assert_eq!(p.steps[2].retry.attempts, 2);
    assert_eq!(
        p.steps[0].description,
        "Stop KubeDB from reconciling while we change things"
    );
}
