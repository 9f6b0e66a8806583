//! A pod's `command` process: `sh -c SCRIPT` in its own process group, so
//! stopping the pod stops everything it started.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The working directory could not be created.
    #[error("creating the pod directory {dir}: {source}")]
    Dir {
        /// The working directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Opening the log file failed.
    #[error("opening log file {path}: {source}")]
    Log {
        /// The log path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `sh` could not be spawned.
    #[error("starting `sh -c` in {dir}: {source}")]
    Spawn {
        /// The working directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A running process group; dropping it kills the whole group.
#[derive(Debug)]
pub struct Process {
    child: Child,
    group: Option<Pid>,
}

impl Process {
    /// Starts `sh -c script` in `dir` (created if missing) with `env`
    /// added to the sandbox's environment, output appended to `log`.
    pub fn spawn(
        script: &str,
        dir: &Path,
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self, ProcessError> {
        std::fs::create_dir_all(dir).map_err(|source| ProcessError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|source| ProcessError::Log {
                    path: log.to_owned(),
                    source,
                })
        };
        let (stdout, stderr) = (open()?, open()?);
        let child = shell(script)
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProcessError::Spawn {
                dir: dir.to_owned(),
                source,
            })?;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        Ok(Self { child, group })
    }

    /// Waits until the process exits by itself.
    pub async fn exited(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// SIGTERM to the group, SIGKILL after `grace` if the leader still runs.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(group) = self.group {
            let _ = killpg(group, Signal::SIGTERM);
        }
        let _ = tokio::time::timeout(grace, self.child.wait()).await;
        // Drop sends SIGKILL to whatever is left of the group.
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// `sh -c script`, under `setpriv --pdeathsig KILL` when available, so the
/// process (or what it `exec`s) dies with the sandbox even if the sandbox
/// is killed without unwinding (e.g. a test runner's timeout).
fn shell(script: &str) -> Command {
    static SETPRIV: OnceLock<bool> = OnceLock::new();
    let setpriv = *SETPRIV.get_or_init(|| {
        std::process::Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let mut command = if setpriv {
        let mut command = Command::new("setpriv");
        command.args(["--pdeathsig", "KILL", "--", "sh"]);
        command
    } else {
        Command::new("sh")
    };
    command.arg("-c").arg(script);
    command
}

/// Runs `argv` (exec probe) with a timeout; true when it exits with 0.
pub async fn run_check(
    argv: &[String],
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> bool {
    let Some((program, args)) = argv.split_first() else {
        return false;
    };
    // The pod directory is created on first use; a pod whose only user of
    // it is this probe (no volumes to write, no process) has none yet.
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let Ok(child) = child else {
        return false;
    };
    let mut process = Process {
        group: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
        child,
    };
    matches!(
        tokio::time::timeout(timeout, process.exited()).await,
        Ok(Ok(status)) if status.success()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_script_with_env_and_logs_output() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("log");
        let env = vec![("GREETING".to_owned(), "hello".to_owned())];
        let mut process =
            Process::spawn("echo $GREETING from $(pwd)", tmp.path(), &env, &log).expect("spawn");
        let status = process.exited().await.expect("wait");
        assert!(status.success());
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(text.starts_with("hello from "), "{text}");
    }

    #[tokio::test]
    async fn creates_the_pod_directory_it_runs_in() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pods").join("ns_db-0_uid");
        let log = dir.join("log");
        let mut process = Process::spawn("pwd", &dir, &[], &log).expect("spawn");
        assert!(process.exited().await.expect("wait").success());
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(text.trim_end().ends_with("ns_db-0_uid"), "{text}");
    }

    #[tokio::test]
    async fn an_exec_check_runs_in_a_pod_directory_not_yet_created() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pods").join("ns_db-0_uid");
        let argv = [
            "sh".to_owned(),
            "-c".to_owned(),
            "test \"$(pwd)\" = \"$0\"".to_owned(),
            dir.display().to_string(),
        ];
        assert!(run_check(&argv, &dir, &[], Duration::from_secs(10)).await);
    }

    #[tokio::test]
    async fn stop_kills_the_whole_group() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("log");
        let marker = tmp.path().join("child.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", marker.display());
        let process = Process::spawn(&script, tmp.path(), &[], &log).expect("spawn");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Ok(text) = std::fs::read_to_string(&marker)
                && let Ok(pid) = text.trim().parse::<i32>()
            {
                break pid;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "child never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        process.stop(Duration::from_secs(2)).await;
        // The background `sleep` was in the group: it must be gone (or a zombie
        // reaped by init) shortly after.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z"))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "sleep survived the pod"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn check_reports_exit_status() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let yes = vec!["sh".to_owned(), "-c".to_owned(), "exit 0".to_owned()];
        let no = vec!["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()];
        assert!(run_check(&yes, tmp.path(), &[], Duration::from_secs(5)).await);
        assert!(!run_check(&no, tmp.path(), &[], Duration::from_secs(5)).await);
        assert!(!run_check(&[], tmp.path(), &[], Duration::from_secs(5)).await);
    }
}
