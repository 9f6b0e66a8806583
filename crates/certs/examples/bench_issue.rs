//! Issuance time per certificate for each key algorithm, next to
//! `openssl req -x509 -newkey ALG` for the same algorithm, measured in the
//! same run. Prints figures; asserts nothing about time.
//!
//! Run: `cargo run --release -p dbops-certs --example bench_issue [ROUNDS]`
//! (default 20 rounds for ECDSA and RSA 2048, a quarter of that for RSA 4096).
//! "dbops" is one leaf: key generation plus signing by an ECDSA P-256 CA,
//! in process; "openssl" is one self-signed certificate with a new key, a
//! process per certificate, as a shell script would do it.

use std::process::Command;
use std::time::{Duration, Instant};

use dbops_certs::{Ca, CaSpec, KeyAlgorithm, LeafSpec, PrivateKey, Subject};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20);
    let dir = std::env::temp_dir().join(format!("dbops-bench-issue-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca = Ca::create(&CaSpec {
        subject: Subject {
            common_name: "bench CA".into(),
            ..Subject::default()
        },
        validity: Duration::from_secs(86_400 * 365),
        algorithm: KeyAlgorithm::EcdsaP256,
    })?;
    let spec = LeafSpec {
        subject: Subject {
            common_name: "bench".into(),
            ..Subject::default()
        },
        dns_names: (0..3)
            .map(|i| format!("db-{i}.db-pods.ns.svc.cluster.local"))
            .collect(),
        ip_addresses: Vec::new(),
        validity: Duration::from_secs(86_400 * 90),
        server_auth: true,
        client_auth: true,
    };
    println!(
        "{:<11} {:>7} {:>16} {:>16} {:>8}",
        "algorithm", "rounds", "dbops ms/cert", "openssl ms/cert", "ratio"
    );
    for algorithm in KeyAlgorithm::ALL {
        let n = if algorithm == KeyAlgorithm::Rsa4096 {
            (rounds / 4).max(1)
        } else {
            rounds
        };
        let started = Instant::now();
        for _ in 0..n {
            let key = PrivateKey::generate(algorithm)?;
            std::hint::black_box(ca.issue(&spec, &key)?);
        }
        let ours = per_cert(started.elapsed(), n);
        let started = Instant::now();
        for _ in 0..n {
            openssl_req(algorithm, &dir)?;
        }
        let theirs = per_cert(started.elapsed(), n);
        println!(
            "{:<11} {:>7} {:>16.2} {:>16.2} {:>8.3}",
            algorithm.name(),
            n,
            ours,
            theirs,
            ours / theirs
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn per_cert(elapsed: Duration, n: u32) -> f64 {
    elapsed.as_secs_f64() * 1000.0 / f64::from(n)
}

fn openssl_req(
    algorithm: KeyAlgorithm,
    dir: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let status = Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "90"])
        .args(algorithm.openssl_newkey_args())
        .args([
            "-subj",
            "/CN=bench",
            "-addext",
            "subjectAltName=DNS:db-0.db-pods.ns.svc.cluster.local",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run openssl ({e}); install the openssl package"))?;
    if !status.success() {
        return Err(format!("openssl req failed for {algorithm}").into());
    }
    Ok(())
}
