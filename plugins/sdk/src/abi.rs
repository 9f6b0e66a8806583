//! The C ABI between the dbops host and a step plugin.
//!
//! **Boundary**: this module is the only definition of the ABI. The host
//! (runner) and every plugin use these types; nothing else crosses the
//! shared-library boundary.
//!
//! The shape, in one paragraph: a plugin exports one symbol,
//! [`ENTRY_SYMBOL`] (`dbops_plugin_v1`), an `extern "C" fn(host_abi: u32) ->
//! *const PluginDescriptor`. The descriptor carries the ABI version (first
//! field, so it can always be read), the plugin's name, version, JSON schema
//! of its `with` table, its outputs, and function pointers `validate`, `run`
//! and optionally `compensate`. Requests and responses are UTF-8 JSON
//! documents (see [`crate::protocol`]). While a step runs, the plugin calls
//! back into the host through a [`HostApi`] table of function pointers plus an
//! opaque context pointer.
//!
//! **Invariant (allocator rule)**: every buffer is freed by the side that
//! allocated it. A plugin returns [`OwnedBuf`]s that the host copies and then
//! hands back to the plugin's `free_buf`; the host fills [`OwnedBuf`]s that the
//! plugin copies and hands back to the host's `free_buf`. Borrowed inputs are
//! [`StrRef`]s valid only for the duration of the call.
//!
//! **Invariant (no unwinding)**: panics never cross the boundary. The export
//! glue ([`crate::export`]) wraps every plugin entry in `catch_unwind`; the
//! host-side glue here ([`HostApi::for_services`]) wraps every callback.
#![allow(unsafe_code)] // Reason: this is the FFI boundary; every unsafe block states its contract.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use crate::services::{HostServices, Level, WatchNext};

/// The first ABI: JSON requests, host table with Kubernetes requests,
/// watches, logs, spans, durable state, Events, deadline and cancellation.
pub const ABI_V1_INITIAL: u32 = 1;

/// The ABI version this SDK speaks. A host refuses a plugin whose
/// descriptor carries another version, naming the file and both versions.
pub const ABI_VERSION: u32 = ABI_V1_INITIAL;

/// The name of the exported entry symbol (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"dbops_plugin_v1\0";

/// Type of the exported entry function. `host_abi` is the host's
/// [`ABI_VERSION`]; the plugin always returns its descriptor (the host does
/// the compatibility decision so that it can give a precise error).
pub type EntryFn = unsafe extern "C" fn(host_abi: u32) -> *const PluginDescriptor;

/// Return code of host callbacks: success.
pub const CALL_OK: i32 = 0;
/// Return code of host callbacks: failure, the out buffer holds a UTF-8 message.
pub const CALL_ERROR: i32 = -1;
/// `state_get`: no state recorded yet.
pub const STATE_NONE: i32 = 1;
/// `watch_next`: an event was written to the out buffer (one JSON watch event).
pub const WATCH_EVENT: i32 = 0;
/// `watch_next`: nothing arrived within the timeout.
pub const WATCH_TIMEOUT: i32 = 1;
/// `watch_next`: the server closed the stream; reopen from the last resourceVersion.
pub const WATCH_CLOSED: i32 = 2;

/// A borrowed run of UTF-8 bytes, valid only during the call it is passed to.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StrRef {
    /// First byte; may be dangling when `len == 0`.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// Borrow a Rust string for the duration of a call.
    pub fn of(s: &str) -> StrRef {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// An empty reference.
    pub const EMPTY: StrRef = StrRef {
        ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
        len: 0,
    };

    /// View the bytes as `&str`, checking UTF-8.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid for `'a`.
    pub unsafe fn as_str<'a>(self) -> Result<&'a str, std::str::Utf8Error> {
        if self.len == 0 || self.ptr.is_null() {
            return Ok("");
        }
        // SAFETY: guaranteed by the caller.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes)
    }
}

/// A buffer owned by the side that allocated it (a `Vec<u8>` in raw parts).
/// Whoever receives one copies what it needs and returns it to the
/// allocating side's `free_buf`.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBuf {
    /// Start of the allocation (null for an empty buffer).
    pub ptr: *mut u8,
    /// Bytes in use.
    pub len: usize,
    /// Allocated capacity.
    pub cap: usize,
}

