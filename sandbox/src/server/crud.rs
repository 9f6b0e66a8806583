//! The verb handlers: get, list, create, update, patch (incl. server-side
//! apply), delete, deletecollection, and the `/scale` subresource.

use axum::body::Body;
use bytes::{BufMut as _, BytesMut};
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{AppState, Call, bytes_response, json_response, logs, table, watch};
use crate::patch::{self, PatchType};
use crate::registry::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::{DeleteOptions, Filter, Obj, Subresource, WriteOptions, res};

/// Runs the verb of an authorized, fault-checked request.
pub(crate) async fn dispatch(state: &AppState, call: Call) -> ApiResult<Response<Body>> {
    let def = call.req.def.clone();
    let ns = call.req.namespace.clone().unwrap_or_default();
    let name = call.req.name.clone().unwrap_or_default();
    let store = &state.store;
    let opts = WriteOptions {
        dry_run: call.query.get("dryRun").is_some_and(|d| d == "All"),
        keep_status: false,
    };
    let scale = call.req.subresource.as_deref() == Some("scale");
    let sub = if call.req.subresource.as_deref() == Some("status") {
        Subresource::Status
    } else {
        Subresource::Main
    };
    if def.namespaced && call.req.namespace.is_none() && !matches!(call.verb, "list" | "watch") {
        return Err(ApiError::method_not_allowed(&format!(
            "{} {} needs a namespace: use /namespaces/NAMESPACE/{}",
            call.verb, def.plural, def.plural
        )));
    }
    match call.verb {
        "get" if scale => Ok(json_response(
            StatusCode::OK,
            &scale_of(&store.get(&def, &ns, &name)?.value),
        )),
        "get" if call.req.subresource.as_deref() == Some("log") => {
            logs::pod_log(
                &state.state_dir,
                &store.get(&def, &ns, &name)?.value,
                &call.query,
            )
            .await
        }
        "get" if table::wanted(&call.accept) => {
            let obj = store.get(&def, &ns, &name)?;
            let meta = json!({"resourceVersion": crate::meta::resource_version(&obj.value)});
            let include = call.query.get("includeObject").map(String::as_str);
            Ok(json_response(
                StatusCode::OK,
                &table::table(&def, &[&obj.value], meta, include),
            ))
        }
        "get" => Ok(object(StatusCode::OK, store.get(&def, &ns, &name)?)),
        "list" => list(state, &def, &call),
        "watch" => watch::watch(state, &def, &call, filter(&call)?),
        "create" => {
            let body = parse_json(&call.body)?;
            Ok(object(
                StatusCode::CREATED,
                store.create(&def, &ns, body, &opts)?,
            ))
        }
        "update" if scale => {
            let body = parse_json(&call.body)?;
            let replicas = body.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
            let rv = body.pointer("/metadata/resourceVersion").cloned();
            let obj = store.replace(&def, &ns, &name, Subresource::Main, &opts, |cur| {
                Ok(with_replicas(cur, replicas, rv))
            })?;
            Ok(json_response(StatusCode::OK, &scale_of(&obj.value)))
        }
        "update" => {
            let body = parse_json(&call.body)?;
            Ok(object(
                StatusCode::OK,
                store.replace(&def, &ns, &name, sub, &opts, |_| Ok(body))?,
            ))
        }
        "patch" => patch(state, &def, &call, &ns, &name, sub, &opts, scale),
        "delete" => {
            let delete_opts = delete_options(&call)?;
            Ok(object(
                StatusCode::OK,
                store.delete(&def, &ns, &name, &delete_opts)?,
            ))
        }
        "deletecollection" => {
            let deleted =
                store.delete_collection(&def, &filter(&call)?, &delete_options(&call)?)?;
            Ok(list_response(&def, store.current_rv(), None, 0, &deleted))
        }
        other => Err(ApiError::method_not_allowed(other)),
    }
}

fn object(code: StatusCode, obj: Obj) -> Response<Body> {
    bytes_response(code, obj.json)
}

fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// The list/watch filter from the path namespace, the selectors and (for a
/// watch of one named object) the name.
pub(crate) fn filter(call: &Call) -> ApiResult<Filter> {
    let mut fields = call.query.get("fieldSelector").cloned().unwrap_or_default();
    if let Some(name) = &call.req.name {
        fields = format!("metadata.name={name},{fields}");
    }
    Ok(Filter {
        namespace: call.req.namespace.clone(),
        labels: LabelSelector::parse(call.query.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(&fields)?,
    })
}

fn list(state: &AppState, def: &ResourceDef, call: &Call) -> ApiResult<Response<Body>> {
    let limit = match call.query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        )
        .filter(|l| *l > 0),
        None => None,
    };
    let page = state.store.list(
        def,
        &filter(call)?,
        limit,
        call.query.get("continue").map(String::as_str),
    )?;
    if table::wanted(&call.accept) {
        let mut meta = json!({"resourceVersion": page.rv.to_string()});
        if let Some(token) = &page.continue_token {
            meta["continue"] = json!(token);
        }
        let objects: Vec<&Value> = page.items.iter().map(|o| &*o.value).collect();
        let include = call.query.get("includeObject").map(String::as_str);
        return Ok(json_response(
            StatusCode::OK,
            &table::table(def, &objects, meta, include),
        ));
    }
    Ok(list_response(
        def,
        page.rv,
        page.continue_token.as_deref(),
        page.remaining,
        &page.items,
    ))
}

