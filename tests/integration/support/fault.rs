//! A fault proxy: forwards deckhand's HTTP/1.1 requests to the emulator, except that the first
//! request for an operation given a [`Fault`] gets what the fault says instead (once): an AWS
//! error, another successful reply, or no reply at all after the emulator served it. It stands in
//! for what real AWS does and moto does not: eventual consistency, best-effort pages, lost replies.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What to answer, once, to the first request for `operation`.
#[derive(Debug, Clone)]
pub struct Fault {
    operation: &'static str,
    answer: Answer,
    /// Only for a request whose parameter (see [`param`]) has this value.
    only: Option<(&'static str, &'static str)>,
}

#[derive(Debug, Clone)]
enum Answer {
    /// An AWS error in the protocol's form.
    Error {
        protocol: Protocol,
        code: &'static str,
        /// May name a request parameter as `{Name}` (an EC2 query parameter or a JSON key, at any
        /// depth), replaced by its value: "The allocation ID '{AllocationId}' does not exist".
        message: &'static str,
    },
    /// A successful reply with this body (JSON protocols) instead of the emulator's.
    Reply(&'static str),
    /// The request reaches the emulator, which serves it, but its reply is lost: the connection
    /// closes without an answer, as when a reply is dropped on the way back from AWS.
    LostReply,
}

#[derive(Debug, Clone, Copy)]
enum Protocol {
    /// EC2's query protocol: `<Response><Errors><Error><Code>...`.
    Ec2,
    /// JSON protocols (ECS, SSM, ACM, ...): `{"__type": ..., "message": ...}`.
    Json,
    /// The other XML protocols (ELBv2's query protocol, Route 53's REST):
    /// `<ErrorResponse><Error><Type>Sender</Type><Code>...`.
    Xml,
}

impl Fault {
    /// An EC2 query-protocol error (`<Response><Errors><Error><Code>...`).
    pub fn ec2(operation: &'static str, code: &'static str, message: &'static str) -> Fault {
        Fault { operation, answer: Answer::Error { protocol: Protocol::Ec2, code, message }, only: None }
    }

    /// A JSON-protocol error (`{"__type": ..., "message": ...}`): ECS, SSM, ACM, Application Auto
    /// Scaling, CloudWatch Logs.
    pub fn json(operation: &'static str, code: &'static str, message: &'static str) -> Fault {
        Fault { operation, answer: Answer::Error { protocol: Protocol::Json, code, message }, only: None }
    }

    /// An ECS error ([`Fault::json`]).
    pub fn ecs(operation: &'static str, code: &'static str, message: &'static str) -> Fault {
        Fault::json(operation, code, message)
    }

    /// An ELBv2 or Route 53 error (`<ErrorResponse><Error><Code>...`). A Route 53 operation is
    /// named as AWS names it (`ChangeResourceRecordSets`); see [`rest_operation`].
    pub fn xml(operation: &'static str, code: &'static str, message: &'static str) -> Fault {
        Fault { operation, answer: Answer::Error { protocol: Protocol::Xml, code, message }, only: None }
    }

    /// A successful JSON reply with `body` instead of the emulator's (e.g. an empty page that
    /// still carries a NextToken, as AWS's best-effort pages may).
    pub fn reply(operation: &'static str, body: &'static str) -> Fault {
        Fault { operation, answer: Answer::Reply(body), only: None }
    }

    /// The request is served, and its reply lost ([`Answer::LostReply`]).
    pub fn lost_reply(operation: &'static str) -> Fault {
        Fault { operation, answer: Answer::LostReply, only: None }
    }

    /// The same fault, only for a request whose parameter `name` is `value` (e.g. the HTTPS
    /// listener's CreateListener, `Protocol` `HTTPS`, not the redirect's).
    pub fn when(mut self, name: &'static str, value: &'static str) -> Fault {
        self.only = Some((name, value));
        self
    }

    fn label(&self) -> &'static str {
        match &self.answer {
            Answer::Error { code, .. } => code,
            Answer::Reply(_) => "reply",
            Answer::LostReply => "lost reply",
        }
    }
}

