//! Lossless YAML and JSON edits on realistic files (tests/data): a Strimzi
//! Kafka resource, an application config with anchors, merge keys, quoted
//! values and block scalars, and a Druid Kafka supervisor spec. Every
//! expectation is the exact text after the edit: the original with only
//! the changed lines replaced, added or removed.

use dbops_config_formats::{Error, edit, masked_diff};
use serde_json::json;

use crate::support;
use support::{changes, load};

/// `text` with each `(old, new)` replaced exactly once.
fn replaced(text: &str, edits: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (old, new) in edits {
        assert_eq!(out.matches(old).count(), 1, "{old:?} must occur once");
        out = out.replacen(old, new, 1);
    }
    out
}

#[test]
fn strimzi_kafka_set_add_and_delete_touch_only_their_lines() {
    let (text, doc) = load("strimzi-kafka.yaml");
    let edited = edit(
        &doc,
        &changes(
            json!({
                "metadata": {"labels": {"tier": "gold"}},
                "spec": {
                    "kafka": {
                        "replicas": 5,
                        "config": {
                            "ssl.enabled.protocols": "TLSv1.3",
                            "auto.create.topics.enable": "true",
                            "log.retention.hours": null,
                        },
                    },
                    "clusterCa": {"generateCertificateAuthority": false, "validityDays": 365},
                },
            }),
            &["spec.cruiseControl", "spec.kafka.jvmOptions.-Xms"],
        ),
    )
    .expect("edit");
    let expected = replaced(
        &text,
        &[
            (
                "    app.kubernetes.io/part-of: \"events-platform\"\n",
                "    app.kubernetes.io/part-of: \"events-platform\"\n    tier: gold\n",
            ),
            (
                "    replicas: 3 # three brokers, one per zone\n",
                "    replicas: 5 # three brokers, one per zone\n",
            ),
            (
                "      auto.create.topics.enable: 'false'\n      log.retention.hours: 168   # one week\n",
                "      auto.create.topics.enable: 'true'\n      ssl.enabled.protocols: TLSv1.3\n",
            ),
            ("      -Xms: 2048m\n", ""),
            (
                "  cruiseControl:\n    brokerCapacity:\n      inboundNetwork: 10000KiB/s\n    config: |\n      # Cruise Control properties, passed through verbatim\n      default.goals=RackAwareGoal,ReplicaCapacityGoal\n      cpu.balance.threshold=1.1\n",
                "  clusterCa:\n    generateCertificateAuthority: false\n    validityDays: 365\n",
            ),
        ],
    );
    assert_eq!(edited.text, expected);
    let diff = masked_diff("kafka.yaml", &doc, &edited);
    assert_eq!(diff.changed_lines, 18, "{}", diff.text);
}

#[test]
fn strimzi_kafka_list_values_are_replaced_whole() {
    let (text, doc) = load("strimzi-kafka.yaml");
    let edited = edit(
        &doc,
        &changes(
            json!({"spec": {"kafka": {"listeners": [{"name": "tls", "port": 9093}]}}}),
            &[],
        ),
    )
    .expect("edit");
    let back: serde_json::Value = serde_norway::from_str(&edited.text).expect("valid YAML");
    assert_eq!(
        back["spec"]["kafka"]["listeners"],
        json!([{"name": "tls", "port": 9093}])
    );
    let before_listeners = text.find("    listeners:\n").expect("present");
    let comment = text.find("\n    # Broker settings").expect("present");
    assert_eq!(edited.text[..before_listeners], text[..before_listeners]);
    assert!(edited.text.ends_with(&text[comment..]), "{}", edited.text);
}

#[test]
fn strimzi_kafka_refuses_edits_through_or_of_shared_anchors() {
    let (text, doc) = load("strimzi-kafka.yaml");
    let through_alias = edit(
        &doc,
        &changes(
            json!({"spec": {"entityOperator": {"topicOperator": {"resources": {"limits": {"cpu": "2"}}}}}}),
            &[],
        ),
    )
    .unwrap_err();
    assert!(matches!(through_alias, Error::NotLossless { .. }));
    let message = through_alias.to_string();
    assert!(
        message.contains("spec.entityOperator.topicOperator.resources")
            && message.contains("line 55")
            && message.contains("alias *broker-resources")
            && message.contains("change the anchored value"),
        "{message}"
    );
    let shared = edit(
        &doc,
        &changes(
            json!({"spec": {"kafka": {"resources": {"limits": {"cpu": "2"}}}}}),
            &[],
        ),
    )
    .unwrap_err();
    let message = shared.to_string();
    assert!(
        message.contains("spec.entityOperator.topicOperator.resources.limits.cpu")
            && message.contains("alias"),
        "{message}"
    );
    assert_eq!(doc.render(), text);
}

