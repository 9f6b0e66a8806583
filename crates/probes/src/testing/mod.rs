//! Test support (feature `testing`): a test PKI and launchers for real
//! ZooKeeper ensembles and MariaDB servers (Debian packages `zookeeper`,
//! `default-jre-headless`, `mariadb-server`).
//!
//! The commands and configuration here are the reference for running these
//! servers as sandbox pod processes:
//!
//! ZooKeeper (one member; `zoo.cfg` from [`zoo_cfg`]):
//! ```text
//! java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
//!      -cp /usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/slf4j-simple.jar \
//!      org.apache.zookeeper.server.quorum.QuorumPeerMain /path/zoo.cfg
//! ```
//! `dataDir` must hold `myid` (the member's id). TLS on the secure client
//! port needs `serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory`,
//! `ssl.keyStore.type=PEM` with the PKCS#8 key and certificate concatenated in
//! one file, `ssl.trustStore.type=PEM` (the CA), and `ssl.clientAuth=none`
//! unless clients present certificates. ZooKeeper re-reads those files only
//! on restart. Four-letter words need `4lw.commands.whitelist`.
//!
//! MariaDB (as root; see [`mariadb_install_command`] and [`mariadb_command`]):
//! ```text
//! mariadb-install-db --no-defaults --datadir=DIR/data --tmpdir=DIR/tmp --user=root \
//!     --auth-root-authentication-method=normal --skip-test-db
//! mariadbd --no-defaults --datadir=DIR/data --tmpdir=DIR/tmp --user=root --bind-address=IP --port=PORT \
//!     --socket=DIR/mysqld.sock --pid-file=DIR/mysqld.pid --skip-name-resolve \
//!     --init-file=DIR/init.sql --log-error=DIR/error.log \
//!     [--ssl-cert=tls.crt --ssl-key=tls.key --ssl-ca=ca.crt] \
//!     [--wsrep_on=ON --wsrep_provider=/usr/lib/galera/libgalera_smm.so \
//!      --wsrep_cluster_address=gcomm:// --wsrep-new-cluster --binlog_format=ROW \
//!      --innodb_autoinc_lock_mode=2 --wsrep_node_address=IP \
//!      --wsrep_provider_options=gmcast.listen_addr=tcp://IP:0;ist.recv_addr=IP:0]
//! ```
//! `init.sql` creates the probe's account idempotently
//! (`CREATE USER IF NOT EXISTS … IDENTIFIED BY …`); MariaDB reads the TLS
//! files only at start.

pub mod kafka_fake;
pub mod manifests;
pub mod servers;
pub mod zk_watch;

use std::error::Error;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use sha2::{Digest, Sha256};

use crate::mysql::{self, Credentials, GaleraCheck, MysqlCheck, Password};
use crate::net::Endpoint;
use crate::zookeeper;

/// Errors of the test support code.
pub type SupportResult<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// Set to `1` to skip tests that need real servers (otherwise they fail when a server is missing).
pub const SKIP_ENV: &str = "DBOPS_SKIP_REAL_SERVERS";

/// Whether tests needing `binary` should run: true when it is installed;
/// false when [`SKIP_ENV`]=1; a panic saying what to install otherwise.
pub fn real_server_available(binary: &str, debian_package: &str) -> bool {
    if Path::new(binary).exists() {
        return true;
    }
    if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        eprintln!("skipping: {binary} is missing and {SKIP_ENV}=1");
        return false;
    }
    panic!(
        "{binary} is missing: install the Debian package {debian_package} (see .ci/apt-packages.txt) or set {SKIP_ENV}=1"
    );
}

/// The Java binary ZooKeeper runs on.
pub const JAVA: &str = "/usr/bin/java";
/// ZooKeeper's main jar (its manifest lists most dependencies).
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// Whether tests needing a real ZooKeeper server (Java and its jar) should
/// run; see [`real_server_available`].
pub fn zookeeper_available() -> bool {
    real_server_available(JAVA, "default-jre-headless")
        && real_server_available(ZOOKEEPER_JAR, "zookeeper")
}

/// The class path for a ZooKeeper server, including the Netty codec the TLS port needs.
pub const ZOOKEEPER_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/slf4j-simple.jar";
/// MariaDB's server binary.
pub const MARIADBD: &str = "/usr/sbin/mariadbd";
/// Galera's provider library (Debian package galera-4, a dependency of mariadb-server).
pub const GALERA_PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

