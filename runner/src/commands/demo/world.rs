//! The demo's world in the sandbox: namespace `demo` with a CA, a member
//! certificate that expires in two days (so the rotation is due), a
//! `zoo.cfg` ConfigMap and a 3-member StatefulSet `zk`. Its pods run the
//! sandbox's built-in TLS endpoint serving the mounted `zk-tls` Secret on
//! port 2182, or, with `--real`, real ZooKeeper servers (from
//! `dbops-probes`' testing manifests) serving it on their secure client port.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use dbops_certs::{Ca, CaSpec, KeyAlgorithm, LeafSpec, PrivateKey, Subject};
use dbops_probes::testing::manifests::{self, PodSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};

/// The demo namespace.
pub const NAMESPACE: &str = "demo";
/// The StatefulSet.
pub const NAME: &str = "zk";
/// Members.
const REPLICAS: u32 = 3;
/// Where members serve TLS (ZooKeeper's secureClientPort).
pub const TLS_PORT: u16 = 2182;
/// The real ZooKeeper installation the `--real` pods need.
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";

/// What was created.
pub struct World {
    /// Real ZooKeeper servers (quorum pre-checks possible) or TLS endpoints.
    pub real: bool,
    /// The CA certificate (PEM) members' certificates chain to.
    pub ca_pem: String,
    /// Keeps real servers' data directories alive.
    _data: Option<tempfile::TempDir>,
}

impl World {
    /// The member pod names.
    pub fn pods(&self) -> Vec<String> {
        (0..REPLICAS).map(|i| format!("{NAME}-{i}")).collect()
    }

    /// The `--set` values the rotate pipeline runs with.
    pub fn pipeline_sets(&self) -> Vec<String> {
        // The built-in endpoints answer `srvr` as standalone servers, so the
        // quorum pre-check only makes sense against real ZooKeeper.
        let pre_check = if self.real { "auto" } else { "none" };
        vec![
            format!("namespace={NAMESPACE}"),
            format!("name={NAME}"),
            format!("pre_check={pre_check}"),
        ]
    }
}

/// Fail early, saying what to install, when `--real` cannot work.
pub fn check_real_zookeeper() -> Result<(), String> {
    let java = Path::new("/usr/bin/java").exists();
    let zk = Path::new("/usr/share/zookeeper").exists() && Path::new(ZOOKEEPER_JAR).exists();
    if java && zk {
        Ok(())
    } else {
        Err("--real needs ZooKeeper and Java: install the Debian packages `zookeeper` and `default-jre-headless` (apt-get install zookeeper default-jre-headless), or run the demo without --real".into())
    }
}

/// Create every object of the demo.
pub fn create(sandbox: &dbops_sandbox::Sandbox, real: bool) -> Result<World, String> {
    let ca = Ca::create(&CaSpec {
        subject: subject("zk-ca (dbops demo)"),
        validity: Duration::from_secs(10 * 365 * 86_400),
        algorithm: KeyAlgorithm::EcdsaP256,
    })
    .map_err(|e| format!("cannot create the demo CA: {e}"))?;
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)
        .map_err(|e| format!("cannot create a key: {e}"))?;
    let leaf = ca
        .issue(
            &LeafSpec {
                subject: subject(NAME),
                dns_names: dns_names(),
                ip_addresses: Vec::new(),
                validity: Duration::from_secs(2 * 86_400),
                server_auth: true,
                client_auth: true,
            },
            &key,
        )
        .map_err(|e| format!("cannot issue the demo certificate: {e}"))?;
    let ca_pem = ca.cert_pem();
    let mut objects = vec![
        manifests::namespace(NAMESPACE),
        tls_secret("zk-ca", &ca_pem, ca.key().pkcs8_pem().as_str(), None),
        tls_secret(
            "zk-tls",
            &leaf.chain_pem,
            key.pkcs8_pem().as_str(),
            Some(&ca_pem),
        ),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": NAME, "namespace": NAMESPACE},
               "spec": {"selector": {"app": NAME}, "ports": [{"name": "tls", "port": TLS_PORT}]}}),
    ];
    let data = if real {
        let data = tempfile::Builder::new()
            .prefix("dbops-demo-zk-")
            .tempdir()
            .map_err(|e| format!("cannot create a data directory: {e}"))?;
        let set = pod_set(data.path());
        let quorum = manifests::zk_quorum_addresses(REPLICAS)
            .map_err(|e| format!("cannot pick quorum ports: {e}"))?;
        objects.extend(manifests::zookeeper(&set, &quorum, Some("zk-tls")));
        Some(data)
    } else {
        let set = pod_set(Path::new("/nonexistent"));
        objects.push(manifests::config_map(
            NAMESPACE,
            "zk-config",
            "zoo.cfg",
            &fake_zoo_cfg(),
        ));
        objects.extend(manifests::tls_endpoints(&set, "zk-tls", TLS_PORT));
        None
    };
    for object in objects {
        sandbox
            .apply(object)
            .map_err(|e| format!("cannot create a demo object: {e}"))?;
    }
    Ok(World {
        real,
        ca_pem,
        _data: data,
    })
}

