//! The `rolling-restart` step: restart a database's members one at a time
//! (or `max_unavailable` at a time) in an engine-aware order, checking
//! before each member that the rest of the cluster can lose it, and waiting
//! by watch until it is back Ready on the wanted revision.
//!
//! Where to start: [`RollingRestart::run`] below reads top-down:
//! load -> skip members already current -> ask roles -> order -> pre-check ->
//! restart -> wait -> record, until no member is left. [`config`] is the
//! `with` table, [`plan`] the cluster-free decisions (unit-tested),
//! [`probing`] asks the members (roles, pre-checks) through `dbops-probes`,
//! [`restart`] deletes pods or steps the partition and waits.
//!
//! **Invariant**: two quorum members are never restarted at once unless
//! `max_unavailable` says so and the pre-check confirms a majority remains.
//! **Resumable**: the members done and the pods being restarted are in the
//! durable step state, so a restarted run finishes the member in flight and
//! skips the ones already done.

pub mod config;
pub mod plan;
pub mod probing;
pub mod restart;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dbops_engines::Engine;
use dbops_engines::members::{self, Member as EngineMember, OrderStrategy};
use dbops_plugin_sdk::serde_json::{Value, json};
use dbops_plugin_sdk::{
    Context, EventType, Outputs, Problem, Span, Step, StepError, StepResult, Target, export_plugin,
};
use dbops_probes::cluster::{self, Member, Workload};

use config::{Config, Mode, PreCheckChoice};
use plan::{Done, MemberFacts, Saved, Skip, TemplateState, Wanted};
use probing::Prober;
use restart::BackWhen;

/// The step.
pub struct RollingRestart;

impl Step for RollingRestart {
    type Config = Config;
    const NAME: &'static str = "rolling-restart";
    const DESCRIPTION: &'static str = "Restart the target's members one at a time in an engine-aware order, with pre-checks, waiting until each is back Ready";
    const OUTPUTS: &'static [(&'static str, &'static str)] = &[
        (
            "order",
            "the members restarted, in the order used (comma separated)",
        ),
        ("restarted", "how many members were restarted"),
        (
            "skipped",
            "members skipped because they already ran the wanted revision or config (comma separated)",
        ),
        (
            "member_seconds",
            "seconds from restart to Ready per member, e.g. zk-2=12.3,zk-1=9.8",
        ),
        ("total_seconds", "wall time of the step"),
    ];
    const COMPENSATES: bool = true;

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
        let mut saved: Saved = ctx.state()?.unwrap_or_default();
        let workload = cluster::load_workload(ctx, &target)?;
        let settings = ProbeSettings::load(ctx, &config, &target, engine)?;
        let wanted = Wanted {
            rolling_revision: workload
                .update_revision
                .clone()
                .filter(|update| workload.current_revision.as_ref() != Some(update)),
            config_hash: config
                .config_hash_annotation
                .clone()
                .zip(config.config_hash.clone()),
        };
        ctx.info(&format!(
            "rolling restart of {} {}/{} ({} members, engine {engine}, mode {:?})",
            workload.kind, workload.namespace, workload.name, workload.replicas, config.mode
        ));
        match config.mode {
            Mode::Delete => by_deletion(ctx, &config, &target, &settings, &wanted, &mut saved)?,
            Mode::Template => by_template(ctx, &config, &target, &settings, &wanted, &mut saved)?,
        }
        let mut outputs = Outputs::new();
        outputs.insert("order".into(), Value::String(saved.order()));
        outputs.insert("restarted".into(), json!(saved.done.len()));
        outputs.insert("skipped".into(), Value::String(saved.skipped.join(",")));
        outputs.insert(
            "member_seconds".into(),
            Value::String(saved.member_seconds()),
        );
        outputs.insert(
            "total_seconds".into(),
            json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0),
        );
        ctx.event(
            EventType::Normal,
            "RollingRestartDone",
            &format!(
                "restarted {} member(s) in order [{}], skipped [{}]",
                saved.done.len(),
                saved.order(),
                saved.skipped.join(",")
            ),
        );
        Ok(outputs)
    }

    /// Template mode only: restore the partition the step changed.
    fn compensate(ctx: &Context<'_>, config: Config) -> StepResult<()> {
        let Some(saved) = ctx.state::<Saved>()? else {
            return Ok(());
        };
        if let (Mode::Template, Some(template)) = (config.mode, saved.template) {
            let target = ctx.target().clone();
            restart::set_partition(
                ctx,
                &target,
                template.original_partition,
                config.member_timeout.get(),
            )?;
            ctx.event(
                EventType::Normal,
                "PartitionRestored",
                &format!(
                    "restored the update partition to {:?}",
                    template.original_partition
                ),
            );
        }
        Ok(())
    }
}

