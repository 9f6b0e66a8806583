//! What is probed, and how: the settings with their Secrets read (once per
//! step), and the list of targets (re-read every attempt, since a restarted
//! pod may come back with a new IP).

use std::time::Duration;

use dbops_engines::Engine;
use dbops_engines::members::{self, DruidRole};
use dbops_plugin_sdk::k8s_openapi::api::core::v1::Service;
use dbops_plugin_sdk::{Context, StepError, StepResult, Target};
use dbops_probes::Endpoint;
use dbops_probes::cluster::{self, Member, ResolvedTls, Workload};
use dbops_probes::http::HttpCheck;
use dbops_probes::mysql::{Credentials, GaleraCheck, MysqlCheck};

use crate::config::{Config, GaleraChoice, Probe};

/// The step's settings with Secrets read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The engine.
    pub engine: Engine,
    /// The protocol.
    pub probe: Probe,
    /// TLS, when spoken.
    pub tls: Option<ResolvedTls>,
    /// Whether the pipeline set its own `tls.server_name`.
    pub custom_server_name: bool,
    /// The port (None: per member, from the engine's data).
    pub port: Option<u16>,
    /// The `http`/`https`/`druid` check.
    pub http: HttpCheck,
    /// The `mysql` check.
    pub mysql: MysqlCheck,
    /// ZooKeeper: judge the quorum.
    pub quorum: bool,
    /// Per-attempt timeout of one probe.
    pub timeout: Duration,
}

impl Settings {
    /// Read the Secrets `config` names.
    pub fn load(ctx: &Context<'_>, config: &Config, engine: Engine) -> StepResult<Settings> {
        let namespace = &ctx.target().namespace;
        let probe = config.probe.unwrap_or(Probe::default_for(engine));
        let tls = match &config.tls {
            Some(settings) => Some(cluster::resolve_tls(ctx, namespace, settings)?),
            None => None,
        };
        let credentials: Option<Credentials> = match &config.credentials {
            Some(settings) => Some(cluster::load_credentials(ctx, namespace, settings)?),
            None => None,
        };
        let galera = match (config.galera, credentials.is_some()) {
            (_, false) | (GaleraChoice::Skip, _) => GaleraCheck::Skip,
            (GaleraChoice::RequirePrimary, true) => GaleraCheck::RequirePrimary,
            (GaleraChoice::Report, true) => GaleraCheck::Report,
            (GaleraChoice::Auto, true) if engine == Engine::Perconaxtradb => {
                GaleraCheck::PrimaryIfGalera
            }
            (GaleraChoice::Auto, true) => GaleraCheck::Report,
        };
        let http = if probe == Probe::Druid {
            dbops_probes::druid::health_check()
        } else {
            HttpCheck {
                path: config.http.path.clone(),
                host: config.http.host.clone(),
                expect_status: config.http.expected_status.clone(),
                expect_body: config.http.expected_body.clone(),
            }
        };
        let by_role = engine == Engine::Druid && probe == Probe::Druid;
        let engine_port = members::profile(engine).ports.for_tls(tls.is_some());
        Ok(Settings {
            engine,
            probe,
            custom_server_name: config.tls.as_ref().is_some_and(|t| t.server_name.is_some()),
            tls,
            port: config
                .port
                .or((!by_role && engine_port != 0).then_some(engine_port)),
            http,
            mysql: MysqlCheck {
                credentials,
                galera,
            },
            quorum: config.quorum && probe == Probe::Zookeeper,
            timeout: config.timeout.get(),
        })
    }

    /// The port of a member (Druid: from its node role).
    fn member_port(&self, member: &Member) -> Option<u16> {
        self.port.or_else(|| {
            DruidRole::recognise(&member.name).map(|r| r.ports().for_tls(self.tls.is_some()))
        })
    }

    /// The port of the Service (Druid: the router's).
    fn service_port(&self) -> u16 {
        self.port
            .unwrap_or_else(|| DruidRole::Router.ports().for_tls(self.tls.is_some()))
    }
}

