//! A fake database of each engine in the sandbox, shaped the way the
//! pipelines expect (see pipelines/README.md): StatefulSet `<name>` with 3
//! members and governing Service `<name>-pods`, configuration in ConfigMap
//! `<name>-config`, Secrets `<name>-tls` and `<name>-tls-keystore-password`
//! mounted (optional) at `/etc/dbops/tls` and `/etc/dbops/tls-password`.
//!
//! Each pod runs `fake_server.py`, which reads the configuration at start
//! and serves the mounted certificate only when the engine's TLS setting is
//! there: so a test sees that a pipeline changed the configuration AND
//! restarted the members AND the certificate reached them.

use serde_json::{Value, json};

/// The fake server script (run with python3 by the sandbox kubelet).
pub const FAKE_SERVER: &str = include_str!("fake_server.py");

/// What differs between engines.
#[derive(Debug, Clone, Copy)]
pub struct Engine {
    /// `target.engine` and the pipeline file prefix.
    pub engine: &'static str,
    /// The pipelines' default database name.
    pub name: &'static str,
    /// The configuration file (ConfigMap key).
    pub file: &'static str,
    /// Its content before any operation.
    pub config: &'static str,
    /// The key whose presence means "TLS on" (what `tls = "add"` sets).
    pub tls_marker: &'static str,
    /// Plain client port.
    pub plain_port: u16,
    /// TLS port (the engine's default TLS port, what health-check probes).
    pub tls_port: u16,
    /// Whether issue-cert writes JVM keystores for it.
    pub keystores: bool,
    /// A setting a reconfigure test merges in: (file text, key, value).
    pub custom: (&'static str, &'static str, &'static str),
}

/// The four engines of the seeds.
pub const ENGINES: [Engine; 4] = [
    Engine {
        engine: "zookeeper",
        name: "zk",
        file: "zoo.cfg",
        config: "# ZooKeeper\ntickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/data\nclientPort=2181\n",
        tls_marker: "secureClientPort",
        plain_port: 2181,
        tls_port: 2182,
        keystores: true,
        custom: ("maxClientCnxns=120\n", "maxClientCnxns", "120"),
    },
    Engine {
        engine: "kafka",
        name: "kafka",
        file: "server.properties",
        config: "process.roles=broker,controller\nnode.id=0\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9094\nadvertised.listeners=PLAINTEXT://:9092\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\ninter.broker.listener.name=PLAINTEXT\ncontroller.listener.names=CONTROLLER\nlog.dirs=/var/lib/kafka/data\n",
        tls_marker: "ssl.keystore.location",
        plain_port: 9092,
        tls_port: 9093,
        keystores: true,
        custom: ("num.io.threads=16\n", "num.io.threads", "16"),
    },
    Engine {
        engine: "druid",
        name: "druid",
        file: "common.runtime.properties",
        config: "druid.extensions.loadList=[\"druid-histogram\"]\ndruid.zk.service.host=zk.demo.svc\ndruid.plaintextPort=8888\n",
        tls_marker: "druid.enableTlsPort",
        plain_port: 8888,
        tls_port: 9088,
        keystores: true,
        custom: (
            "druid.server.http.numThreads=40\n",
            "druid.server.http.numThreads",
            "40",
        ),
    },
    Engine {
        engine: "perconaxtradb",
        name: "pxc",
        file: "my.cnf",
        config: "[mysqld]\nmax_connections = 100\ninnodb_buffer_pool_size = 128M\n",
        tls_marker: "ssl_cert",
        plain_port: 3306,
        tls_port: 3306,
        keystores: false,
        custom: (
            "[mysqld]\nmax_connections = 250\n",
            "max_connections",
            "250",
        ),
    },
];

impl Engine {
    /// The engine by name.
    pub fn named(engine: &str) -> Engine {
        ENGINES
            .iter()
            .copied()
            .find(|e| e.engine == engine)
            .unwrap_or_else(|| panic!("no engine {engine}"))
    }

    /// The pipeline file of an operation, e.g. `zookeeper-add-tls.toml`.
    pub fn pipeline(&self, operation: &str) -> String {
        format!("{}-{operation}.toml", self.engine)
    }

    /// Member pod names.
    pub fn pods(&self) -> Vec<String> {
        (0..3).map(|i| format!("{}-{i}", self.name)).collect()
    }

    /// The `--set` values every run in the fake world needs: the namespace,
    /// no engine pre-check (the fake members are not a quorum) and probes
    /// the fake server answers (TLS on the TLS port, else TCP on the plain port).
    pub fn sets(&self, namespace: &str, operation: &str) -> Vec<String> {
        let mut sets = vec![
            format!("namespace={namespace}"),
            "pre_check=none".to_owned(),
        ];
        match operation {
            "add-tls" | "rotate-tls" | "update-issuer" => sets.push("probe=tls".into()),
            _ => {
                sets.push("probe=tcp".into());
                sets.push(format!("port={}", self.plain_port));
            }
        }
        sets
    }

    /// Every object of the fake database in `namespace`.
    pub fn objects(&self, namespace: &str) -> Vec<Value> {
        let name = self.name;
        let script = format!(
            "exec python3 \"$VOLUME_SERVER/fake_server.py\" \"$POD_DIR/conf/{}\" {} {} {}",
            self.file, self.tls_marker, self.plain_port, self.tls_port
        );
        let mut objects = vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": format!("{name}-config"), "namespace": namespace},
                   "data": {self.file: self.config}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": format!("{name}-fake-server"), "namespace": namespace},
                   "data": {"fake_server.py": FAKE_SERVER}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": format!("{name}-pods"), "namespace": namespace},
                   "spec": {"clusterIP": "None", "selector": {"app": name},
                            "ports": [{"name": "client", "port": self.plain_port}]}}),
        ];
        if self.engine == "perconaxtradb" {
            objects.push(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{name}-auth"), "namespace": namespace},
                "stringData": {"username": "monitor", "password": "not-used-by-the-fake"}}));
        }
        objects.push(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {
                "replicas": 3,
                "serviceName": format!("{name}-pods"),
                "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "OnDelete"},
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": {
                        "sandbox.dbops.io/process": "command",
                        "sandbox.dbops.io/command": script,
                    }},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{
                            "name": "server",
                            "image": "example.invalid/fake-db",
                            "ports": [{"name": "client", "containerPort": self.plain_port}],
                            "readinessProbe": {"tcpSocket": {"port": self.plain_port}, "periodSeconds": 1},
                            "volumeMounts": [
                                {"name": "conf", "mountPath": "/conf"},
                                {"name": "server", "mountPath": "/server"},
                                {"name": "tls", "mountPath": "/etc/dbops/tls", "readOnly": true},
                                {"name": "tls-password", "mountPath": "/etc/dbops/tls-password", "readOnly": true},
                            ]
                        }],
                        "volumes": [
                            {"name": "conf", "configMap": {"name": format!("{name}-config")}},
                            {"name": "server", "configMap": {"name": format!("{name}-fake-server")}},
                            {"name": "tls", "secret": {"secretName": format!("{name}-tls"), "optional": true}},
                            {"name": "tls-password", "secret": {"secretName": format!("{name}-tls-keystore-password"), "optional": true}},
                        ]
                    }
                }
            }
        }));
        objects
    }
}