impl OwnedBuf {
    /// An empty buffer that owns nothing.
    pub const EMPTY: OwnedBuf = OwnedBuf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };

    /// Hand a vector over the boundary. Must come back to [`free_owned_buf`]
    /// *of this same side*.
    pub fn from_vec(v: Vec<u8>) -> OwnedBuf {
        let mut v = std::mem::ManuallyDrop::new(v);
        OwnedBuf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Copy the bytes out.
    ///
    /// # Safety
    /// The buffer must have been produced by [`OwnedBuf::from_vec`] on either
    /// side and not freed yet.
    pub unsafe fn to_vec(&self) -> Vec<u8> {
        if self.ptr.is_null() || self.len == 0 {
            return Vec::new();
        }
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }.to_vec()
    }
}

/// Free a buffer allocated on *this* side by [`OwnedBuf::from_vec`]. Both
/// the export glue and the host glue expose this as their `free_buf`.
pub extern "C" fn free_owned_buf(buf: OwnedBuf) {
    if buf.ptr.is_null() {
        return;
    }
    // SAFETY: `buf` came from `OwnedBuf::from_vec` in this same binary, so
    // (ptr, len, cap) are the raw parts of a live Vec<u8> from our allocator.
    drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
}

/// What a plugin tells the host about itself. Returned by the entry symbol;
/// lives as long as the library (libraries are never unloaded).
#[repr(C)]
pub struct PluginDescriptor {
    /// Must stay the first field in every ABI version.
    pub abi_version: u32,
    /// The step name used in pipelines' `uses` (e.g. `issue-cert`).
    pub name: StrRef,
    /// The plugin's own version (semver).
    pub version: StrRef,
    /// The SDK version the plugin was built with.
    pub sdk_version: StrRef,
    /// One-line description for `dbops plugins list`.
    pub description: StrRef,
    /// JSON Schema of the step's `with` table.
    pub config_schema: StrRef,
    /// JSON array of `{"name", "description"}` the step may output.
    pub outputs: StrRef,
    /// JSON array of feature names (e.g. `"compensate"`), for handshakes.
    pub features: StrRef,
    /// Validate a request (JSON [`crate::protocol::ValidateRequest`]); returns
    /// JSON [`crate::protocol::ValidateResponse`]. Must not call the host.
    pub validate: extern "C" fn(request: StrRef) -> OwnedBuf,
    /// Run the step (JSON [`crate::protocol::RunRequest`]); returns JSON
    /// [`crate::protocol::RunResponse`].
    pub run: extern "C" fn(host: *const HostApi, request: StrRef) -> OwnedBuf,
    /// Undo the step after a later failure; same messages as `run`.
    pub compensate: Option<extern "C" fn(host: *const HostApi, request: StrRef) -> OwnedBuf>,
    /// Frees buffers returned by `validate`, `run` and `compensate`.
    pub free_buf: extern "C" fn(buf: OwnedBuf),
}

// SAFETY: the descriptor only holds pointers to immutable 'static data and
// function pointers; sharing it between threads is sound.
unsafe impl Sync for PluginDescriptor {}
// SAFETY: as above.
unsafe impl Send for PluginDescriptor {}