static COUNTER: AtomicU32 = AtomicU32::new(1);

/// A loopback address unlikely to be used by another test: 127.X.Y.Z from the pid and a counter.
pub fn unique_loopback_ip() -> IpAddr {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    IpAddr::V4(Ipv4Addr::new(
        127,
        (100 + pid % 100) as u8,
        ((pid / 100) % 250) as u8 + 1,
        (n % 250) as u8 + 1,
    ))
}

/// A port free on `ip` right now (bound to port 0, then released).
pub fn free_port(ip: IpAddr) -> SupportResult<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// A test certificate authority.
pub struct TestCa {
    /// The CA certificate (PEM): what probes trust.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate issued by a [`TestCa`].
#[derive(Clone)]
pub struct IssuedCert {
    /// Leaf certificate (PEM).
    pub cert_pem: String,
    /// Private key (PKCS#8 PEM).
    pub key_pem: String,
    /// Serial, lowercase hex without leading zeros (as [`crate::ServedCertificate`] reports it).
    pub serial: String,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub sha256: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("serial", &self.serial)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

fn unique_serial() -> SerialNumber {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut bytes = (nanos ^ (u128::from(COUNTER.fetch_add(1, Ordering::Relaxed)) << 100))
        .to_be_bytes()
        .to_vec();
    bytes[0] = (bytes[0] & 0x7f) | 0x40; // positive, no leading zero byte
    SerialNumber::from_slice(&bytes)
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
}

impl TestCa {
    /// A new self-signed CA named `common_name`.
    pub fn new(common_name: &str) -> SupportResult<TestCa> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(unique_serial());
        validity(&mut params);
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's private key (PKCS#8 PEM): what a built-in CA Secret
    /// (`tls.crt` + `tls.key`) holds for issue-cert's `kind = "ca"`.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issue a server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, common_name: &str, names: &[&str]) -> SupportResult<IssuedCert> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = Some(unique_serial());
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        validity(&mut params);
        let cert = params.signed_by(&key, &self.issuer)?;
        let described = crate::ServedCertificate::from_der(cert.der())
            .ok_or("rcgen produced a certificate x509-parser cannot read")?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: described.serial,
            sha256: hex::encode(Sha256::digest(cert.der())),
        })
    }
}

