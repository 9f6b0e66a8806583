//! The `health-check` step: probe every member of the target (through its
//! pod IP) and/or its client Service, speaking the database's own protocol,
//! and retry until everything passes or the deadline.
//!
//! Where to start: [`HealthCheck::run`] reads top-down: read the Secrets
//! once -> per attempt: list the targets, probe each, judge -> report.
//! [`config`] is the `with` table, [`targets`] builds what is probed,
//! [`check`] runs one attempt and judges it. The protocols themselves are in
//! `dbops-probes` (no client binaries are run).
//!
//! The database is polled (it has no watch); each probe is bounded by
//! `timeout`, attempts are spaced by `interval` (doubling up to 10s), and
//! the loop ends before the step deadline so the failure names what is
//! still unhealthy.

pub mod check;
pub mod config;
pub mod targets;

use std::time::{Duration, Instant};

use dbops_engines::Engine;
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{
    Context, EventType, Level, Outputs, Problem, Step, StepError, StepResult, Target, export_plugin,
};
use dbops_probes::cluster;

use check::Attempt;
use config::Config;
use targets::{ProbeTarget, Settings};

/// The step.
pub struct HealthCheck;

impl Step for HealthCheck {
    type Config = Config;
    const NAME: &'static str = "health-check";
    const DESCRIPTION: &'static str = "Probe every member and/or the Service (tcp, tls, http(s), zookeeper, kafka, mysql, druid) until healthy or the deadline";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        ("healthy", "true when every target passed"),
        ("probe", "the probe used"),
        ("attempts", "how many attempts it took"),
        ("seconds", "time until every target passed"),
        ("members", "per target: name=ok|failed, comma separated"),
        (
            "serials",
            "per target: the serial of the certificate it served (TLS only)",
        ),
        ("leader", "ZooKeeper: the member that leads the quorum"),
        ("report", "the last attempt per target, as JSON"),
    ];

    fn validate(config: &Config, target: &Target) -> Vec<Problem> {
        config::problems(config, target)
    }

    fn run(ctx: &Context<'_>, config: Config) -> StepResult<Outputs> {
        let started = Instant::now();
        let target = ctx.target().clone();
        let engine = Engine::parse(&target.engine).ok_or_else(|| {
            StepError::permanent(
                "InvalidConfig",
                format!("unknown engine {:?}", target.engine),
            )
        })?;
        let settings = Settings::load(ctx, &config, engine)?;
        if settings.tls.as_ref().is_some_and(|t| !t.verifies()) {
            ctx.warn("health-check does NOT verify TLS certificates (insecure_skip_verify = true)");
        }
        let deadline = own_deadline(ctx, config.deadline.get());
        ctx.info(&format!(
            "health-check: probe {} against {:?} of {}/{} (engine {engine}), until {}s from now",
            settings.probe.name(),
            config.against,
            target.namespace,
            target.name,
            deadline.saturating_duration_since(Instant::now()).as_secs()
        ));
        let mut delay = config.interval.get();
        let max_delay = config.interval.get().max(Duration::from_secs(10));
        let mut number = 0u32;
        loop {
            number += 1;
            let attempt = run_attempt(ctx, &config, &settings, &target, number, deadline)?;
            if attempt.healthy() {
                return Ok(passed(ctx, &settings, &attempt, number, started));
            }
            let problems = attempt.problems();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || ctx.is_cancelled() {
                return Err(failed(ctx, &attempt, number, started, &problems));
            }
            ctx.log(
                Level::Info,
                &format!(
                    "attempt {number}: not healthy yet, retrying in {:.1}s: {}",
                    delay.min(left).as_secs_f64(),
                    problems.join("; ")
                ),
                &[("attempt", json!(number))],
            );
            ctx.sleep(delay.min(left))?;
            delay = (delay * 2).min(max_delay);
        }
    }
}

export_plugin!(HealthCheck);

/// The step's deadline for its own loop: `deadline` from now, but ending a
/// little before the step's timeout so the failure can say what is unhealthy.
fn own_deadline(ctx: &Context<'_>, deadline: Duration) -> Instant {
    let mut budget = deadline;
    if let Some(left) = ctx.remaining() {
        let margin = (left / 10).min(Duration::from_secs(2));
        budget = budget.min(left.saturating_sub(margin));
    }
    Instant::now() + budget
}

