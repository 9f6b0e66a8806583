//! deploy/ is least privilege: every Role and ClusterRole has no wildcard
//! API group, resource or verb and none of the privilege-escalation verbs;
//! every Job and CronJob (base and examples) runs as non-root with a
//! read-only root filesystem, no privilege escalation and no capabilities;
//! the image's final stage runs as a non-root user. The YAML is parsed,
//! not grepped.

use std::path::{Path, PathBuf};

use dbops_reliability::repo_root;
use serde::Deserialize as _;
use serde_json::Value;

/// Every YAML document under deploy/ (pipelines excluded), with its file.
fn documents() -> Vec<(PathBuf, Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("deploy/ readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join("deploy"), &mut files);
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", file.display()));
            if !value.is_null() {
                docs.push((file.clone(), value));
            }
        }
    }
    docs
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn roles_have_no_wildcards_and_no_escalation_verbs() {
    let mut roles = 0;
    for (file, doc) in documents() {
        if !matches!(doc["kind"].as_str(), Some("Role" | "ClusterRole")) {
            continue;
        }
        roles += 1;
        let rules = doc["rules"].as_array().cloned().unwrap_or_default();
        assert!(!rules.is_empty(), "{}: a role with rules", file.display());
        for rule in rules {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                for item in strings(&rule[field]) {
                    assert!(
                        !item.contains('*'),
                        "{}: wildcard {field} {item:?} in {rule}",
                        file.display()
                    );
                }
            }
            for verb in strings(&rule["verbs"]) {
                assert!(
                    !matches!(verb.as_str(), "escalate" | "bind" | "impersonate"),
                    "{}: privilege-escalation verb {verb} in {rule}",
                    file.display()
                );
            }
            for resource in strings(&rule["resources"]) {
                assert!(
                    !matches!(
                        resource.as_str(),
                        "pods/exec"
                            | "pods/attach"
                            | "roles"
                            | "rolebindings"
                            | "clusterroles"
                            | "clusterrolebindings"
                    ),
                    "{}: {resource} is not needed by dbops: {rule}",
                    file.display()
                );
            }
        }
    }
    assert!(
        roles >= 2,
        "deploy/ has the Role and the cluster-issuer ClusterRole"
    );
}

fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Job" => Some(&doc["spec"]["template"]["spec"]),
        "CronJob" => Some(&doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

#[test]
fn jobs_and_cronjobs_run_as_non_root_with_a_read_only_root_filesystem() {
    let mut checked = 0;
    for (file, doc) in documents() {
        let Some(spec) = pod_spec(&doc) else { continue };
        checked += 1;
        let what = format!(
            "{} ({} {})",
            file.display(),
            doc["kind"],
            doc["metadata"]["name"]
        );
        let pod = &spec["securityContext"];
        assert_eq!(pod["runAsNonRoot"], true, "{what}: runAsNonRoot");
        assert!(
            pod["runAsUser"].as_u64().is_none_or(|u| u != 0),
            "{what}: runAsUser is not 0"
        );
        assert_ne!(
            spec["automountServiceAccountToken"], false,
            "{what}: needs its token"
        );
        let containers = spec["containers"].as_array().cloned().unwrap_or_default();
        assert!(!containers.is_empty(), "{what}: containers");
        for c in containers
            .iter()
            .chain(spec["initContainers"].as_array().into_iter().flatten())
        {
            let sc = &c["securityContext"];
            let name = &c["name"];
            assert_eq!(
                sc["readOnlyRootFilesystem"], true,
                "{what}: {name} readOnlyRootFilesystem"
            );
            assert_eq!(
                sc["allowPrivilegeEscalation"], false,
                "{what}: {name} allowPrivilegeEscalation"
            );
            assert_ne!(sc["privileged"], true, "{what}: {name} privileged");
            assert_ne!(sc["runAsUser"], 0, "{what}: {name} runAsUser");
            assert!(
                strings(&sc["capabilities"]["drop"])
                    .iter()
                    .any(|d| d == "ALL"),
                "{what}: {name} drops all capabilities"
            );
            assert!(
                sc["capabilities"]["add"]
                    .as_array()
                    .is_none_or(Vec::is_empty),
                "{what}: {name} adds no capability"
            );
        }
    }
    assert!(
        checked >= 2,
        "the base Job and CronJob were checked ({checked})"
    );
}

#[test]
fn the_image_runs_as_a_non_root_user() {
    let text = std::fs::read_to_string(repo_root().join("deploy/Dockerfile")).expect("Dockerfile");
    let last_stage = text.rsplit("\nFROM ").next().expect("a FROM line");
    let user = last_stage
        .lines()
        .filter_map(|l| l.trim().strip_prefix("USER "))
        .next_back()
        .unwrap_or_else(|| panic!("the final stage sets USER:\n{last_stage}"));
    let uid = user.split(':').next().unwrap_or_default().trim();
    assert!(
        uid != "0" && uid != "root" && !uid.is_empty(),
        "the final stage runs as {user}"
    );
}
