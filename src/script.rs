//! A deploy script: its source, its `vars`, running it in a pass, and reporting its errors with
//! file, line, column and a caret under the source.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, Map, ParseError, ParseErrorType, Position, Scope};

use futures_util::future::join_all;

use crate::aws::Pass;
use crate::error::{Error, Result};

/// How many waves of creates [`Script::create_ahead`] sends at most: more than any dependency
/// chain of a script's creates (a VPC, its subnets, a load balancer, its listener, a rule).
const MAX_WAVES: usize = 12;

/// A script to run: where it came from and its text.
#[derive(Debug, Clone)]
pub struct Script {
    /// The name shown in errors (the path as given).
    pub name: String,
    /// The folder modules are imported from.
    pub dir: Option<PathBuf>,
    /// The source text.
    pub source: String,
}

impl Script {
    /// Reads a script file.
    pub fn load(path: &Path) -> Result<Script> {
        let source = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let dir = path.parent().map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d.to_path_buf() });
        Ok(Script { name: path.display().to_string(), dir, source })
    }

    /// A script from text (REPL input, tests).
    pub fn inline(name: &str, source: &str, dir: Option<PathBuf>) -> Script {
        Script { name: name.to_string(), dir, source: source.to_string() }
    }

    /// Runs the whole script in `pass`, with `vars` as the constant `vars` map.
    pub fn run(&self, pass: &Rc<Pass>, vars: &Vars) -> Result<()> {
        let engine = crate::engine::build(pass, self.dir.as_deref());
        let mut scope = Scope::new();
        scope.push_constant("vars", vars.to_map());
        let ast = engine.compile_with_scope(&scope, &self.source).map_err(|e| Error::Script(self.parse_report(&e)))?;
        engine.run_ast_with_scope(&mut scope, &ast).map_err(|e| Error::Script(self.report(&e)))?;
        // The waits the script's statements put off (and nothing needed since) end with it.
        pass.finish("the end of the run")
    }

    /// Runs the whole script in the apply pass `pass`, after sending ahead of it, together, the
    /// creates that need nothing still to be created (see [`Script::create_ahead`]).
    pub fn apply(&self, pass: &Rc<Pass>, vars: &Vars) -> Result<()> {
        self.create_ahead(pass, vars);
        self.run(pass, vars)
    }

    /// Sends the script's creates in waves, each wave's together, as terraform walks its graph:
    /// a gathering pass (a silent plan pass over the run's reads, [`Pass::gathering`]) runs the
    /// script and collects each create whose spec it knows in full (every id it names exists);
    /// they go out at once; what they created is remembered in the run's reads, so the next
    /// gathering pass knows the specs that named them; and so on until a wave has nothing to
    /// send. The apply pass then runs the script as ever, records those creates as its own (`+`,
    /// in the script's order) and does the rest: updates, creates whose kind cannot go ahead, and
    /// the waits. A create that fails is reported by its statement (line:col), in the script's
    /// order; no wave is sent after one that had a failure.
    fn create_ahead(&self, pass: &Rc<Pass>, vars: &Vars) {
        for wave in 1..=MAX_WAVES {
            let gathering = Rc::new(pass.gathering());
            if self.run(&gathering, vars).is_err() {
                return; // the apply pass meets the same error at its line
            }
            let Ok(stack) = gathering.stack() else { return };
            if pass.set_stack(&stack).is_err() {
                return;
            }
            let creates: Vec<_> = gathering.gathered().into_iter().filter_map(|create| create(pass)).collect();
            if creates.is_empty() {
                return;
            }
            let count = creates.len();
            let sent = pass.block(async { Ok(join_all(creates).await) });
            tracing::debug!(wave, count, "creates sent ahead of the script");
            if sent.is_err() || pass.any_failed_early() {
                return;
            }
        }
    }

    /// Parses the script without running it.
    pub fn parse(&self) -> Result<()> {
        let engine = crate::engine::sandboxed(self.dir.as_deref());
        let mut scope = Scope::new();
        scope.push_constant("vars", Map::new());
        engine.compile_with_scope(&scope, &self.source).map(drop).map_err(|e| Error::Script(self.parse_report(&e)))
    }

    /// Formats a parse error the way rustc and rhai's runner do.
    /// An undefined variable is a script that uses what it no longer declares (e.g. services kept on
    /// an environment whose `let` was removed): the message says so at the line that needs it.
    pub fn parse_report(&self, err: &ParseError) -> String {
        let message = match &*err.0 {
            ParseErrorType::VariableUndefined(name) => format!(
                "undefined variable `{name}`: nothing above this line declares it\n  hint: declare it first \
                 (`let {name} = ...;`); if its declaration was removed, this line still needs it: remove or \
                 change this line too"
            ),
            other => format!("syntax error: {}", strip_position(&other.to_string())),
        };
        self.render(&message, err.1, &[])
    }

    /// Formats a runtime error: message, `--> file:line:col`, the source line and a caret.
    pub fn report(&self, err: &EvalAltResult) -> String {
        let mut notes = Vec::new();
        let mut pos = err.position();
        let mut current = err;
        loop {
            match current {
                EvalAltResult::ErrorInFunctionCall(name, src, inner, at) => {
                    let from = if src.is_empty() { String::new() } else { format!(" (from {src})") };
                    notes.push(format!("in call to `{name}`{from} at {}", line_col(*at)));
                    if src.is_empty() && !inner.position().is_none() {
                        pos = inner.position();
                        current = inner;
                    } else {
                        current = inner;
                        break;
                    }
                }
                EvalAltResult::ErrorInModule(name, inner, _) => {
                    notes.push(format!("in module \"{name}\""));
                    current = inner.unwrap_inner();
                    break;
                }
                _ => {
                    if !current.position().is_none() {
                        pos = current.position();
                    }
                    break;
                }
            }
        }
        let inner = current.unwrap_inner();
        let message = match inner {
            EvalAltResult::ErrorRuntime(value, _) => crate::error::script_error_text(value),
            EvalAltResult::ErrorTooManyOperations(_) => {
                "the script exceeded its operation limit (5,000,000): is there an endless loop?".to_string()
            }
            EvalAltResult::ErrorTerminated(reason, _) => reason.to_string(),
            EvalAltResult::ErrorStackOverflow(_) => {
                "function calls nested too deeply (limit 48): is there a runaway recursion?".to_string()
            }
            EvalAltResult::ErrorFunctionNotFound(sig, _) => {
                format!(
                    "unknown function or wrong arguments: {sig}\n  hint: `deckhand docs` lists every function and its arguments"
                )
            }
            other => strip_position(&other.to_string()),
        };
        notes.reverse();
        self.render(&message, pos, &notes)
    }

    fn render(&self, message: &str, pos: Position, notes: &[String]) -> String {
        let (message, hint) = match message.split_once("\n  hint: ") {
            Some((m, h)) => (m, Some(h)),
            None => (message, None),
        };
        let mut text = format!("error: {message}");
        let (Some(line), col) = (pos.line(), pos.position().unwrap_or(1)) else {
            text.push_str(&format!("\n  --> {}", self.name));
            if let Some(hint) = hint {
                text.push_str(&format!("\n  = hint: {hint}"));
            }
            return text;
        };
        let source_line = self.source.lines().nth(line - 1).unwrap_or("");
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        text.push_str(&format!("\n{pad}--> {}:{line}:{col}\n{pad} |\n{line} | {source_line}\n{pad} | ", self.name));
        let caret_pad: String =
            source_line.chars().take(col.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        text.push_str(&format!("{caret_pad}^"));
        for note in notes.iter().filter(|n| !n.is_empty()) {
            text.push_str(&format!("\n{pad} = note: {note}"));
        }
        if let Some(hint) = hint {
            text.push_str(&format!("\n{pad} = hint: {hint}"));
        }
        text
    }
}