/// A child process killed when dropped, with its log file.
pub struct ServerProcess {
    child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl ServerProcess {
    /// Spawn `command` with output to `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> SupportResult<ServerProcess> {
        let out = fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        Ok(ServerProcess { child, log })
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the process already exited.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Kill the process (our own child, by its handle) and reap it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Poll `ready` every 200 ms until it returns Ok or `timeout` passes.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> std::result::Result<T, String>,
) -> SupportResult<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match ready() {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => {
                return Err(format!("{what} not ready after {timeout:?}: {last}").into());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

// ---------------------------------------------------------------- ZooKeeper

/// One ZooKeeper ensemble member's addresses.
#[derive(Debug, Clone)]
pub struct ZkMember {
    /// `myid`.
    pub id: u32,
    /// The member's own loopback IP.
    pub ip: IpAddr,
    /// Plain client port.
    pub client_port: u16,
    /// TLS client port, when TLS is on.
    pub secure_client_port: Option<u16>,
    /// Quorum (follower-to-leader) port.
    pub quorum_port: u16,
    /// Leader election port.
    pub election_port: u16,
}

impl ZkMember {
    /// A member on `ip` with free ports.
    pub fn on(id: u32, ip: IpAddr, tls: bool) -> SupportResult<ZkMember> {
        Ok(ZkMember {
            id,
            ip,
            client_port: free_port(ip)?,
            secure_client_port: if tls { Some(free_port(ip)?) } else { None },
            quorum_port: free_port(ip)?,
            election_port: free_port(ip)?,
        })
    }

    /// `ip:client_port`.
    pub fn client_address(&self) -> String {
        format!("{}:{}", self.ip, self.client_port)
    }

    /// `ip:secure_client_port`, when TLS is on.
    pub fn secure_address(&self) -> Option<String> {
        self.secure_client_port
            .map(|port| format!("{}:{port}", self.ip))
    }
}

/// Paths of a member's TLS files (PEM keystore = key + certificate; truststore = CA).
#[derive(Debug, Clone)]
pub struct ZkTlsFiles {
    /// PKCS#8 key followed by the certificate.
    pub keystore: PathBuf,
    /// CA certificate(s).
    pub truststore: PathBuf,
}

/// The `zoo.cfg` of `member` in `ensemble` (a one-member ensemble runs standalone).
pub fn zoo_cfg(
    member: &ZkMember,
    ensemble: &[ZkMember],
    data_dir: &Path,
    tls: Option<&ZkTlsFiles>,
) -> String {
    let mut cfg = format!(
        "tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={}\nclientPortAddress={}\n\
         admin.enableServer=false\n4lw.commands.whitelist=*\nreconfigEnabled=false\n",
        data_dir.display(),
        member.client_port,
        member.ip
    );
    if ensemble.len() > 1 {
        for other in ensemble {
            cfg.push_str(&format!(
                "server.{}={}:{}:{}\n",
                other.id, other.ip, other.quorum_port, other.election_port
            ));
        }
    }
    if let (Some(port), Some(tls)) = (member.secure_client_port, tls) {
        cfg.push_str(&format!(
            "secureClientPort={port}\nsecureClientPortAddress={}\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={}\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location={}\nssl.trustStore.type=PEM\nssl.clientAuth=none\n",
            member.ip,
            tls.keystore.display(),
            tls.truststore.display()
        ));
    }
    cfg
}

/// The command that runs one ZooKeeper server from `conf_file`.
pub fn zookeeper_command(conf_file: &Path, log_dir: &Path) -> Command {
    let mut command = Command::new(JAVA);
    command
        .arg("-Xmx128m")
        .arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg(format!("-Dzookeeper.log.dir={}", log_dir.display()))
        .arg("-cp")
        .arg(ZOOKEEPER_CLASSPATH)
        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        .arg(conf_file);
    command
}

/// A running ZooKeeper ensemble of real servers in a temporary directory.
pub struct ZooKeeperEnsemble {
    /// The members, index i has id i+1.
    pub members: Vec<ZkMember>,
    /// The server certificates, when TLS is on (index = member index).
    pub certs: Vec<IssuedCert>,
    processes: Vec<Option<ServerProcess>>,
    dir: tempfile::TempDir,
    tls: Option<Vec<ZkTlsFiles>>,
}

/// The DNS name a member's certificate is issued for in tests: `zk-<index>.zk-pods.test.svc`.
pub fn zk_member_dns_name(index: usize) -> String {
    format!("zk-{index}.zk-pods.test.svc")
}

impl ZooKeeperEnsemble {
    /// Start `size` members, each on its own loopback IP; with `ca`, each also
    /// serves TLS with a certificate for [`zk_member_dns_name`].
    pub fn start(size: usize, ca: Option<&TestCa>) -> SupportResult<ZooKeeperEnsemble> {
        let dir = tempfile::tempdir()?;
        let members = (0..size)
            .map(|i| ZkMember::on(i as u32 + 1, unique_loopback_ip(), ca.is_some()))
            .collect::<SupportResult<Vec<_>>>()?;
        let mut certs = Vec::new();
        let mut tls_files = Vec::new();
        if let Some(ca) = ca {
            for (index, member) in members.iter().enumerate() {
                let name = zk_member_dns_name(index);
                let ip = member.ip.to_string();
                let cert = ca.issue(&format!("zk-{index}"), &[name.as_str(), ip.as_str()])?;
                tls_files.push(write_zk_tls(dir.path(), index, &cert, &ca.cert_pem)?);
                certs.push(cert);
            }
        }
        let mut ensemble = ZooKeeperEnsemble {
            members,
            certs,
            processes: Vec::new(),
            dir,
            tls: ca.map(|_| tls_files),
        };
        for index in 0..size {
            let process = ensemble.spawn_member(index)?;
            ensemble.processes.push(Some(process));
        }
        ensemble.wait_until_serving(Duration::from_secs(120))?;
        Ok(ensemble)
    }

    fn spawn_member(&self, index: usize) -> SupportResult<ServerProcess> {
        let member = &self.members[index];
        let member_dir = self.dir.path().join(format!("zk-{index}"));
        let data_dir = member_dir.join("data");
        fs::create_dir_all(&data_dir)?;
        fs::write(data_dir.join("myid"), format!("{}\n", member.id))?;
        let tls = self.tls.as_ref().map(|files| &files[index]);
        let conf = member_dir.join("zoo.cfg");
        fs::write(&conf, zoo_cfg(member, &self.members, &data_dir, tls))?;
        ServerProcess::spawn(
            zookeeper_command(&conf, &member_dir),
            member_dir.join("server.log"),
        )
    }

    /// Replace member `index`'s TLS certificate (takes effect at its restart).
    pub fn rotate_certificate(
        &mut self,
        index: usize,
        cert: IssuedCert,
        ca_pem: &str,
    ) -> SupportResult<()> {
        write_zk_tls(self.dir.path(), index, &cert, ca_pem)?;
        self.certs[index] = cert;
        Ok(())
    }

    /// Stop member `index`.
    pub fn stop_member(&mut self, index: usize) {
        if let Some(mut process) = self.processes[index].take() {
            process.stop();
        }
    }

    /// (Re)start member `index` and wait until it answers `ruok`.
    pub fn start_member(&mut self, index: usize) -> SupportResult<()> {
        self.stop_member(index);
        let process = self.spawn_member(index)?;
        self.processes[index] = Some(process);
        let endpoint =
            Endpoint::plain(self.members[index].client_address(), Duration::from_secs(2));
        wait_for(
            Duration::from_secs(120),
            "restarted zookeeper member",
            || {
                zookeeper::srvr(&endpoint)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
    }

    /// A plaintext endpoint of member `index`.
    pub fn plain_endpoint(&self, index: usize, timeout: Duration) -> Endpoint {
        Endpoint::plain(self.members[index].client_address(), timeout)
    }

    /// Wait until every member serves (`srvr` succeeds: it is in a quorum or standalone).
    pub fn wait_until_serving(&mut self, timeout: Duration) -> SupportResult<()> {
        for index in 0..self.members.len() {
            let endpoint = self.plain_endpoint(index, Duration::from_secs(2));
            let result = wait_for(timeout, &format!("zookeeper member {index}"), || {
                zookeeper::srvr(&endpoint)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            if let Err(err) = result {
                let tail = self.processes[index]
                    .as_ref()
                    .map(|p| p.log_tail(30))
                    .unwrap_or_default();
                return Err(format!("{err}\n--- server log tail ---\n{tail}").into());
            }
        }
        Ok(())
    }
}

fn write_zk_tls(
    dir: &Path,
    index: usize,
    cert: &IssuedCert,
    ca_pem: &str,
) -> SupportResult<ZkTlsFiles> {
    let tls_dir = dir.join(format!("zk-{index}-tls"));
    fs::create_dir_all(&tls_dir)?;
    let files = ZkTlsFiles {
        keystore: tls_dir.join("keystore.pem"),
        truststore: tls_dir.join("ca.crt"),
    };
    fs::write(
        &files.keystore,
        format!("{}{}", cert.key_pem, cert.cert_pem),
    )?;
    fs::write(&files.truststore, ca_pem)?;
    Ok(files)
}

// ---------------------------------------------------------------- MariaDB

/// How to run a throwaway MariaDB server.
#[derive(Debug, Clone)]
pub struct MariaDbOptions {
    /// Loopback IP to bind.
    pub ip: IpAddr,
    /// Serve TLS with this certificate and CA (PEM).
    pub tls: Option<(IssuedCert, String)>,
    /// Accounts to create: (user, password).
    pub users: Vec<(String, String)>,
    /// Run as a one-node Galera cluster (wsrep on, new cluster: Primary).
    pub galera: bool,
}

/// The command that initialises `dir/data` (with its own `dir/tmp`: parallel
/// bootstraps sharing /tmp trip over each other's temporary tables).
pub fn mariadb_install_command(dir: &Path) -> Command {
    let mut command = Command::new("mariadb-install-db");
    command
        .arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .arg("--user=root")
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db");
    command
}

/// The command that runs the server from `dir` (holding `data/`, `init.sql` and the TLS files).
pub fn mariadb_command(dir: &Path, ip: IpAddr, port: u16, tls: bool, galera: bool) -> Command {
    let mut command = Command::new(MARIADBD);
    command
        .arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .arg("--user=root")
        .arg(format!("--bind-address={ip}"))
        .arg(format!("--port={port}"))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg("--skip-name-resolve")
        .arg(format!("--init-file={}", dir.join("init.sql").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg("--innodb-buffer-pool-size=16M")
        .arg("--performance-schema=OFF");
    if tls {
        command
            .arg(format!("--ssl-cert={}", dir.join("tls.crt").display()))
            .arg(format!("--ssl-key={}", dir.join("tls.key").display()))
            .arg(format!("--ssl-ca={}", dir.join("ca.crt").display()));
    }
    if galera {
        command
            .arg("--wsrep_on=ON")
            .arg(format!("--wsrep_provider={GALERA_PROVIDER}"))
            .arg("--wsrep_cluster_address=gcomm://")
            .arg("--wsrep-new-cluster")
            .arg(format!("--wsrep_node_address={ip}"))
            .arg(format!(
                "--wsrep_provider_options=gmcast.listen_addr=tcp://{ip}:0;ist.recv_addr={ip}:0"
            ))
            .arg("--binlog_format=ROW")
            .arg("--innodb_autoinc_lock_mode=2");
    }
    command
}

/// `init.sql` creating `users` idempotently with only `USAGE` and `PROCESS`.
pub fn mariadb_init_sql(users: &[(String, String)]) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
    users
        .iter()
        .map(|(user, password)| {
            format!(
                "CREATE USER IF NOT EXISTS '{u}'@'%' IDENTIFIED BY '{p}';\nGRANT USAGE, PROCESS ON *.* TO '{u}'@'%';\n",
                u = quote(user),
                p = quote(password)
            )
        })
        .collect()
}

/// A running throwaway MariaDB server.
pub struct MariaDb {
    /// `ip:port`.
    pub address: String,
    process: ServerProcess,
    dir: tempfile::TempDir,
}

impl MariaDb {
    /// Initialise a data directory and start the server; returns once it
    /// completes a handshake (and, with Galera, is Primary).
    pub fn start(options: &MariaDbOptions) -> SupportResult<MariaDb> {
        let dir = tempfile::tempdir()?;
        fs::create_dir_all(dir.path().join("tmp"))?;
        let install = mariadb_install_command(dir.path()).output()?;
        if !install.status.success() {
            return Err(format!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&install.stderr)
            )
            .into());
        }
        fs::write(
            dir.path().join("init.sql"),
            mariadb_init_sql(&options.users),
        )?;
        if let Some((cert, ca)) = &options.tls {
            fs::write(dir.path().join("tls.crt"), &cert.cert_pem)?;
            fs::write(dir.path().join("tls.key"), &cert.key_pem)?;
            fs::write(dir.path().join("ca.crt"), ca)?;
        }
        let port = free_port(options.ip)?;
        let command = mariadb_command(
            dir.path(),
            options.ip,
            port,
            options.tls.is_some(),
            options.galera,
        );
        let process = ServerProcess::spawn(command, dir.path().join("stdout.log"))?;
        let mut server = MariaDb {
            address: format!("{}:{port}", options.ip),
            process,
            dir,
        };
        server.wait_ready(options)?;
        Ok(server)
    }

    fn wait_ready(&mut self, options: &MariaDbOptions) -> SupportResult<()> {
        let endpoint = Endpoint::plain(self.address.clone(), Duration::from_secs(3));
        let check = MysqlCheck {
            credentials: options.users.first().map(|(user, password)| Credentials {
                user: user.clone(),
                password: Password::new(password.clone()),
            }),
            galera: if options.galera {
                GaleraCheck::RequirePrimary
            } else {
                GaleraCheck::Skip
            },
        };
        let result = wait_for(Duration::from_secs(90), "mariadb", || {
            if self.process.has_exited() {
                return Err("the server exited".to_string());
            }
            mysql::probe(&endpoint, &check)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        result.map_err(|err| {
            let log = fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("{err}\n--- error.log tail ---\n{}", tail.join("\n")).into()
        })
    }

    /// The server's directory (data, TLS files, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