#[test]
fn app_config_quotes_new_values_and_keeps_every_other_byte() {
    let (text, doc) = load("app-config.yaml");
    let edited = edit(
        &doc,
        &changes(
            json!({
                "server": {"port": 9443, "ssl": {"enabled": "yes", "key-store": "/etc/tls/keystore.p12"}},
                "database": {"pool": {"max-size": 50}, "timeout": "60s"},
                "features": {"new-checkout": "on", "limits": {"burst": 40}},
                "cache": {"ttl": "1.0", "prefix": "*orders", "note": "a: b # c", "empty": "", "none": "null"},
            }),
            // A JSON pointer names keys that contain dots.
            &["/logging/level/com.example.orders", "database.init-sql"],
        ),
    )
    .expect("edit");
    let expected = replaced(
        &text,
        &[
            (
                "  port: 8080          # behind the ingress\n  context-path: /orders\n",
                "  port: 9443          # behind the ingress\n  context-path: /orders\n  ssl:\n    enabled: 'yes'\n    key-store: /etc/tls/keystore.p12\n",
            ),
            ("    max-size: 20\n", "    max-size: 50\n"),
            (
                "  init-sql: >-\n    SET SESSION sql_mode = 'STRICT_ALL_TABLES';\n    SET SESSION time_zone = '+00:00';\n",
                "  timeout: 60s\n",
            ),
            (
                "  ttl: 600\n",
                "  ttl: '1.0'\n  empty: ''\n  none: 'null'\n  note: 'a: b # c'\n  prefix: '*orders'\n",
            ),
            (
                "  new-checkout: off   # a string",
                "  new-checkout: 'on'   # a string",
            ),
            (
                "{orders-per-minute: 100, burst: 20}",
                "{orders-per-minute: 100, burst: 40}",
            ),
            ("    com.example.orders: DEBUG\n", ""),
        ],
    );
    assert_eq!(edited.text, expected);
    let back: serde_json::Value = serde_norway::from_str(&edited.text).expect("valid YAML");
    assert_eq!(back["cache"]["ttl"], json!("1.0"));
    assert_eq!(back["cache"]["none"], json!("null"));
    assert_eq!(back["features"]["new-checkout"], json!("on"));
}

#[test]
fn app_config_merge_key_siblings_are_plain_keys_but_aliases_are_not_edited() {
    let (text, doc) = load("app-config.yaml");
    let edited = edit(&doc, &changes(json!({"cache": {"retries": 5}}), &[])).expect("edit");
    assert_eq!(
        edited.text,
        replaced(&text, &[("  ttl: 600\n", "  ttl: 600\n  retries: 5\n")])
    );
    let err = edit(&doc, &changes(json!({}), &["database.<<.retries"])).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("database.<<")
            && message.contains("line 18")
            && message.contains("*defaults"),
        "{message}"
    );
}

#[test]
fn app_config_masked_diff_shows_only_the_changed_lines() {
    let (_, doc) = load("app-config.yaml");
    let edited = edit(
        &doc,
        &changes(
            json!({"database": {"password": "n3w-s3cret", "pool": {"min-idle": 2}}}),
            &[],
        ),
    )
    .expect("edit");
    let diff = masked_diff("app-config.yaml", &doc, &edited);
    assert_eq!(
        diff.text,
        "--- a/app-config.yaml\n+++ b/app-config.yaml\n@@ -21,7 +21,7 @@\n   password: '**** (changed)'   # rotated by the secrets pipeline\n   pool:\n     max-size: 20\n-    min-idle: 5\n+    min-idle: 2\n \n   # Statements run on every new connection.\n   init-sql: >-\n"
    );
    assert!(!diff.text.contains("ch@nge-me") && !diff.text.contains("n3w-s3cret"));
}

#[test]
fn druid_supervisor_json_edits_only_touched_members() {
    let (text, doc) = load("druid-supervisor.json");
    let edited = edit(
        &doc,
        &changes(
            json!({"spec": {"ioConfig": {
                "consumerProperties": {"security.protocol": "SSL", "ssl.truststore.location": "/etc/tls/truststore.p12"},
                "taskCount": 4,
                "replicas": null,
            }}}),
            &["spec.dataSchema.granularitySpec.rollup", "/spec/dataSchema/dimensionsSpec/dimensions/1"],
        ),
    )
    .expect("edit");
    let expected = replaced(
        &text,
        &[
            (
                "[\"customer\", \"region\", \"status\"]",
                "[\"customer\", \"status\"]",
            ),
            (
                "        \"queryGranularity\": \"minute\",\n        \"rollup\": false\n",
                "        \"queryGranularity\": \"minute\"\n",
            ),
            (
                "        \"security.protocol\": \"PLAINTEXT\"\n",
                "        \"security.protocol\": \"SSL\",\n        \"ssl.truststore.location\": \"/etc/tls/truststore.p12\"\n",
            ),
            (
                "      \"taskCount\": 2,\n      \"replicas\": 1,\n",
                "      \"taskCount\": 4,\n",
            ),
        ],
    );
    assert_eq!(edited.text, expected);
}
