//! Watches through the real kube client: events after a resourceVersion,
//! 410 Gone for a compacted one, bookmarks, and kube-runtime's watcher.

use crate::common;

use std::time::Duration;

use common::{api_only, client};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"w": "1"}}}))
        .expect("configmap")
}

/// Creates a labelled ConfigMap and returns its resourceVersion.
async fn create(cms: &Api<ConfigMap>, name: &str) -> String {
    let created = cms
        .create(&PostParams::default(), &cm(name))
        .await
        .expect("create");
    created.metadata.resource_version.expect("resourceVersion")
}

/// Waits at most 10 s for the next item of a stream (a hang is a failure,
/// not a timing assertion).
async fn next<S: futures::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("stream item within 10 s")
        .expect("stream not ended")
}

#[tokio::test]
async fn watch_from_resource_version_sees_later_changes_only() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "w");
    cms.create(&PostParams::default(), &cm("before"))
        .await
        .expect("before");
    let rv = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut events = cms
        .watch(&WatchParams::default().labels("w=1"), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.create(&PostParams::default(), &cm("after"))
        .await
        .expect("after");
    cms.delete("before", &Default::default())
        .await
        .expect("delete");
    match next(&mut events).await.expect("event") {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("after")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    match next(&mut events).await.expect("event") {
        WatchEvent::Deleted(o) => assert_eq!(o.metadata.name.as_deref(), Some("before")),
        other => panic!("expected DELETED, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_from_compacted_resource_version_is_410_gone() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "w");
    let old = create(&cms, "a").await;
    cms.create(&PostParams::default(), &cm("b"))
        .await
        .expect("b");
    sb.compact_watch_history();
    let mut events = cms
        .watch(&WatchParams::default(), &old)
        .await
        .expect("watch")
        .boxed();
    match next(&mut events).await {
        Ok(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

#[tokio::test]
async fn bookmarks_are_sent_when_allowed() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "w");
    let rv = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut events = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match next(&mut events).await.expect("event") {
        WatchEvent::Bookmark(b) => assert!(b.metadata.resource_version.parse::<u64>().is_ok()),
        other => panic!("expected BOOKMARK, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_runtime_watcher_works_unchanged() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "rt");
    cms.create(&PostParams::default(), &cm("existing"))
        .await
        .expect("existing");
    let mut stream = watcher(cms.clone(), watcher::Config::default().labels("w=1")).boxed();
    let mut seen_init_done = false;
    while !seen_init_done {
        match next(&mut stream).await.expect("watcher event") {
            watcher::Event::InitApply(o) => {
                assert_eq!(o.metadata.name.as_deref(), Some("existing"))
            }
            watcher::Event::InitDone => seen_init_done = true,
            _ => {}
        }
    }
    cms.create(&PostParams::default(), &cm("new"))
        .await
        .expect("new");
    match next(&mut stream).await.expect("watcher event") {
        watcher::Event::Apply(o) => assert_eq!(o.metadata.name.as_deref(), Some("new")),
        other => panic!("expected Apply, got {other:?}"),
    }
    cms.delete("existing", &Default::default())
        .await
        .expect("delete");
    match next(&mut stream).await.expect("watcher event") {
        watcher::Event::Delete(o) => assert_eq!(o.metadata.name.as_deref(), Some("existing")),
        other => panic!("expected Delete, got {other:?}"),
    }
    // The streaming-list mode (sendInitialEvents) works too.
    let streaming = watcher(cms, watcher::Config::default().streaming_lists());
    let names: Vec<String> = streaming
        .try_take_while(|e| futures::future::ready(Ok(!matches!(e, watcher::Event::InitDone))))
        .try_filter_map(|e| {
            futures::future::ready(Ok(match e {
                watcher::Event::InitApply(o) => o.metadata.name,
                _ => None,
            }))
        })
        .try_collect()
        .await
        .expect("streaming list");
    assert_eq!(names, ["new"]);
}

#[tokio::test]
async fn objects_leaving_a_label_selector_are_deleted_from_its_watch() {
    let sb = api_only().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&sb, None).await, "w");
    let rv = create(&cms, "a").await;
    let mut events = cms
        .watch(&WatchParams::default().labels("w=1"), &rv)
        .await
        .expect("watch")
        .boxed();
    let relabel = |v: &str| kube::api::Patch::Merge(json!({"metadata": {"labels": {"w": v}}}));
    cms.patch("a", &Default::default(), &relabel("2"))
        .await
        .expect("leave");
    cms.patch("a", &Default::default(), &relabel("1"))
        .await
        .expect("return");
    assert!(
        matches!(
            next(&mut events).await.expect("event"),
            WatchEvent::Deleted(_)
        ),
        "leaving the selector is DELETED"
    );
    assert!(
        matches!(
            next(&mut events).await.expect("event"),
            WatchEvent::Added(_)
        ),
        "entering it again is ADDED"
    );
}
