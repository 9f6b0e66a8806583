//! Kafka's TLS settings. Listener names are kept (so `listeners`,
//! `advertised.listeners` and `inter.broker.listener.name` stay valid); TLS
//! is switched by mapping each listener to `SSL` (`SASL_SSL` for SASL) in
//! `listener.security.protocol.map`, and back on removal. Keystore
//! passwords are read by Kafka's `DirectoryConfigProvider` from the
//! mounted password Secret, never written into the file. (Kafka 4 needs the
//! JVM property `org.apache.kafka.automatic.config.providers` to allow that
//! provider.)

use super::{Current, TlsAction, TlsOptions, TlsSettings};

/// Name of the config provider dbops registers.
const PROVIDER: &str = "dbopsdir";

pub(super) fn settings(
    s: &mut TlsSettings,
    action: TlsAction,
    o: &TlsOptions,
    current: Current<'_>,
) {
    protocol_map(s, action, current);
    if let Some(protocol) = current(&["security.inter.broker.protocol"]) {
        let switched = switch(&protocol, action);
        if switched != protocol {
            s.set(&["security.inter.broker.protocol"], switched);
        }
    }
    let password = format!(
        "${{{PROVIDER}:{}:password}}",
        o.password_dir.trim_end_matches('/')
    );
    let stores = [
        ("ssl.keystore.location", o.file("keystore.p12")),
        ("ssl.keystore.type", "PKCS12".to_owned()),
        ("ssl.keystore.password", password.clone()),
        ("ssl.key.password", password.clone()),
        ("ssl.truststore.location", o.file("truststore.p12")),
        ("ssl.truststore.type", "PKCS12".to_owned()),
        ("ssl.truststore.password", password),
        (
            "ssl.client.auth",
            if o.client_auth { "required" } else { "none" }.to_owned(),
        ),
    ];
    for (key, value) in stores {
        s.set_or_delete(action, &[key], value);
    }
    providers(s, action, current);
}

/// PLAINTEXT <-> SSL, SASL_PLAINTEXT <-> SASL_SSL.
fn switch(protocol: &str, action: TlsAction) -> String {
    match (action, protocol) {
        (TlsAction::Add, "PLAINTEXT") => "SSL",
        (TlsAction::Add, "SASL_PLAINTEXT") => "SASL_SSL",
        (TlsAction::Remove, "SSL") => "PLAINTEXT",
        (TlsAction::Remove, "SASL_SSL") => "SASL_PLAINTEXT",
        (_, other) => other,
    }
    .to_owned()
}

fn protocol_map(s: &mut TlsSettings, action: TlsAction, current: Current<'_>) {
    let listeners = current(&["listeners"]).unwrap_or_else(|| "PLAINTEXT://:9092".into());
    let names: Vec<String> = listeners
        .split(',')
        .filter_map(|l| {
            l.trim()
                .split_once("://")
                .map(|(name, _)| name.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .collect();
    let map_text = current(&["listener.security.protocol.map"]).unwrap_or_default();
    let mut map: Vec<(String, String)> = map_text
        .split(',')
        .filter_map(|pair| pair.trim().split_once(':'))
        .map(|(n, p)| (n.trim().to_owned(), p.trim().to_owned()))
        .collect();
    for name in &names {
        let known = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
        match map.iter_mut().find(|(n, _)| n == name) {
            Some((_, protocol)) => *protocol = switch(protocol, action),
            None => {
                let default = if known.contains(&name.as_str()) {
                    name.as_str()
                } else {
                    "PLAINTEXT"
                };
                map.push((name.clone(), switch(default, action)));
            }
        }
    }
    let rendered: Vec<String> = map.iter().map(|(n, p)| format!("{n}:{p}")).collect();
    let rendered = rendered.join(",");
    if rendered != map_text {
        s.set(&["listener.security.protocol.map"], rendered);
    }
}

fn providers(s: &mut TlsSettings, action: TlsAction, current: Current<'_>) {
    let class_key = format!("config.providers.{PROVIDER}.class");
    let list = current(&["config.providers"]).unwrap_or_default();
    let mut names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let present = names.contains(&PROVIDER);
    match action {
        TlsAction::Add => {
            if !present {
                names.push(PROVIDER);
                s.set(&["config.providers"], names.join(","));
            }
            s.set(
                &[&class_key],
                "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
            );
        }
        TlsAction::Remove => {
            if present {
                names.retain(|n| *n != PROVIDER);
                if names.is_empty() {
                    s.delete(&["config.providers"]);
                } else {
                    s.set(&["config.providers"], names.join(","));
                }
            }
            s.delete(&[&class_key]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Engine, tls_settings};
    use super::*;

    fn shipped(k: &[&str]) -> Option<String> {
        match k {
            ["listeners"] => Some("PLAINTEXT://:9092,CONTROLLER://:9093".into()),
            ["listener.security.protocol.map"] => Some(
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL".into(),
            ),
            _ => None,
        }
    }

    #[test]
    fn add_maps_every_listener_to_ssl_and_reads_passwords_from_the_mounted_secret() {
        let add = tls_settings(
            Engine::Kafka,
            TlsAction::Add,
            &TlsOptions::default(),
            &shipped,
        )
        .expect("kafka");
        let get = |key: &str| {
            add.set
                .iter()
                .find(|(k, _)| k[0] == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("listener.security.protocol.map"),
            Some(
                "CONTROLLER:SSL,PLAINTEXT:SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
            )
        );
        assert_eq!(
            get("ssl.keystore.password"),
            Some("${dbopsdir:/etc/dbops/tls-password:password}")
        );
        assert_eq!(get("config.providers"), Some("dbopsdir"));
        assert_eq!(get("ssl.client.auth"), Some("none"));
        assert_eq!(get("listeners"), None, "listener names are kept");
    }

    #[test]
    fn remove_maps_back_and_unregisters_the_provider() {
        let after_add = |k: &[&str]| match k {
            ["listeners"] => Some("PLAINTEXT://:9092,CONTROLLER://:9093".into()),
            ["listener.security.protocol.map"] => Some("CONTROLLER:SSL,PLAINTEXT:SSL".into()),
            ["config.providers"] => Some("dbopsdir".into()),
            ["security.inter.broker.protocol"] => Some("SSL".into()),
            _ => None,
        };
        let remove = tls_settings(
            Engine::Kafka,
            TlsAction::Remove,
            &TlsOptions::default(),
            &after_add,
        )
        .expect("kafka");
        let set: Vec<(String, String)> = remove
            .set
            .iter()
            .map(|(k, v)| (k[0].clone(), v.clone()))
            .collect();
        assert!(set.contains(&(
            "listener.security.protocol.map".into(),
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".into()
        )));
        assert!(set.contains(&("security.inter.broker.protocol".into(), "PLAINTEXT".into())));
        let deleted: Vec<String> = remove.delete.iter().map(|k| k[0].clone()).collect();
        assert!(deleted.contains(&"config.providers".to_owned()));
        assert!(deleted.contains(&"ssl.keystore.location".to_owned()));
    }
}
