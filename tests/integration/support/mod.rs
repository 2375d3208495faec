//! The test harness: one emulator per test (own port), scripts in a temp folder, the real
//! `deckhand` binary, and the emulator's request recorder as server-side proof of what was sent.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

mod fault;
pub use fault::{Fault, FaultProxy};

use deckhand::local::{Emulator, LOCAL_REGION, RecordedRequest, TIME_SCALE_ENV, cli_env};
use deckhand::runtime::{Aws, Target};

/// The time scale of a test's emulator and deckhand unless it sets its own: modelled AWS
/// durations pass this many times as fast (a 90 s NAT gateway is pending for 0.45 s).
pub const TEST_TIME_SCALE: &str = "0.005";

/// One isolated deckhand world: an emulator and a folder for scripts.
pub struct Deck {
    /// The emulator this test talks to.
    pub emulator: Emulator,
    dir: PathBuf,
    faults: Option<FaultProxy>,
    time_scale: String,
}

impl Deck {
    /// Starts a fresh emulator (provisioned on first use) and makes a scratch folder.
    pub fn new() -> Deck {
        Deck::with_emulator_env(&[])
    }

    /// Like [`Deck::new`], with extra emulator settings (e.g. `DECKHAND_EMULATOR_LATENCY_MS`). A
    /// `DECKHAND_TIME_SCALE` among them is deckhand's too; without one, both use
    /// [`TEST_TIME_SCALE`].
    pub fn with_emulator_env(env: &[(&str, &str)]) -> Deck {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let time_scale =
            env.iter().find(|(key, _)| *key == TIME_SCALE_ENV).map_or(TEST_TIME_SCALE, |(_, value)| value).to_string();
        let mut env = env.to_vec();
        env.push((TIME_SCALE_ENV, &time_scale));
        let emulator = Emulator::start_with_env(&env).expect("the local emulator starts");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "deck-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Deck { emulator, dir, faults: None, time_scale }
    }

    /// Sends deckhand's requests through a [`FaultProxy`] armed with `faults` (the SDK checks of
    /// [`Deck::aws`] still go to the emulator directly).
    pub fn with_faults(mut self, faults: Vec<Fault>) -> Deck {
        let upstream = self.emulator.endpoint_url().trim_start_matches("http://").to_string();
        self.faults = Some(FaultProxy::start(upstream, faults));
        self
    }

    /// The fault proxy of [`Deck::with_faults`].
    pub fn faults(&self) -> &FaultProxy {
        self.faults.as_ref().expect("Deck::with_faults was called")
    }