/// Wait (by watch) until every member is Ready.
pub async fn wait_ready(client: &kube::Client, world: &World) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let limit = if world.real { 120 } else { 30 };
    for pod in world.pods() {
        let ready = await_condition(pods.clone(), &pod, |p: Option<&Pod>| {
            p.is_some_and(is_ready)
        });
        match tokio::time::timeout(Duration::from_secs(limit), ready).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("watching pod {pod}: {e}")),
            Err(_) => {
                return Err(format!(
                    "pod {NAMESPACE}/{pod} was not Ready within {limit}s{}",
                    if world.real {
                        " (real ZooKeeper: see its log under the sandbox state directory)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    Ok(())
}

/// Whether a pod has the condition Ready=True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_set(data_root: &Path) -> PodSet<'_> {
    PodSet {
        namespace: NAMESPACE,
        name: NAME,
        replicas: REPLICAS,
        update_strategy: "OnDelete",
        data_root,
    }
}

/// The names issue-cert puts in a member certificate (so the rotation is
/// due only because of the expiry): each pod's stable name, the governing
/// and the client Service, short and fully qualified.
fn dns_names() -> Vec<String> {
    let qualified = |name: String| {
        vec![
            name.clone(),
            format!("{name}.{NAMESPACE}"),
            format!("{name}.{NAMESPACE}.svc"),
            format!("{name}.{NAMESPACE}.svc.cluster.local"),
        ]
    };
    let mut names: Vec<String> = (0..REPLICAS)
        .flat_map(|i| {
            let pod = format!("{NAME}-{i}.{NAME}-pods.{NAMESPACE}.svc");
            [pod.clone(), format!("{pod}.cluster.local")]
        })
        .collect();
    names.extend(qualified(format!("{NAME}-pods")));
    names.extend(qualified(NAME.to_owned()));
    names
}

fn subject(cn: &str) -> Subject {
    Subject {
        common_name: cn.to_owned(),
        organization: Some("dbops demo".into()),
        organizational_unit: None,
    }
}

fn fake_zoo_cfg() -> String {
    let mut cfg = String::from(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\nclientPort=2181\nsecureClientPort=2182\n",
    );
    for i in 0..REPLICAS {
        cfg.push_str(&format!(
            "server.{}={NAME}-{i}.{NAME}-pods.{NAMESPACE}.svc:2888:3888\n",
            i + 1
        ));
    }
    cfg
}

fn tls_secret(name: &str, cert: &str, key: &str, ca: Option<&str>) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut data = json!({"tls.crt": b64(cert), "tls.key": b64(key)});
    if let (Some(ca), Some(map)) = (ca, data.as_object_mut()) {
        map.insert("ca.crt".into(), Value::String(b64(ca)));
    }
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"name": name, "namespace": NAMESPACE}, "data": data})
}