export_plugin!(RollingRestart);

/// Probe settings with the Secrets read.
struct ProbeSettings {
    engine: Engine,
    port: u16,
    tls: Option<cluster::ResolvedTls>,
    credentials: Option<dbops_probes::mysql::Credentials>,
    timeout: Duration,
    role_label: Option<String>,
    pre_check: PreCheckChoice,
    pre_check_timeout: Duration,
}

impl ProbeSettings {
    fn load(
        ctx: &Context<'_>,
        config: &Config,
        target: &Target,
        engine: Engine,
    ) -> StepResult<ProbeSettings> {
        let profile = members::profile(engine);
        let tls = match &config.probe.tls {
            Some(settings) => Some(cluster::resolve_tls(ctx, &target.namespace, settings)?),
            None => None,
        };
        if tls.as_ref().is_some_and(|t| !t.verifies()) {
            ctx.warn("probes of the members do NOT verify TLS certificates (insecure_skip_verify = true)");
        }
        let credentials = match &config.probe.credentials {
            Some(settings) => Some(cluster::load_credentials(ctx, &target.namespace, settings)?),
            None => None,
        };
        Ok(ProbeSettings {
            engine,
            port: config
                .probe
                .port
                .unwrap_or(profile.ports.for_tls(tls.is_some())),
            tls,
            credentials,
            timeout: config.probe.timeout.get(),
            role_label: config.probe.role_label.clone(),
            pre_check: config.pre_check,
            pre_check_timeout: config.pre_check_timeout.get(),
        })
    }

    fn prober<'w>(&self, workload: &'w Workload) -> Prober<'w> {
        Prober {
            profile: members::profile(self.engine),
            port: self.port,
            tls: self.tls.clone(),
            timeout: self.timeout,
            credentials: self.credentials.clone(),
            workload,
            role_label: self.role_label.clone(),
        }
    }
}

fn facts(member: &Member, wanted: &Wanted) -> MemberFacts {
    MemberFacts {
        name: member.name.clone(),
        ready: member.is_ready(),
        revision: member.revision().map(str::to_string),
        config_hash: wanted
            .config_hash
            .as_ref()
            .and_then(|(key, _)| member.annotation(key))
            .map(str::to_string),
    }
}

/// Record members that need no restart; return the others.
fn remaining_members<'m>(
    ctx: &Context<'_>,
    members: &'m [Member],
    wanted: &Wanted,
    saved: &mut Saved,
) -> StepResult<Vec<&'m Member>> {
    let mut remaining = Vec::new();
    let mut changed = false;
    for member in members {
        match plan::skip_reason(&facts(member, wanted), wanted, saved) {
            Some(Skip::AlreadyDone) => {}
            Some(reason) => {
                ctx.info(&format!(
                    "skipping {}: already current ({reason:?})",
                    member.name
                ));
                saved.skipped.push(member.name.clone());
                changed = true;
            }
            None => remaining.push(member),
        }
    }
    if changed {
        ctx.save_state(saved)?;
    }
    Ok(remaining)
}