/// The host's services, handed to `run` and `compensate`. All callbacks are
/// synchronous from the plugin's side and may be called from the plugin's
/// thread only while the call that received the table is running.
#[repr(C)]
pub struct HostApi {
    /// The host's ABI version.
    pub abi_version: u32,
    /// Opaque host context, passed back to every callback.
    pub ctx: *mut c_void,
    /// Frees buffers the host filled in.
    pub free_buf: extern "C" fn(buf: OwnedBuf),
    /// A Kubernetes API request. On [`CALL_OK`], `out_status` holds the HTTP
    /// status and `out_body` the response body; on [`CALL_ERROR`], `out_body`
    /// holds a message (transport failure, refused write in dry run...).
    pub k8s_request: extern "C" fn(
        ctx: *mut c_void,
        method: StrRef,
        path: StrRef,
        content_type: StrRef,
        body: StrRef,
        out_status: *mut u16,
        out_body: *mut OwnedBuf,
    ) -> i32,
    /// Open a watch on `path` (a list path with `watch=true` in the query).
    pub watch_open: extern "C" fn(
        ctx: *mut c_void,
        path: StrRef,
        out_handle: *mut u64,
        out_err: *mut OwnedBuf,
    ) -> i32,
    /// Next event of a watch: [`WATCH_EVENT`], [`WATCH_TIMEOUT`],
    /// [`WATCH_CLOSED`] or [`CALL_ERROR`] (message in `out`).
    pub watch_next:
        extern "C" fn(ctx: *mut c_void, handle: u64, timeout_ms: u64, out: *mut OwnedBuf) -> i32,
    /// Close a watch (idempotent).
    pub watch_close: extern "C" fn(ctx: *mut c_void, handle: u64),
    /// A log line with JSON object fields; becomes a tracing event in the step span.
    pub log: extern "C" fn(ctx: *mut c_void, level: u32, message: StrRef, fields_json: StrRef),
    /// Start a child span of `parent` (0 = the step span); returns its id.
    pub span_start:
        extern "C" fn(ctx: *mut c_void, parent: u64, name: StrRef, attributes_json: StrRef) -> u64,
    /// End a span; a non-empty `error` marks it failed.
    pub span_end:
        extern "C" fn(ctx: *mut c_void, span: u64, error: StrRef, attributes_json: StrRef),
    /// Durable step state from the run journal: [`CALL_OK`] (JSON in `out`),
    /// [`STATE_NONE`] or [`CALL_ERROR`].
    pub state_get: extern "C" fn(ctx: *mut c_void, out: *mut OwnedBuf) -> i32,
    /// Replace the durable step state (JSON); written to the journal before returning.
    pub state_put:
        extern "C" fn(ctx: *mut c_void, value_json: StrRef, out_err: *mut OwnedBuf) -> i32,
    /// Emit a Kubernetes Event on the target (`Normal` or `Warning`).
    pub event_emit:
        extern "C" fn(ctx: *mut c_void, event_type: StrRef, reason: StrRef, message: StrRef) -> i32,
    /// Milliseconds left before the step deadline, or -1 for none.
    pub deadline_remaining_ms: extern "C" fn(ctx: *mut c_void) -> i64,
    /// 1 when the run is being cancelled (signal, deadline): stop soon.
    pub is_cancelled: extern "C" fn(ctx: *mut c_void) -> u8,
}

// ---------------------------------------------------------------------------
// Plugin side: HostServices over a HostApi table.
// ---------------------------------------------------------------------------

/// The plugin's view of a [`HostApi`]: implements [`HostServices`] by
/// calling the table.
pub struct VtableHost {
    api: *const HostApi,
}

impl VtableHost {
    /// Wrap a table received in `run`/`compensate`.
    ///
    /// # Safety
    /// `api` must point to a live [`HostApi`] for as long as this value is used.
    pub unsafe fn new(api: *const HostApi) -> VtableHost {
        VtableHost { api }
    }

    fn api(&self) -> &HostApi {
        // SAFETY: guaranteed by the contract of `new`.
        unsafe { &*self.api }
    }

    fn take(&self, buf: OwnedBuf) -> Vec<u8> {
        // SAFETY: the host filled `buf` with `OwnedBuf::from_vec`; we copy it
        // and give it back to the host's allocator.
        let bytes = unsafe { buf.to_vec() };
        (self.api().free_buf)(buf);
        bytes
    }

    fn take_string(&self, buf: OwnedBuf) -> String {
        String::from_utf8_lossy(&self.take(buf)).into_owned()
    }
}

