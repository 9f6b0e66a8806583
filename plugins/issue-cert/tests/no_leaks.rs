//! Private keys and passwords never reach logs, spans, Events, errors,
//! outputs or durable state: run every action (including a failure and a
//! compensation) and search everything the host recorded for every private
//! key and the keystore password that ended up in a Secret.

use crate::support;

use serde_json::{Value, json};
use support::{Host, World, run, text, try_run};

/// Everything a host recorded, as one text.
fn recorded(host: &Host) -> String {
    let mut out = String::new();
    for line in host.logs.lock().expect("lock").iter() {
        out.push_str(&line.message);
        out.push_str(&Value::Object(line.fields.clone()).to_string());
        out.push('\n');
    }
    for span in host.spans.lock().expect("lock").iter() {
        out.push_str(&span.name);
        out.push_str(&Value::Object(span.attributes.clone()).to_string());
        out.push_str(span.error.as_deref().unwrap_or(""));
        out.push('\n');
    }
    for event in host.events.lock().expect("lock").iter() {
        out.push_str(&format!(
            "{} {} {}\n",
            event.event_type, event.reason, event.message
        ));
    }
    if let Some(state) = host.state.lock().expect("lock").as_ref() {
        out.push_str(&state.to_string());
    }
    for request in host.requests.lock().expect("lock").iter() {
        out.push_str(request);
        out.push('\n');
    }
    out
}

/// 24-character pieces of a PEM body: any of them in the haystack is a leak.
fn fragments(pem: &str) -> Vec<String> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    body.as_bytes()
        .chunks(24)
        .filter(|c| c.len() == 24)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

#[test]
fn no_key_or_password_in_logs_spans_events_errors_outputs_or_state() {
    let world = World::start(&[]);
    let issuer = json!({"kind": "ca", "name": "zk-ca", "create_if_missing": true});
    let mut haystack = String::new();
    let mut keys = Vec::new();
    let remember_keys = |world: &World, keys: &mut Vec<String>| {
        for name in ["zk-tls", "zk-ca", "zk-ca-2"] {
            if let Some(data) = world.secret(name) {
                keys.push(text(&data, "tls.key"));
            }
        }
    };

    let steps = [
        json!({"action": "add", "issuer": issuer}),
        json!({"action": "rotate", "force": true, "issuer": issuer}),
        json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2", "create_if_missing": true}}),
        json!({"action": "update-issuer", "issuer": {"kind": "ca", "name": "zk-ca-2"}}),
    ];
    for with in steps {
        let host = world.host();
        let outputs = run(&host, "kafka", with);
        haystack.push_str(&serde_json::to_string(&outputs).expect("json"));
        haystack.push_str(&recorded(&host));
        remember_keys(&world, &mut keys);
    }
    // A failure: its message and everything recorded on the way.
    let host = world.host();
    let err = try_run(
        &host,
        "kafka",
        json!({"action": "update-issuer", "phase": "drop-old",
                                            "issuer": {"kind": "ca", "name": "zk-ca"}}),
    )
    .expect_err("out of order");
    haystack.push_str(&err.1);
    haystack.push_str(&recorded(&host));
    // A compensation after a rotation.
    let host = world.host();
    let rotate =
        json!({"action": "rotate", "force": true, "issuer": {"kind": "ca", "name": "zk-ca-2"}});
    run(&host, "kafka", rotate.clone());
    remember_keys(&world, &mut keys);
    support::compensate(&host, "kafka", rotate);
    haystack.push_str(&recorded(&host));

    let password = text(
        &world.secret("zk-tls-keystore-password").expect("password"),
        "password",
    );
    assert!(
        haystack.len() > 1000,
        "the runs recorded something to search"
    );
    assert!(
        haystack.contains("issued certificate serial"),
        "logs are in the haystack"
    );
    assert!(
        !haystack.contains(&password),
        "the keystore password leaked"
    );
    assert!(!haystack.contains("PRIVATE KEY"), "a PEM key header leaked");
    assert!(
        keys.len() >= 6,
        "keys of several revisions and both CAs were collected"
    );
    for key in &keys {
        for fragment in fragments(key) {
            assert!(
                !haystack.contains(&fragment),
                "a private key fragment leaked"
            );
        }
    }
}