    /// Writes `source` as `name` in the scratch folder and returns its path.
    pub fn write(&self, name: &str, source: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, source).unwrap();
        path
    }

    /// Runs `deckhand ARGS` against the emulator.
    pub fn deckhand(&self, args: &[&str]) -> Outcome {
        let output = self.command(env!("CARGO_BIN_EXE_deckhand")).args(args).output().expect("deckhand runs");
        Outcome::of(args, output)
    }

    /// The default VPC's id.
    pub fn default_vpc_id(&self) -> String {
        let aws = self.aws();
        let filter = aws_sdk_ec2::types::Filter::builder().name("isDefault").values("true").build();
        let vpcs = aws.block_on(aws.ec2.describe_vpcs().filters(filter).send()).expect("DescribeVpcs");
        vpcs.vpcs()[0].vpc_id().expect("a VPC id").to_string()
    }

    /// The id of a default subnet (one per zone, in the default VPC).
    pub fn default_subnet_id(&self) -> String {
        let aws = self.aws();
        let filter = aws_sdk_ec2::types::Filter::builder().name("default-for-az").values("true").build();
        let subnets = aws.block_on(aws.ec2.describe_subnets().filters(filter).send()).expect("DescribeSubnets");
        subnets.subnets()[0].subnet_id().expect("a subnet id").to_string()
    }

    /// The scratch folder (the working directory of every command).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A command for `program` in the scratch folder, aimed at this emulator (endpoint, region,
    /// dummy credentials, no profile, no color), with its state (REPL history) kept in the folder.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .envs(cli_env(self.faults.as_ref().map_or(self.emulator.endpoint_url(), FaultProxy::endpoint_url)))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env(TIME_SCALE_ENV, &self.time_scale)
            .env_remove("AWS_PROFILE");
        command
    }

    /// Runs `deckhand repl ARGS` with `input` piped to its stdin (not a terminal: no prompts).
    pub fn repl(&self, args: &[&str], input: &str) -> Outcome {
        let mut child = self
            .command(env!("CARGO_BIN_EXE_deckhand"))
            .arg("repl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("deckhand repl starts");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_string();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let output = child.wait_with_output().expect("deckhand repl runs");
        writer.join().expect("the input writer finishes").expect("the input is written");
        let all: Vec<&str> = ["repl"].into_iter().chain(args.iter().copied()).collect();
        Outcome::of(&all, output)
    }

    /// Writes `source` as `deploy.rhai` and runs `deckhand run deploy.rhai EXTRA`.
    pub fn run(&self, source: &str, extra: &[&str]) -> Outcome {
        self.write("deploy.rhai", source);
        let mut args = vec!["run", "deploy.rhai"];
        args.extend_from_slice(extra);
        self.deckhand(&args)
    }

    /// Writes `source` as `deploy.rhai` and runs `deckhand run --plan deploy.rhai EXTRA`.
    pub fn plan(&self, source: &str, extra: &[&str]) -> Outcome {
        self.write("deploy.rhai", source);
        let mut args = vec!["run", "--plan", "deploy.rhai"];
        args.extend_from_slice(extra);
        self.deckhand(&args)
    }

    /// Runs `f` while the emulator records, and returns what `f` returned with the requests.
    /// The harness ends the recording with a probe request of its own and fails the test when
    /// the recorder missed it: a recorder that was off would make "nothing was sent" vacuous.
    /// The probe is not among the returned requests.
    pub fn recorded<T>(&self, f: impl FnOnce() -> T) -> (T, Requests) {
        self.emulator.start_recording().expect("recording starts");
        let value = f();
        self.probe_recorder();
        let mut requests = self.emulator.stop_recording().expect("recording stops");
        let probe = requests.iter().rposition(|r| r.body.contains(PROBE_MARKER));
        let probe =
            probe.expect("the recorder missed the harness's probe request: recording was off, so it proves nothing");
        requests.remove(probe);
        (value, Requests(requests))
    }

    /// A harmless read (availability zones named like no zone) that [`Deck::recorded`] looks for.
    fn probe_recorder(&self) {
        let body = format!(
            "Action=DescribeAvailabilityZones&Version=2016-11-15&Filter.1.Name=zone-name&Filter.1.Value.1={PROBE_MARKER}"
        );
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20250101/us-west-2/ec2/aws4_request, SignedHeaders=host, Signature=x",
            ),
        ];
        self.emulator.request("POST", "/", &headers, &body).expect("the emulator answers the recorder probe");
    }

    /// Runs `deckhand ARGS` in a pseudo-terminal (Python's `pty`, present wherever the emulator
    /// is): each step is `[keys, [texts expected next, in order]]`, waited for with a deadline.
    /// A step `[keys, [texts], GATE]` lets the test act first: the driver creates `GATE.reached`,
    /// then waits for the test to create `GATE` before it sends the keys (see [`Deck::at_gate`]).
    /// The outcome's stdout is the terminal transcript; stderr says what went wrong, if anything.
    pub fn terminal(&self, args: &[&str], steps: &serde_json::Value) -> Outcome {
        let args_json = serde_json::to_string(args).unwrap();
        let output = self
            .command("python3")
            .args(["-c", PTY_DRIVER, env!("CARGO_BIN_EXE_deckhand"), &args_json, &steps.to_string()])
            .output()
            .expect("python3 runs the pty driver");
        Outcome::of(args, output)
    }

    /// Waits (30 s at most) until a [`Deck::terminal`] session running on another thread reaches
    /// `gate`, runs `act`, then lets the session go on.
    pub fn at_gate<T>(&self, gate: &Path, act: impl FnOnce() -> T) -> T {
        let reached = gate.with_extension("reached");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !reached.exists() {
            assert!(std::time::Instant::now() < deadline, "the terminal session never reached {}", gate.display());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let result = act();
        std::fs::write(gate, "").expect("the gate file is written");
        result
    }

    /// A certificate of the user's own, already ISSUED (imported into ACM: a self-signed one for
    /// example.com, valid until 2126), for scripts given `certificate_arn`: ELBv2 refuses a
    /// certificate that is not issued yet on an HTTPS listener, as the emulator does.
    pub fn request_certificate(&self) -> String {
        let aws = self.aws();
        let out = aws
            .block_on(
                aws.acm
                    .import_certificate()
                    .certificate(aws_smithy_types::Blob::new(include_str!("own_certificate.pem")))
                    .private_key(aws_smithy_types::Blob::new(include_str!("own_certificate.key")))
                    .send(),
            )
            .expect("ImportCertificate");
        out.certificate_arn().expect("a certificate ARN").to_string()
    }

    /// SDK clients for checking what deckhand did, talking to this emulator.
    pub fn aws(&self) -> Aws {
        Aws::connect(&Target {
            region: Some(LOCAL_REGION.into()),
            profile: None,
            endpoint_url: Some(self.emulator.endpoint_url()),
            dummy_credentials: true,
            time_scale: None,
        })
        .expect("SDK clients for the emulator")
    }
}

/// What marks the harness's own probe request (see [`Deck::recorded`]).
const PROBE_MARKER: &str = "deckhand-recorder-probe";

/// Requests the emulator received (recording proven on: see [`Deck::recorded`]).
#[derive(Debug)]
pub struct Requests(pub Vec<RecordedRequest>);

