//! `dbops demo`: the README's first command. Starts the sandbox in this
//! process, builds a 3-member ZooKeeper-shaped StatefulSet with a CA, a
//! config ConfigMap and TLS endpoints (or real ZooKeeper servers with
//! `--real`), then rotates its certificates with the ready pipeline
//! `pipelines/zookeeper-rotate-tls.toml` through the normal code path of
//! `dbops run`: the same validation, plugins loaded from disk, the `kube`
//! client over HTTP(S), lock, journal, Events and trace.
//!
//! Reads top-down: [`demo`] = plugins ready ([`plugins`]) -> sandbox and
//! world ([`world`]) -> serials before -> run with observers ([`observe`])
//! -> serials after -> where to look next.

mod observe;
mod plugins;
mod world;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::prepare::prepare;
use crate::exit;
use crate::run::{self, RunOptions, cluster};

/// The pipeline the demo runs, compiled in so the demo works from any
/// directory (and in the container image).
const ROTATE_PIPELINE: &str = include_str!("../../../pipelines/zookeeper-rotate-tls.toml");

/// Arguments of `dbops demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Run real ZooKeeper servers (Debian package `zookeeper`, Java) instead
    /// of the sandbox's built-in TLS endpoints.
    #[arg(long)]
    pub real: bool,
    /// Keep the sandbox running after the demo (until Ctrl-C) so the
    /// printed kubectl and `dbops status` commands work.
    #[arg(long)]
    pub serve: bool,
    /// Directory for the kubeconfig and the pipeline copy (default: a new
    /// directory under the system temp dir).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Execute `dbops demo`.
pub async fn demo(args: DemoArgs, plugin_dir: &Path) -> i32 {
    match run_demo(args, plugin_dir).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("dbops demo: {message}");
            exit::INTERNAL
        }
    }
}

async fn run_demo(args: DemoArgs, plugin_dir: &Path) -> Result<i32, String> {
    if args.real {
        world::check_real_zookeeper()?;
    }
    plugins::ensure(plugin_dir)?;
    // Timed from here: building the plugins is a one-off of a fresh checkout.
    let started = Instant::now();
    let dir = work_dir(args.dir.as_deref())?;

    say(&format!(
        "1. starting the sandbox (a Kubernetes API server on loopback with StatefulSet, kubelet and cert-manager stand-ins){}",
        if args.real {
            ", real ZooKeeper servers"
        } else {
            ""
        }
    ));
    let sandbox = dbops_sandbox::Sandbox::start(dbops_sandbox::SandboxConfig::default())
        .await
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let kubeconfig = dir.join("kubeconfig");
    sandbox
        .write_kubeconfig(&kubeconfig, None)
        .map_err(|e| format!("cannot write {}: {e}", kubeconfig.display()))?;
    let client = cluster::connect(Some(&kubeconfig), None).await?;

    say(
        "2. creating namespace demo: CA Secret zk-ca, certificate Secret zk-tls (expires in 2 days), ConfigMap zk-config, StatefulSet zk (3 members)",
    );
    let world = world::create(&sandbox, args.real)?;
    world::wait_ready(&client, &world).await?;
    let before = observe::served_serials(&client, &world).await?;
    for (pod, serial) in &before {
        say(&format!("   {pod} serves certificate serial {serial}"));
    }

    let pipeline_path = dir.join("rotate-tls.toml");
    std::fs::write(&pipeline_path, ROTATE_PIPELINE)
        .map_err(|e| format!("cannot write {}: {e}", pipeline_path.display()))?;
    let sets = world.pipeline_sets();
    say(&format!(
        "3. dbops run pipelines/zookeeper-rotate-tls.toml {}",
        sets.iter()
            .map(|s| format!("--set {s}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let (pipeline, loaded) =
        prepare(&pipeline_path, &sets, plugin_dir).map_err(|e| e.to_string())?;
    let run_id = format!("demo-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let observers = observe::start(client.clone(), world::NAMESPACE, &run_id);
    let options = RunOptions {
        run_id: run_id.clone(),
        dry_run: false,
        grace: Duration::from_secs(20),
        lock_duration: Duration::from_secs(30),
        owner: None,
    };
    let report = run::run(
        cluster::Cluster::new(client.clone()),
        Arc::new(pipeline),
        Arc::new(loaded),
        options,
        CancellationToken::new(),
    )
    .await
    .map_err(|e| format!("the run did not start: {e}"))?;
    let restarts = observers.finish(&report.journal).await;

    say(&format!("4. run {run_id}: {}", report.outcome.as_str()));
    let order = if restarts.is_empty() {
        "(none)".to_owned()
    } else {
        restarts.join(" -> ")
    };
    let why = if world.real {
        "followers first, the leader last"
    } else {
        "the built-in endpoints have no ZooKeeper roles, so highest ordinal first; --real: followers first, the leader last"
    };
    say(&format!("   restart order: {order} ({why})"));
    let after = observe::served_serials(&client, &world).await?;
    say("   member  serial before                             serial after");
    for (pod, new) in &after {
        let old = before.get(pod).map(String::as_str).unwrap_or("-");
        let mark = if old == new { "  (unchanged!)" } else { "" };
        say(&format!("   {pod:<7} {old:<41} {new}{mark}"));
    }
    say(&format!("   trace id: {}", report.trace_id));
    say(&format!(
        "   finished in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    next_steps(&kubeconfig, &run_id, args.serve);

    let code = report.outcome.exit_code();
    if args.serve {
        say("serving the sandbox until Ctrl-C ...");
        let _ = tokio::signal::ctrl_c().await;
    }
    sandbox.shutdown();
    Ok(code)
}

fn next_steps(kubeconfig: &Path, run_id: &str, serving: bool) {
    let k = kubeconfig.display();
    say("5. where to look next");
    if !serving {
        say(
            "   (the sandbox stops with this command; run `dbops demo --serve` to keep it up for these)",
        );
    }
    say(&format!(
        "   kubectl --kubeconfig {k} -n demo get pods,secrets,configmaps,leases"
    ));
    say(&format!(
        "   kubectl --kubeconfig {k} -n demo get events --sort-by=.lastTimestamp"
    ));
    say(&format!(
        "   kubectl --kubeconfig {k} -n demo get configmap dbops-run-{run_id} -o jsonpath='{{.data.journal\\.json}}'"
    ));
    say(&format!("   dbops status --kubeconfig {k} -n demo"));
    say(
        "   traces: set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318) and run the demo again; the trace id above is the root span dbops.run",
    );
}

fn work_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match given {
        Some(d) => d.to_owned(),
        None => std::env::temp_dir().join(format!("dbops-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// One line of demo output on stdout (the run's own logs go to stderr).
fn say(line: &str) {
    println!("{line}");
}