/// One thing to probe.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The pod name, or `service/NAME`.
    pub name: String,
    /// Whether it is a member (takes part in the quorum judgement).
    pub member: bool,
    /// How to reach it, or why it cannot be reached.
    pub endpoint: Result<Endpoint, String>,
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One target per member, through its pod IP.
pub fn member_targets(
    settings: &Settings,
    workload: &Workload,
    members: &[Member],
    timeout: Duration,
) -> Vec<ProbeTarget> {
    members
        .iter()
        .map(|member| {
            let endpoint = match (member.ip(), settings.member_port(member)) {
                (None, _) => Err(format!("no pod IP ({})", member.status_summary())),
                (Some(_), None) => Err(format!(
                    "no port known for {}: set `port` in the step",
                    member.name
                )),
                (Some(ip), Some(port)) => {
                    let endpoint = Endpoint::plain(join_host_port(ip, port), timeout);
                    Ok(match &settings.tls {
                        Some(tls) => endpoint.with_tls(tls.for_member(
                            &member.name,
                            workload.service(),
                            &workload.namespace,
                        )),
                        None => endpoint,
                    })
                }
            };
            ProbeTarget {
                name: member.name.clone(),
                member: true,
                endpoint,
            }
        })
        .collect()
}

/// The client Service: `service_address`, else its clusterIP, else its DNS name.
pub fn service_target(
    ctx: &Context<'_>,
    settings: &Settings,
    config: &Config,
    target: &Target,
    timeout: Duration,
) -> StepResult<ProbeTarget> {
    let name = config
        .service
        .clone()
        .unwrap_or_else(|| target.name.clone());
    let namespace = &target.namespace;
    let port = settings.service_port();
    let address = match &config.service_address {
        Some(address) => address.clone(),
        None => {
            let service = ctx
                .kube()
                .api::<Service>(Some(namespace))
                .get_opt(&name)?
                .ok_or_else(|| {
                    StepError::permanent(
                        "ServiceNotFound",
                        format!(
                            "service {namespace}/{name} does not exist; set `service` to the client Service of {}",
                            target.name
                        ),
                    )
                })?;
            let cluster_ip = service
                .spec
                .and_then(|s| s.cluster_ip)
                .filter(|ip| !ip.is_empty() && ip != "None");
            match cluster_ip {
                Some(ip) => join_host_port(&ip, port),
                None => format!("{name}.{namespace}.svc:{port}"),
            }
        }
    };
    let endpoint = Endpoint::plain(address, timeout);
    let endpoint = match &settings.tls {
        Some(tls) if settings.custom_server_name => {
            endpoint.with_tls(tls.for_member(&name, &name, namespace))
        }
        Some(tls) => endpoint.with_tls(tls.for_name(&format!("{name}.{namespace}.svc"))),
        None => endpoint,
    };
    Ok(ProbeTarget {
        name: format!("service/{name}"),
        member: false,
        endpoint: Ok(endpoint),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbops_plugin_sdk::k8s_openapi::api::core::v1::{Pod, PodStatus};
    use dbops_plugin_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn settings(engine: Engine, probe: Probe, port: Option<u16>) -> Settings {
        Settings {
            engine,
            probe,
            tls: None,
            custom_server_name: false,
            port,
            http: HttpCheck::get("/"),
            mysql: MysqlCheck::default(),
            quorum: false,
            timeout: Duration::from_secs(1),
        }
    }

    fn member(name: &str, ip: Option<&str>) -> Member {
        Member {
            name: name.into(),
            ordinal: 0,
            pod: Some(Pod {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                status: Some(PodStatus {
                    pod_ip: ip.map(str::to_string),
                    phase: Some("Pending".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    fn workload() -> Workload {
        Workload::from_value(
            "StatefulSet",
            "db",
            &dbops_plugin_sdk::serde_json::json!({"metadata": {"name": "druid"}}),
        )
        .unwrap()
    }

    #[test]
    fn members_are_reached_by_pod_ip_and_druid_ports_follow_the_role() {
        let s = settings(Engine::Druid, Probe::Druid, None);
        let targets = member_targets(
            &s,
            &workload(),
            &[
                member("druid-historicals-0", Some("127.0.3.4")),
                member("druid-brokers-0", Some("::1")),
                member("druid-brokers-1", None),
            ],
            Duration::from_secs(1),
        );
        assert_eq!(
            targets[0].endpoint.as_ref().unwrap().address,
            "127.0.3.4:8083"
        );
        assert_eq!(targets[1].endpoint.as_ref().unwrap().address, "[::1]:8082");
        let missing = targets[2].endpoint.as_ref().unwrap_err();
        assert!(missing.contains("no pod IP (phase Pending"), "{missing}");
        assert_eq!(s.service_port(), 8888);
    }

    #[test]
    fn a_member_without_a_known_port_is_reported() {
        let s = settings(Engine::Generic, Probe::Tcp, None);
        let targets = member_targets(
            &s,
            &workload(),
            &[member("web-0", Some("127.0.0.2"))],
            Duration::from_secs(1),
        );
        assert!(
            targets[0]
                .endpoint
                .as_ref()
                .unwrap_err()
                .contains("set `port`")
        );
    }
}
