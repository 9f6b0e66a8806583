//! Opening a plugin library and reading its descriptor: the only `unsafe`
//! code in the runner.
//!
//! **Invariant**: libraries are never unloaded. A loaded [`Library`] is
//! leaked on purpose, so the `'static` descriptor, its strings and its
//! function pointers stay valid for the life of the process (also for a
//! step thread abandoned at its deadline).
//!
//! The caller runs [`super::safety`] checks before calling [`open`].
#![allow(unsafe_code)] // Reason: dlopen/dlsym and reading the plugin's C descriptor.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use dbops_plugin_sdk::abi::{ABI_VERSION, ENTRY_SYMBOL, EntryFn, PluginRef, read_abi_version};
use libloading::Library;

/// Why a library could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `dlopen` failed (not a shared library, missing dependency, wrong arch).
    #[error("cannot load plugin {path}: {source}; is it a dbops plugin built for this platform?")]
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },
    /// The library does not export the entry symbol.
    #[error(
        "{path} is not a dbops plugin: it does not export `dbops_plugin_v1` ({source}); plugins export it with `dbops_plugin_sdk::export_plugin!`"
    )]
    NoEntry {
        /// The file.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },
    /// The entry returned a null descriptor.
    #[error("plugin {path} returned no descriptor from `dbops_plugin_v1`")]
    NullDescriptor {
        /// The file.
        path: PathBuf,
    },
    /// The plugin speaks another ABI version.
    #[error(
        "plugin {path} was built for plugin ABI version {found}, but this dbops speaks ABI version {expected}; {hint}"
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's version.
        found: u32,
        /// The host's version.
        expected: u32,
        /// How to fix it.
        hint: &'static str,
    },
}

/// Load `path`, check its ABI version and return a safe handle to its
/// descriptor. The library stays loaded for the rest of the process.
pub fn open(path: &Path) -> Result<PluginRef, LoadError> {
    // SAFETY: loading a library runs its initialisers. The file passed the
    // safety checks (owner, permissions, pin) before we got here; running
    // plugin code is the point of a plugin host.
    let library = unsafe { Library::new(path) }.map_err(|source| LoadError::Open {
        path: path.to_owned(),
        source,
    })?;
    // Leak it: never unloaded (see the module invariant).
    let library: &'static Library = Box::leak(Box::new(library));

    let symbol = CStr::from_bytes_with_nul(ENTRY_SYMBOL).unwrap_or(c"dbops_plugin_v1");
    // SAFETY: the symbol is declared by the ABI as `EntryFn`; every plugin
    // built with the SDK's export macro defines it with that signature.
    let entry: EntryFn = unsafe { library.get::<EntryFn>(symbol) }
        .map(|sym| *sym)
        .map_err(|source| LoadError::NoEntry {
            path: path.to_owned(),
            source,
        })?;

    // SAFETY: calling the entry is the documented handshake; it returns a
    // pointer to a static descriptor (or null).
    let descriptor = unsafe { entry(ABI_VERSION) };
    if descriptor.is_null() {
        return Err(LoadError::NullDescriptor {
            path: path.to_owned(),
        });
    }
    // SAFETY: non-null; the ABI keeps the version as the first field of every
    // descriptor layout, so reading it is valid whatever the plugin's version.
    let found = unsafe { read_abi_version(descriptor) };
    if found != ABI_VERSION {
        let hint = if found > ABI_VERSION {
            "the plugin is newer than this dbops: upgrade dbops, or use a plugin release built with a dbops-plugin-sdk that speaks this ABI"
        } else {
            "the plugin is older than this dbops: rebuild it against the current dbops-plugin-sdk, or use an older dbops"
        };
        return Err(LoadError::AbiMismatch {
            path: path.to_owned(),
            found,
            expected: ABI_VERSION,
            hint,
        });
    }
    // SAFETY: non-null, version checked, the library is leaked so the
    // descriptor lives for the rest of the process.
    Ok(unsafe { PluginRef::new(descriptor) })
}