/// A running fault proxy in front of the emulator.
pub struct FaultProxy {
    port: u16,
    state: Arc<(Mutex<State>, Condvar)>,
}

#[derive(Default)]
struct State {
    pending: Vec<Fault>,
    /// Every operation seen, in order; injected ones as "Operation -> Code".
    seen: Vec<String>,
    /// Operations whose first requests are held until all of them arrived (see
    /// [`FaultProxy::meet`]), and those that did.
    meeting: BTreeSet<&'static str>,
    arrived: BTreeSet<String>,
}

/// How long a request waits at a meeting for the others before it goes on alone.
const MEETING_PATIENCE: Duration = Duration::from_secs(10);

impl FaultProxy {
    /// Starts forwarding to the emulator on `upstream` (host:port), with `faults` armed.
    pub fn start(upstream: String, faults: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the fault proxy binds");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new((Mutex::new(State { pending: faults, ..State::default() }), Condvar::new()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (state, upstream) = (shared.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &state.0, &state.1);
                });
            }
        });
        FaultProxy { port, state }
    }

    /// Adds a fault for what follows (e.g. a destroy after an apply that must not meet it).
    pub fn inject(&self, fault: Fault) {
        self.state.0.lock().unwrap().pending.push(fault);
    }

    /// Holds the first request of each of `operations` until all of them arrived, then lets them
    /// on together: requests sent one after another (each awaiting its answer before the next
    /// goes) cannot all arrive, so each goes on alone after [`MEETING_PATIENCE`]. [`Self::met`]
    /// tells which way it went.
    pub fn meet(&self, operations: &[&'static str]) {
        let mut state = self.state.0.lock().unwrap();
        state.meeting = operations.iter().copied().collect();
        state.arrived.clear();
    }

    /// Whether every operation of the [`Self::meet`] arrived while the others waited (they were
    /// in flight at once), and the operations that did arrive.
    pub fn met(&self) -> (bool, Vec<String>) {
        let state = self.state.0.lock().unwrap();
        let met = state.meeting.iter().all(|op| state.arrived.contains(*op));
        (met && !state.seen.iter().any(|s| s.ends_with("-> alone")), state.arrived.iter().cloned().collect())
    }

    /// The endpoint URL to give deckhand.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The faults answered so far, as "Operation -> Code".
    pub fn injected(&self) -> Vec<String> {
        self.state.0.lock().unwrap().seen.iter().filter(|s| s.contains(" -> ")).cloned().collect()
    }

    /// How many requests for `operation` arrived (injected or forwarded).
    pub fn count(&self, operation: &str) -> usize {
        self.state.0.lock().unwrap().seen.iter().filter(|s| s.split(' ').next() == Some(operation)).count()
    }
}

