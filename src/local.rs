//! The local emulator: provisions moto's server into a cached venv, runs it on a free loopback
//! port, and talks to its control API (reset, request recorder).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The pinned emulator package.
pub const MOTO: &str = "moto[server]==5.2.5";
const MOTO_DIR: &str = "moto-5.2.5";
/// The region the emulator is used in.
pub const LOCAL_REGION: &str = "us-west-2";

/// A running moto server; stopped when dropped.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    port: u16,
    recording: PathBuf,
}

impl Emulator {
    /// Provisions (first time only) and starts an emulator on a free loopback port.
    pub fn start() -> Result<Emulator> {
        Self::start_with_env(&[])
    }

    /// Like [`Emulator::start`], with extra emulator settings (e.g. `MOTO_ECS_SERVICE_RUNNING`).
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
        // Each emulator records into its own file (moto's default is ./moto_recording, shared).
        let recording = std::env::temp_dir().join(format!("deckhand-moto-{}-{port}.jsonl", std::process::id()));
        let mut command = Command::new(venv.join("bin").join("moto_server"));
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(std::env::temp_dir())
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("MOTO_ECS_SERVICE_RUNNING", "2")
            // Each emulator records into its own file: the default (`moto_recording` in the
            // working directory) is shared, so parallel tests would see each other's requests.
            .env("MOTO_RECORDER_FILEPATH", recording_path(port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in std::env::vars() {
            // Pass through emulator settings a test or user asks for (e.g. failed tasks).
            if key.starts_with("MOTO_") {
                command.env(key, value);
            }
        }
        command.envs(env.iter().copied());
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|e| Error::io("starting moto_server", e))?;
        let mut emulator = Emulator { child, port, recording };
        emulator.wait_until_up()?;
        tracing::debug!(port, "local emulator up");
        Ok(emulator)
    }

    fn wait_until_up(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(10);
        loop {
            if self.get("/moto-api/").is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Emulator(format!("moto_server exited with {status} on port {}", self.port)));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(Error::Emulator(format!("moto_server did not answer on port {} within 60 s", self.port)));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(200));
        }
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

    /// A raw HTTP/1.0 request to the emulator; non-2xx answers are errors.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Result<String> {
        let io = |e| Error::io(format!("{method} {path} on the local emulator"), e);
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(io)?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(io)?;
        let mut head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body.as_bytes()).map_err(io)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).map_err(io)?;
        let text = String::from_utf8_lossy(&response);
        let (status_line, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
        let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = rest.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("").to_string();
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(Error::Emulator(format!("{method} {path} answered {status_line}: {body}")))
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// Where the emulator on `port` keeps its request recording.
fn recording_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("deckhand-moto-recording-{port}.jsonl"))
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
            String::from_utf8(base64_decode(body)).unwrap_or_default()
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

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let Some(value) = ALPHABET.iter().position(|&c| c == byte) else {
            continue;
        };
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
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
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("deckhand")
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
