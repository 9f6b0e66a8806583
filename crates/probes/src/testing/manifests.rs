//! Kubernetes manifests (JSON) that run real servers as dbops sandbox pod
//! processes: a ZooKeeper ensemble and a MariaDB server, with their
//! ConfigMaps, TLS Secrets and Services. No sandbox dependency: tests pass
//! these to `Sandbox::apply`.
//!
//! The pods use the sandbox kubelet's `command` process (annotation
//! `sandbox.dbops.io/process: command`): the script runs with `POD_NAME`,
//! `POD_IP`, `POD_ORDINAL` and `POD_DIR` set and the pod's volumes under
//! `POD_DIR/<mountPath>`. Server state (ZooKeeper's `myid` and data, MariaDB's
//! data directory) lives under `data_root/<pod name>`, so it survives a pod
//! being deleted and recreated, as a PersistentVolume would. Each server
//! binds its client port on its pod IP; ZooKeeper's quorum and election
//! ports are on fixed per-member addresses (pod IPs change on restart, and
//! the ensemble's `server.N` lines must not).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{IssuedCert, SupportResult, ZOOKEEPER_CLASSPATH, free_port, unique_loopback_ip};

/// The ZooKeeper client port every member listens on (on its pod IP).
pub const ZK_CLIENT_PORT: u16 = 2181;
/// The ZooKeeper TLS client port.
pub const ZK_SECURE_PORT: u16 = 2182;
/// The MySQL port.
pub const MYSQL_PORT: u16 = 3306;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A Namespace.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, `ca.crt`), as issue-cert writes it.
pub fn tls_secret(namespace: &str, name: &str, cert: &IssuedCert, ca_pem: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {
            "tls.crt": b64(&cert.cert_pem),
            "tls.key": b64(&cert.key_pem),
            "ca.crt": b64(ca_pem),
        }
    })
}

/// A built-in CA Secret (`tls.crt`, `tls.key`), what issue-cert's
/// `issuer = { kind = "ca", name = NAME }` signs with.
pub fn ca_secret(namespace: &str, name: &str, ca: &super::TestCa) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"tls.crt": b64(&ca.cert_pem), "tls.key": b64(ca.key_pem())}
    })
}

/// A Secret with a `username` and `password` (KubeDB's `<db>-auth`).
pub fn auth_secret(namespace: &str, name: &str, user: &str, password: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"username": b64(user), "password": b64(password)}
    })
}

/// A ConfigMap with one file.
pub fn config_map(namespace: &str, name: &str, file: &str, content: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {file: content}
    })
}

/// A headless Service selecting `app=<app>`.
pub fn headless_service(namespace: &str, name: &str, app: &str, port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": "None", "selector": {"app": app},
                 "ports": [{"name": "client", "port": port}]}
    })
}

/// A StatefulSet whose pods run `script` as a sandbox `command` process.
fn command_statefulset(
    spec: &PodSet<'_>,
    script: &str,
    env: Value,
    volumes: Value,
    mounts: Value,
    ready_port: u16,
) -> Value {
    let annotations = json!({
        "sandbox.dbops.io/process": "command",
        "sandbox.dbops.io/command": script,
    });
    let mut sts = pod_set(spec, annotations, volumes, mounts, ready_port);
    let pod = &mut sts["spec"]["template"]["spec"];
    pod["terminationGracePeriodSeconds"] = json!(5);
    let container = &mut pod["containers"][0];
    container["env"] = env;
    container["readinessProbe"] = json!({
        "tcpSocket": {"port": ready_port},
        "periodSeconds": 1,
        "timeoutSeconds": 1
    });
    sts
}

/// Name, namespace and size of a StatefulSet of real servers.
#[derive(Debug, Clone)]
pub struct PodSet<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// StatefulSet name (pods `NAME-0` …, governing Service `NAME-pods`).
    pub name: &'a str,
    /// Members.
    pub replicas: u32,
    /// `OnDelete` (default for dbops targets: nothing else rolls pods) or `RollingUpdate`.
    pub update_strategy: &'a str,
    /// Where each pod keeps its data: `data_root/<pod name>`.
    pub data_root: &'a Path,
}

