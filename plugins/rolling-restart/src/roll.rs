//! The restart loops: delete mode (engine order, pre-checks, one batch at a
//! time) and template mode (partition steps), both resumable from the
//! durable state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dbops_engines::members::{self, Member as EngineMember, MemberRole, OrderStrategy};
use dbops_plugin_sdk::serde_json::json;
use dbops_plugin_sdk::{Context, EventType, Outputs, Span, StepError, StepResult, Target};
use dbops_probes::cluster::{self, Member, Workload};

use crate::config::{Config, Mode, PreCheckChoice};
use crate::plan::{self, Done, MemberFacts, Saved, Skip, TemplateState, Wanted};
use crate::probing::ProbeSettings;
use crate::restart::{self, BackWhen};

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
    let span = ctx.span("pre-check", &[("dbops.members", json!(batch.join(",")))]);
    let result = retry_pre_check(ctx, settings, workload, batch);
    match &result {
        Ok(()) => span.end(),
        Err(err) => span.fail(&err.message),
    }
    result
}

fn retry_pre_check(
    ctx: &Context<'_>,
    settings: &ProbeSettings,
    workload: &Workload,
    batch: &[String],
) -> StepResult<()> {
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
    /// resourceVersion of this attempt's deletion of the old pod, if it
    /// deleted it (the wait watches from there).
    deleted_at: Option<String>,
    role: String,
    span: Span<'h>,
}

