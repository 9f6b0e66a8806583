//! The real `kubectl` against the sandbox: get, list, watch, patch, apply
//! (client- and server-side), create, delete and auth can-i with a
//! kubeconfig from `write_kubeconfig`.

use std::path::Path;
use std::process::{Command, Output};

use dbops_sandbox::{Sandbox, SandboxConfig};

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().expect("dir"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect(
        "kubectl must be installed (Debian package kubernetes-client; scripts/test.sh installs it)",
    );
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("kubectl runs")
}

fn ok(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl(kubeconfig, args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const CONFIGMAP: &str = r#"{"apiVersion": "v1", "kind": "ConfigMap",
  "metadata": {"name": "cfg", "namespace": "kc", "labels": {"app": "demo"}},
  "data": {"a": "1", "b": "2"}}"#;

#[test]
fn kubectl_get_list_watch_patch_apply_delete() {
    let sb = Sandbox::start_background(SandboxConfig {
        controllers: false,
        ..Default::default()
    })
    .expect("start");
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    sb.write_kubeconfig(&kc, None).expect("kubeconfig");

    assert!(ok(&kc, &["get", "namespaces", "-o", "name"], None).contains("namespace/default"));
    // Server-side printing: the Table columns kubectl shows.
    let table = ok(&kc, &["get", "namespaces"], None);
    assert!(
        table.starts_with("NAME") && table.contains("STATUS") && table.contains("Active"),
        "{table}"
    );
    ok(
        &kc,
        &["apply", "--validate=false", "-f", "-"],
        Some(CONFIGMAP),
    );
    assert_eq!(
        ok(
            &kc,
            &[
                "get",
                "configmap",
                "cfg",
                "-n",
                "kc",
                "-o",
                "jsonpath={.data.a}"
            ],
            None
        ),
        "1"
    );
    assert_eq!(
        ok(
            &kc,
            &["get", "cm", "-n", "kc", "-l", "app=demo", "-o", "name"],
            None
        )
        .trim(),
        "configmap/cfg"
    );

    // Client-side apply again with a field removed: the last-applied
    // annotation makes kubectl delete it.
    ok(
        &kc,
        &["apply", "--validate=false", "-f", "-"],
        Some(&CONFIGMAP.replace(r#", "b": "2""#, "")),
    );
    assert_eq!(
        ok(
            &kc,
            &["get", "cm", "cfg", "-n", "kc", "-o", "jsonpath={.data}"],
            None
        ),
        r#"{"a":"1"}"#
    );

    ok(
        &kc,
        &[
            "patch",
            "cm",
            "cfg",
            "-n",
            "kc",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"c":"3"}}"#,
        ],
        None,
    );
    ok(
        &kc,
        &[
            "patch",
            "cm",
            "cfg",
            "-n",
            "kc",
            "-p",
            r#"{"data":{"d":"4"}}"#,
        ],
        None,
    );
    assert_eq!(
        ok(
            &kc,
            &[
                "get",
                "cm",
                "cfg",
                "-n",
                "kc",
                "-o",
                "jsonpath={.data.c}{.data.d}"
            ],
            None
        ),
        "34"
    );

    let ssa = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": "kc"}, "data": {"x": "1"}}"#;
    ok(
        &kc,
        &["apply", "--server-side", "--validate=false", "-f", "-"],
        Some(ssa),
    );
    assert_eq!(
        ok(
            &kc,
            &["get", "cm", "ssa", "-n", "kc", "-o", "jsonpath={.data.x}"],
            None
        ),
        "1"
    );

    let watched = ok(
        &kc,
        &[
            "get",
            "cm",
            "-n",
            "kc",
            "--watch",
            "--request-timeout=2s",
            "-o",
            "name",
        ],
        None,
    );
    assert!(
        watched.contains("configmap/cfg") && watched.contains("configmap/ssa"),
        "{watched}"
    );

    // Imperative creation (kubectl's typed clients send protobuf).
    ok(&kc, &["create", "namespace", "made"], None);
    ok(
        &kc,
        &[
            "create",
            "configmap",
            "lit",
            "-n",
            "made",
            "--from-literal=k=v",
        ],
        None,
    );
    ok(
        &kc,
        &[
            "create",
            "secret",
            "generic",
            "pw",
            "-n",
            "made",
            "--from-literal=p=q",
        ],
        None,
    );
    assert_eq!(
        ok(
            &kc,
            &[
                "get",
                "secret",
                "pw",
                "-n",
                "made",
                "-o",
                "jsonpath={.data.p}"
            ],
            None
        ),
        "cQ=="
    );
    assert_eq!(
        ok(
            &kc,
            &["get", "cm", "lit", "-n", "made", "-o", "jsonpath={.data.k}"],
            None
        ),
        "v"
    );

    ok(&kc, &["delete", "cm", "cfg", "-n", "kc"], None);
    let out = kubectl(&kc, &["get", "cm", "cfg", "-n", "kc"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubectl_as_a_service_account_is_denied_by_rbac() {
    let sb = Sandbox::start_background(SandboxConfig {
        controllers: false,
        ..Default::default()
    })
    .expect("start");
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    sb.write_kubeconfig(&kc, Some(&sb.service_account_token("kc", "reader")))
        .expect("kubeconfig");
    let out = kubectl(&kc, &["get", "secrets", "-n", "kc"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("User \"system:serviceaccount:kc:reader\" cannot list resource \"secrets\""),
        "{stderr}"
    );
}

#[test]
fn kubectl_auth_can_i_evaluates_rbac() {
    let sb = Sandbox::start_background(SandboxConfig {
        controllers: false,
        ..Default::default()
    })
    .expect("start");
    sb.apply(
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "view", "namespace": "kc"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": "kc"}]}),
    )
    .expect("binding");
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    sb.write_kubeconfig(&kc, Some(&sb.service_account_token("kc", "viewer")))
        .expect("kubeconfig");
    assert_eq!(
        ok(&kc, &["auth", "can-i", "list", "pods", "-n", "kc"], None).trim(),
        "yes"
    );
    let out = kubectl(&kc, &["auth", "can-i", "delete", "pods", "-n", "kc"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");

    // The admin may impersonate (kubectl --as).
    let admin = dir.path().join("admin");
    sb.write_kubeconfig(&admin, None).expect("kubeconfig");
    let viewer = "system:serviceaccount:kc:viewer";
    assert_eq!(
        ok(
            &admin,
            &["auth", "can-i", "get", "pods", "-n", "kc", "--as", viewer],
            None
        )
        .trim(),
        "yes"
    );
    sb.apply(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kc"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}))
    .expect("pod");
    let out = kubectl(
        &admin,
        &["delete", "pod", "p", "-n", "kc", "--as", viewer],
        None,
    );
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("forbidden"));
}

#[test]
fn kubectl_logs_reads_the_pod_log_the_kubelet_writes() {
    let sb = Sandbox::start_background(SandboxConfig {
        controllers: false,
        ..Default::default()
    })
    .expect("start");
    let pod = sb
        .apply(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "zk-0", "namespace": "kc"},
            "spec": {"containers": [{"name": "zk", "image": "zk"}]}}))
        .expect("pod");
    let uid = pod["metadata"]["uid"].as_str().expect("uid");
    // Where the kubelet stand-in writes a pod's process output.
    let dir = sb.state_dir().join("pods").join(format!("kc_zk-0_{uid}"));
    std::fs::create_dir_all(&dir).expect("pod dir");
    std::fs::write(dir.join("log"), "starting\nbinding to port 2181\nready\n").expect("log");
    let tmp = tempfile::tempdir().expect("tempdir");
    let kc = tmp.path().join("kubeconfig");
    sb.write_kubeconfig(&kc, None).expect("kubeconfig");
    assert_eq!(
        ok(&kc, &["logs", "zk-0", "-n", "kc"], None),
        "starting\nbinding to port 2181\nready\n"
    );
    assert_eq!(
        ok(&kc, &["logs", "zk-0", "-n", "kc", "--tail", "1"], None),
        "ready\n"
    );
}
