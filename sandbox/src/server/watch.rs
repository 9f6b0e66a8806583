//! Watch streams: newline-delimited `{"type":…,"object":…}` events from a
//! resourceVersion, with bookmarks, `sendInitialEvents`, `timeoutSeconds`,
//! 410 Gone as an ERROR event (like the real server), and injected stream
//! closes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::{BufMut as _, Bytes, BytesMut};
use http::{Response, StatusCode};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::{AppState, Call, bytes_response, table};
use crate::registry::ResourceDef;
use crate::status::{ApiError, ApiResult};
use crate::store::{Event, EventType, Filter};

/// Default `timeoutSeconds` when the client sends none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Starts a watch and returns the streaming response.
pub(crate) fn watch(
    state: &AppState,
    def: &Arc<ResourceDef>,
    call: &Call,
    filter: Filter,
) -> ApiResult<Response<Body>> {
    let q = &call.query;
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let from_rv = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") => None,
        Some(_) if send_initial => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let start = match state.store.watch(def, &filter, from_rv) {
        Ok(start) => start,
        Err(e) if e.code == 410 => {
            let line = format!("{{\"type\":\"ERROR\",\"object\":{}}}\n", e.to_status());
            return Ok(bytes_response(StatusCode::OK, Bytes::from(line)));
        }
        Err(e) => return Err(e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let stream = Stream {
        state: state.clone(),
        def: def.clone(),
        filter,
        tx,
        last_rv: from_rv.unwrap_or(0),
        sent: 0,
        close_after_events: call.close_watch.and_then(|c| c.0),
        table: table::wanted(&call.accept).then(|| call.query.get("includeObject").cloned()),
    };
    let deadline = call
        .close_watch
        .and_then(|c| c.1)
        .map_or(timeout, |d| d.min(timeout));
    tokio::spawn(stream.run(start, send_initial, bookmarks, deadline));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// One running watch.
struct Stream {
    state: AppState,
    def: Arc<ResourceDef>,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
    last_rv: u64,
    sent: usize,
    close_after_events: Option<usize>,
    /// Send objects as one-row Tables (`kubectl get -w`), with this
    /// `includeObject`.
    table: Option<Option<String>>,
}

impl Stream {
    async fn run(
        mut self,
        start: crate::store::WatchStart,
        send_initial: bool,
        bookmarks: bool,
        deadline: Duration,
    ) {
        let mut rx = start.rx;
        for event in &start.initial {
            if !self.send_event(event).await {
                return;
            }
        }
        if send_initial && !self.send_bookmark(start.rv, true).await {
            return;
        }
        self.last_rv = self.last_rv.max(start.rv);
        let sleep = tokio::time::sleep(deadline);
        tokio::pin!(sleep);
        let mut tick = tokio::time::interval(self.state.bookmark_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(event) => if !self.send_event(&event).await { return },
                    // Too slow a reader: end the stream; the client resumes
                    // from its last resourceVersion.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let position = self.state.store.watch_position(&self.def);
                    loop {
                        match rx.try_recv() {
                            Ok(event) => if !self.send_event(&event).await { return },
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            // Lagged or closed: events were lost, no bookmark.
                            Err(_) => return,
                        }
                    }
                    if !self.send_bookmark(position.max(self.last_rv), false).await { return }
                }
                () = &mut sleep => return,
                () = self.state.shutdown.cancelled() => return,
                () = self.tx.closed() => return,
            }
        }
    }

    /// Sends an event as seen through the filter; false when the stream
    /// must end (client gone or injected close).
    async fn send_event(&mut self, event: &Event) -> bool {
        if event.rv <= self.last_rv && event.kind != EventType::Added {
            return true;
        }
        self.last_rv = self.last_rv.max(event.rv);
        let now = self.filter.matches(&event.obj.value);
        let before = event
            .prev
            .as_ref()
            .is_some_and(|p| self.filter.matches(&p.value));
        let kind = match event.kind {
            EventType::Added if now => "ADDED",
            EventType::Modified if now && before => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => "DELETED",
            EventType::Deleted if now || before => "DELETED",
            _ => return true,
        };
        let mut buf = BytesMut::with_capacity(event.obj.json.len() + 32);
        buf.put_slice(b"{\"type\":\"");
        buf.put_slice(kind.as_bytes());
        buf.put_slice(b"\",\"object\":");
        match &self.table {
            Some(include) => {
                let meta = json!({"resourceVersion": event.rv.to_string()});
                let t = table::table(&self.def, &[&event.obj.value], meta, include.as_deref());
                buf.put_slice(&serde_json::to_vec(&t).unwrap_or_default());
            }
            None => buf.put_slice(&event.obj.json),
        }
        buf.put_slice(b"}\n");
        if self.tx.send(buf.freeze()).await.is_err() {
            return false;
        }
        self.sent += 1;
        self.close_after_events.is_none_or(|n| self.sent < n)
    }

    async fn send_bookmark(&mut self, rv: u64, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let line = json!({"type": "BOOKMARK", "object": {"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta}});
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        self.tx.send(Bytes::from(bytes)).await.is_ok()
    }
}
