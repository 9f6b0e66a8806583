//! Pipelines: parse TOML with source positions, expand variables, validate
//! against the plugins' schemas. **Invariant**: nothing here does cluster
//! I/O; the only I/O is reading the pipeline file in [`load`].
//!
//! Where to start: [`load`] (or [`load_str`]) gives a [`Pipeline`] or every
//! [`Problem`] at once; [`check_against_plugins`] validates it against a
//! [`PluginCatalog`]; right before a step runs, the executor calls
//! [`should_run`] (its `when`) and [`resolve_step`] (its `with`, with the
//! outputs of earlier steps filled in).
//!
//! # The pipeline format
//!
//! ```toml
//! [pipeline]
//! name = "rotate-zookeeper-tls"     # required: 1-63 of [A-Za-z0-9-_.] (a label value)
//! description = "Rotate the server certificates"
//! operation = "rotate-tls"          # default: the name
//! on_failure = "rollback"           # "rollback" (default) | "halt"
//!
//! [variables]                       # optional: named values for ${vars.NAME}
//! issuer = "zk-ca"                  # a string, integer, float or boolean
//! restart = true
//! lifetime = { default = "2160h", description = "certificate lifetime" }
//! ca_secret = { description = "required: no default, pass --set ca_secret=..." }
//!
//! [target]                          # required
//! engine = "zookeeper"              # zookeeper | kafka | druid | perconaxtradb | generic
//! namespace = "${env.POD_NAMESPACE:-default}"
//! name = "zk"
//!
//! [target.workload]                 # optional
//! kind = "StatefulSet"              # default; or "PetSet" (KubeDB)
//! name = "zk"                       # default: target.name
//! api_version = "apps/v1"           # default: apps/v1, apps.k8s.appscode.com/v1 for PetSet
//!
//! [target.database]                 # optional: the database custom resource
//! api_version = "kubedb.com/v1"     # required
//! kind = "ZooKeeper"                # required
//! plural = "zookeepers"             # default: lowercase kind + "s"
//! name = "zk"                       # default: target.name
//!
//! [defaults]                        # optional
//! timeout = "10m"                   # per attempt; default 10m
//! retry = { attempts = 3, initial_backoff = "1s", max_backoff = "30s" }   # the defaults
//!
//! [[step]]
//! id = "cfg"
//! uses = "patch-config"
//! with = { mode = "merge", config = { "tickTime" = 2000 } }
//!
//! [[step]]
//! id = "cert"                       # required, unique: [a-z0-9][a-z0-9_-]*, at most 63
//! uses = "issue-cert"               # required: the plugin
//! description = "Issue new server certificates"
//! timeout = "15m"                   # default: [defaults] timeout
//! retry = { attempts = 5 }          # missing keys come from [defaults] retry
//! always = false                    # true: run even after a failure (e.g. resume)
//! when = "steps.cfg.outputs.restart_required == true"
//! sha256 = "<64 hex digits>"        # pin of the plugin file
//! [step.with]                       # the plugin's configuration, any TOML
//! action = "rotate"
//! dns_names = ["${target.name}-0.${target.name}-pods.${target.namespace}.svc"]
//! ```
//!
//! Durations are strings everywhere (`"500ms"`, `"30s"`, `"10m"`,
//! `"1h30m"`, `"2d"`) and must be positive. `retry.attempts` counts the
//! first try (1 = no retry, at most 100); `max_backoff` must be at least
//! `initial_backoff`.
//!
//! # Variables
//!
//! | syntax | value | allowed in |
//! |---|---|---|
//! | `${env.NAME}` | the environment variable; an error if unset | everywhere |
//! | `${env.NAME:-default}` | the default when unset *or empty* (as in sh) | everywhere |
//! | `${vars.NAME}` | a `[variables]` value, after `--set` | `[target]`, `with`, `when` |
//! | `${target.FIELD}` | `engine`, `namespace`, `name`, `workload.kind`, `workload.name`, `workload.api_version`, `database.*` | `with`, `when` |
//! | `${steps.ID.outputs.KEY}` | an output of an earlier step, at run time | `with` |
//! | `$${` | a literal `${` | everywhere |
//!
//! A string that is exactly one variable takes the variable's JSON type
//! (`max_unavailable = "${vars.surge}"` is an integer when `surge` is;
//! `"${steps.cfg.outputs.restart_required}"` a boolean); inside a longer
//! string the value is interpolated as text. `[variables]` defaults may
//! use `${env.*}` only; `[target]` may use `${env.*}` and `${vars.*}`.
//! The default of `${env.NAME:-default}` is literal text up to the `}`.
//! Anything that cannot resolve (unset environment variable without a
//! default, undeclared variable, unknown target field, an unknown or later
//! step) is a validation error pointing at the variable.
//!
//! `--set NAME=VALUE` (in [`LoadOptions::overrides`]) sets the variable
//! `NAME`, which must be declared in `[variables]`; the value is converted
//! to the type of the declared default (`--set restart=false` is a
//! boolean). `--set target.FIELD=VALUE` replaces a target field
//! (`target.namespace`, `target.workload.name`, `target.database.kind`,
//! ...). Values from `--set` are taken literally, not expanded. A variable
//! without a default must be set.
//!
//! Step outputs are expanded by [`resolve_step`] right before the step
//! runs; until then `with` holds the original text (what `dbops plan`
//! shows) and [`StepSpec::deferred`] lists the pointers. Plugins get those
//! pointers in `ValidateRequest::deferred` and must not judge the values.
//! A step that needs an output of a step that was skipped fails with a
//! message saying so; guard it with a `when`.
//!
//! # Conditions (`when`)
//!
//! A tiny expression language, see [`when`]: `steps.ID.outputs.KEY`
//! references (without `${}`), literals `true`, `false`, `null`, numbers
//! and `'text'`/`"text"`, operators `!`, `&&`, `||`, `==`, `!=`, `<`,
//! `<=`, `>`, `>=` and parentheses. `${vars.*}`, `${target.*}` and
//! `${env.*}` are substituted as text first. Only earlier steps may be
//! referenced. An output of a step that was skipped, or a key the step did
//! not produce, is `null`: false as a condition, so
//! `when = "steps.cert.outputs.changed"` skips the step when `cert` was
//! skipped. Strings and numbers are not conditions: compare them
//! (`steps.cfg.outputs.mode == 'merge'`). `always` steps honour `when` too,
//! and may test the run itself: `run.failed`, `run.rolled_back` (every
//! compensation succeeded) and `run.interrupted` are true only for the
//! `always` steps that run after a failure or a signal, so
//! `always = true` + `when = "run.rolled_back"` re-rolls the members onto
//! the configuration the rollback restored.
//!
//! # Problems
//!
//! Loading collects every problem at once and renders each as a titled
//! block (see [`problems`]): what is wrong, `file:line:column`, the source
//! line with the offending part underlined, the key path (`step[2].with.action`,
//! steps counted from 0), and a help line that often suggests the closest
//! valid name. [`check_against_plugins`] adds unknown plugins (with the
//! list of available ones), `with` tables that fail the plugin's JSON
//! Schema or its own `validate` (mapped from JSON pointers back to the
//! TOML key), and references to outputs a plugin does not declare.

mod check;
mod load;
pub mod model;
pub mod problems;
mod runtime;
mod steps;
mod target;
mod timing;
mod tree;
mod variables;
pub mod vars;
pub mod when;

pub use check::{PluginCatalog, check_against_plugins, compile_config_schema};
pub use dbops_plugin_sdk::protocol::Outputs;
pub use load::{EnvFn, LoadOptions, load, load_str};
pub use model::*;
pub use problems::{Problem, Problems};
pub use runtime::{evaluate_when, resolve_step, should_run};

#[cfg(test)]
mod tests;