/// Retry the pre-check until it passes or its timeout; then fail clearly.
fn wait_pre_check(
    ctx: &Context<'_>,
    settings: &ProbeSettings,
    workload: &Workload,
    batch: &[String],
) -> StepResult<()> {
    if settings.pre_check == PreCheckChoice::None {
        return Ok(());
    }
    let prober = settings.prober(workload);
    let deadline = Instant::now() + settings.pre_check_timeout;
    let mut delay = Duration::from_millis(500);
    let mut announced = false;
    loop {
        let members = cluster::load_members(ctx, workload)?;
        match prober.pre_check(&members, batch) {
            Ok(summary) => {
                ctx.info(&format!("pre-check before {}: {summary}", batch.join(", ")));
                return Ok(());
            }
            Err(reason) if Instant::now() >= deadline => {
                return Err(StepError::permanent(
                    "PreCheckFailed",
                    format!(
                        "not restarting {}: {reason} (still true after waiting {}s; fix the cluster or raise pre_check_timeout)",
                        batch.join(", "),
                        settings.pre_check_timeout.as_secs()
                    ),
                ));
            }
            Err(reason) => {
                if !announced {
                    ctx.event(
                        EventType::Warning,
                        "PreCheckWaiting",
                        &format!("waiting before restarting {}: {reason}", batch.join(", ")),
                    );
                    announced = true;
                }
                ctx.info(&format!(
                    "pre-check before {} not yet passing: {reason}",
                    batch.join(", ")
                ));
                // The database is polled (it has no watch); Kubernetes state is always watched.
                ctx.sleep(delay)?;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn member_span<'h>(ctx: &Context<'h>, name: &str, role: &str) -> Span<'h> {
    ctx.span(
        "restart-member",
        &[
            ("k8s.pod.name", json!(name)),
            ("dbops.member.role", json!(role)),
        ],
    )
}

/// A member whose restart has begun.
struct Restarting<'m, 'h> {
    member: &'m Member,
    old_uid: Option<String>,
    role: String,
    span: Span<'h>,
}

/// Finish a member whose restart was started (possibly by an earlier run).
fn finish_member(
    ctx: &Context<'_>,
    workload: &Workload,
    wanted: &Wanted,
    timeout: Duration,
    saved: &mut Saved,
    restarting: Restarting<'_, '_>,
) -> StepResult<()> {
    let Restarting {
        member,
        old_uid,
        role,
        span,
    } = restarting;
    let back = BackWhen::new(workload, member.ordinal, old_uid, wanted);
    match restart::wait_back(ctx, &workload.namespace, &member.name, &back, timeout) {
        Ok(seconds) => {
            saved.in_flight.remove(&member.name);
            saved.done.push(Done {
                name: member.name.clone(),
                seconds,
                role: role.clone(),
            });
            ctx.save_state(saved)?;
            ctx.event(
                EventType::Normal,
                "MemberRestarted",
                &format!("{} ({role}) back Ready after {seconds:.1}s", member.name),
            );
            span.end();
            Ok(())
        }
        Err(err) => {
            ctx.event(EventType::Warning, &err.reason, &err.message);
            span.fail(&err.message);
            Err(err)
        }
    }
}

fn by_deletion(
    ctx: &Context<'_>,
    config: &Config,
    target: &Target,
    settings: &ProbeSettings,
    wanted: &Wanted,
    saved: &mut Saved,
) -> StepResult<()> {
    let strategy = members::profile(settings.engine).order;
    loop {
        ctx.check_deadline()?;
        let workload = cluster::load_workload(ctx, target)?;
        let members = cluster::load_members(ctx, &workload)?;

        // A run that stopped mid-restart: finish those members first.
        for (name, old_uid) in saved.in_flight.clone() {
            let Some(member) = members.iter().find(|m| m.name == name) else {
                saved.in_flight.remove(&name);
                continue;
            };
            if member.uid() == Some(old_uid.as_str()) {
                restart::delete_pod(ctx, &workload.namespace, &name, Some(&old_uid))?;
            }
            ctx.info(&format!(
                "resuming: waiting for {name}, restarted by an earlier attempt"
            ));
            let span = member_span(ctx, &name, "resumed");
            let restarting = Restarting {
                member,
                old_uid: Some(old_uid),
                role: "resumed".into(),
                span,
            };
            finish_member(
                ctx,
                &workload,
                wanted,
                config.member_timeout.get(),
                saved,
                restarting,
            )?;
        }

        let remaining = remaining_members(ctx, &members, wanted, saved)?;
        if remaining.is_empty() {
            return Ok(());
        }
        let remaining_owned: Vec<Member> = remaining.iter().map(|m| (*m).clone()).collect();
        let prober = settings.prober(&workload);
        let (roles, problems) = prober.roles(&remaining_owned);
        for (name, problem) in &problems {
            ctx.warn(&format!("could not learn the role of {name}: {problem}"));
        }
        let engine_members: Vec<EngineMember> = remaining
            .iter()
            .map(|m| EngineMember {
                name: m.name.clone(),
                ordinal: Some(m.ordinal),
                role: roles
                    .get(&m.name)
                    .copied()
                    .unwrap_or(members::MemberRole::Unknown),
            })
            .collect();
        let order = plan::order(strategy, &engine_members, &config.order);
        let batch = plan::next_batch(&order, config.max_unavailable);
        ctx.info(&format!(
            "next: {} (remaining order: {})",
            batch.join(", "),
            order.join(", ")
        ));
        wait_pre_check(ctx, settings, &workload, &batch)?;

        let mut started = Vec::new();
        for name in &batch {
            let Some(member) = remaining.iter().find(|m| &m.name == name) else {
                continue;
            };
            let role = plan::role_name(
                roles
                    .get(name)
                    .copied()
                    .unwrap_or(members::MemberRole::Unknown),
            );
            let span = member_span(ctx, name, &role);
            let old_uid = member.uid().map(str::to_string);
            if let Some(uid) = &old_uid {
                saved.in_flight.insert(name.clone(), uid.clone());
                ctx.save_state(saved)?;
            }
            ctx.event(
                EventType::Normal,
                "MemberRestarting",
                &format!("restarting {name} ({role}) by deleting its pod"),
            );
            restart::delete_pod(ctx, &workload.namespace, name, old_uid.as_deref())?;
            started.push(Restarting {
                member,
                old_uid,
                role,
                span,
            });
        }
        for restarting in started {
            finish_member(
                ctx,
                &workload,
                wanted,
                config.member_timeout.get(),
                saved,
                restarting,
            )?;
        }
    }
}

fn by_template(
    ctx: &Context<'_>,
    config: &Config,
    target: &Target,
    settings: &ProbeSettings,
    wanted: &Wanted,
    saved: &mut Saved,
) -> StepResult<()> {
    let strategy = members::profile(settings.engine).order;
    if strategy != OrderStrategy::HighestOrdinalFirst {
        ctx.warn(&format!(
            "mode = \"template\" restarts highest ordinal first, not in the {} order ({strategy:?}); use mode = \"delete\" for that",
            settings.engine
        ));
    }
    let mut workload = cluster::load_workload(ctx, target)?;
    if saved.template.is_none() {
        if workload.strategy != "RollingUpdate" {
            return Err(StepError::permanent(
                "UnsupportedUpdateStrategy",
                format!(
                    "{} {} uses updateStrategy {}; mode = \"template\" needs RollingUpdate (use mode = \"delete\")",
                    workload.kind, workload.name, workload.strategy
                ),
            ));
        }
        let state = TemplateState {
            original_partition: workload.partition,
            stamp: format!("{}.{}", ctx.run_id(), ctx.step_id()),
        };
        saved.template = Some(state.clone());
        ctx.save_state(saved)?;
        workload = restart::bump_template(
            ctx,
            target,
            &workload,
            &config.restart_annotation,
            &state.stamp,
            config.member_timeout.get(),
        )?;
    }
    let rolling = Wanted {
        rolling_revision: workload.update_revision.clone(),
        config_hash: wanted.config_hash.clone(),
    };
    loop {
        ctx.check_deadline()?;
        let members = cluster::load_members(ctx, &workload)?;
        let mut remaining = remaining_members(ctx, &members, &rolling, saved)?;
        if remaining.is_empty() {
            break;
        }
        remaining.sort_by_key(|m| std::cmp::Reverse(m.ordinal));
        let batch: Vec<&Member> = remaining
            .into_iter()
            .take(config.max_unavailable.max(1) as usize)
            .collect();
        let names: Vec<String> = batch.iter().map(|m| m.name.clone()).collect();
        wait_pre_check(ctx, settings, &workload, &names)?;
        let mut started = Vec::new();
        for member in &batch {
            let span = member_span(ctx, &member.name, "member");
            if let Some(uid) = member.uid() {
                saved.in_flight.insert(member.name.clone(), uid.to_string());
            }
            ctx.event(
                EventType::Normal,
                "MemberRestarting",
                &format!(
                    "rolling {} to revision {}",
                    member.name,
                    workload.update_revision.as_deref().unwrap_or("?")
                ),
            );
            started.push(Restarting {
                member,
                old_uid: member.uid().map(str::to_string),
                role: "member".into(),
                span,
            });
        }
        ctx.save_state(saved)?;
        let lowest = batch.iter().map(|m| m.ordinal).min().unwrap_or(0);
        workload = restart::set_partition(
            ctx,
            target,
            Some(i64::from(lowest)),
            config.member_timeout.get(),
        )?;
        for restarting in started {
            finish_member(
                ctx,
                &workload,
                &rolling,
                config.member_timeout.get(),
                saved,
                restarting,
            )?;
        }
    }
    if let Some(template) = &saved.template
        && workload.partition != template.original_partition
    {
        restart::set_partition(
            ctx,
            target,
            template.original_partition,
            config.member_timeout.get(),
        )?;
    }
    Ok(())
}

/// Durations per member, for tests and benchmarks reading the outputs.
pub fn parse_member_seconds(text: &str) -> BTreeMap<String, f64> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(name, secs)| Some((name.to_string(), secs.parse().ok()?)))
        .collect()
}
