//! Round trips and edits on real configuration files: Debian's zoo.cfg and
//! MariaDB option files, Apache Kafka's KRaft server.properties and Apache
//! Druid's common.runtime.properties (copied into tests/data).

use std::collections::BTreeSet;

use dbops_config_formats::{Format, Key, edit, masked_diff};
use serde_json::json;

use crate::support;
use support::{changes, load};

#[test]
fn every_real_file_round_trips_byte_for_byte() {
    for name in [
        "zoo.cfg",
        "log4j.properties",
        "server.properties",
        "common.runtime.properties",
        "my.cnf",
        "50-server.cnf",
        "60-galera.cnf",
    ] {
        load(name);
    }
}

#[test]
fn zoo_cfg_gains_tls_and_keeps_every_comment() {
    let (text, doc) = load("zoo.cfg");
    assert_eq!(doc.get(&Key::flat("clientPort")), Some(Some("2181".into())));
    let edited = edit(
        &doc,
        &changes(
            json!({
                "secureClientPort": "2182",
                "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
                "ssl.keyStore.location": "/etc/dbops/tls/keystore.p12",
            }),
            &["clientPort"],
        ),
    )
    .expect("edit");
    for line in text.lines().filter(|l| l.starts_with('#')) {
        assert!(edited.text.contains(line), "lost comment {line:?}");
    }
    assert!(!edited.text.contains("clientPort=2181"));
    assert!(edited.text.ends_with(
        "secureClientPort=2182\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\nssl.keyStore.location=/etc/dbops/tls/keystore.p12\n"
    ));
    let diff = masked_diff("zoo.cfg", &doc, &edited);
    assert_eq!(diff.changed_lines, 4, "{}", diff.text);
}

#[test]
fn kafka_listeners_change_in_place() {
    let (text, doc) = load("server.properties");
    let edited = edit(
        &doc,
        &changes(
            json!({"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093,SSL://:9094"}),
            &[],
        ),
    )
    .expect("edit");
    let diff = masked_diff("server.properties", &doc, &edited);
    assert_eq!(diff.changed_lines, 2, "{}", diff.text);
    assert!(
        diff.text
            .contains("+listeners=PLAINTEXT://:9092,CONTROLLER://:9093,SSL://:9094\n")
    );
    assert_eq!(edited.text.lines().count(), text.lines().count());
}

#[test]
fn druid_json_valued_properties_read_and_secret_lists_are_masked() {
    let (_, doc) = load("common.runtime.properties");
    let list = doc
        .get(&Key::flat("druid.extensions.loadList"))
        .flatten()
        .expect("present");
    assert!(list.starts_with("[\"druid-hdfs-storage\""), "{list}");
    let edited = edit(
        &doc,
        &changes(
            json!({"druid.enableTlsPort": true, "druid.metadata.storage.connector.password": "pw"}),
            &[],
        ),
    )
    .expect("edit");
    let diff = masked_diff("common.runtime.properties", &doc, &edited);
    assert!(
        diff.text.contains("+druid.enableTlsPort=true\n"),
        "{}",
        diff.text
    );
    assert!(
        diff.text
            .contains("+druid.metadata.storage.connector.password=**** (changed)\n"),
        "{}",
        diff.text
    );
    assert!(!diff.text.contains("=pw"));
}

#[test]
fn mariadb_server_cnf_gets_tls_in_the_mysqld_group() {
    let (text, doc) = load("50-server.cnf");
    assert_eq!(
        doc.get(&Key::ini("mysqld", "bind_address")),
        Some(Some("127.0.0.1".into()))
    );
    let edited = edit(
        &doc,
        &changes(
            json!({"mysqld": {
                "ssl_ca": "/etc/dbops/tls/ca.crt",
                "ssl_cert": "/etc/dbops/tls/tls.crt",
                "ssl_key": "/etc/dbops/tls/tls.key",
                "require_secure_transport": "ON",
            }}),
            &[],
        ),
    )
    .expect("edit");
    // Inserted after the group's last setting, before the next group's comments.
    let at = edited
        .text
        .find("ssl_ca = /etc/dbops/tls/ca.crt")
        .expect("added");
    let collation = edited.text.find("collation-server").expect("kept");
    let embedded = edited.text.find("[embedded]").expect("kept");
    assert!(collation < at && at < embedded);
    assert!(edited.text.contains("#ssl-ca = /etc/mysql/cacert.pem"));
    assert_eq!(edited.text.lines().count(), text.lines().count() + 4);
    let back = edit(
        &edited.document,
        &changes(
            json!({}),
            &[
                "mysqld.ssl_ca",
                "mysqld.ssl_cert",
                "mysqld.ssl_key",
                "mysqld.require_secure_transport",
            ],
        ),
    )
    .expect("edit back");
    assert_eq!(back.text, text, "removing what was added restores the file");
}

#[test]
fn my_cnf_keeps_includes_and_reads_the_client_server_group() {
    let (_, doc) = load("my.cnf");
    assert_eq!(
        doc.get(&Key::ini("client-server", "socket")),
        Some(Some("/run/mysqld/mysqld.sock".into()))
    );
    let edited = edit(
        &doc,
        &changes(json!({"client-server": {"port": 3307}}), &[]),
    )
    .expect("edit");
    assert!(
        edited
            .text
            .contains("!includedir /etc/mysql/conf.d/\n!includedir /etc/mysql/mariadb.conf.d/")
    );
    let keys: BTreeSet<String> = edited
        .changed_keys
        .iter()
        .map(|k| k.describe(Format::Ini))
        .collect();
    assert_eq!(keys, BTreeSet::from(["[client-server] port".to_owned()]));
}
