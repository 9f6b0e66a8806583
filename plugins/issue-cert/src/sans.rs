//! The certificate's names: every member's stable DNS name, the governing
//! and client Services, an optional wildcard, and extra names from config.

use dbops_certs::{LeafSpec, Subject};
use dbops_plugin_sdk::Target;
use dbops_probes::cluster::Workload;

use crate::config::Config;

/// DNS SANs for `workload`'s members and Services, in a stable order, without duplicates.
pub fn dns_names(config: &Config, target: &Target, workload: &Workload) -> Vec<String> {
    let ns = &target.namespace;
    let domain = &config.certificate.cluster_domain;
    let governing = workload.service();
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    for member in workload.member_names() {
        push(format!("{member}.{governing}.{ns}.svc"));
        push(format!("{member}.{governing}.{ns}.svc.{domain}"));
    }
    if config.certificate.wildcard {
        push(format!("*.{governing}.{ns}.svc"));
        push(format!("*.{governing}.{ns}.svc.{domain}"));
    }
    let clients = config
        .certificate
        .client_services
        .clone()
        .unwrap_or_else(|| vec![target.name.clone()]);
    for service in std::iter::once(governing.to_owned()).chain(clients) {
        push(service.clone());
        push(format!("{service}.{ns}"));
        push(format!("{service}.{ns}.svc"));
        push(format!("{service}.{ns}.svc.{domain}"));
    }
    for extra in &config.certificate.dns_names {
        push(extra.clone());
    }
    names
}

/// The leaf to issue.
pub fn leaf_spec(config: &Config, target: &Target, workload: &Workload) -> LeafSpec {
    LeafSpec {
        subject: Subject {
            common_name: config
                .certificate
                .common_name
                .clone()
                .unwrap_or_else(|| target.name.clone()),
            organization: config.certificate.organization.clone(),
            organizational_unit: None,
        },
        dns_names: dns_names(config, target, workload),
        ip_addresses: config.ip_addresses(),
        validity: config.certificate.duration.get(),
        server_auth: true,
        client_auth: true,
    }
}

/// The names of `spec` the certificate does not cover (empty when it covers all).
pub fn missing_names(spec: &LeafSpec, info: &dbops_certs::CertInfo) -> Vec<String> {
    let mut missing: Vec<String> = spec
        .dns_names
        .iter()
        .filter(|n| {
            !info
                .dns_names
                .iter()
                .any(|have| have.eq_ignore_ascii_case(n))
        })
        .cloned()
        .collect();
    missing.extend(
        spec.ip_addresses
            .iter()
            .filter(|ip| !info.ip_addresses.contains(ip))
            .map(ToString::to_string),
    );
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbops_plugin_sdk::serde_json::json;

    fn config(with: dbops_plugin_sdk::serde_json::Value) -> Config {
        dbops_plugin_sdk::export::decode_config(with).expect("valid config")
    }

    #[test]
    fn names_every_member_both_ways_plus_services_and_wildcard() {
        let target = Target {
            engine: "zookeeper".into(),
            namespace: "db".into(),
            name: "zk".into(),
            ..Target::default()
        };
        let workload = Workload::from_value(
            "StatefulSet",
            "db",
            &json!({"metadata": {"name": "zk"}, "spec": {"replicas": 2, "serviceName": "zk-pods"}}),
        )
        .expect("workload");
        let cfg = config(
            json!({"action": "add", "certificate": {"wildcard": true, "dns_names": ["zk.example.com"]}}),
        );
        let names = dns_names(&cfg, &target, &workload);
        assert_eq!(
            names,
            [
                "zk-0.zk-pods.db.svc",
                "zk-0.zk-pods.db.svc.cluster.local",
                "zk-1.zk-pods.db.svc",
                "zk-1.zk-pods.db.svc.cluster.local",
                "*.zk-pods.db.svc",
                "*.zk-pods.db.svc.cluster.local",
                "zk-pods",
                "zk-pods.db",
                "zk-pods.db.svc",
                "zk-pods.db.svc.cluster.local",
                "zk",
                "zk.db",
                "zk.db.svc",
                "zk.db.svc.cluster.local",
                "zk.example.com",
            ]
        );
    }
}
