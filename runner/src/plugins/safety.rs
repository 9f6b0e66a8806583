//! Checks on a plugin file made BEFORE it is opened with `dlopen`: loading
//! a library runs its initialisers, so a file anyone could have replaced
//! must never get that far.
//!
//! - The file and the directory holding it must not be world-writable.
//! - The file must be owned by root or by the user running dbops.
//! - When a step pins `sha256 = "..."`, the file's digest must match.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a plugin file is refused before loading.
#[derive(Debug, thiserror::Error)]
pub enum SafetyError {
    /// The file (or its metadata) cannot be read.
    #[error("cannot read plugin file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file or its directory can be written by any user.
    #[error(
        "refusing to load plugin {path}: {what} {writable} is world-writable (mode {mode:o}), so any user could replace the code dbops runs; fix it with `chmod o-w {writable}`"
    )]
    WorldWritable {
        /// The plugin file.
        path: PathBuf,
        /// "the file" or "its directory".
        what: &'static str,
        /// The path that is world-writable.
        writable: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file belongs to another user.
    #[error(
        "refusing to load plugin {path}: it is owned by uid {owner}, not by root or the user running dbops (uid {me}); fix it with `chown {me} {path}` or install it as root"
    )]
    WrongOwner {
        /// The plugin file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        me: u32,
    },
    /// The sha256 pin of a step does not match the file.
    #[error(
        "refusing to load plugin {path} for step `{step}`: its sha256 is {actual} but the pipeline pins {expected}; install the pinned build or update the step's `sha256`"
    )]
    DigestMismatch {
        /// The plugin file.
        path: PathBuf,
        /// The step whose pin failed.
        step: String,
        /// The pinned digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
}

/// Check permissions and ownership of `path` (already canonical) and its
/// directory.
pub fn check_permissions(path: &Path) -> Result<(), SafetyError> {
    let unreadable = |source| SafetyError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(unreadable)?;
    if meta.mode() & 0o002 != 0 {
        return Err(SafetyError::WorldWritable {
            path: path.to_owned(),
            what: "the file",
            writable: path.to_owned(),
            mode: meta.mode() & 0o7777,
        });
    }
    if let Some(dir) = path.parent() {
        check_directory(path, dir)?;
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(SafetyError::WrongOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    Ok(())
}

/// Check that `dir`, which holds `plugin` (or a symlink to it), cannot be
/// written by everyone. A world-writable directory is safe only with the
/// sticky bit (like /tmp): then others cannot replace our file.
pub fn check_directory(plugin: &Path, dir: &Path) -> Result<(), SafetyError> {
    let meta = fs::metadata(dir).map_err(|source| SafetyError::Unreadable {
        path: plugin.to_owned(),
        source,
    })?;
    if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(SafetyError::WorldWritable {
            path: plugin.to_owned(),
            what: "its directory",
            writable: dir.to_owned(),
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

/// The hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, SafetyError> {
    let unreadable = |source| SafetyError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::File::open(path).map_err(unreadable)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Compare a step's pin with the file's digest (case-insensitive, an
/// optional `sha256:` prefix allowed).
pub fn check_pin(path: &Path, step: &str, expected: &str, actual: &str) -> Result<(), SafetyError> {
    let wanted = expected.trim();
    let wanted = wanted.strip_prefix("sha256:").unwrap_or(wanted);
    if wanted.eq_ignore_ascii_case(actual) {
        Ok(())
    } else {
        Err(SafetyError::DigestMismatch {
            path: path.to_owned(),
            step: step.to_owned(),
            expected: wanted.to_ascii_lowercase(),
            actual: actual.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_world_writable_file_and_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
        let file = dir.path().join("libdbops_plugin_x.so");
        fs::write(&file, b"not a library").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        check_permissions(&file).expect("safe file");

        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).expect("chmod");
        let err = check_permissions(&file).expect_err("world-writable file");
        assert!(matches!(
            err,
            SafetyError::WorldWritable {
                what: "the file",
                ..
            }
        ));
        assert!(err.to_string().contains("chmod o-w"), "{err}");

        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod dir");
        let err = check_permissions(&file).expect_err("world-writable dir");
        assert!(matches!(
            err,
            SafetyError::WorldWritable {
                what: "its directory",
                ..
            }
        ));

        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).expect("chmod dir");
        check_permissions(&file).expect("sticky directory is fine");
    }

    #[test]
    fn refuses_a_file_owned_by_another_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
        let file = dir.path().join("p.so");
        fs::write(&file, b"x").expect("write");
        check_permissions(&file).expect("our own file is fine");
        // Only root can give a file away; CI runs the suite as root.
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(4242)), None).expect("chown");
            let err = check_permissions(&file).expect_err("foreign owner");
            assert!(
                matches!(err, SafetyError::WrongOwner { owner: 4242, .. }),
                "{err}"
            );
            assert!(err.to_string().contains("chown"), "{err}");
        }
    }

    #[test]
    fn pin_mismatch_names_both_digests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("p.so");
        fs::write(&file, b"abc").expect("write");
        let actual = sha256_file(&file).expect("hash");
        assert_eq!(
            actual,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        check_pin(
            &file,
            "s",
            &format!("sha256:{}", actual.to_uppercase()),
            &actual,
        )
        .expect("pin matches");
        let err = check_pin(&file, "s", "00ff", &actual).expect_err("mismatch");
        let text = err.to_string();
        assert!(text.contains("00ff") && text.contains(&actual), "{text}");
    }
}