// ---------------------------------------------------------------- ZooKeeper

/// A member's fixed quorum and election addresses.
#[derive(Debug, Clone, Copy)]
pub struct QuorumAddress {
    /// Loopback IP the member binds its quorum and election ports on.
    pub ip: IpAddr,
    /// Quorum (follower-to-leader) port.
    pub quorum_port: u16,
    /// Leader election port.
    pub election_port: u16,
}

/// Fresh quorum addresses for `replicas` members.
pub fn zk_quorum_addresses(replicas: u32) -> SupportResult<Vec<QuorumAddress>> {
    (0..replicas)
        .map(|_| {
            let ip = unique_loopback_ip();
            Ok(QuorumAddress {
                ip,
                quorum_port: free_port(ip)?,
                election_port: free_port(ip)?,
            })
        })
        .collect()
}

/// The `zoo.cfg` shared by every member (each pod adds its own addresses and TLS files).
pub fn zk_shared_config(quorum: &[QuorumAddress]) -> String {
    let mut cfg = format!(
        "tickTime=500\ninitLimit=20\nsyncLimit=10\nclientPort={ZK_CLIENT_PORT}\n\
         admin.enableServer=false\n4lw.commands.whitelist=*\nreconfigEnabled=false\n"
    );
    for (index, member) in quorum.iter().enumerate() {
        cfg.push_str(&format!(
            "server.{}={}:{}:{}\n",
            index + 1,
            member.ip,
            member.quorum_port,
            member.election_port
        ));
    }
    cfg
}

/// The pod script: write `myid` and the member's `zoo.cfg`, then exec ZooKeeper.
/// With the `tls` volume mounted, the secure client port serves its certificate.
pub fn zk_script() -> String {
    format!(
        r#"set -e
D="$DATA_ROOT/$POD_NAME"
mkdir -p "$D/data"
echo $((POD_ORDINAL + 1)) > "$D/data/myid"
cp "$POD_DIR/conf/zoo.cfg" "$D/zoo.cfg"
printf 'dataDir=%s\nclientPortAddress=%s\n' "$D/data" "$POD_IP" >> "$D/zoo.cfg"
if [ -f "$POD_DIR/tls/tls.crt" ]; then
  cat "$POD_DIR/tls/tls.key" "$POD_DIR/tls/tls.crt" > "$D/keystore.pem"
  printf 'secureClientPort={ZK_SECURE_PORT}\nsecureClientPortAddress=%s\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\nssl.keyStore.location=%s\nssl.keyStore.type=PEM\nssl.trustStore.location=%s\nssl.trustStore.type=PEM\nssl.clientAuth=none\n' "$POD_IP" "$D/keystore.pem" "$POD_DIR/tls/ca.crt" >> "$D/zoo.cfg"
fi
exec /usr/bin/java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dzookeeper.log.dir="$D" -cp {ZOOKEEPER_CLASSPATH} org.apache.zookeeper.server.quorum.QuorumPeerMain "$D/zoo.cfg"
"#
    )
}

/// A ZooKeeper ensemble: ConfigMap `NAME-config` (zoo.cfg), the StatefulSet,
/// its headless Service `NAME-pods`; with `tls_secret`, each member serves
/// that Secret's certificate on [`ZK_SECURE_PORT`]. Readiness: the client port accepts.
pub fn zookeeper(
    set: &PodSet<'_>,
    quorum: &[QuorumAddress],
    tls_secret: Option<&str>,
) -> Vec<Value> {
    let config_name = format!("{}-config", set.name);
    let mut volumes = vec![json!({"name": "conf", "configMap": {"name": config_name}})];
    let mut mounts = vec![json!({"name": "conf", "mountPath": "/conf"})];
    if let Some(secret) = tls_secret {
        volumes.push(json!({"name": "tls", "secret": {"secretName": secret}}));
        mounts.push(json!({"name": "tls", "mountPath": "/tls"}));
    }
    let env = json!([{"name": "DATA_ROOT", "value": set.data_root.display().to_string()}]);
    vec![
        config_map(
            set.namespace,
            &config_name,
            "zoo.cfg",
            &zk_shared_config(quorum),
        ),
        headless_service(
            set.namespace,
            &format!("{}-pods", set.name),
            set.name,
            ZK_CLIENT_PORT,
        ),
        command_statefulset(
            set,
            &zk_script(),
            env,
            Value::Array(volumes),
            Value::Array(mounts),
            ZK_CLIENT_PORT,
        ),
    ]
}

