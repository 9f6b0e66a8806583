//! A [`kube::Client`] over HTTP/2, shared by the `dbops` runner and the
//! sandbox's controllers (both are clients of an API server that offers h2).

/// Interval of HTTP/2 keep-alive pings: a dead connection (and so a watch
/// that would otherwise wait forever) is noticed within interval + timeout.
const KEEP_ALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a keep-alive ping may go unanswered.
const KEEP_ALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A [`kube::Client`] that speaks HTTP/2 when the API server offers it
/// (ALPN; every kube-apiserver does), HTTP/1.1 otherwise.
///
/// kube's own client speaks HTTP/1.1 only: every request in flight needs a
/// connection of its own, and every watch a run stops (one per member
/// restart) closes its connection, so the next concurrent request pays a
/// new TCP connection and TLS handshake. Over HTTP/2 the run's requests,
/// Events and watches share one connection, as client-go's do. The stack
/// is kube's minus its HTTP tracing layer: base URI, retries of 429/503/504,
/// credentials (tokens are re-read as kube does), impersonation headers,
/// the kubeconfig's TLS.
pub fn client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use kube::client::ConfigExt;
    use tower::{BoxError, ServiceBuilder};

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(config.connect_timeout);
    let tls = config.rustls_client_config()?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let https = match &config.tls_server_name {
        Some(name) => {
            let name = rustls_pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                kube::Error::Service(format!("invalid tls-server-name {name:?}: {e}").into())
            })?;
            https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => https,
    };
    let https = https.enable_all_versions().wrap_connector(http);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .http2_keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .build(https);
    // kube's default: 429, 503 and 504 are retried with backoff (honouring
    // Retry-After) below every caller, plugins' requests and watches included.
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(client);
    Ok(kube::Client::new(service, config.default_namespace))
}
