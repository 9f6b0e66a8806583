//! dbops-sandbox: a Kubernetes API server on loopback, with StatefulSet,
//! kubelet and cert-manager stand-ins, RBAC and fault injection, so tests,
//! benchmarks and `dbops sandbox` users have a cluster without a cluster.
//!
//! Real clients talk to it unchanged: the `kube` client (including
//! kube-runtime's watcher) and `kubectl` (get with the usual columns, list,
//! watch, patch, apply, apply --server-side, create
//! namespace/configmap/secret/serviceaccount, delete, auth can-i, `--as`).
//!
//! It listens twice on loopback: plain HTTP at [`Sandbox::url`] (what the
//! controllers, the plugin test host and most tests use) and HTTPS at
//! [`Sandbox::https_url`] with a CA made at start ([`Sandbox::ca_pem`]).
//! Kubeconfigs point at the HTTPS endpoint, because kubectl sends no
//! credentials over plain HTTP.
//!
//! # Start, connect, seed
//!
//! ```no_run
//! use dbops_sandbox::{Sandbox, SandboxConfig};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Synchronous tests: the sandbox runs on its own runtime thread.
//! // (In async code: `Sandbox::start(config).await`.)
//! let sandbox = Sandbox::start_background(SandboxConfig::default())?;
//! sandbox.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"), None)?; // admin
//! sandbox.apply(json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "cfg", "namespace": "db"},
//!     "data": {"a": "1"}
//! }))?; // create-or-replace as admin, status kept
//! let cm = sandbox.get("v1", "ConfigMap", "db", "cfg")?;
//! assert!(cm.is_some());
//! // A least-privilege identity: RBAC decides what it may do.
//! let token = sandbox.service_account_token("db", "deploy");
//! sandbox.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig-deploy"), Some(&token))?;
//! # Ok(()) }
//! ```
//!
//! With the `kube` crate: read the written kubeconfig
//! (`kube::config::Kubeconfig::read_from` +
//! `kube::Config::from_custom_kubeconfig`), or build a `kube::Config` with
//! `cluster_url = sandbox.url()` and the admin token.
//!
//! # API semantics
//!
//! Discovery; get, list (label selectors incl. set-based, field selectors on
//! any field path, limit/continue), create (generateName, uid,
//! creationTimestamp, generation), update (stale `resourceVersion` -> 409),
//! patch (JSON, merge, strategic merge with merge keys, server-side apply
//! with field managers, 409 on conflicts between Apply managers unless forced),
//! `/status` and `/scale` subresources (`metadata.generation` changes only
//! when the spec changes), delete with preconditions, finalizers and pod
//! grace, deletecollection, ownerReference garbage collection (background
//! and orphan), namespace deletion deleting the contents, watches from a
//! resourceVersion with bookmarks and 410 Gone (as an ERROR event) beyond
//! [`SandboxConfig::watch_history`] events (or after
//! [`Sandbox::compact_watch_history`]). Namespaces exist implicitly: the
//! first object in a namespace creates the Namespace object.
//!
//! **Pod deletion contract** (for the kubelet stand-in): deleting a pod bound
//! to a node (`spec.nodeName` set; the kubelet sets it to `sandbox-node`)
//! that is not Succeeded/Failed marks it terminating (`deletionTimestamp`,
//! `deletionGracePeriodSeconds` = the grace period, default
//! `terminationGracePeriodSeconds`). The kubelet stops the pod and removes
//! it with a delete with `gracePeriodSeconds=0`; if nobody does, the server
//! removes it when the grace period ends. Unbound pods and grace 0 are
//! deleted at once.
//!
//! # Identities
//!
//! - admin ([`Sandbox::admin_token`]): `system:masters`, never denied;
//! - ServiceAccounts ([`Sandbox::service_account_token`]) and users
//!   ([`Sandbox::user_token`]): authorized by Role/ClusterRole rules bound
//!   by RoleBinding/ClusterRoleBinding, 403 messages as the real server's;
//! - the controllers' system identity: no RBAC, no faults.
//!
//! Unknown tokens get 401. ClusterRoles `cluster-admin`, `admin`, `edit`
//! and `view` exist from the start (simplified: no aggregation). The admin
//! may impersonate (`Impersonate-User`, kubectl `--as`);
//! SelfSubjectAccessReviews answer `kubectl auth can-i`.
//!
//! # Faults
//!
//! ```no_run
//! # let sandbox = dbops_sandbox::Sandbox::start_background(Default::default()).unwrap();
//! use dbops_sandbox::faults::{FaultAction, FaultRule};
//! let faults = sandbox.faults();
//! let id = faults.add(FaultRule::new(FaultAction::TooManyRequests { retry_after_secs: 1 }).verb("list").times(1));
//! faults.add(FaultRule::new(FaultAction::CloseWatch { after_events: Some(3), after: None }).resource("pods"));
//! assert_eq!(faults.fired(id), 0);
//! faults.clear();
//! ```
//!
//! Rules match verb / resource / namespace / name, fire with a probability
//! from a generator seeded by [`SandboxConfig::fault_seed`] and optionally a
//! limited number of times. Actions: latency, 429 with Retry-After, 500,
//! 409 Conflict (update/patch), closed watch streams.
//!
//! # Serving for users
//!
//! [`serve_forever`] is what `dbops sandbox` calls: it starts the sandbox,
//! writes a kubeconfig and runs until Ctrl-C.
//!
//! # Where to look
//!
//! `registry.rs` is the table of resources; `store/` the objects, history
//! and deletion; `server/` routing, verbs, watches and discovery; `patch/`
//! the patch types; `auth.rs` and `rbac.rs` identities and authorization;
//! `faults.rs` fault injection; `controllers/` the stand-in controllers.

pub mod auth;
mod config;
pub mod controllers;
mod defaults;
mod error;
pub mod faults;
mod kubeconfig;
mod listen;
mod meta;
pub mod patch;
pub mod rbac;
pub mod registry;
mod sandbox;
mod seed;
pub mod selector;
mod serve;
mod server;
pub mod status;
pub mod store;
mod tls;

pub use config::SandboxConfig;
pub use controllers::KubeletConfig;
pub use error::{Error, Result};
pub use faults::{FaultAction, FaultRule, Faults};
pub use registry::ResourceDef;
pub use sandbox::Sandbox;
pub use seed::NODE_NAME;
pub use serve::serve_forever;
