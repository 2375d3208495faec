//! The local emulator: provisions moto's server into a cached venv, runs it on a free loopback
//! port, and talks to its control API (reset, request recorder).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::poll::{Check, Wait};
use crate::timing::{Clock, EMULATOR_START_PACE, EMULATOR_START_TIMEOUT};

/// The pinned emulator package.
pub const MOTO: &str = "moto[server]==5.2.5";
const MOTO_DIR: &str = "moto-5.2.5";
/// The region the emulator is used in.
pub const LOCAL_REGION: &str = "us-west-2";

/// The emulator setting that delays every AWS request by this many milliseconds (benchmarks: a
/// round trip to a real region); requests are still served concurrently. Passed through from
/// deckhand's environment like the `MOTO_` settings, or given to [`Emulator::start_with_env`].
pub const LATENCY_ENV: &str = "DECKHAND_EMULATOR_LATENCY_MS";

/// The environment of a deckhand process (a test's, the benchmark's) that talks to the emulator at
/// `endpoint_url` and to nothing else: test credentials, the local region, no AWS config files, no
/// instance metadata, no colours.
pub fn cli_env(endpoint_url: String) -> [(&'static str, String); 8] {
    [
        ("AWS_ENDPOINT_URL", endpoint_url),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", LOCAL_REGION.into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("NO_COLOR", "1".into()),
    ]
}

/// The setting that scales the emulator's modelled durations (0 < s <= 1), and deckhand's waits
/// alike: a NAT gateway that is pending for 90 s on AWS is pending for 90 × s seconds. Passed
/// through like [`LATENCY_ENV`].
pub use crate::timing::TIME_SCALE_ENV;

/// The emulator's launcher (`main.py`, run with the venv's python) and the modules beside it:
/// moto's server with the patches that make it behave like AWS where deckhand depends on it,
/// states and durations included (see their docstrings).
const LAUNCHER: [(&str, &str); 7] = [
    ("main.py", include_str!("emulator/main.py")),
    ("clock.py", include_str!("emulator/clock.py")),
    ("network.py", include_str!("emulator/network.py")),
    ("ecs.py", include_str!("emulator/ecs.py")),
    ("tasks.py", include_str!("emulator/tasks.py")),
    ("exec.py", include_str!("emulator/exec.py")),
    ("cloudwatch.py", include_str!("emulator/cloudwatch.py")),
];

/// A running moto server; stopped when dropped.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    port: u16,
    recording: PathBuf,
    log: PathBuf,
}

impl Emulator {
    /// Provisions (first time only) and starts an emulator on a free loopback port.
    pub fn start() -> Result<Emulator> {
        Self::start_with_env(&[])
    }

    /// Like [`Emulator::start`], with extra emulator settings (e.g. `DECKHAND_TIME_SCALE=0.05`:
    /// modelled durations pass at a twentieth of AWS's).
    pub fn start_with_env(env: &[(&str, &str)]) -> Result<Emulator> {
        let venv = provision()?;
        let mut last = None;
        for _ in 0..3 {
            match Self::start_in(&venv, env) {
                Ok(emulator) => return Ok(emulator),
                Err(err) => last = Some(err),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn start_in(venv: &Path, env: &[(&str, &str)]) -> Result<Emulator> {
        let port = free_port()?;
        // Each emulator records into its own file: the default (`moto_recording` in the working
        // directory) is shared, so parallel tests would see each other's requests.
        let recording = std::env::temp_dir().join(format!("deckhand-moto-{}-{port}.jsonl", std::process::id()));
        // Its errors (the launcher logs no request lines) go to a file, shown if it fails to start.
        let log = recording.with_extension("log");
        let stderr = std::fs::File::create(&log).map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let launcher = write_launcher(venv)?;
        let mut command = Command::new(venv.join("bin").join("python"));
        command
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(std::env::temp_dir())
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            // The region whose backends the launcher builds before serving (see its warm_up).
            .env("DECKHAND_EMULATOR_REGION", LOCAL_REGION)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in std::env::vars() {
            // Pass through emulator settings a test or user asks for (e.g. tasks that never start).
            if key.starts_with("MOTO_") || key == LATENCY_ENV || key == TIME_SCALE_ENV {
                command.env(key, value);
            }
        }
        command.envs(env.iter().copied());
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|e| Error::io("starting the local emulator", e))?;
        let mut emulator = Emulator { child, port, recording, log };
        emulator.wait_until_up()?;
        tracing::debug!(port, "local emulator up");
        Ok(emulator)
    }

    /// Polls the starting emulator until it answers (a local process: real time, no scale).
    fn wait_until_up(&mut self) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::io("starting the async runtime", e))?;
        let clock = Clock::default();
        let wait = Wait::new(&clock, "emulator start", "the emulator", EMULATOR_START_PACE, EMULATOR_START_TIMEOUT);
        runtime.block_on(wait.quiet().until(async |_| {
            if self.get("/moto-api/").is_ok() {
                return Ok(Check::Done(()));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
                return Err(Error::Emulator(format!(
                    "the emulator (moto) exited with {status} on port {}:\n{}",
                    self.port,
                    tail.join("\n")
                )));
            }
            let not_up = format!(
                "the emulator (moto) did not answer on port {} within {} s",
                self.port,
                EMULATOR_START_TIMEOUT.as_secs()
            );
            Ok(Check::waiting_or("not answering yet", Error::Emulator(not_up)))
        }))
    }

