//! patch-config as a user sees it, through the `dbops` binary: a YAML file
//! with comments, an anchor and a merge key changed by `dbops run` keeps
//! every line the change does not touch (comments, blank lines, order,
//! quoting); `dbops plan --diff` shows only the changed lines, passwords
//! masked; a failed run puts the file back byte for byte.

use dbops_e2e::{Env, cluster};
use serde_json::json;

const NAMESPACE: &str = "apps";

const APPLICATION_YAML: &str = r#"# Orders service configuration
server:
  port: 8080        # plain HTTP for now
  host: "0.0.0.0"

database:
  user: orders
  password: "s3cr3t-Original"

defaults: &defaults
  retries: 3

cache:
  <<: *defaults
  ttl: 60s   # seconds

debug: true
"#;

/// What the pipeline below makes of it: the port's value replaced (its
/// comment kept), a new nested table at the end of `server`, a string that
/// would read back as a boolean quoted, the password replaced in its own
/// quotes, `debug` deleted, the rest untouched.
const EXPECTED_YAML: &str = r#"# Orders service configuration
server:
  port: 8443        # plain HTTP for now
  host: "0.0.0.0"
  tls:
    enabled: true

database:
  user: orders
  password: "n3w-S3cr3t-value"

defaults: &defaults
  retries: 3

cache:
  <<: *defaults
  ttl: 'yes'   # seconds

"#;

fn pipeline(extra_steps: &str) -> String {
    format!(
        r#"[pipeline]
name = "app-reconfigure"
on_failure = "rollback"

[target]
engine = "generic"
namespace = "{NAMESPACE}"
name = "app"

[[step]]
id = "config"
uses = "patch-config"
[step.with]
config_map = "app-config"
file = "application.yaml"
set = {{ server = {{ port = 8443, tls = {{ enabled = true }} }}, cache = {{ ttl = "yes" }}, database = {{ password = "n3w-S3cr3t-value" }} }}
delete = ["debug"]
{extra_steps}"#
    )
}

fn world(env: &Env) {
    env.sandbox
        .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))
        .expect("namespace");
    env.sandbox
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app-config", "namespace": NAMESPACE},
            "data": {"application.yaml": APPLICATION_YAML}}))
        .expect("config map");
}

fn application_yaml(env: &Env) -> String {
    cluster::config_file(&env.sandbox, NAMESPACE, "app-config", "application.yaml")
        .expect("application.yaml exists")
}

#[test]
fn a_yaml_file_keeps_every_untouched_line_through_plan_run_and_rollback() {
    let env = Env::start();
    world(&env);
    let kubeconfig = env
        .admin_kubeconfig
        .to_str()
        .expect("utf-8 path")
        .to_owned();
    let file = env.dir.path().join("app-reconfigure.toml");
    std::fs::write(&file, pipeline("")).expect("pipeline written");
    let file = file.to_str().expect("utf-8 path").to_owned();

    // plan: a diff of the changed lines only.
    let plan = env.dbops(&["plan", &file, "--diff", "--kubeconfig", &kubeconfig]);
    plan.expect_code(0, "dbops plan");
    let dry_run = plan
        .stdout
        .split_once("dry run against the cluster (nothing was written): succeeded\n")
        .map(|(_, after)| after)
        .unwrap_or_else(|| panic!("plan --diff reports the dry run:\n{}", plan.stdout));
    assert!(dry_run.starts_with("- config: would run\n"), "{dry_run}");
    let changed: Vec<&str> = dry_run
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .map(str::trim_end)
        .collect();
    assert_eq!(
        changed,
        [
            "-  port: 8080        # plain HTTP for now",
            "+  port: 8443        # plain HTTP for now",
            "+  tls:",
            "+    enabled: true",
            "-  password: '****'",
            "+  password: '**** (changed)'",
            "-  ttl: 60s   # seconds",
            "+  ttl: 'yes'   # seconds",
            "-debug: true",
        ],
        "plan output:\n{}",
        plan.stdout
    );
    assert_eq!(
        application_yaml(&env),
        APPLICATION_YAML,
        "plan writes nothing"
    );
    for secret in ["s3cr3t-Original", "n3w-S3cr3t-value"] {
        assert!(
            !plan.stdout.contains(secret) && !plan.stderr.contains(secret),
            "plan shows no password: {}{}",
            plan.stdout,
            plan.stderr
        );
    }

    // run --dry-run: the same diff in its log, nothing written.
    let dry = env.dbops(&["run", &file, "--dry-run", "--kubeconfig", &kubeconfig]);
    dry.expect_code(0, "dbops run --dry-run");
    assert!(
        dry.stderr.contains("configuration diff (secrets masked)")
            && dry
                .stderr
                .contains("+  port: 8443        # plain HTTP for now")
            && dry.stderr.contains("+  password: '**** (changed)'"),
        "{}",
        dry.stderr
    );
    assert!(!dry.stderr.contains("n3w-S3cr3t-value") && !dry.stderr.contains("s3cr3t-Original"));
    assert_eq!(
        application_yaml(&env),
        APPLICATION_YAML,
        "a dry run writes nothing"
    );

    // A run that fails after the change: the file is restored byte for byte.
    let failing = env.dir.path().join("app-reconfigure-failing.toml");
    std::fs::write(
        &failing,
        pipeline(
            r#"
[[step]]
id = "check"
uses = "health-check"
[step.with]
probe = "tcp"
port = 1
deadline = "5s"
"#,
        ),
    )
    .expect("pipeline written");
    let failing = failing.to_str().expect("utf-8 path").to_owned();
    let outcome = env.dbops(&[
        "run",
        &failing,
        "--kubeconfig",
        &kubeconfig,
        "--run-id",
        "yaml-fails",
    ]);
    outcome.expect_code(3, "a failed run is rolled back");
    assert_eq!(
        application_yaml(&env),
        APPLICATION_YAML,
        "restored byte for byte"
    );

    // The run: exactly the expected text.
    let outcome = env.dbops(&[
        "run",
        &file,
        "--kubeconfig",
        &kubeconfig,
        "--run-id",
        "yaml-ok",
    ]);
    outcome.expect_code(0, "dbops run");
    assert_eq!(application_yaml(&env), EXPECTED_YAML);
}