/// Builds `{"kind":"PodList",...,"items":[...]}` from serialized items.
fn list_response(
    def: &ResourceDef,
    rv: u64,
    continue_token: Option<&str>,
    remaining: usize,
    items: &[Obj],
) -> Response<Body> {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = continue_token {
        meta["continue"] = json!(token);
        meta["remainingItemCount"] = json!(remaining);
    }
    let head = json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    let size: usize = items.iter().map(|o| o.json.len() + 1).sum();
    let mut buf = BytesMut::with_capacity(head.len() + size + 16);
    // `{"kind":...,"metadata":{...}` + `,"items":[` + items + `]}`
    buf.put_slice(&head[..head.len().saturating_sub(1)]);
    buf.put_slice(b",\"items\":[");
    for (i, obj) in items.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(&obj.json);
    }
    buf.put_slice(b"]}");
    bytes_response(StatusCode::OK, buf.freeze())
}

#[allow(clippy::too_many_arguments)]
fn patch(
    state: &AppState,
    def: &ResourceDef,
    call: &Call,
    ns: &str,
    name: &str,
    sub: Subresource,
    opts: &WriteOptions,
    scale: bool,
) -> ApiResult<Response<Body>> {
    let store = &state.store;
    let kind = PatchType::from_content_type(&call.content_type)?;
    let body = patch::parse_body(&call.body, kind)?;
    if kind == PatchType::Apply {
        let manager = call
            .query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    res(def),
                    name,
                    "fieldManager: Required value: is required for apply patch",
                )
            })?;
        let api_version = def.api_version();
        let force = call.query.get("force").is_some_and(|f| f == "true");
        let conflict =
            |c: Vec<patch::conflicts::Conflict>| ApiError::apply_conflict(res(def), name, &c);
        let result = store.replace(def, ns, name, sub, opts, |cur| {
            patch::apply::apply(Some(cur), &body, manager, &api_version, force).map_err(conflict)
        });
        return match result {
            Err(e) if e.code == 404 && sub == Subresource::Main => {
                let mut created = patch::apply::apply(None, &body, manager, &api_version, force)
                    .map_err(conflict)?;
                crate::meta::metadata_mut(&mut created).insert("name".into(), json!(name));
                Ok(object(
                    StatusCode::CREATED,
                    store.create(def, ns, created, opts)?,
                ))
            }
            other => Ok(object(StatusCode::OK, other?)),
        };
    }
    if scale {
        let obj = store.replace(def, ns, name, Subresource::Main, opts, |cur| {
            let patched = patch::apply_patch(def, &scale_of(cur), kind, &body)?;
            let replicas = patched
                .pointer("/spec/replicas")
                .cloned()
                .unwrap_or(json!(0));
            Ok(with_replicas(cur, replicas, None))
        })?;
        return Ok(json_response(StatusCode::OK, &scale_of(&obj.value)));
    }
    let obj = store.replace(def, ns, name, sub, opts, |cur| {
        patch::apply_patch(def, cur, kind, &body)
    })?;
    Ok(object(StatusCode::OK, obj))
}

/// The `autoscaling/v1` Scale view of an object with `spec.replicas`.
fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"), "creationTimestamp": meta.get("creationTimestamp")
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector
        },
    })
}

fn with_replicas(cur: &Value, replicas: Value, rv: Option<Value>) -> Value {
    let mut next = cur.clone();
    if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), replicas);
    }
    let meta = crate::meta::metadata_mut(&mut next);
    match rv {
        Some(rv) => meta.insert("resourceVersion".into(), rv),
        None => meta.remove("resourceVersion"),
    };
    next
}

/// DeleteOptions from the body, overridden by query parameters.
fn delete_options(call: &Call) -> ApiResult<DeleteOptions> {
    let mut opts: DeleteOptions = if call.body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_slice(&call.body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions body: {e}")))?
    };
    if let Some(g) = call.query.get("gracePeriodSeconds") {
        opts.grace_period_seconds = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        );
    }
    if let Some(p) = call.query.get("propagationPolicy") {
        opts.propagation_policy = Some(p.clone());
    }
    if call.query.get("dryRun").is_some_and(|d| d == "All") {
        opts.dry_run = vec!["All".into()];
    }
    Ok(opts)
}