fn line_col(pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{l}:{c}"),
        (Some(l), None) => l.to_string(),
        _ => "?".to_string(),
    }
}

fn strip_position(text: &str) -> String {
    match text.rfind(" (line ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text.to_string(),
    }
}

/// `--var key=value` pairs, given to scripts as the constant map `vars`.
#[derive(Debug, Clone, Default)]
pub struct Vars(Vec<(String, String)>);

impl Vars {
    /// Parses `key=value` strings.
    pub fn parse(pairs: &[String]) -> Result<Vars> {
        pairs
            .iter()
            .map(|pair| {
                let (key, value) =
                    pair.split_once('=').ok_or_else(|| Error::invalid("--var", format!("{pair:?}"), "key=value"))?;
                let valid = !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !key.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    return Err(Error::invalid(
                        "--var",
                        format!("{pair:?}"),
                        "a key of letters, digits and _ (a Rhai identifier), then =value",
                    ));
                }
                Ok((key.to_string(), value.to_string()))
            })
            .collect::<Result<Vec<_>>>()
            .map(Vars)
    }

    /// The map scripts see: integers and booleans are converted, everything else stays a string.
    pub fn to_map(&self) -> Map {
        self.0
            .iter()
            .map(|(k, v)| {
                let value = if let Ok(n) = v.parse::<i64>() {
                    Dynamic::from(n)
                } else if let Ok(b) = v.parse::<bool>() {
                    Dynamic::from(b)
                } else {
                    Dynamic::from(v.clone())
                };
                (k.as_str().into(), value)
            })
            .collect()
    }
}

/// An error report with its leading `error:` in bold red (anstream strips the style where
/// stderr takes no colour: not a terminal, `NO_COLOR`, `CLICOLOR=0`).
pub(crate) fn styled_error(report: &str) -> String {
    let red = anstyle::AnsiColor::Red.on_default().bold();
    report.replacen("error:", &format!("{red}error{red:#}:"), 1)
}
