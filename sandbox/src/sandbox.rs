//! [`Sandbox`]: start, connect, seed, inspect, shut down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::config::SandboxConfig;
use crate::controllers::{self, ControllerContext};
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::registry::{Registry, ResourceDef};
use crate::server::{self, AppState};
use crate::store::{Filter, Store, Subresource, WriteOptions};
use crate::{listen, meta, seed, tls};

/// A running sandbox: API server plus controllers. Dropping it (or
/// [`Sandbox::shutdown`]) stops everything.
#[derive(Debug)]
pub struct Sandbox {
    url: String,
    https_url: String,
    store: Arc<Store>,
    tokens: Arc<Tokens>,
    faults: Faults,
    shutdown: CancellationToken,
    ca_pem: String,
    state_dir: PathBuf,
    tasks: Vec<JoinHandle<()>>,
    background: Option<std::thread::JoinHandle<()>>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl Sandbox {
    /// Starts the sandbox on the caller's tokio runtime.
    pub async fn start(config: SandboxConfig) -> Result<Self> {
        let registry = Registry::new(&config.custom_resources);
        let store = Arc::new(Store::new(registry, config.watch_history));
        for obj in seed::objects() {
            apply_to(&store, obj)?;
        }
        let tokens = Arc::new(Tokens::new());
        let faults = Faults::new(config.fault_seed);
        for rule in &config.faults {
            faults.add(rule.clone());
        }
        let (state_dir, temp_dir) = state_dir(&config)?;
        // Plain HTTP on `listen` (url(): most tests), HTTPS on a second
        // port for kubeconfigs (kubectl only sends credentials over TLS)
        // and the controllers (HTTP/2 by ALPN).
        let bind_err = |source| Error::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let https_listener = TcpListener::bind((addr.ip(), 0)).await.map_err(bind_err)?;
        let https_addr = https_listener.local_addr().map_err(bind_err)?;
        let tls = tls::generate()?;
        let shutdown = CancellationToken::new();
        let router = server::router(AppState {
            store: store.clone(),
            tokens: tokens.clone(),
            faults: faults.clone(),
            shutdown: shutdown.clone(),
            bookmark_interval: config.bookmark_interval,
            address: addr.to_string(),
            state_dir: state_dir.clone(),
        });
        let url = format!("http://{addr}");
        let https_url = format!("https://{https_addr}");
        let mut tasks = vec![
            tokio::spawn(listen::serve_http(
                listener,
                router.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(listen::serve_https(
                https_listener,
                router,
                tls.config,
                shutdown.clone(),
            )),
        ];
        if config.controllers {
            // Over TLS, as the controller manager and the kubelet talk to
            // a real API server: ALPN gives them HTTP/2 (one connection for
            // every controller's requests and watches). The plain endpoint
            // speaks HTTP/1.1 to a client that does not ask for h2.
            let ctx = ControllerContext {
                base_url: https_url.clone(),
                token: tokens.system().to_string(),
                kubelet: config.kubelet.clone(),
                state_dir: state_dir.clone(),
            };
            tasks.push(tokio::spawn(controllers::run(ctx)));
        }
        tracing::info!(%url, "sandbox API server listening");
        Ok(Self {
            url,
            https_url,
            store,
            tokens,
            faults,
            shutdown,
            ca_pem: tls.ca_pem,
            state_dir,
            tasks,
            background: None,
            _temp_dir: temp_dir,
        })
    }

    /// Starts the sandbox on its own runtime thread (for synchronous tests
    /// and plugin hosts without tokio).
    pub fn start_background(config: SandboxConfig) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("dbops-sandbox".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(Error::Runtime(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = Sandbox::start(config).await;
                    let token = started.as_ref().ok().map(|s| s.shutdown.clone());
                    let _ = tx.send(started);
                    if let Some(token) = token {
                        token.cancelled().await;
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(Error::Runtime)?;
        let mut sandbox = rx.recv().map_err(|e| Error::Background(e.to_string()))??;
        sandbox.background = Some(thread);
        Ok(sandbox)
    }

    /// Base URL of the plain HTTP endpoint, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Base URL of the HTTPS endpoint (same API, certificate signed by
    /// [`Sandbox::ca_pem`]), `https://127.0.0.1:PORT2`. Kubeconfigs point
    /// here.
    pub fn https_url(&self) -> String {
        self.https_url.clone()
    }

    /// The admin bearer token (group `system:masters`, never denied).
    pub fn admin_token(&self) -> String {
        self.tokens.admin().to_string()
    }

    /// The CA certificate (PEM) of the HTTPS endpoint.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The directory where per-pod state lives.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The bearer token of ServiceAccount `namespace/name`: requests with it
    /// are user `system:serviceaccount:NAMESPACE:NAME`, authorized by RBAC.
    /// (The ServiceAccount object itself need not exist.)
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        self.tokens.service_account(namespace, name)
    }

    /// A token for an arbitrary user and groups, authorized by RBAC.
    pub fn user_token(&self, user: &str, groups: &[&str]) -> String {
        self.tokens.user(user, groups)
    }

    /// Writes a kubeconfig for this sandbox (context `dbops-sandbox`,
    /// namespace `default`, file mode 0600); `token` None = the admin token.
    /// It points at the HTTPS endpoint with `certificate-authority-data`,
    /// because kubectl sends no credentials over plain HTTP; the kube client
    /// reads it as is.
    pub fn write_kubeconfig(&self, path: &Path, token: Option<&str>) -> std::io::Result<()> {
        let token = token.map_or_else(|| self.admin_token(), str::to_string);
        crate::kubeconfig::write(
            path,
            &crate::kubeconfig::render(&self.https_url, &token, Some(&self.ca_pem), "default"),
        )
    }

    /// The fault rules; add and clear them at any time.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// Creates or replaces an object as admin, synchronously, bypassing
    /// faults (for seeding tests). Unlike the HTTP API, a given `status` is
    /// stored too. Namespaced objects without a namespace go to `default`.
    pub fn apply(&self, value: Value) -> Result<Value> {
        apply_to(&self.store, value)
    }

    /// One object, or None; synchronous, bypassing RBAC and faults.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let def = self.def(api_version, kind)?;
        match self.store.get(&def, namespace, name) {
            Ok(obj) => Ok(Some((*obj.value).clone())),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// All objects of a kind in a namespace (None = all namespaces).
    pub fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>> {
        let def = self.def(api_version, kind)?;
        let filter = Filter {
            namespace: namespace.map(str::to_string),
            ..Filter::default()
        };
        let page = self.store.list(&def, &filter, None, None)?;
        Ok(page.items.into_iter().map(|o| (*o.value).clone()).collect())
    }

    /// Deletes an object as admin (finalizers and pod grace apply).
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<()> {
        let def = self.def(api_version, kind)?;
        self.store
            .delete(&def, namespace, name, &Default::default())?;
        Ok(())
    }

    /// Forgets the kept watch history, so a watch from any earlier
    /// resourceVersion gets 410 Gone (like an etcd compaction).
    pub fn compact_watch_history(&self) {
        self.store.compact();
    }

    /// Stops the server, the watches and the controllers.
    pub fn shutdown(self) {
        drop(self);
    }

    fn def(&self, api_version: &str, kind: &str) -> Result<Arc<ResourceDef>> {
        lookup(&self.store, api_version, kind)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for task in &self.tasks {
            task.abort();
        }
        if let Some(thread) = self.background.take() {
            let _ = thread.join();
        }
    }
}

/// The configured state directory, or a temporary one removed on drop.
fn state_dir(config: &SandboxConfig) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &config.state_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(Error::StateDir)?;
            Ok((dir.clone(), None))
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("dbops-sandbox-")
                .tempdir()
                .map_err(Error::StateDir)?;
            Ok((dir.path().to_path_buf(), Some(dir)))
        }
    }
}

fn lookup(store: &Store, api_version: &str, kind: &str) -> Result<Arc<ResourceDef>> {
    store
        .registry()
        .by_kind(api_version, kind)
        .cloned()
        .ok_or_else(|| Error::UnknownKind {
            api_version: api_version.into(),
            kind: kind.into(),
        })
}

/// Create-or-replace straight into the store, status included.
fn apply_to(store: &Arc<Store>, mut value: Value) -> Result<Value> {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let def = lookup(store, &api_version, &kind)?;
    let name = meta::name(&value)
        .ok_or_else(|| Error::MissingName { kind: kind.clone() })?
        .to_string();
    let ns = if def.namespaced {
        meta::meta_str(&value, "namespace")
            .unwrap_or("default")
            .to_string()
    } else {
        String::new()
    };
    meta::metadata_mut(&mut value).remove("resourceVersion");
    let opts = WriteOptions {
        dry_run: false,
        keep_status: true,
    };
    if store.get(&def, &ns, &name).is_err() {
        return Ok((*store.create(&def, &ns, value, &opts)?.value).clone());
    }
    let status = value.get("status").cloned();
    let mut obj = store.replace(&def, &ns, &name, Subresource::Main, &opts, |_| Ok(value))?;
    if def.status
        && let Some(status) = status
    {
        obj = store.replace(&def, &ns, &name, Subresource::Status, &opts, |cur| {
            let mut next = cur.clone();
            next["status"] = status;
            meta::metadata_mut(&mut next).remove("resourceVersion");
            Ok(next)
        })?;
    }
    Ok((*obj.value).clone())
}
