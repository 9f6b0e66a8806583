//! Malformed or hostile cluster data gets a clear error and nothing is
//! half-applied: a CA Secret with a corrupt certificate, a TLS Secret with
//! a corrupt certificate, a ConfigMap whose configuration does not parse,
//! and a configuration changed by someone else while dbops writes it.

use std::time::Duration;

use base64::Engine as _;
use dbops_reliability::{Db, exit, outcome, state, wait_for};
use dbops_sandbox::faults::{FaultAction, FaultRule};
use serde_json::{Value, json};

fn with_tls(ns: &str) -> Db {
    let db = Db::start("zookeeper", &[ns.to_owned()]);
    db.run(
        "zookeeper-add-tls.toml",
        ns,
        &format!("{ns}-add"),
        &["create_ca=true"],
    )
    .expect_code(exit::SUCCESS, "add-tls");
    db.wait_ready(ns);
    db
}

fn corrupt(db: &Db, ns: &str, secret: &str, key: &str) {
    let mut object = db
        .sandbox
        .get("v1", "Secret", ns, secret)
        .expect("get")
        .expect("secret");
    object["data"][key] = json!(base64::engine::general_purpose::STANDARD.encode(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    ));
    db.sandbox.apply(object).expect("corrupted");
}

fn data(db: &Db, ns: &str, kind: &str, name: &str) -> Option<Value> {
    db.sandbox
        .get("v1", kind, ns, name)
        .expect("get")
        .map(|o| o["data"].clone())
}

/// The run failed, said `words` about `what`, changed none of `objects`,
/// restarted nothing and left the target resumed.
fn refused_cleanly(
    db: &Db,
    ns: &str,
    run_id: &str,
    out: &dbops_reliability::Outcome,
    words: &[&str],
) {
    assert!(
        out.code == exit::FAILED_ROLLED_BACK || out.code == exit::FAILED_NOT_ROLLED_BACK,
        "a failed run: {}\n{}",
        out.code,
        out.stderr
    );
    let journal = db.journal(ns, run_id).expect("journal");
    let failed = journal["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["state"] == "failed"))
        .unwrap_or_else(|| panic!("a failed step: {journal}"));
    let message = failed["message"].as_str().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "the error says {word:?}: {message}");
    }
    assert!(
        out.stderr
            .contains(message.lines().next().unwrap_or_default()),
        "the error is printed"
    );
    assert!(!db.paused(ns), "the target is resumed");
}

#[test]
fn a_corrupt_ca_certificate_is_a_clear_error_and_nothing_changes() {
    let db = with_tls("hc");
    corrupt(&db, "hc", "zk-ca", "tls.crt");
    let tls = data(&db, "hc", "Secret", "zk-tls");
    let uids = db.pod_uids("hc");
    let out = db.run("zookeeper-rotate-tls.toml", "hc", "hc-1", &["force=true"]);
    refused_cleanly(&db, "hc", "hc-1", &out, &["zk-ca"]);
    assert_eq!(
        data(&db, "hc", "Secret", "zk-tls"),
        tls,
        "the TLS Secret is untouched"
    );
    assert_eq!(db.pod_uids("hc"), uids, "no member restarted");
    assert_eq!(
        state(&db.journal("hc", "hc-1").expect("journal"), "restart"),
        "skipped"
    );
}

#[test]
fn a_corrupt_served_certificate_is_a_clear_error_and_nothing_changes() {
    let db = with_tls("ht");
    corrupt(&db, "ht", "zk-tls", "tls.crt");
    let tls = data(&db, "ht", "Secret", "zk-tls");
    let uids = db.pod_uids("ht");
    // Not forced: deciding whether the certificate is due needs to read it.
    let out = db.run("zookeeper-rotate-tls.toml", "ht", "ht-1", &[]);
    refused_cleanly(
        &db,
        "ht",
        "ht-1",
        &out,
        &[
            "tls.crt of Secret ht/zk-tls",
            "not a valid X.509 certificate",
            "or delete Secret ht/zk-tls",
        ],
    );
    assert_eq!(
        data(&db, "ht", "Secret", "zk-tls"),
        tls,
        "the TLS Secret is untouched"
    );
    assert_eq!(db.pod_uids("ht"), uids, "no member restarted");
}