// ---------------------------------------------------------------- MariaDB

/// The pod script: initialise the data directory once, then exec mariadbd
/// with `conf/my.cnf` first (so a bad option there stops the server from starting),
/// `secrets/init.sql` (the probe's account) and the `tls` volume's certificate.
pub fn mariadb_script() -> String {
    format!(
        r#"set -e
D="$DATA_ROOT/$POD_NAME"
mkdir -p "$D/tmp"
if [ ! -d "$D/data/mysql" ]; then
  mariadb-install-db --no-defaults --datadir="$D/data" --tmpdir="$D/tmp" --user=root --auth-root-authentication-method=normal --skip-test-db > "$D/install.log" 2>&1
fi
exec {mariadbd} --defaults-file="$POD_DIR/conf/my.cnf" --datadir="$D/data" --tmpdir="$D/tmp" --user=root --bind-address="$POD_IP" --port={MYSQL_PORT} --socket="$D/mysqld.sock" --pid-file="$D/mysqld.pid" --skip-name-resolve --init-file="$POD_DIR/secrets/init.sql" --log-error="$D/error.log" --innodb-buffer-pool-size=16M --performance-schema=OFF --ssl-cert="$POD_DIR/tls/tls.crt" --ssl-key="$POD_DIR/tls/tls.key" --ssl-ca="$POD_DIR/tls/ca.crt"
"#,
        mariadbd = super::MARIADBD
    )
}

/// A MariaDB server with TLS: ConfigMap `NAME-config` (`my.cnf`, from
/// `my_cnf`), Secret `NAME-init` (`init.sql` creating `users`), the
/// StatefulSet and its headless Service. Readiness: the MySQL port accepts.
pub fn mariadb(
    set: &PodSet<'_>,
    my_cnf: &str,
    users: &[(String, String)],
    tls_secret: &str,
) -> Vec<Value> {
    let config_name = format!("{}-config", set.name);
    let init_name = format!("{}-init", set.name);
    let volumes = json!([
        {"name": "conf", "configMap": {"name": config_name}},
        {"name": "secrets", "secret": {"secretName": init_name}},
        {"name": "tls", "secret": {"secretName": tls_secret}},
    ]);
    let mounts = json!([
        {"name": "conf", "mountPath": "/conf"},
        {"name": "secrets", "mountPath": "/secrets"},
        {"name": "tls", "mountPath": "/tls"},
    ]);
    let env = json!([{"name": "DATA_ROOT", "value": set.data_root.display().to_string()}]);
    vec![
        config_map(set.namespace, &config_name, "my.cnf", my_cnf),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": init_name, "namespace": set.namespace},
            "data": {"init.sql": b64(super::mariadb_init_sql(users))}
        }),
        headless_service(
            set.namespace,
            &format!("{}-pods", set.name),
            set.name,
            MYSQL_PORT,
        ),
        command_statefulset(set, &mariadb_script(), env, volumes, mounts, MYSQL_PORT),
    ]
}