    /// The endpoint URL to point the SDK at.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Clears all emulator state.
    pub fn reset(&self) -> Result<()> {
        self.post("/moto-api/reset", "").map(drop)
    }

    /// Starts recording the requests the emulator receives (clearing earlier recordings).
    pub fn start_recording(&self) -> Result<()> {
        self.post("/moto-api/recorder/reset-recording", "")?;
        self.post("/moto-api/recorder/start-recording", "").map(drop)
    }

    /// Stops recording and returns the requests received since [`Emulator::start_recording`].
    pub fn stop_recording(&self) -> Result<Vec<RecordedRequest>> {
        self.post("/moto-api/recorder/stop-recording", "")?;
        let body = self.get("/moto-api/recorder/download-recording")?;
        Ok(body.lines().filter(|l| !l.trim().is_empty()).filter_map(RecordedRequest::parse).collect())
    }

    /// A GET to the emulator, returning the body.
    pub fn get(&self, path: &str) -> Result<String> {
        self.request("GET", path, &[], "")
    }

    /// A POST to the emulator, returning the body.
    pub fn post(&self, path: &str, body: &str) -> Result<String> {
        self.request("POST", path, &[], body)
    }

    /// An HTTP request to the emulator; non-2xx answers are errors.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Result<String> {
        let failed = |e: ureq::Error| Error::Emulator(format!("{method} {path} on the local emulator: {e}"));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .build()
            .into();
        let mut request = ureq::http::Request::builder().method(method).uri(format!("{}{path}", self.endpoint_url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.to_string()).map_err(|e| failed(e.into()))?;
        let mut response = agent.run(request).map_err(failed)?;
        let status = response.status();
        // A recording holds every request of a test, bodies included: more than ureq's 10 MB default.
        let text = response.body_mut().with_config().limit(1 << 30).read_to_string().map_err(failed)?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(Error::Emulator(format!("{method} {path} answered {status}: {text}")))
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One request the emulator received, as its recorder saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The AWS service from the request's credential scope, e.g. `ec2`.
    pub service: String,
    /// The API action, e.g. `DescribeSubnets`.
    pub action: String,
    /// The request body, decoded (JSON for ECS, form-encoded for EC2).
    pub body: String,
}

impl RecordedRequest {
    /// True unless the action only reads (Describe/List/Get and a few read-only verbs; for REST
    /// APIs such as Route 53, whose requests carry no action name, a GET or HEAD).
    pub fn is_mutating(&self) -> bool {
        const READ_PREFIXES: [&str; 7] = ["Describe", "List", "Get", "Filter", "Lookup", "GET ", "HEAD "];
        !READ_PREFIXES.iter().any(|p| self.action.starts_with(p))
    }

    fn parse(line: &str) -> Option<RecordedRequest> {
        let record: serde_json::Value = serde_json::from_str(line).ok()?;
        let headers = record.get("headers")?;
        let header = |name: &str| {
            headers.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
        };
        let service = header("Authorization")
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|cred| cred.split('/').nth(3))
            .unwrap_or("unknown")
            .to_string();
        let body = record.get("body").and_then(|b| b.as_str()).unwrap_or("");
        let body = if record.get("body_encoded").and_then(|b| b.as_bool()).unwrap_or(false) {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_default()
        } else {
            body.to_string()
        };
        let action = match header("X-Amz-Target") {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => {
                let url = record.get("url").and_then(|u| u.as_str()).unwrap_or("");
                let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
                body.split('&')
                    .chain(query.split('&'))
                    .find_map(|pair| pair.strip_prefix("Action="))
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        format!("{} {url}", record.get("method").and_then(|m| m.as_str()).unwrap_or("?"))
                    })
            }
        };
        Some(RecordedRequest { service, action, body })
    }
}