/// One request per connection: read it, answer the fault or forward it, close.
fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>, arrivals: &Condvar) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let header = |name: &str| {
        head.iter().find_map(|h| h.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
    };
    let length = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut raw_body = vec![0; length];
    reader.read_exact(&mut raw_body)?;
    let body = String::from_utf8_lossy(&raw_body).into_owned();
    let request_line = head.first().cloned().unwrap_or_default();
    let operation = match header("x-amz-target") {
        Some(target) => target.rsplit('.').next().unwrap_or("").to_string(),
        None => param(&body, "Action").unwrap_or_else(|| rest_operation(&request_line)),
    };

    meet(&operation, state, arrivals);
    let fault = {
        let mut state = state.lock().unwrap();
        let applies = |f: &Fault| {
            f.operation == operation && f.only.is_none_or(|(name, value)| param(&body, name).as_deref() == Some(value))
        };
        let fault = state.pending.iter().position(applies).map(|i| state.pending.remove(i));
        let seen = match &fault {
            Some(f) => format!("{operation} -> {}", f.label()),
            None => operation.clone(),
        };
        state.seen.push(seen);
        fault
    };
    let lost = match fault.map(|f| f.answer) {
        Some(Answer::Error { protocol, code, message }) => {
            let message = fill(message, &body);
            let (content_type, reply) = match protocol {
                Protocol::Json => (
                    "application/x-amz-json-1.1",
                    serde_json::json!({ "__type": code, "message": message }).to_string(),
                ),
                Protocol::Ec2 => (
                    "text/xml",
                    format!(
                        "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault</RequestID></Response>"
                    ),
                ),
                Protocol::Xml => (
                    "text/xml",
                    format!(
                        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
                    ),
                ),
            };
            return answer(&mut client, "400 Bad Request", content_type, &reply);
        }
        Some(Answer::Reply(reply)) => return answer(&mut client, "200 OK", "application/x-amz-json-1.1", reply),
        Some(Answer::LostReply) => true,
        None => false,
    };

    // Forward with `Connection: close`, read the whole answer, and pass it on saying the same, so
    // the client never reuses a connection this proxy is about to close.
    let mut server = TcpStream::connect(upstream)?;
    let mut request = String::new();
    for line in head.iter().filter(|h| !h.to_ascii_lowercase().starts_with("connection:")) {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    server.write_all(request.as_bytes())?;
    server.write_all(&raw_body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    if lost {
        // Served, and the answer never arrives: close without a byte.
        return Ok(());
    }
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let (response_head, response_body) = response.split_at(split);
    let mut out = String::new();
    for line in String::from_utf8_lossy(response_head).lines().filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    client.write_all(out.as_bytes())?;
    client.write_all(response_body)
}

/// At a meeting (see [`FaultProxy::meet`]), the first request of each operation waits for the
/// others' first requests, at most [`MEETING_PATIENCE`] (then it is noted `-> alone`).
fn meet(operation: &str, state: &Mutex<State>, arrivals: &Condvar) {
    let mut held = state.lock().unwrap();
    if !held.meeting.contains(operation) || held.arrived.contains(operation) {
        return;
    }
    held.arrived.insert(operation.to_string());
    arrivals.notify_all();
    let (mut held, waited) = arrivals
        .wait_timeout_while(held, MEETING_PATIENCE, |s| s.meeting.iter().any(|op| !s.arrived.contains(*op)))
        .unwrap();
    if waited.timed_out() {
        held.seen.push(format!("{operation} -> alone"));
    }
}

/// Writes a whole answer and closes.
fn answer(client: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes())?;
    client.write_all(body.as_bytes())
}

/// The operation of a REST request (Route 53's, whose requests carry no action name), as AWS names
/// it, from its request line (`POST /2013-04-01/hostedzone/Z1/rrset/ HTTP/1.1`); else the method
/// and path.
fn rest_operation(request_line: &str) -> String {
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
    let operation = match (method, path.rsplit('/').next().unwrap_or("")) {
        ("POST", "rrset") => "ChangeResourceRecordSets",
        ("GET", "rrset") => "ListResourceRecordSets",
        ("GET", "hostedzone") => "ListHostedZones",
        ("GET", "hostedzonesbyname") => "ListHostedZonesByName",
        _ => return format!("{method} {path}"),
    };
    operation.to_string()
}

/// `{Name}` in `template` replaced by the request's parameter `Name`.
fn fill(template: &str, body: &str) -> String {
    let mut out = template.to_string();
    while let Some(start) = out.find('{') {
        let end = out[start..].find('}').map(|e| e + start).expect("a closed {Name}");
        let value =
            param(body, &out[start + 1..end]).unwrap_or_else(|| panic!("the request has no {}", &out[start..=end]));
        out.replace_range(start..=end, &value);
    }
    out
}

/// A request parameter: an EC2 query form field or a JSON key at any depth.
fn param(body: &str, name: &str) -> Option<String> {
    if body.starts_with('{') {
        fn find(value: &serde_json::Value, name: &str) -> Option<String> {
            match value {
                serde_json::Value::Object(map) => map
                    .get(name)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .or_else(|| map.values().find_map(|v| find(v, name))),
                serde_json::Value::Array(items) => items.iter().find_map(|v| find(v, name)),
                _ => None,
            }
        }
        find(&serde_json::from_str(body).ok()?, name)
    } else {
        body.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')).map(percent_decode)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