/// A StatefulSet whose pods run only `sleep` and are Ready once something
/// listens on `port` on their pod IP: the test serves a protocol fake there
/// (e.g. [`super::kafka_fake`]) for each pod it sees.
pub fn fake_servers(set: &PodSet<'_>, port: u16) -> Vec<Value> {
    vec![
        headless_service(set.namespace, &format!("{}-pods", set.name), set.name, port),
        command_statefulset(
            set,
            "exec sleep 3600",
            json!([]),
            json!([]),
            json!([]),
            port,
        ),
    ]
}

// ---------------------------------------------------------------- built-in pods

/// A StatefulSet whose pods run the sandbox's built-in TLS endpoint on
/// `port`, serving the certificate of Secret `tls_secret` as mounted into
/// each pod (so a probe sees which certificate a pod serves), plus its
/// headless Service. Ready once the endpoint listens.
pub fn tls_endpoints(set: &PodSet<'_>, tls_secret: &str, port: u16) -> Vec<Value> {
    vec![
        headless_service(set.namespace, &format!("{}-pods", set.name), set.name, port),
        pod_set(
            set,
            json!({
                "sandbox.dbops.io/process": "tls-endpoint",
                "sandbox.dbops.io/tls-port": port.to_string(),
                "sandbox.dbops.io/tls-secret-volume": "tls",
            }),
            json!([{"name": "tls", "secret": {"secretName": tls_secret}}]),
            json!([{"name": "tls", "mountPath": "/tls"}]),
            port,
        ),
    ]
}

/// A StatefulSet of pods without a process that become Ready
/// `start_delay` after they start (what a benchmark needs).
pub fn delayed_pods(set: &PodSet<'_>, start_delay: &str) -> Vec<Value> {
    vec![pod_set(
        set,
        json!({"sandbox.dbops.io/start-delay": start_delay}),
        json!([]),
        json!([]),
        8080,
    )]
}

fn pod_set(
    set: &PodSet<'_>,
    annotations: Value,
    volumes: Value,
    mounts: Value,
    port: u16,
) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": set.name, "namespace": set.namespace, "labels": {"app": set.name}},
        "spec": {
            "replicas": set.replicas,
            "serviceName": format!("{}-pods", set.name),
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": set.update_strategy},
            "selector": {"matchLabels": {"app": set.name}},
            "template": {
                "metadata": {"labels": {"app": set.name}, "annotations": annotations},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "server",
                        "image": "debian:bookworm",
                        "ports": [{"name": "client", "containerPort": port}],
                        "volumeMounts": mounts
                    }],
                    "volumes": volumes
                }
            }
        }
    })
}

/// Where a test keeps pod data: a fresh temporary directory.
pub fn data_root() -> SupportResult<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("dbops-pods-").tempdir()?)
}

/// The DNS names a member certificate of `set` needs: every pod's stable name
/// (`NAME-i.NAME-pods.NAMESPACE.svc`), as issue-cert issues them.
pub fn member_dns_names(set: &PodSet<'_>) -> Vec<String> {
    (0..set.replicas)
        .map(|i| format!("{}-{i}.{}-pods.{}.svc", set.name, set.name, set.namespace))
        .collect()
}

/// A pod's data directory.
pub fn pod_data_dir(set: &PodSet<'_>, pod: &str) -> PathBuf {
    set.data_root.join(pod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_manifests_name_their_config_and_quorum() {
        let root = PathBuf::from("/tmp/x");
        let set = PodSet {
            namespace: "db",
            name: "zk",
            replicas: 3,
            update_strategy: "OnDelete",
            data_root: &root,
        };
        let quorum = zk_quorum_addresses(3).unwrap();
        let objects = zookeeper(&set, &quorum, Some("zk-tls"));
        let cfg = objects[0]["data"]["zoo.cfg"].as_str().unwrap();
        assert!(cfg.contains(&format!("server.3={}:", quorum[2].ip)));
        let sts = &objects[2];
        assert_eq!(sts["spec"]["serviceName"], "zk-pods");
        assert_eq!(
            sts["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"],
            "zk-tls"
        );
        assert_eq!(member_dns_names(&set)[2], "zk-2.zk-pods.db.svc");
    }
}