#[test]
fn a_configuration_changed_by_someone_else_mid_write_is_not_lost() {
    let db = Db::start("zookeeper", &["hm".to_owned()]);
    db.custom_config("hm", "tickTime=3100\n");
    // dbops' write of zk-config is held for 1 s; meanwhile an operator edits it.
    let held = db.sandbox.faults().add(
        FaultRule::new(FaultAction::Latency(Duration::from_secs(1)))
            .namespace("hm")
            .resource("configmaps")
            .name("zk-config")
            .verb("update")
            .times(1),
    );
    let held_patch = db.sandbox.faults().add(
        FaultRule::new(FaultAction::Latency(Duration::from_secs(1)))
            .namespace("hm")
            .resource("configmaps")
            .name("zk-config")
            .verb("patch")
            .times(1),
    );
    let child = db.spawn("zookeeper-reconfigure.toml", "hm", "hm-1", &["mode=merge"]);
    wait_for(Duration::from_secs(60), "dbops writing zk-config", || {
        let faults = db.sandbox.faults();
        (faults.fired(held) + faults.fired(held_patch) > 0).then_some(())
    });
    let mut config = db
        .sandbox
        .get("v1", "ConfigMap", "hm", "zk-config")
        .expect("get")
        .expect("cm");
    let text = config["data"]["zoo.cfg"]
        .as_str()
        .expect("zoo.cfg")
        .to_owned();
    config["data"]["zoo.cfg"] = json!(format!("{text}autopurge.purgeInterval=6\n"));
    db.sandbox.apply(config).expect("the operator's edit");
    let out = outcome(child);
    db.wait_ready("hm");
    let final_config = db.config("hm");
    match out.code {
        exit::SUCCESS => {
            assert!(
                final_config.contains("autopurge.purgeInterval=6")
                    && final_config.contains("tickTime=3100"),
                "both changes survive (no lost update):\n{final_config}"
            );
            for pod in db.engine.pods() {
                assert_eq!(
                    db.mounted("hm", &pod, "conf", "zoo.cfg"),
                    final_config,
                    "{pod} runs it"
                );
            }
        }
        _ => {
            assert!(
                final_config.contains("autopurge.purgeInterval=6")
                    && !final_config.contains("tickTime=3100"),
                "a failed run leaves the operator's version, not half of ours:\n{final_config}\n{}",
                out.stderr
            );
            assert!(
                out.stderr.contains("zk-config"),
                "the error names the object: {}",
                out.stderr
            );
        }
    }
    println!("concurrent edit: exit {}\n{final_config}", out.code);
    assert!(!db.paused("hm"), "the target is resumed");
}

#[test]
fn a_broken_configuration_is_a_clear_error_and_nothing_changes() {
    let db = Db::start("perconaxtradb", &["hb".to_owned()]);
    db.wait_ready("hb");
    let name = format!("{}-config", db.engine.name);
    let mut object = db
        .sandbox
        .get("v1", "ConfigMap", "hb", &name)
        .expect("get")
        .expect("config ConfigMap");
    // An unterminated group header: not a my.cnf any MySQL would start with.
    object["data"][db.engine.file] = json!("[mysqld\nmax_connections = 10\n");
    db.sandbox.apply(object).expect("broken config");
    let before = data(&db, "hb", "ConfigMap", &name);
    let uids = db.pod_uids("hb");
    db.custom_config("hb", "[mysqld]\nmax_connections = 200\n");

    let out = db.run("perconaxtradb-reconfigure.toml", "hb", "hb-1", &[]);
    refused_cleanly(
        &db,
        "hb",
        "hb-1",
        &out,
        &[
            &format!("ConfigMap hb/{name}, key {}", db.engine.file),
            "line 1",
            "nothing was written",
        ],
    );
    assert_eq!(
        data(&db, "hb", "ConfigMap", &name),
        before,
        "the broken configuration is left as it was, not half-rewritten"
    );
    assert_eq!(db.pod_uids("hb"), uids, "no member restarted");
}
