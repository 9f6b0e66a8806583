//! deploy/ and pipelines/ as a user meets them: every ready pipeline
//! validates, the kustomize base carries an up-to-date copy of them, and
//! `kubectl apply -k` of every overlay is accepted by the sandbox API server.

use std::process::Command;

use dbops_e2e::{Env, repo_root};

#[test]
fn every_ready_pipeline_validates() {
    let env = Env::start();
    let dir = repo_root().join("pipelines");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("pipelines/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 24, "4 engines x 6 operations: {files:?}");
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    env.dbops(&args)
        .expect_code(0, "dbops validate pipelines/*.toml");
}

#[test]
fn the_kustomize_base_holds_the_current_pipelines() {
    let root = repo_root();
    for entry in std::fs::read_dir(root.join("pipelines")).expect("pipelines/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let name = path.file_name().expect("file name");
        let copy = root.join("deploy/base/pipelines").join(name);
        let original = std::fs::read(&path).expect("pipeline");
        assert_eq!(
            std::fs::read(&copy).ok(),
            Some(original),
            "deploy/base/pipelines/{} is missing or stale: run deploy/sync-pipelines.sh",
            name.to_string_lossy()
        );
        let kustomization = std::fs::read_to_string(root.join("deploy/base/kustomization.yaml"))
            .expect("kustomization");
        assert!(
            kustomization.contains(&format!("pipelines/{}", name.to_string_lossy())),
            "deploy/base/kustomization.yaml lists pipelines/{}",
            name.to_string_lossy()
        );
    }
}

#[test]
fn kubectl_applies_every_overlay_to_the_sandbox() {
    let env = Env::start();
    for overlay in ["zookeeper", "kafka", "druid", "perconaxtradb"] {
        let dir = repo_root().join("deploy/overlays").join(overlay);
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&env.admin_kubeconfig)
            .arg("apply")
            // The sandbox serves no OpenAPI schema for kubectl's client-side validation.
            .arg("--validate=false")
            .arg("-k")
            .arg(&dir)
            .output()
            .expect("kubectl is installed (Debian package kubernetes-client)");
        assert!(
            output.status.success(),
            "kubectl apply -k deploy/overlays/{overlay}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let suffix = match overlay {
            "zookeeper" => "zk",
            "perconaxtradb" => "pxc",
            other => other,
        };
        for (api, kind, name) in [
            ("v1", "ServiceAccount", format!("dbops-{suffix}")),
            (
                "rbac.authorization.k8s.io/v1",
                "Role",
                format!("dbops-{suffix}"),
            ),
            (
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                format!("dbops-{suffix}"),
            ),
            ("v1", "ConfigMap", format!("dbops-pipelines-{suffix}")),
            ("batch/v1", "Job", format!("dbops-run-{suffix}")),
            ("batch/v1", "CronJob", format!("dbops-rotate-tls-{suffix}")),
        ] {
            let object = env.sandbox.get(api, kind, "databases", &name).expect("get");
            assert!(
                object.is_some(),
                "{kind} databases/{name} exists after applying {overlay}"
            );
        }
    }
}