/// Writes the launcher's files into a folder of the venv named after their contents (so emulators
/// of different deckhand builds never run each other's code) and returns its `main.py`.
fn write_launcher(venv: &Path) -> Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    LAUNCHER.hash(&mut hasher);
    let dir = venv.join(format!("deckhand-emulator-{:016x}", hasher.finish()));
    let main = dir.join(LAUNCHER[0].0);
    if main.exists() {
        return Ok(main);
    }
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |e| Error::io(format!("writing the emulator's launcher to {what}"), e)
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    // Written under temporary names and renamed (main.py last), so an emulator starting
    // concurrently from another process never runs a half-written file.
    for (name, source) in LAUNCHER.iter().rev() {
        let path = dir.join(name);
        let partial = dir.join(format!("{name}.{}", std::process::id()));
        std::fs::write(&partial, source).map_err(io(&partial))?;
        std::fs::rename(&partial, &path).map_err(io(&path))?;
    }
    Ok(main)
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("finding a free port", e))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| Error::io("finding a free port", e))
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl and setpgid are async-signal-safe; the closure only makes the child receive SIGTERM when
    // the thread that started it ends, so an emulator never outlives deckhand (Ctrl-C, panic, kill).
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            // Its own process group: a Ctrl-C typed at the terminal reaches deckhand only (which
            // may be a REPL that merely interrupts a statement); deckhand's exit still ends it.
            libc::setpgid(0, 0);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// The directory deckhand caches the emulator in: `$DECKHAND_CACHE_DIR`, else the user's cache.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DECKHAND_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("deckhand")
}

/// Makes sure the emulator's venv exists (creating it on first use) and returns its path.
pub fn provision() -> Result<PathBuf> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(|e| Error::io(format!("creating {}", cache.display()), e))?;
    let venv = cache.join(MOTO_DIR);
    let ready = venv.join(".deckhand-ready");
    if ready.exists() {
        return Ok(venv);
    }
    let lock_path = cache.join(format!("{MOTO_DIR}.lock"));
    let lock =
        std::fs::File::create(&lock_path).map_err(|e| Error::io(format!("creating {}", lock_path.display()), e))?;
    lock.lock().map_err(|e| Error::io(format!("locking {}", lock_path.display()), e))?;
    if ready.exists() {
        return Ok(venv);
    }
    eprintln!("Installing the local emulator ({MOTO}) into {} (first use only)...", venv.display());
    let python = find_python()?;
    let _ = std::fs::remove_dir_all(&venv);
    run_setup(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "creating the emulator's venv",
        Some("on Debian/Ubuntu install the python3-venv package"),
    )?;
    run_setup(
        Command::new(venv.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            MOTO,
        ]),
        "installing moto from PyPI",
        Some("pip needs to reach PyPI (or a mirror set with PIP_INDEX_URL)"),
    )?;
    std::fs::write(&ready, MOTO).map_err(|e| Error::io(format!("writing {}", ready.display()), e))?;
    Ok(venv)
}

fn find_python() -> Result<String> {
    let candidates =
        std::env::var("DECKHAND_PYTHON").map(|p| vec![p]).unwrap_or_else(|_| vec!["python3".into(), "python".into()]);
    for candidate in candidates {
        let output = Command::new(&candidate).args(["-c", "import sys; print(sys.version_info[0])"]).output();
        if let Ok(output) = output
            && String::from_utf8_lossy(&output.stdout).trim() == "3"
        {
            return Ok(candidate);
        }
    }
    Err(Error::Emulator(
        "Python 3 is needed to run the local emulator, and none was found; install python3 (or set DECKHAND_PYTHON to its path)".into(),
    ))
}

fn run_setup(command: &mut Command, what: &str, hint: Option<&str>) -> Result<()> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| Error::io(what.to_string(), e))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
    let hint = hint.map(|h| format!("\n  hint: {h}")).unwrap_or_default();
    Err(Error::Emulator(format!("{what} failed ({}):\n{}{hint}", output.status, tail.join("\n"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query_and_json_protocol_recordings() {
        let query = r#"{"headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20250101/us-west-2/ec2/aws4_request"}, "method": "POST", "url": "http://x/", "body": "QWN0aW9uPURlc2NyaWJlVnBjcyZWZXJzaW9uPTIwMTYtMTEtMTU=", "body_encoded": true}"#;
        let request = RecordedRequest::parse(query).unwrap();
        assert_eq!((request.service.as_str(), request.action.as_str()), ("ec2", "DescribeVpcs"));
        assert_eq!(request.body, "Action=DescribeVpcs&Version=2016-11-15");
        assert!(!request.is_mutating());
        let json = r#"{"headers": {"authorization": "AWS4-HMAC-SHA256 Credential=t/2025/us-west-2/ecs/aws4_request", "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.CreateCluster"}, "method": "POST", "url": "http://x/", "body": "{}"}"#;
        let request = RecordedRequest::parse(json).unwrap();
        assert_eq!(request.action, "CreateCluster");
        assert!(request.is_mutating());
    }
}
