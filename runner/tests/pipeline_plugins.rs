//! `check_against_plugins` with a fake catalog: what the plugins are asked
//! and how their answers map back to lines and columns. (Each kind of
//! problem is also pinned, message by message, in the corpus test.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::path::Path;

use dbops::pipeline::{LoadOptions, Location, PluginCatalog, check_against_plugins, load_str};
use dbops_plugin_sdk::protocol::{PluginInfo, ValidateRequest, ValidateResponse};
use serde_json::json;

use crate::catalog;

/// Records every validate request and forwards to the fake catalog.
struct Recording {
    inner: catalog::FakeCatalog,
    requests: RefCell<Vec<(String, ValidateRequest)>>,
}

impl PluginCatalog for Recording {
    fn names(&self) -> Vec<String> {
        self.inner.names()
    }
    fn info(&self, name: &str) -> Option<&PluginInfo> {
        self.inner.info(name)
    }
    fn validate(&self, name: &str, request: &ValidateRequest) -> ValidateResponse {
        self.requests
            .borrow_mut()
            .push((name.to_string(), request.clone()));
        self.inner.validate(name, request)
    }
}

/// An empty catalog: no plugins found.
struct Empty;

impl PluginCatalog for Empty {
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
    fn info(&self, _: &str) -> Option<&PluginInfo> {
        None
    }
    fn validate(&self, _: &str, _: &ValidateRequest) -> ValidateResponse {
        ValidateResponse::default()
    }
}

const PIPELINE: &str = r#"
[pipeline]
name = "p"

[target]
engine = "zookeeper"
namespace = "demo"
name = "zk"

[variables]
surge = 2

[[step]]
id = "cert"
uses = "issue-cert"
with = { action = "rotate" }

[[step]]
id = "restart"
uses = "rolling-restart"
with = { expected_serial = "${steps.cert.outputs.serial}", max_unavailable = "${vars.surge}" }

[[step]]
id = "health"
uses = "health-check"
with = { probe = "tls", timeout = "${steps.cert.outputs.serial}" }
"#;

fn recording() -> Recording {
    Recording {
        inner: catalog::FakeCatalog::load(),
        requests: RefCell::new(Vec::new()),
    }
}

#[test]
fn plugins_get_expanded_with_tables_and_deferred_pointers() {
    let pipeline = load_str(PIPELINE, Path::new("p.toml"), &LoadOptions::default()).unwrap();
    let catalog = recording();
    check_against_plugins(&pipeline, &catalog).unwrap();
    let requests = catalog.requests.borrow();
    let names: Vec<&str> = requests.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["issue-cert", "rolling-restart", "health-check"]);
    let restart = &requests[1].1;
    assert_eq!(restart.step_id, "restart");
    assert_eq!(restart.target.name, "zk");
    assert_eq!(restart.deferred, ["/expected_serial"]);
    // `${vars.surge}` alone keeps the variable's integer type, so the
    // schema's `"type": "integer"` accepts it.
    assert_eq!(restart.with["max_unavailable"], json!(2));
    // The deferred timeout is not judged by the health-check plugin.
    assert_eq!(requests[2].1.deferred, ["/timeout"]);
}

#[test]
fn schema_problems_skip_the_plugin_validate_call() {
    let source = PIPELINE
        .replace(r#"probe = "tls""#, r#"probe = "udp""#)
        .replace(
            r#"timeout = "${steps.cert.outputs.serial}""#,
            r#"timeout = "2m""#,
        );
    let pipeline = load_str(&source, Path::new("p.toml"), &LoadOptions::default()).unwrap();
    let catalog = recording();
    let problems = check_against_plugins(&pipeline, &catalog).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems}");
    assert_eq!(problems.0[0].key, "step[2].with.probe");
    assert_eq!(
        problems.0[0].location,
        Location {
            line: 26,
            column: 18
        }
    );
    let names: Vec<String> = catalog
        .requests
        .borrow()
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(names, ["issue-cert", "rolling-restart"]);
}

#[test]
fn problems_of_every_step_are_reported_together() {
    let source = PIPELINE
        .replace(r#"action = "rotate""#, r#"action = "renew""#)
        .replace(r#"uses = "rolling-restart""#, r#"uses = "rolling-restrat""#);
    let pipeline = load_str(&source, Path::new("p.toml"), &LoadOptions::default()).unwrap();
    let problems = check_against_plugins(&pipeline, &recording()).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["step[0].with.action", "step[1].uses"]);
    assert_eq!(
        problems.0[1]
            .help
            .as_deref()
            .map(|h| h.starts_with("did you mean `rolling-restart`?")),
        Some(true)
    );
}

#[test]
fn an_empty_plugin_directory_says_where_to_look() {
    let pipeline = load_str(PIPELINE, Path::new("p.toml"), &LoadOptions::default()).unwrap();
    let problems = check_against_plugins(&pipeline, &Empty).unwrap_err();
    assert_eq!(problems.len(), 3);
    assert_eq!(
        problems.0[0].help.as_deref(),
        Some(
            "no plugins were found; point `--plugin-dir` or DBOPS_PLUGIN_DIR at the directory holding them"
        )
    );
}

#[test]
fn problems_keep_positions_when_the_source_text_is_gone() {
    // A pipeline read back from a journal has no source text.
    let mut pipeline = load_str(
        &PIPELINE.replace("rotate", "renew"),
        Path::new("p.toml"),
        &LoadOptions::default(),
    )
    .unwrap();
    pipeline.source.clear();
    let problems = check_against_plugins(&pipeline, &recording()).unwrap_err();
    assert_eq!(
        problems.0[0].location,
        Location {
            line: 16,
            column: 19
        }
    );
    assert!(problems.0[0].snippet.is_none());
    assert!(problems.to_string().contains("--> p.toml:16:19"));
}

#[test]
fn values_from_the_environment_stay_out_of_messages() {
    let source = PIPELINE.replace(r#"action = "rotate""#, r#"action = "${env.SECRET}""#);
    let options =
        LoadOptions::default().with_env(|name| (name == "SECRET").then(|| "hunter2".to_string()));
    let pipeline = load_str(&source, Path::new("p.toml"), &options).unwrap();
    assert_eq!(pipeline.steps[0].with["action"], json!("hunter2"));
    let problems = check_against_plugins(&pipeline, &recording()).unwrap_err();
    let text = problems.to_string();
    assert!(
        text.contains("found a value from the environment"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}
