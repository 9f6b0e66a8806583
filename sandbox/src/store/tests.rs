//! Store unit tests (no HTTP).

use std::sync::Arc;

use serde_json::json;

use super::*;

fn store() -> (Arc<Store>, Registry) {
    let reg = Registry::new(&[]);
    (Arc::new(Store::new(reg.clone(), 4)), reg)
}

#[test]
fn update_with_stale_resource_version_conflicts() {
    let (s, reg) = store();
    let cm = reg.by_kind("v1", "ConfigMap").expect("cm").clone();
    let created = s
        .create(
            &cm,
            "ns",
            json!({"metadata": {"name": "a"}, "data": {"x": "1"}}),
            &WriteOptions::default(),
        )
        .expect("create");
    let rv = crate::meta::resource_version(&created.value)
        .expect("rv")
        .to_string();
    let mut next = (*created.value).clone();
    next["data"]["x"] = json!("2");
    s.replace(
        &cm,
        "ns",
        "a",
        Subresource::Main,
        &WriteOptions::default(),
        |_| Ok(next.clone()),
    )
    .expect("first update");
    let err = s
        .replace(
            &cm,
            "ns",
            "a",
            Subresource::Main,
            &WriteOptions::default(),
            |_| Ok(next.clone()),
        )
        .expect_err("stale");
    assert_eq!(err.code, 409, "{rv}");
    assert!(
        s.get(
            &reg.by_kind("v1", "Namespace").expect("ns").clone(),
            "",
            "ns"
        )
        .is_ok(),
        "namespace created implicitly"
    );
}

#[test]
fn generation_follows_spec_and_status_subresource_keeps_spec() {
    let (s, reg) = store();
    let sts = reg.by_kind("apps/v1", "StatefulSet").expect("sts").clone();
    let o = WriteOptions::default();
    s.create(
        &sts,
        "ns",
        json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"replicas": 9}}),
        &o,
    )
    .expect("create");
    let labels = s
        .replace(&sts, "ns", "db", Subresource::Main, &o, |cur| {
            let mut n = cur.clone();
            n["metadata"]["labels"] = json!({"a": "b"});
            n["status"] = json!({"replicas": 5});
            Ok(n)
        })
        .expect("labels");
    assert_eq!(labels.value["metadata"]["generation"], 1);
    assert!(
        labels.value.get("status").is_none(),
        "status dropped on create and ignored on update"
    );
    let status = s
        .replace(&sts, "ns", "db", Subresource::Status, &o, |cur| {
            let mut n = cur.clone();
            n["status"] = json!({"replicas": 3});
            n["spec"]["replicas"] = json!(7);
            Ok(n)
        })
        .expect("status");
    assert_eq!(status.value["spec"]["replicas"], 3);
    assert_eq!(status.value["status"]["replicas"], 3);
    let spec = s
        .replace(&sts, "ns", "db", Subresource::Main, &o, |cur| {
            let mut n = cur.clone();
            n["spec"]["replicas"] = json!(4);
            Ok(n)
        })
        .expect("spec");
    assert_eq!(spec.value["metadata"]["generation"], 2);
    assert_eq!(spec.value["status"]["replicas"], 3);
}

#[test]
fn finalizers_delay_deletion_and_gc_follows_owner_references() {
    let (s, reg) = store();
    let cm = reg.by_kind("v1", "ConfigMap").expect("cm").clone();
    let o = WriteOptions::default();
    let owner = s
        .create(
            &cm,
            "ns",
            json!({"metadata": {"name": "owner", "finalizers": ["x/y"]}}),
            &o,
        )
        .expect("owner");
    let uid = crate::meta::uid(&owner.value).expect("uid").to_string();
    s.create(&cm, "ns", json!({"metadata": {"name": "dep", "ownerReferences": [{"uid": uid, "name": "owner", "kind": "ConfigMap", "apiVersion": "v1"}]}}), &o).expect("dep");
    let marked = s
        .delete(&cm, "ns", "owner", &DeleteOptions::default())
        .expect("delete");
    assert!(crate::meta::is_terminating(&marked.value));
    assert!(
        s.get(&cm, "ns", "dep").is_ok(),
        "dependent kept while the owner is terminating"
    );
    s.replace(&cm, "ns", "owner", Subresource::Main, &o, |cur| {
        let mut n = cur.clone();
        n["metadata"]["finalizers"] = json!([]);
        Ok(n)
    })
    .expect("remove finalizer");
    assert_eq!(
        s.get(&cm, "ns", "owner").map(|_| ()).map_err(|e| e.code),
        Err(404)
    );
    assert_eq!(
        s.get(&cm, "ns", "dep").map(|_| ()).map_err(|e| e.code),
        Err(404)
    );
}

#[test]
fn list_pages_and_watch_history() {
    let (s, reg) = store();
    let cm = reg.by_kind("v1", "ConfigMap").expect("cm").clone();
    let o = WriteOptions::default();
    let first = s.current_rv();
    for i in 0..5 {
        s.create(
            &cm,
            "ns",
            json!({"metadata": {"name": format!("c{i}"), "labels": {"i": i.to_string()}}}),
            &o,
        )
        .expect("create");
    }
    let f = Filter {
        namespace: Some("ns".into()),
        ..Filter::default()
    };
    let p1 = s.list(&cm, &f, Some(3), None).expect("page 1");
    assert_eq!((p1.items.len(), p1.remaining), (3, 2));
    let p2 = s
        .list(&cm, &f, Some(3), p1.continue_token.as_deref())
        .expect("page 2");
    assert_eq!((p2.items.len(), p2.continue_token), (2, None));
    // History keeps 4 events: the watch from before the first create is gone.
    assert_eq!(
        s.watch(&cm, &f, Some(first))
            .map(|_| ())
            .map_err(|e| e.code),
        Err(410)
    );
    let recent = s.watch(&cm, &f, Some(s.current_rv() - 2)).expect("recent");
    assert_eq!(recent.initial.len(), 2);
}

#[test]
fn a_watch_by_name_is_sent_its_object_only_and_its_channel_goes_with_it() {
    let (s, reg) = store();
    let cm = reg.by_kind("v1", "ConfigMap").expect("cm").clone();
    let write = |name: &str| {
        s.create(
            &cm,
            "ns",
            json!({"metadata": {"name": name}}),
            &WriteOptions::default(),
        )
        .expect("create");
    };
    let by_name = Filter {
        namespace: Some("ns".into()),
        fields: FieldSelector::parse("metadata.name=b").expect("selector"),
        ..Filter::default()
    };
    let everything = Filter::default();
    let mut named = s
        .watch(&cm, &by_name, Some(s.current_rv()))
        .expect("watch b");
    let mut all = s
        .watch(&cm, &everything, Some(s.current_rv()))
        .expect("watch all");
    write("a");
    write("b");
    write("c");
    let names = |rx: &mut broadcast::Receiver<Arc<Event>>| {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| {
                crate::meta::meta_str(&e.obj.value, "name")
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&mut named.rx), ["b"], "woken for b only");
    assert_eq!(names(&mut all.rx), ["a", "b", "c"]);

    let channels = |s: &Store| {
        s.read(&cm)
            .expect("table")
            .named
            .lock()
            .expect("named")
            .len()
    };
    assert_eq!(channels(&s), 1);
    drop(named);
    s.delete(&cm, "ns", "b", &DeleteOptions::default())
        .expect("delete b");
    assert_eq!(channels(&s), 0, "nobody watches b any more");
}
