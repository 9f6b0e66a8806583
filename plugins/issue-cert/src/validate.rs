//! Validation of the `with` table: every problem at once, each with a JSON
//! pointer and a sentence saying how to fix it; no cluster access.

use std::net::IpAddr;
use std::time::Duration;

use dbops_plugin_sdk::{Problem, Target};

use crate::config::{Action, Config, IssuerKind};

/// Every problem of a `with` table, without the cluster.
pub fn validate(config: &Config, target: &Target) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |path: &str, message: String| {
        problems.push(Problem {
            path: path.into(),
            message,
        })
    };
    match (&config.issuer, config.action) {
        (None, Action::Remove) => {}
        (None, _) => problem(
            "/issuer",
            "an issuer is required for this action; set issuer = { kind = \"ca\", name = \"<CA Secret>\", create_if_missing = true } or a cert-manager Issuer".into(),
        ),
        (Some(issuer), _) => {
            if !is_dns_label_name(&issuer.name) {
                problem("/issuer/name", format!("{:?} is not a valid Kubernetes object name", issuer.name));
            }
            if issuer.kind != IssuerKind::Ca && issuer.create_if_missing {
                problem("/issuer/create_if_missing", "create_if_missing applies to the built-in CA (kind = \"ca\") only; cert-manager issuers are created by their owners".into());
            }
        }
    }
    if config.phase.is_some() && config.action != Action::UpdateIssuer {
        problem(
            "/phase",
            "phase applies to action \"update-issuer\" only; remove it".into(),
        );
    }
    for (path, name) in [
        ("/secret_name", &config.secret_name),
        ("/password_secret", &config.password_secret),
    ] {
        if let Some(name) = name
            && !is_dns_label_name(name)
        {
            problem(
                path,
                format!(
                    "{name:?} is not a valid Secret name (lowercase letters, digits, '-' and '.')"
                ),
            );
        }
    }
    for (i, ip) in config.certificate.ip_addresses.iter().enumerate() {
        if ip.parse::<IpAddr>().is_err() {
            problem(
                &format!("/certificate/ip_addresses/{i}"),
                format!("{ip:?} is not an IP address"),
            );
        }
    }
    for (i, name) in config.certificate.dns_names.iter().enumerate() {
        let plain = name.strip_prefix("*.").unwrap_or(name);
        if plain.is_empty() || !plain.split('.').all(is_dns_label) {
            problem(
                &format!("/certificate/dns_names/{i}"),
                format!("{name:?} is not a DNS name"),
            );
        }
    }
    if config.certificate.duration.get() < Duration::from_secs(3600) {
        problem(
            "/certificate/duration",
            "the certificate must be valid for at least 1h".into(),
        );
    }
    if config.action == Action::Rotate
        && config.renew_before.get() >= config.certificate.duration.get()
    {
        problem(
            "/renew_before",
            format!(
                "renew_before ({}) is not shorter than the certificate duration ({}): every run would rotate; shorten it",
                dbops_plugin_sdk::duration::format(config.renew_before.get()),
                dbops_plugin_sdk::duration::format(config.certificate.duration.get())
            ),
        );
    }
    if config.keystore_alias.is_empty()
        || !config.keystore_alias.bytes().all(|b| b.is_ascii_graphic())
    {
        problem(
            "/keystore_alias",
            "the alias must be printable ASCII without spaces".into(),
        );
    }
    if target.engine.is_empty() || dbops_engines::Engine::parse(&target.engine).is_none() {
        problem(
            "",
            format!(
                "unknown engine {:?} in [target]; issue-cert knows zookeeper, kafka, druid, perconaxtradb, generic",
                target.engine
            ),
        );
    }
    problems
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn is_dns_label_name(name: &str) -> bool {
    name.len() <= 253
        && name
            .split('.')
            .all(|l| is_dns_label(l) && l.bytes().all(|b| !b.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbops_engines::tls::KeystoreFormat;
    use dbops_plugin_sdk::serde_json::json;
    use dbops_plugin_sdk::testing::TestHost;

    fn target() -> Target {
        Target {
            engine: "kafka".into(),
            namespace: "db".into(),
            name: "kafka".into(),
            ..Target::default()
        }
    }

    fn problems(with: dbops_plugin_sdk::serde_json::Value) -> Vec<Problem> {
        TestHost::validate::<crate::IssueCert>(target(), with, &[]).problems
    }

    #[test]
    fn a_complete_table_is_valid_and_defaults_follow_the_engine() {
        let with = json!({"action": "rotate", "renew_before": "720h",
                          "issuer": {"kind": "ClusterIssuer", "name": "corp-ca"},
                          "certificate": {"key_algorithm": "rsa-4096", "dns_names": ["*.kafka.example.com"]}});
        assert_eq!(problems(with.clone()), []);
        let config: Config = dbops_plugin_sdk::export::decode_config(with).expect("decodes");
        assert_eq!(config.secret_name(&target()), "kafka-tls");
        assert_eq!(
            config.password_secret(&target()),
            "kafka-tls-keystore-password"
        );
        assert_eq!(
            config.formats(&target()),
            [KeystoreFormat::Pkcs12, KeystoreFormat::Jks]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_pointer() {
        let found = problems(
            json!({"action": "rotate", "phase": "issue", "renew_before": "3000h",
                                    "secret_name": "Bad_Name",
                                    "certificate": {"ip_addresses": ["10.0.0.300"], "dns_names": ["-x.example"]}}),
        );
        let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/issuer",
                "/phase",
                "/secret_name",
                "/certificate/ip_addresses/0",
                "/certificate/dns_names/0",
                "/renew_before"
            ],
            "{found:?}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_enums_are_rejected() {
        let found = problems(json!({"action": "renew"}));
        assert!(
            found[0].message.contains("unknown variant `renew`"),
            "{found:?}"
        );
        let found = problems(
            json!({"action": "add", "issuer": {"kind": "ca", "name": "x", "create": true}}),
        );
        assert_eq!(found[0].path, "/issuer/create");
        assert!(
            found[0].message.contains("unknown field `create`"),
            "{found:?}"
        );
    }

    #[test]
    fn the_schema_documents_the_fields() {
        let schema = dbops_plugin_sdk::export::schema_json::<crate::IssueCert>();
        for text in [
            "renew_before",
            "update-issuer",
            "trust-both",
            "ClusterIssuer",
            "rotation_policy",
        ] {
            assert!(schema.contains(text), "{text} missing from {schema}");
        }
    }
}