/// List the targets (fresh: pods may have new IPs) and probe each once.
fn run_attempt(
    ctx: &Context<'_>,
    config: &Config,
    settings: &Settings,
    target: &Target,
    number: u32,
    deadline: Instant,
) -> StepResult<Attempt> {
    ctx.check_deadline()?;
    let left = deadline.saturating_duration_since(Instant::now());
    let timeout = settings.timeout.min(left).max(Duration::from_millis(100));
    let mut probe_targets: Vec<ProbeTarget> = Vec::new();
    if config.against.members() {
        let workload = cluster::load_workload(ctx, target)?;
        let members = cluster::load_members(ctx, &workload)?;
        probe_targets.extend(targets::member_targets(
            settings, &workload, &members, timeout,
        ));
    }
    if config.against.service() {
        probe_targets.push(targets::service_target(
            ctx, settings, config, target, timeout,
        )?);
    }
    let mut span = ctx.span(
        "health-check.attempt",
        &[
            ("dbops.probe", json!(settings.probe.name())),
            ("dbops.attempt", json!(number)),
        ],
    );
    let attempt = check::attempt(settings, &probe_targets);
    for result in &attempt.results {
        let mut child = span.child(
            "probe",
            &[
                ("dbops.probe", json!(settings.probe.name())),
                ("dbops.probe.target", json!(result.name)),
                ("server.address", json!(result.outcome.address)),
            ],
        );
        child.set("dbops.probe.latency_ms", result.outcome.latency_ms);
        if let Some(tls) = &result.outcome.tls {
            child.set("tls.server.certificate.serial", tls.leaf.serial.clone());
        }
        for warning in &result.outcome.warnings {
            ctx.warn(warning);
        }
        match &result.outcome.reason {
            Some(reason) => child.fail(reason),
            None => child.end(),
        }
    }
    span.set("dbops.healthy", attempt.healthy());
    if attempt.healthy() {
        span.end();
    } else {
        span.fail(&attempt.problems().join("; "));
    }
    Ok(attempt)
}

fn passed(
    ctx: &Context<'_>,
    settings: &Settings,
    attempt: &Attempt,
    number: u32,
    started: Instant,
) -> Outputs {
    let seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    for result in &attempt.results {
        ctx.log(
            Level::Info,
            &result.outcome.summary(),
            &[("target", json!(result.name))],
        );
    }
    let leader = attempt
        .quorum
        .as_ref()
        .and_then(|q| q.leader.clone())
        .unwrap_or_default();
    let message = format!(
        "{} target(s) healthy ({} probe) after {number} attempt(s), {seconds:.1}s{}",
        attempt.results.len(),
        settings.probe.name(),
        if leader.is_empty() {
            String::new()
        } else {
            format!("; leader {leader}")
        }
    );
    ctx.info(&message);
    ctx.event(EventType::Normal, "HealthCheckPassed", &message);
    let mut outputs = Outputs::new();
    outputs.insert("healthy".into(), Value::Bool(true));
    outputs.insert("probe".into(), json!(settings.probe.name()));
    outputs.insert("attempts".into(), json!(number));
    outputs.insert("seconds".into(), json!(seconds));
    outputs.insert("members".into(), json!(attempt.member_states()));
    outputs.insert("serials".into(), json!(attempt.serials()));
    outputs.insert("leader".into(), json!(leader));
    outputs.insert("report".into(), json!(attempt.report().to_string()));
    outputs
}

fn failed(
    ctx: &Context<'_>,
    attempt: &Attempt,
    number: u32,
    started: Instant,
    problems: &[String],
) -> StepError {
    let failing = attempt.results.iter().filter(|r| !r.outcome.ok).count();
    let message = format!(
        "{failing} of {} target(s) still unhealthy after {number} attempt(s) over {}s: {}",
        attempt.results.len(),
        started.elapsed().as_secs(),
        problems.join("; ")
    );
    ctx.log(Level::Error, &message, &[("report", attempt.report())]);
    ctx.event(EventType::Warning, "HealthCheckFailed", &message);
    StepError::permanent("HealthCheckFailed", message)
}