impl Requests {
    /// The mutating ones (anything but Describe/List/Get...) that change the stack's resources:
    /// without the stack lock's own writes (its SSM parameter, see src/lock.rs), which every apply
    /// sends around its changes (tests/integration/lock.rs checks those).
    pub fn mutating(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|r| r.is_mutating() && !is_stack_lock(r))
            .map(|r| format!("{} {}", r.service, r.action))
            .collect()
    }

    /// Asserts that nothing mutating was sent, the stack lock included (and that something was
    /// recorded at all).
    pub fn assert_read_only(&self) {
        assert!(!self.0.is_empty(), "the recorder saw no request at all; is recording working?");
        let mutating: Vec<String> =
            self.0.iter().filter(|r| r.is_mutating()).map(|r| format!("{} {}", r.service, r.action)).collect();
        assert_eq!(mutating, Vec::<String>::new(), "mutating requests were sent");
    }

    /// Asserts that no request at all reached the emulator (the recorder was on: it saw the probe).
    pub fn assert_none(&self) {
        assert!(self.0.is_empty(), "expected no request, got {:?}", self.0);
    }

    /// The actions sent, in order.
    pub fn actions(&self) -> Vec<String> {
        self.0.iter().map(|r| r.action.clone()).collect()
    }

    /// The actions sent to one service (as the credential scope names it, e.g. `ecs`), in order.
    pub fn actions_of(&self, service: &str) -> Vec<String> {
        self.0.iter().filter(|r| r.service == service).map(|r| r.action.clone()).collect()
    }
}

/// True for a write of the stack lock's SSM parameter (`/deckhand/locks/<stack>`).
fn is_stack_lock(request: &RecordedRequest) -> bool {
    request.service == "ssm" && request.body.contains("/deckhand/locks/")
}

/// What one deckhand command did.
#[derive(Debug)]
pub struct Outcome {
    args: Vec<String>,
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Outcome {
    /// The outcome of a finished command run with `args`.
    pub fn of(args: &[&str], output: std::process::Output) -> Outcome {
        Outcome {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn context(&self) -> String {
        format!(
            "deckhand {}\n--- exit {}\n--- stdout:\n{}--- stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(self) -> Outcome {
        assert_eq!(self.code, 0, "expected success:\n{}", self.context());
        self
    }

    /// Asserts a non-zero exit code.
    #[track_caller]
    pub fn failure(self) -> Outcome {
        assert_ne!(self.code, 0, "expected failure:\n{}", self.context());
        self
    }

    /// The change lines (`+ ...`, `~ ...`, `= ...`), without their indented diffs.
    pub fn changes(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("+ ") || l.starts_with("~ ") || l.starts_with("= ") || l.starts_with("- "))
            .map(str::to_string)
            .collect()
    }

    /// Asserts the change lines, in order; each expectation is a prefix of its line.
    #[track_caller]
    pub fn expect_changes(self, expected: &[&str]) -> Outcome {
        let changes = self.changes();
        let matches =
            changes.len() == expected.len() && changes.iter().zip(expected).all(|(line, want)| line.starts_with(want));
        assert!(matches, "expected changes {expected:#?}\n{}", self.context());
        self
    }

    /// Asserts that stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(self, text: &str) -> Outcome {
        assert!(self.stdout.contains(text), "stdout lacks {text:?}:\n{}", self.context());
        self
    }

    /// Asserts that stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(self, text: &str) -> Outcome {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}:\n{}", self.context());
        self
    }
}

/// Drives deckhand in a pseudo-terminal: each step sends keys, then waits (with a
/// deadline) until the output since then contains the expected texts in order. Prints the
/// transcript and exits with deckhand's status.
const PTY_DRIVER: &str = r#"
import json, os, pty, select, struct, subprocess, sys, time, fcntl, termios
binary, args, steps = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
def controlling_terminal():  # like a login shell: Ctrl-C becomes SIGINT for deckhand
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
proc = subprocess.Popen([binary] + args, stdin=slave, stdout=slave, stderr=slave,
                        env=dict(os.environ, TERM="xterm"), preexec_fn=controlling_terminal)
os.close(slave)
out = b""
def read_some(deadline):
    global out
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([master], [], [], left)[0]:
        return False
    try:
        chunk = os.read(master, 4096)
    except OSError:
        return False
    out += chunk
    return bool(chunk)
for keys, expected, *gate in steps:
    if gate:  # the test acts before these keys: say so, then wait until it is done
        open(gate[0] + ".reached", "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(gate[0]):
            if time.monotonic() > deadline:
                proc.kill()
                sys.exit("timed out waiting for the test at gate %r" % gate[0])
            time.sleep(0.05)
    at = len(out)
    os.write(master, keys.encode())
    deadline = time.monotonic() + 30
    for text in expected:
        while out.find(text.encode(), at) < 0:
            if not read_some(deadline):
                proc.kill()
                sys.stdout.write(out.decode(errors="replace"))
                sys.exit("timed out waiting for %r" % text)
        at = out.find(text.encode(), at) + len(text)
try:
    code = proc.wait(timeout=30)
except subprocess.TimeoutExpired:
    proc.kill()
    sys.exit("deckhand did not exit")
while read_some(time.monotonic() + 5):
    pass
sys.stdout.write(out.decode(errors="replace"))
sys.exit(code)
"#;