/// Finish a member whose restart was started (possibly by an earlier run):
/// wait until it is back, then move it from `in_flight` to `done` in
/// `saved`. The caller persists that with its next write (see
/// [`by_deletion`], [`by_template`]).
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
        deleted_at,
        role,
        mut span,
    } = restarting;
    let back = BackWhen::new(workload, member.ordinal, old_uid, wanted);
    let namespace = &workload.namespace;
    match restart::wait_back(
        ctx,
        namespace,
        &member.name,
        &back,
        deleted_at.as_deref(),
        timeout,
    ) {
        Ok(seconds) => {
            saved.in_flight.remove(&member.name);
            saved.done.push(Done {
                name: member.name.clone(),
                seconds,
                role: role.clone(),
            });
            ctx.event(
                EventType::Normal,
                "MemberRestarted",
                &format!("{} ({role}) back Ready after {seconds:.1}s", member.name),
            );
            span.set("dbops.member.ready_seconds", seconds);
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

/// Ask the remaining members their roles and order them: the pipeline's
/// `order` first, then the engine's order.
fn decide_order(
    ctx: &Context<'_>,
    config: &Config,
    settings: &ProbeSettings,
    workload: &Workload,
    remaining: &[&Member],
) -> (Vec<String>, BTreeMap<String, MemberRole>) {
    let strategy = members::profile(settings.engine).order;
    let owned: Vec<Member> = remaining.iter().map(|m| (*m).clone()).collect();
    let (roles, problems) = settings.prober(workload).roles(&owned);
    for (name, problem) in &problems {
        ctx.warn(&format!("could not learn the role of {name}: {problem}"));
    }
    let engine_members: Vec<EngineMember> = remaining
        .iter()
        .map(|m| EngineMember {
            name: m.name.clone(),
            ordinal: Some(m.ordinal),
            role: roles.get(&m.name).copied().unwrap_or(MemberRole::Unknown),
        })
        .collect();
    (plan::order(strategy, &engine_members, &config.order), roles)
}

/// Dry run: report the order the step would use, touching nothing.
pub fn plan_only(
    ctx: &Context<'_>,
    config: &Config,
    settings: &ProbeSettings,
    workload: &Workload,
    wanted: &Wanted,
) -> StepResult<Outputs> {
    let members = cluster::load_members(ctx, workload)?;
    let mut saved = Saved::default();
    let remaining: Vec<&Member> = members
        .iter()
        .filter(|m| plan::skip_reason(&facts(m, wanted), wanted, &saved).is_none())
        .collect();
    saved.skipped = members
        .iter()
        .filter(|m| !remaining.iter().any(|r| r.name == m.name))
        .map(|m| m.name.clone())
        .collect();
    let order = match config.mode {
        Mode::Delete => decide_order(ctx, config, settings, workload, &remaining).0,
        Mode::Template => {
            let mut names: Vec<&Member> = remaining.clone();
            names.sort_by_key(|m| std::cmp::Reverse(m.ordinal));
            names.into_iter().map(|m| m.name.clone()).collect()
        }
    };
    ctx.info(&format!(
        "dry run: would restart {} in this order (max {} at a time), skipping [{}]",
        order.join(", "),
        config.max_unavailable,
        saved.skipped.join(", ")
    ));
    let mut outputs = Outputs::new();
    outputs.insert("order".into(), json!(order.join(",")));
    outputs.insert("restarted".into(), json!(0));
    outputs.insert("skipped".into(), json!(saved.skipped.join(",")));
    Ok(outputs)
}

/// What [`finish_in_flight`] does with a member still on its old pod.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unreplaced {
    /// Delete the pod (delete mode: the earlier attempt stopped before).
    Delete,
    /// Leave it: it is in the next batch the partition rolls (template mode).
    LeaveInBatch,
}

/// Members an earlier attempt left in flight (`saved.in_flight`, with their
/// old pod uids): wait for each replaced one and record it as restarted;
/// forget those that no longer exist. True if `saved` changed.
fn finish_in_flight(
    ctx: &Context<'_>,
    workload: &Workload,
    members: &[Member],
    wanted: &Wanted,
    timeout: Duration,
    saved: &mut Saved,
    unreplaced: Unreplaced,
) -> StepResult<bool> {
    let mut changed = false;
    for (name, old_uid) in saved.in_flight.clone() {
        let Some(member) = members.iter().find(|m| m.name == name) else {
            saved.in_flight.remove(&name);
            changed = true;
            continue;
        };
        let mut deleted_at = None;
        if member.uid() == Some(old_uid.as_str()) {
            if unreplaced == Unreplaced::LeaveInBatch {
                continue;
            }
            deleted_at = restart::delete_pod(ctx, &workload.namespace, &name, Some(&old_uid))?;
        }
        ctx.info(&format!(
            "resuming: waiting for {name}, restarted by an earlier attempt"
        ));
        let restarting = Restarting {
            member,
            old_uid: Some(old_uid),
            deleted_at,
            role: "resumed".into(),
            span: member_span(ctx, &name, "resumed"),
        };
        finish_member(ctx, workload, wanted, timeout, saved, restarting)?;
        changed = true;
    }
    Ok(changed)
}

/// Delete mode: restart batches in the engine's order until none is left.
///
/// The state is written once per batch, before its pods are deleted (the
/// members about to restart, with their old pod uids, and every member
/// finished so far). A member that is back but not yet written as done is
/// still "in flight" for a resumed attempt, which waits for it (it is
/// already back) and records it: nothing is restarted twice, one journal
/// write per member fewer. The last members finished are written when no
/// member is left.
///
/// The set is read again before every batch (a scale or a new revision
/// during the step is seen); `workload` is the step's own first read,
/// used for the first batch.
pub fn by_deletion(
    ctx: &Context<'_>,
    config: &Config,
    target: &Target,
    settings: &ProbeSettings,
    workload: Workload,
    wanted: &Wanted,
    saved: &mut Saved,
) -> StepResult<()> {
    // Members finished since the state was last written.
    let mut unsaved = false;
    let mut first_read = Some(workload);
    loop {
        ctx.check_deadline()?;
        let workload = match first_read.take() {
            Some(workload) => workload,
            None => cluster::load_workload(ctx, target)?,
        };
        let members = cluster::load_members(ctx, &workload)?;

        // A run that stopped mid-restart: finish those members first.
        unsaved |= finish_in_flight(
            ctx,
            &workload,
            &members,
            wanted,
            config.member_timeout.get(),
            saved,
            Unreplaced::Delete,
        )?;

        let remaining = remaining_members(ctx, &members, wanted, saved)?;
        if remaining.is_empty() {
            if unsaved {
                ctx.save_state(saved)?;
            }
            return Ok(());
        }
        let (order, roles) = decide_order(ctx, config, settings, &workload, &remaining);
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
                unsaved = false;
            }
            ctx.event(
                EventType::Normal,
                "MemberRestarting",
                &format!("restarting {name} ({role}) by deleting its pod"),
            );
            let deleted_at =
                restart::delete_pod(ctx, &workload.namespace, name, old_uid.as_deref())?;
            started.push(Restarting {
                member,
                old_uid,
                deleted_at,
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
            unsaved = true;
        }
    }
}

/// Template mode: bump the template annotation, then lower the partition one batch at a time.
///
/// `workload` is the step's own first read of the set.
pub fn by_template(
    ctx: &Context<'_>,
    config: &Config,
    target: &Target,
    settings: &ProbeSettings,
    mut workload: Workload,
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
    // Members finished since the state was last written (see below).
    let mut unsaved = false;
    loop {
        ctx.check_deadline()?;
        let members = cluster::load_members(ctx, &workload)?;
        // The state is written once per batch, before the partition moves.
        // An attempt that stopped after a member came back, before the next
        // write, left it "in flight" with its old pod uid: a member already
        // replaced is waited for and recorded as restarted (not as skipped
        // for being on the new revision); one not replaced yet stays in the
        // next batch.
        unsaved |= finish_in_flight(
            ctx,
            &workload,
            &members,
            &rolling,
            config.member_timeout.get(),
            saved,
            Unreplaced::LeaveInBatch,
        )?;
        let mut remaining = remaining_members(ctx, &members, &rolling, saved)?;
        if remaining.is_empty() {
            if unsaved {
                ctx.save_state(saved)?;
            }
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
                deleted_at: None,
                role: "member".into(),
                span,
            });
        }
        ctx.save_state(saved)?;
        unsaved = false;
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
            )
            .map_err(|mut err| {
                err.message.push_str(&format!(
                    "; the update partition stays at {lowest} so the controller rolls no other member onto revision {}; set it back (original: {}) once the cause is fixed",
                    workload.update_revision.as_deref().unwrap_or("?"),
                    saved
                        .template
                        .as_ref()
                        .and_then(|t| t.original_partition)
                        .map_or("unset".to_string(), |p| p.to_string())
                ));
                err
            })?;
            unsaved = true;
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
