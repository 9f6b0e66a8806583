//! Latency of the sandbox API under load: 300 StatefulSets x 3 pods and
//! 200 open watches, measured through the real kube client on loopback.
//!
//! Run: `cargo run --release -p dbops-sandbox --example bench_api`
//! (options: `--sets N`, `--watches N`, `--samples N`).
//! Prints median and p99 of get and list latencies; the target from issue 3
//! is a median under 5 ms.
//!
//! Measured 2026-11-25 on the shared 2-core development machine, release
//! build, 300 StatefulSets x 3 pods, 200 open watches (median / p99):
//! get statefulset 95 µs / 360 µs; get pod 84 µs / 139 µs; list pods by
//! label 113 µs / 183 µs; list 30 StatefulSets 285 µs / 4.0 ms; list all
//! 900 pods 3.2 ms / 12 ms. (Debug build: get ~0.8-1 ms, filtered lists
//! ~0.8-1.7 ms, all 900 pods ~47 ms, most of it the client decoding.)

use std::time::{Duration, Instant};

use dbops_sandbox::{Sandbox, SandboxConfig};
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

struct Options {
    sets: usize,
    watches: usize,
    samples: usize,
}

fn options() -> Options {
    let mut o = Options {
        sets: 300,
        watches: 200,
        samples: 500,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = pair[1].parse().ok();
        match (pair[0].as_str(), value) {
            ("--sets", Some(v)) => o.sets = v,
            ("--watches", Some(v)) => o.watches = v,
            ("--samples", Some(v)) => o.samples = v,
            _ => {}
        }
    }
    o
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = options();
    let sandbox = Sandbox::start(SandboxConfig {
        controllers: false,
        ..SandboxConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&path, None)?;
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&path)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let client = kube::Client::try_from(config)?;

    println!("loading {} StatefulSets x 3 pods ...", opts.sets);
    for i in 0..opts.sets {
        let ns = format!("ns-{}", i % 10);
        let name = format!("db-{i}");
        let labels = json!({"app": name});
        sandbox.apply(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"replicas": 3, "serviceName": name, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "db", "image": "db:1", "ports": [{"containerPort": 2181}]}]}}}}))?;
        for ordinal in 0..3 {
            sandbox.apply(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("{name}-{ordinal}"), "namespace": ns, "labels": labels},
                "spec": {"nodeName": dbops_sandbox::NODE_NAME, "containers": [{"name": "db", "image": "db:1"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}))?;
        }
    }

    println!("opening {} watches ...", opts.watches);
    let mut watches = Vec::new();
    for i in 0..opts.watches {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &format!("ns-{}", i % 10));
        let stream = pods
            .watch(&WatchParams::default().labels(&format!("app=db-{i}")), "0")
            .await?;
        watches.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            while stream.next().await.is_some() {}
        }));
    }

    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "ns-3");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ns-3");
    let all_pods: Api<Pod> = Api::all(client.clone());
    let mut rows = Vec::new();
    rows.push((
        "get statefulset",
        measure(opts.samples, || async { sts.get("db-3").await.map(drop) }).await?,
    ));
    rows.push((
        "get pod",
        measure(opts.samples, || async {
            pods.get("db-3-1").await.map(drop)
        })
        .await?,
    ));
    rows.push((
        "list pods by label",
        measure(opts.samples, || async {
            pods.list(&ListParams::default().labels("app=db-13"))
                .await
                .map(drop)
        })
        .await?,
    ));
    rows.push((
        "list statefulsets in a namespace (30)",
        measure(opts.samples, || async {
            sts.list(&ListParams::default()).await.map(drop)
        })
        .await?,
    ));
    rows.push((
        "list all pods (900)",
        measure(opts.samples / 5, || async {
            all_pods.list(&ListParams::default()).await.map(drop)
        })
        .await?,
    ));

    println!("\n{:<40} {:>10} {:>10}", "request", "median", "p99");
    for (name, mut samples) in rows {
        samples.sort();
        let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        println!("{name:<40} {:>10.3?} {:>10.3?}", pick(0.5), pick(0.99));
    }
    for w in watches {
        w.abort();
    }
    Ok(())
}

async fn measure<F, Fut>(n: usize, f: F) -> Result<Vec<Duration>, kube::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    for _ in 0..10 {
        f().await?;
    }
    let mut out = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        let start = Instant::now();
        f().await?;
        out.push(start.elapsed());
    }
    Ok(out)
}