impl HostServices for VtableHost {
    fn k8s_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        let api = self.api();
        let body = StrRef {
            ptr: body.as_ptr(),
            len: body.len(),
        };
        let mut status = 0u16;
        let mut out = OwnedBuf::EMPTY;
        let rc = (api.k8s_request)(
            api.ctx,
            StrRef::of(method),
            StrRef::of(path),
            StrRef::of(content_type),
            body,
            &mut status,
            &mut out,
        );
        let bytes = self.take(out);
        if rc == CALL_OK {
            Ok((status, bytes))
        } else {
            Err(String::from_utf8_lossy(&bytes).into_owned())
        }
    }

    fn watch_open(&self, path: &str) -> Result<u64, String> {
        let api = self.api();
        let mut handle = 0u64;
        let mut err = OwnedBuf::EMPTY;
        let rc = (api.watch_open)(api.ctx, StrRef::of(path), &mut handle, &mut err);
        let message = self.take_string(err);
        if rc == CALL_OK {
            Ok(handle)
        } else {
            Err(message)
        }
    }

    fn watch_next(&self, handle: u64, timeout: Duration) -> WatchNext {
        let api = self.api();
        let mut out = OwnedBuf::EMPTY;
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let rc = (api.watch_next)(api.ctx, handle, millis, &mut out);
        let bytes = self.take(out);
        match rc {
            WATCH_EVENT => WatchNext::Event(bytes),
            WATCH_TIMEOUT => WatchNext::Timeout,
            WATCH_CLOSED => WatchNext::Closed,
            _ => WatchNext::Error(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    fn watch_close(&self, handle: u64) {
        let api = self.api();
        (api.watch_close)(api.ctx, handle)
    }

    fn log(
        &self,
        level: Level,
        message: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) {
        let api = self.api();
        let fields = serde_json::Value::Object(fields.clone()).to_string();
        (api.log)(
            api.ctx,
            level as u32,
            StrRef::of(message),
            StrRef::of(&fields),
        )
    }

    fn span_start(
        &self,
        parent: u64,
        name: &str,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> u64 {
        let api = self.api();
        let attributes = serde_json::Value::Object(attributes.clone()).to_string();
        (api.span_start)(api.ctx, parent, StrRef::of(name), StrRef::of(&attributes))
    }

    fn span_end(
        &self,
        span: u64,
        error: Option<&str>,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) {
        let api = self.api();
        let attributes = serde_json::Value::Object(attributes.clone()).to_string();
        (api.span_end)(
            api.ctx,
            span,
            StrRef::of(error.unwrap_or("")),
            StrRef::of(&attributes),
        )
    }

    fn state_get(&self) -> Result<Option<serde_json::Value>, String> {
        let api = self.api();
        let mut out = OwnedBuf::EMPTY;
        let rc = (api.state_get)(api.ctx, &mut out);
        let bytes = self.take(out);
        match rc {
            CALL_OK => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("host returned step state that is not JSON: {e}")),
            STATE_NONE => Ok(None),
            _ => Err(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    fn state_put(&self, value: &serde_json::Value) -> Result<(), String> {
        let api = self.api();
        let json = value.to_string();
        let mut err = OwnedBuf::EMPTY;
        let rc = (api.state_put)(api.ctx, StrRef::of(&json), &mut err);
        let message = self.take_string(err);
        if rc == CALL_OK { Ok(()) } else { Err(message) }
    }

    fn event(&self, event_type: &str, reason: &str, message: &str) -> Result<(), String> {
        let api = self.api();
        let rc = (api.event_emit)(
            api.ctx,
            StrRef::of(event_type),
            StrRef::of(reason),
            StrRef::of(message),
        );
        if rc == CALL_OK {
            Ok(())
        } else {
            Err(format!("host could not emit event {reason}"))
        }
    }

    fn deadline_remaining(&self) -> Option<Duration> {
        let api = self.api();
        let ms = (api.deadline_remaining_ms)(api.ctx);
        u64::try_from(ms).ok().map(Duration::from_millis)
    }

    fn is_cancelled(&self) -> bool {
        let api = self.api();
        (api.is_cancelled)(api.ctx) != 0
    }
}

// ---------------------------------------------------------------------------
// Host side: a HostApi table over any HostServices, and calls into plugins.
// ---------------------------------------------------------------------------

/// The host keeps this alive for the duration of one plugin call; the
/// table's `ctx` points at it.
struct HostCtx<'a> {
    services: &'a dyn HostServices,
}

impl HostApi {
    /// Build a table whose callbacks dispatch to `services`. The returned
    /// guard owns the context; pass [`HostApiGuard::as_ptr`] to the plugin
    /// and keep the guard alive until the plugin call returns.
    pub fn for_services(services: &dyn HostServices) -> HostApiGuard<'_> {
        let ctx = Box::new(HostCtx { services });
        let mut guard = HostApiGuard {
            ctx,
            api: HostApi {
                abi_version: ABI_VERSION,
                ctx: std::ptr::null_mut(),
                free_buf: free_owned_buf,
                k8s_request: host_k8s_request,
                watch_open: host_watch_open,
                watch_next: host_watch_next,
                watch_close: host_watch_close,
                log: host_log,
                span_start: host_span_start,
                span_end: host_span_end,
                state_get: host_state_get,
                state_put: host_state_put,
                event_emit: host_event_emit,
                deadline_remaining_ms: host_deadline_remaining_ms,
                is_cancelled: host_is_cancelled,
            },
        };
        guard.api.ctx = (&mut *guard.ctx as *mut HostCtx<'_>).cast::<c_void>();
        guard
    }
}

/// Owns a [`HostApi`] and its context for one plugin call.
pub struct HostApiGuard<'a> {
    ctx: Box<HostCtx<'a>>,
    api: HostApi,
}

impl HostApiGuard<'_> {
    /// The pointer to hand to the plugin.
    pub fn as_ptr(&self) -> *const HostApi {
        &self.api
    }
}

/// Recover the services from a callback's `ctx`.
///
/// # Safety
/// `ctx` must be the `ctx` of a live [`HostApiGuard`].
unsafe fn services<'a>(ctx: *mut c_void) -> &'a dyn HostServices {
    // SAFETY: guaranteed by the caller; HostApiGuard outlives the plugin call.
    unsafe { (*(ctx.cast::<HostCtx<'a>>())).services }
}

/// Read a borrowed string from the plugin, replacing invalid UTF-8 by an error.
///
/// # Safety
/// `s` must be valid for the duration of the callback.
unsafe fn arg<'a>(s: StrRef) -> Result<&'a str, String> {
    // SAFETY: guaranteed by the caller.
    unsafe { s.as_str() }.map_err(|e| format!("plugin passed a string that is not UTF-8: {e}"))
}

fn put(out: *mut OwnedBuf, bytes: Vec<u8>) {
    if out.is_null() {
        return;
    }
    // SAFETY: the plugin passed a valid pointer to an OwnedBuf slot it owns.
    unsafe { out.write(OwnedBuf::from_vec(bytes)) };
}

fn parse_fields(json: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// Run a callback body, turning a panic in the host into an error code
/// instead of unwinding into the plugin.
fn guarded<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

extern "C" fn host_k8s_request(
    ctx: *mut c_void,
    method: StrRef,
    path: StrRef,
    content_type: StrRef,
    body: StrRef,
    out_status: *mut u16,
    out_body: *mut OwnedBuf,
) -> i32 {
    guarded(CALL_ERROR, || {
        // SAFETY: ctx comes from our own table; the StrRefs are valid for this call.
        let result = unsafe {
            let services = services(ctx);
            match (arg(method), arg(path), arg(content_type)) {
                (Ok(m), Ok(p), Ok(c)) => {
                    let body = if body.len == 0 || body.ptr.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(body.ptr, body.len)
                    };
                    services.k8s_request(m, p, c, body)
                }
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        };
        match result {
            Ok((status, bytes)) => {
                if !out_status.is_null() {
                    // SAFETY: valid out pointer from the plugin.
                    unsafe { out_status.write(status) };
                }
                put(out_body, bytes);
                CALL_OK
            }
            Err(message) => {
                put(out_body, message.into_bytes());
                CALL_ERROR
            }
        }
    })
}

extern "C" fn host_watch_open(
    ctx: *mut c_void,
    path: StrRef,
    out_handle: *mut u64,
    out_err: *mut OwnedBuf,
) -> i32 {
    guarded(CALL_ERROR, || {
        // SAFETY: see host_k8s_request.
        let result = unsafe { arg(path).and_then(|p| services(ctx).watch_open(p)) };
        match result {
            Ok(handle) => {
                if !out_handle.is_null() {
                    // SAFETY: valid out pointer from the plugin.
                    unsafe { out_handle.write(handle) };
                }
                CALL_OK
            }
            Err(message) => {
                put(out_err, message.into_bytes());
                CALL_ERROR
            }
        }
    })
}

extern "C" fn host_watch_next(
    ctx: *mut c_void,
    handle: u64,
    timeout_ms: u64,
    out: *mut OwnedBuf,
) -> i32 {
    guarded(CALL_ERROR, || {
        // SAFETY: see host_k8s_request.
        let next = unsafe { services(ctx) }.watch_next(handle, Duration::from_millis(timeout_ms));
        match next {
            WatchNext::Event(bytes) => {
                put(out, bytes);
                WATCH_EVENT
            }
            WatchNext::Timeout => WATCH_TIMEOUT,
            WatchNext::Closed => WATCH_CLOSED,
            WatchNext::Error(message) => {
                put(out, message.into_bytes());
                CALL_ERROR
            }
        }
    })
}

extern "C" fn host_watch_close(ctx: *mut c_void, handle: u64) {
    // SAFETY: see host_k8s_request.
    guarded((), || unsafe { services(ctx) }.watch_close(handle))
}

extern "C" fn host_log(ctx: *mut c_void, level: u32, message: StrRef, fields_json: StrRef) {
    guarded((), || {
        // SAFETY: see host_k8s_request.
        let (services, message, fields) =
            unsafe { (services(ctx), arg(message), arg(fields_json)) };
        let message = message.unwrap_or("<plugin log message was not UTF-8>");
        let fields = parse_fields(fields.unwrap_or("{}"));
        services.log(Level::from_u32(level), message, &fields)
    })
}

extern "C" fn host_span_start(
    ctx: *mut c_void,
    parent: u64,
    name: StrRef,
    attributes_json: StrRef,
) -> u64 {
    guarded(0, || {
        // SAFETY: see host_k8s_request.
        let (services, name, attrs) = unsafe { (services(ctx), arg(name), arg(attributes_json)) };
        let attrs = parse_fields(attrs.unwrap_or("{}"));
        services.span_start(parent, name.unwrap_or("plugin.span"), &attrs)
    })
}

extern "C" fn host_span_end(ctx: *mut c_void, span: u64, error: StrRef, attributes_json: StrRef) {
    guarded((), || {
        // SAFETY: see host_k8s_request.
        let (services, error, attrs) = unsafe { (services(ctx), arg(error), arg(attributes_json)) };
        let attrs = parse_fields(attrs.unwrap_or("{}"));
        let error = match error {
            Ok("") => None,
            Ok(e) => Some(e),
            Err(_) => Some("<error message was not UTF-8>"),
        };
        services.span_end(span, error, &attrs)
    })
}

extern "C" fn host_state_get(ctx: *mut c_void, out: *mut OwnedBuf) -> i32 {
    guarded(CALL_ERROR, || {
        // SAFETY: see host_k8s_request.
        match unsafe { services(ctx) }.state_get() {
            Ok(Some(value)) => {
                put(out, value.to_string().into_bytes());
                CALL_OK
            }
            Ok(None) => STATE_NONE,
            Err(message) => {
                put(out, message.into_bytes());
                CALL_ERROR
            }
        }
    })
}

extern "C" fn host_state_put(ctx: *mut c_void, value_json: StrRef, out_err: *mut OwnedBuf) -> i32 {
    guarded(CALL_ERROR, || {
        // SAFETY: see host_k8s_request.
        let (services, json) = unsafe { (services(ctx), arg(value_json)) };
        let result = json.and_then(|j| {
            serde_json::from_str::<serde_json::Value>(j)
                .map_err(|e| format!("step state is not valid JSON: {e}"))
        });
        match result.and_then(|v| services.state_put(&v)) {
            Ok(()) => CALL_OK,
            Err(message) => {
                put(out_err, message.into_bytes());
                CALL_ERROR
            }
        }
    })
}

extern "C" fn host_event_emit(
    ctx: *mut c_void,
    event_type: StrRef,
    reason: StrRef,
    message: StrRef,
) -> i32 {
    guarded(CALL_ERROR, || {
        // SAFETY: see host_k8s_request.
        let (services, t, r, m) =
            unsafe { (services(ctx), arg(event_type), arg(reason), arg(message)) };
        match (t, r, m) {
            (Ok(t), Ok(r), Ok(m)) => match services.event(t, r, m) {
                Ok(()) => CALL_OK,
                Err(_) => CALL_ERROR,
            },
            _ => CALL_ERROR,
        }
    })
}

extern "C" fn host_deadline_remaining_ms(ctx: *mut c_void) -> i64 {
    guarded(-1, || {
        // SAFETY: see host_k8s_request.
        match unsafe { services(ctx) }.deadline_remaining() {
            Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            None => -1,
        }
    })
}

extern "C" fn host_is_cancelled(ctx: *mut c_void) -> u8 {
    // SAFETY: see host_k8s_request.
    guarded(1, || u8::from(unsafe { services(ctx) }.is_cancelled()))
}

// ---------------------------------------------------------------------------
// Host side: calling a loaded plugin.
// ---------------------------------------------------------------------------

/// Errors calling into a plugin through its descriptor.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin returned bytes that are not UTF-8 JSON of the expected shape.
    #[error("plugin returned a malformed response: {0}")]
    MalformedResponse(String),
    /// The plugin has no compensate entry.
    #[error("plugin has no compensate entry point")]
    NoCompensate,
}

/// Safe view of a descriptor loaded from a library that stays loaded for
/// the life of the process.
#[derive(Clone, Copy)]
pub struct PluginRef {
    desc: &'static PluginDescriptor,
}

impl PluginRef {
    /// Wrap a descriptor pointer returned by an entry symbol.
    ///
    /// # Safety
    /// `desc` must be non-null and point to a descriptor that lives for the
    /// rest of the process (its library is never unloaded), with valid
    /// `StrRef`s and function pointers, and its `abi_version` must equal
    /// [`ABI_VERSION`] (check it with [`read_abi_version`] first).
    pub unsafe fn new(desc: *const PluginDescriptor) -> PluginRef {
        // SAFETY: guaranteed by the caller.
        PluginRef {
            desc: unsafe { &*desc },
        }
    }

    fn text(&self, s: StrRef) -> Result<String, CallError> {
        // SAFETY: descriptor strings are 'static in the loaded library.
        unsafe { s.as_str() }.map(str::to_owned).map_err(|e| {
            CallError::MalformedResponse(format!("descriptor string is not UTF-8: {e}"))
        })
    }

    /// Read the static metadata.
    pub fn info(&self) -> Result<crate::protocol::PluginInfo, CallError> {
        let outputs_json = self.text(self.desc.outputs)?;
        let features_json = self.text(self.desc.features)?;
        let schema_json = self.text(self.desc.config_schema)?;
        Ok(crate::protocol::PluginInfo {
            abi_version: self.desc.abi_version,
            name: self.text(self.desc.name)?,
            version: self.text(self.desc.version)?,
            sdk_version: self.text(self.desc.sdk_version)?,
            description: self.text(self.desc.description)?,
            config_schema: serde_json::from_str(&schema_json).map_err(|e| {
                CallError::MalformedResponse(format!("config schema is not JSON: {e}"))
            })?,
            outputs: serde_json::from_str(&outputs_json)
                .map_err(|e| CallError::MalformedResponse(format!("outputs are not JSON: {e}")))?,
            features: serde_json::from_str(&features_json)
                .map_err(|e| CallError::MalformedResponse(format!("features are not JSON: {e}")))?,
            has_compensate: self.desc.compensate.is_some(),
        })
    }

    fn take(&self, buf: OwnedBuf) -> Result<String, CallError> {
        // SAFETY: the plugin allocated `buf`; we copy then return it to the plugin.
        let bytes = unsafe { buf.to_vec() };
        (self.desc.free_buf)(buf);
        String::from_utf8(bytes)
            .map_err(|e| CallError::MalformedResponse(format!("response is not UTF-8: {e}")))
    }

    /// Call `validate` with a JSON request; returns the JSON response.
    pub fn validate(&self, request_json: &str) -> Result<String, CallError> {
        let buf = (self.desc.validate)(StrRef::of(request_json));
        self.take(buf)
    }

    /// Call `run` with a JSON request and host services; returns the JSON response.
    pub fn run(
        &self,
        services: &dyn HostServices,
        request_json: &str,
    ) -> Result<String, CallError> {
        let guard = HostApi::for_services(services);
        let buf = (self.desc.run)(guard.as_ptr(), StrRef::of(request_json));
        self.take(buf)
    }

    /// Call `compensate`; [`CallError::NoCompensate`] when the plugin has none.
    pub fn compensate(
        &self,
        services: &dyn HostServices,
        request_json: &str,
    ) -> Result<String, CallError> {
        let Some(compensate) = self.desc.compensate else {
            return Err(CallError::NoCompensate);
        };
        let guard = HostApi::for_services(services);
        let buf = compensate(guard.as_ptr(), StrRef::of(request_json));
        self.take(buf)
    }
}

/// Read only the ABI version of a descriptor (the first field, stable across
/// versions), before trusting the rest of its layout.
///
/// # Safety
/// `desc` must be non-null and point to at least a `u32`.
pub unsafe fn read_abi_version(desc: *const PluginDescriptor) -> u32 {
    // SAFETY: the ABI keeps `abi_version: u32` as the first field of every version.
    unsafe { desc.cast::<u32>().read() }
}
