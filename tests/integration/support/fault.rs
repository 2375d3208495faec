//! A fault proxy: forwards deckhand's HTTP/1.1 requests to the emulator, except that the first
//! request for an operation given a [`Fault`] gets that AWS error instead (once). It stands in for
//! real AWS's eventual consistency, which moto does not have.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// An AWS error to answer, once, to the first request for `operation`.
#[derive(Debug, Clone)]
pub struct Fault {
    operation: &'static str,
    code: &'static str,
    /// May name a request parameter as `{Name}` (an EC2 query parameter or a JSON key, at any
    /// depth), replaced by its value: "The allocation ID '{AllocationId}' does not exist".
    message: &'static str,
    json: bool,
}

impl Fault {
    /// An EC2 query-protocol error (`<Response><Errors><Error><Code>...`).
    pub fn ec2(operation: &'static str, code: &'static str, message: &'static str) -> Fault {
        Fault { operation, code, message, json: false }
    }

    /// An ECS JSON-protocol error (`{"__type": ..., "message": ...}`).
    pub fn ecs(operation: &'static str, code: &'static str, message: &'static str) -> Fault {
        Fault { operation, code, message, json: true }
    }
}

/// A running fault proxy in front of the emulator.
pub struct FaultProxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    pending: Vec<Fault>,
    /// Every operation seen, in order; injected ones as "Operation -> Code".
    seen: Vec<String>,
}

impl FaultProxy {
    /// Starts forwarding to the emulator on `upstream` (host:port), with `faults` armed.
    pub fn start(upstream: String, faults: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the fault proxy binds");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State { pending: faults, seen: Vec::new() }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (state, upstream) = (shared.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &state);
                });
            }
        });
        FaultProxy { port, state }
    }

    /// The endpoint URL to give deckhand.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The faults answered so far, as "Operation -> Code".
    pub fn injected(&self) -> Vec<String> {
        self.state.lock().unwrap().seen.iter().filter(|s| s.contains(" -> ")).cloned().collect()
    }

    /// How many requests for `operation` arrived (injected or forwarded).
    pub fn count(&self, operation: &str) -> usize {
        self.state.lock().unwrap().seen.iter().filter(|s| s.split(' ').next() == Some(operation)).count()
    }
}

/// One request per connection: read it, answer the fault or forward it, close.
fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> std::io::Result<()> {
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
    let operation = match header("x-amz-target") {
        Some(target) => target.rsplit('.').next().unwrap_or("").to_string(),
        None => param(&body, "Action").unwrap_or_default(),
    };

    let fault = {
        let mut state = state.lock().unwrap();
        let fault = state.pending.iter().position(|f| f.operation == operation).map(|i| state.pending.remove(i));
        let seen = match &fault {
            Some(f) => format!("{operation} -> {}", f.code),
            None => operation.clone(),
        };
        state.seen.push(seen);
        fault
    };
    if let Some(fault) = fault {
        let message = fill(fault.message, &body);
        let (content_type, reply) = if fault.json {
            ("application/x-amz-json-1.1", serde_json::json!({ "__type": fault.code, "message": message }).to_string())
        } else {
            let error = format!("<Code>{}</Code><Message>{message}</Message>", fault.code);
            (
                "text/xml",
                format!("<Response><Errors><Error>{error}</Error></Errors><RequestID>fault</RequestID></Response>"),
            )
        };
        let head = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            reply.len()
        );
        client.write_all(head.as_bytes())?;
        return client.write_all(reply.as_bytes());
    }

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
