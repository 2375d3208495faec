//! `deckhand repl`: explore an account statement by statement. Each input runs in a fresh pass
//! (apply, or plan after `:plan on`) with fresh reads; variables and functions persist across
//! inputs. Reads lines from a terminal (rustyline: history, completion) or from a pipe.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::rc::Rc;

use rhai::{AST, Array, Dynamic, Map, ParseErrorType, Position, Scope};
use rustyline::completion::{Completer, Pair};
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::aws::{Pass, State};
use crate::error::{Error, Result};
use crate::plan::{Mode, Sink};
use crate::runtime::Aws;
use crate::script::{Script, Vars};
use crate::status::plain_table;

/// How `deckhand repl` starts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Start in plan mode (no mutating request until `:plan off`).
    pub plan: bool,
    /// The `vars` map scripts see.
    pub vars: Vars,
    /// The stack lock each applying statement takes before it reads the stack (lock.rs).
    pub lock: crate::lock::LockOptions,
}

/// Runs the REPL until `:quit` or end of input. From a pipe, fails when any input failed.
pub fn run(aws: Aws, options: &Options) -> Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let mut session = Session::new(aws, options, interactive);
    if interactive {
        println!(
            "deckhand repl — region {}, {} mode. :help for commands, Tab completes, Ctrl-D exits.",
            session.aws.region,
            if session.mode == Mode::Plan { "plan" } else { "apply" }
        );
        let mut terminal = Terminal::open(&session);
        session.read_eval_print(&mut terminal);
        terminal.save_history();
        return Ok(());
    }
    session.read_eval_print(&mut Piped(std::io::stdin().lock()));
    match session.failed {
        0 => Ok(()),
        failed => Err(Error::Script(format!("error: {failed} of {} inputs failed", session.inputs))),
    }
}

/// One line of input, or why there is none.
enum Line {
    Text(String),
    Interrupted,
    End,
}

/// Where input lines come from.
trait Input {
    /// Reads one line, showing `prompt` where there is someone to see it.
    fn read(&mut self, prompt: &str) -> Line;
    /// Refreshes what Tab completes (variables and functions change with each input).
    fn update(&mut self, _completions: Completions) {}
}

/// Lines from a pipe: no prompt, no history.
struct Piped<R>(R);

impl<R: BufRead> Input for Piped<R> {
    fn read(&mut self, _prompt: &str) -> Line {
        let mut line = String::new();
        match self.0.read_line(&mut line) {
            Ok(0) | Err(_) => Line::End,
            Ok(_) => Line::Text(line.trim_end_matches(['\n', '\r']).to_string()),
        }
    }
}

/// A terminal: rustyline with history and completion.
struct Terminal {
    editor: Option<Editor<ReplHelper, FileHistory>>,
    history: Option<PathBuf>,
}

impl Terminal {
    fn open(session: &Session) -> Terminal {
        let config = Config::builder().completion_type(CompletionType::List).auto_add_history(false).build();
        let editor = match Editor::with_config(config) {
            Ok(mut editor) => {
                editor.set_helper(Some(ReplHelper(Rc::new(RefCell::new(session.completions())))));
                Some(editor)
            }
            Err(err) => {
                eprintln!("warning: no line editing ({err}); reading plain lines");
                None
            }
        };
        let history = history_path();
        let mut terminal = Terminal { editor, history };
        if let (Some(editor), Some(path)) = (&mut terminal.editor, &terminal.history) {
            let _ = editor.load_history(path);
        }
        terminal
    }

    /// Saves the history; a history that cannot be written is not worth failing for.
    fn save_history(&mut self) {
        if let (Some(editor), Some(path)) = (&mut self.editor, &self.history) {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = editor.save_history(path);
        }
    }
}

impl Input for Terminal {
    fn read(&mut self, prompt: &str) -> Line {
        let Some(editor) = &mut self.editor else {
            return Piped(std::io::stdin().lock()).read(prompt);
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                Line::Text(line)
            }
            Err(ReadlineError::Interrupted) => Line::Interrupted,
            Err(_) => Line::End,
        }
    }

    fn update(&mut self, completions: Completions) {
        if let Some(helper) = self.editor.as_mut().and_then(|e| e.helper_mut()) {
            *helper.0.borrow_mut() = completions;
        }
    }
}

/// `$XDG_STATE_HOME/deckhand/history`, else `~/.local/state/deckhand/history` (the user's state
/// directory; on systems without one, the local data directory).
fn history_path() -> Option<PathBuf> {
    Some(dirs::state_dir().or_else(dirs::data_local_dir)?.join("deckhand").join("history"))
}

/// What Tab can complete: function and variable names, and the keys of map variables.
#[derive(Debug, Default, Clone)]
struct Completions {
    names: Vec<String>,
    keys: BTreeMap<String, Vec<String>>,
}

impl Completions {
    /// Candidates for the word ending at `pos`: after `name.` the keys of map `name`, else names.
    fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = word_start(before);
        let word = &before[start..];
        let pool = match before[..start].strip_suffix('.') {
            Some(owner) => self.keys.get(&owner[word_start(owner)..]).map(Vec::as_slice).unwrap_or_default(),
            None => self.names.as_slice(),
        };
        let mut found: Vec<String> = pool.iter().filter(|c| c.starts_with(word)).cloned().collect();
        found.sort();
        found.dedup();
        (start, found)
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Where the identifier that ends `text` starts.
fn word_start(text: &str) -> usize {
    text.char_indices().rev().find(|&(_, c)| !is_ident(c)).map_or(0, |(i, c)| i + c.len_utf8())
}

/// The rustyline helper: completion only (multi-line input is the session's business).
struct ReplHelper(Rc<RefCell<Completions>>);

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.0.borrow().complete(line, pos);
        Ok((start, found.into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect()))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

/// A REPL command (a line starting with `:`).
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help(Option<String>),
    Vars,
    Plan(bool),
    Load(PathBuf),
    Stack(String),
    Quit,
}

const HELP: &str = "\
Type Rhai statements; each runs at once (a fresh plan or apply pass, fresh reads from AWS) and
prints its value. Variables and functions stay defined for later lines. A statement left open
(an unclosed bracket or string) continues on the next line at the `...` prompt.

  :help            this overview
  :help NAME       one function in full (the same text as `deckhand docs NAME`)
  :vars            variables in scope
  :plan on|off     plan mode: primitives show what they would change and send no mutating request
  :load FILE       run a script file into this session
  :stack NAME      set or switch the stack of the resources declared next (stack(\"NAME\") sets it
                   once; switching needs :stack)
  :quit            leave (Ctrl-D too); Ctrl-C cancels the current input

`deckhand docs` lists every function; Tab completes functions, variables and `handle.` keys.";

fn parse_command(line: &str) -> std::result::Result<Command, String> {
    let line = line.trim().trim_start_matches(':');
    let (name, argument) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let argument = argument.trim();
    let needs = |what: &str| format!(":{name} needs {what}");
    match (name, argument) {
        ("help" | "h" | "?", "") => Ok(Command::Help(None)),
        ("help" | "h" | "?", topic) => Ok(Command::Help(Some(topic.to_string()))),
        ("vars", "") => Ok(Command::Vars),
        ("plan", "on") => Ok(Command::Plan(true)),
        ("plan", "off") => Ok(Command::Plan(false)),
        ("plan", _) => Err(needs("on or off")),
        ("load", "") => Err(needs("a file")),
        ("load", file) => Ok(Command::Load(PathBuf::from(file))),
        ("stack", "") => Err(needs("a stack name")),
        ("stack", stack) => Ok(Command::Stack(stack.to_string())),
        ("quit" | "q" | "exit", "") => Ok(Command::Quit),
        _ => Err(format!("unknown command :{name}; :help lists the commands")),
    }
}

/// The state kept across inputs: variables, script functions, mode and stack.
struct Session {
    aws: Aws,
    scope: Scope<'static>,
    functions: AST,
    engine_functions: Vec<String>,
    mode: Mode,
    stack: Option<String>,
    lock: crate::lock::LockOptions,
    dir: PathBuf,
    interactive: bool,
    inputs: usize,
    failed: usize,
}

impl Session {
    fn new(aws: Aws, options: &Options, interactive: bool) -> Session {
        let mut scope = Scope::new();
        scope.push_constant("vars", options.vars.to_map());
        Session {
            aws,
            scope,
            functions: AST::empty(),
            engine_functions: crate::docs::function_names(),
            mode: if options.plan { Mode::Plan } else { Mode::Apply },
            stack: None,
            lock: options.lock.clone(),
            dir: PathBuf::from("."),
            interactive,
            inputs: 0,
            failed: 0,
        }
    }

    /// The loop: read lines until a statement is complete, run it, print its value.
    fn read_eval_print(&mut self, input: &mut impl Input) {
        let mut buffer = String::new();
        loop {
            let prompt = match (buffer.is_empty(), self.mode) {
                (false, _) => "... ",
                (true, Mode::Plan) => "plan> ",
                (true, _) => "> ",
            };
            match input.read(prompt) {
                Line::Text(line) if buffer.is_empty() && line.trim_start().starts_with(':') => {
                    self.inputs += 1;
                    match parse_command(&line) {
                        Ok(Command::Quit) => return,
                        Ok(command) => self.execute(command),
                        Err(message) => self.fail(&format!("error: {message}")),
                    }
                }
                Line::Text(line) => {
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if buffer.trim().is_empty() {
                        buffer.clear();
                    } else if !is_incomplete(&self.scope, &buffer) {
                        let source = std::mem::take(&mut buffer);
                        self.inputs += 1;
                        self.eval_and_print("repl", &source, None);
                    }
                }
                Line::Interrupted => buffer.clear(),
                Line::End => {
                    if !buffer.trim().is_empty() {
                        self.inputs += 1;
                        self.eval_and_print("repl", &buffer, None);
                    }
                    return;
                }
            }
            input.update(self.completions());
        }
    }

    fn execute(&mut self, command: Command) {
        match command {
            Command::Help(None) => println!("{HELP}"),
            Command::Help(Some(name)) => match crate::docs::describe(&name) {
                Ok(text) => println!("{text}"),
                Err(err) => self.fail(&format!("error: {err}")),
            },
            Command::Vars => self.print_vars(),
            Command::Plan(on) => {
                self.mode = if on { Mode::Plan } else { Mode::Apply };
                println!("{}", if on { "plan mode: no mutating request is sent" } else { "apply mode" });
            }
            Command::Load(path) => match Script::load(&path) {
                Ok(script) => {
                    let dir = script.dir.clone();
                    self.eval_and_print(&script.name, &script.source, dir);
                }
                Err(err) => self.fail(&format!("error: {err}")),
            },
            Command::Stack(name) => {
                let check = Pass::new(Mode::Check, None, None, Sink::buffer(), Rc::new(State::default()));
                match check.set_stack(&name) {
                    Ok(()) => {
                        println!("stack: {name}");
                        self.stack = Some(name);
                    }
                    Err(err) => self.fail(&format!("error: {err}")),
                }
            }
            Command::Quit => {} // ends the loop before it gets here
        }
    }

    /// Runs one input and prints its value, or its error with a caret.
    fn eval_and_print(&mut self, name: &str, source: &str, dir: Option<PathBuf>) {
        match self.eval(name, source, dir) {
            Ok(value) => {
                if let Some(text) = render(&value) {
                    println!("{text}");
                }
            }
            Err(report) => self.fail(&report),
        }
    }

    /// Evaluates `source` in a fresh pass and engine, against the session's scope and functions.
    fn eval(&mut self, name: &str, source: &str, dir: Option<PathBuf>) -> std::result::Result<Dynamic, String> {
        let dir = dir.unwrap_or_else(|| self.dir.clone());
        let script = Script::inline(name, source, Some(dir.clone()));
        let pass = Rc::new(Pass::new(self.mode, Some(self.aws.clone()), None, Sink::stdout(), Rc::default()));
        pass.lock_before_reading(self.lock.clone());
        if let Some(stack) = &self.stack {
            pass.set_stack(stack).map_err(|e| format!("error: {e}"))?;
        }
        let engine = crate::engine::build(&pass, Some(&dir));
        let mut ast = engine.compile_with_scope(&self.scope, source).map_err(|e| script.parse_report(&e))?;
        ast.set_source(name);
        let mut program = self.functions.merge(&ast);
        // On a terminal, Ctrl-C stops this statement instead of the session.
        let interrupt = self.interactive.then(crate::interrupt::Guard::install);
        let result = engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &program);
        // A statement leaves nothing half-ready: what it put off (a NAT gateway still pending, ...)
        // is waited for before the prompt returns (and before its pass releases the lock).
        let result = result.and_then(|value| {
            pass.finish("the end of the statement").map(|()| value).map_err(Box::<rhai::EvalAltResult>::from)
        });
        drop(interrupt);
        program.clear_statements();
        self.functions = program;
        if let Ok(stack) = pass.stack() {
            self.stack = Some(stack);
        }
        result.map_err(|e| script.report(&e))
    }

    /// Counts a failed input and prints its error (red where stderr takes colour).
    fn fail(&mut self, report: &str) {
        self.failed += 1;
        anstream::eprintln!("{}", crate::script::styled_error(report));
    }

    fn print_vars(&self) {
        let mut rows: Vec<(String, String)> = self
            .scope
            .iter_raw()
            .map(|(name, constant, value)| {
                let name = if constant { format!("{name} (constant)") } else { name.to_string() };
                (name, short(value))
            })
            .collect();
        rows.sort();
        if rows.is_empty() {
            println!("(no variables)");
        }
        let rows = rows.into_iter().map(|(name, value)| [name, value]);
        println!("{}", plain_table(None, rows));
    }

    /// What Tab completes now: functions (engine and script), variables, keys of map variables.
    fn completions(&self) -> Completions {
        let mut names = self.engine_functions.clone();
        names.extend(self.functions.iter_functions().map(|f| f.name.to_string()));
        let mut keys = BTreeMap::new();
        for (name, _, value) in self.scope.iter_raw() {
            names.push(name.to_string());
            if let Some(map) = value.read_lock::<Map>() {
                keys.insert(name.to_string(), map.keys().map(ToString::to_string).collect());
            }
        }
        Completions { names, keys }
    }
}

/// True when `source` fails to parse only because it ends too early (an open bracket, string or
/// expression), so more lines may complete it. The Rhai parser decides, not bracket counting.
fn is_incomplete(scope: &Scope, source: &str) -> bool {
    let engine = crate::engine::sandboxed(None);
    let Err(err) = engine.compile_with_scope(scope, source) else {
        return false;
    };
    match &*err.0 {
        ParseErrorType::UnexpectedEOF | ParseErrorType::BadInput(rhai::LexError::UnterminatedString) => true,
        _ => at_end(source, err.1),
    }
}

/// True when `pos` is at or past the last non-blank character of `source`.
fn at_end(source: &str, pos: Position) -> bool {
    let (Some(line), column) = (pos.line(), pos.position().unwrap_or(usize::MAX)) else {
        return true;
    };
    let trimmed = source.trim_end();
    let last_line = trimmed.lines().count().max(1);
    let last_column = trimmed.lines().last().map_or(0, |l| l.chars().count());
    line > last_line || (line == last_line && column > last_column)
}

/// How a value prints: nothing for unit, a table for handles, Rhai's debug form otherwise.
fn render(value: &Dynamic) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    if let Some(map) = handle(value) {
        return Some(handle_table(&map));
    }
    if let Some(array) = value.read_lock::<Array>() {
        let handles: Option<Vec<Map>> = array.iter().map(handle).collect();
        if let Some(handles) = handles.filter(|h| !h.is_empty()) {
            return Some(handles_table(&handles));
        }
    }
    Some(format!("{value:?}"))
}

/// The map in `value` when it is a handle (an object map with a `kind`).
fn handle(value: &Dynamic) -> Option<Map> {
    value.read_lock::<Map>().filter(|m| m.contains_key("kind")).map(|m| m.clone())
}

/// A handle's keys in reading order: kind, name, id, then the rest alphabetically.
fn columns<'a>(maps: impl IntoIterator<Item = &'a Map>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for map in maps {
        for key in map.keys() {
            if !keys.iter().any(|k| k == key.as_str()) {
                keys.push(key.to_string());
            }
        }
    }
    let rank = |k: &str| ["kind", "name", "id"].iter().position(|first| *first == k).unwrap_or(3);
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    keys
}

/// One cell: strings bare, everything else in Rhai's debug form.
fn cell(value: Option<&Dynamic>) -> String {
    match value {
        None => String::new(),
        Some(v) if v.is_string() => v.to_string(),
        Some(v) => format!("{v:?}"),
    }
}

/// One handle as an aligned key/value table.
fn handle_table(map: &Map) -> String {
    let rows = columns([map]).into_iter().map(|key| {
        let value = cell(map.get(key.as_str()));
        [key, value]
    });
    plain_table(None, rows)
}

/// Several handles as a table: a header row, then one row per handle.
fn handles_table(handles: &[Map]) -> String {
    let keys = columns(handles);
    let rows = handles.iter().map(|h| keys.iter().map(|k| cell(h.get(k.as_str()))).collect::<Vec<_>>());
    plain_table(Some(keys.clone()), rows)
}

/// A one-line value for `:vars`: handles by kind, name and id; long values cut.
fn short(value: &Dynamic) -> String {
    if let Some(map) = handle(value) {
        let field = |k: &str| map.get(k).filter(|v| !v.is_unit()).map(|v| v.to_string());
        let name = field("name").map(|n| format!(" {n}")).unwrap_or_default();
        let id = field("id").map(|id| format!(" ({id})")).unwrap_or_default();
        return format!("{}{name}{id}", field("kind").unwrap_or_default());
    }
    if let Some(array) = value.read_lock::<Array>()
        && !array.is_empty()
        && array.iter().all(|v| handle(v).is_some())
    {
        let items: Vec<String> = array.iter().map(short).collect();
        return cut(&format!("[{}]", items.join(", ")));
    }
    cut(&format!("{value:?}"))
}

fn cut(text: &str) -> String {
    const MAX: usize = 72;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incomplete(source: &str) -> bool {
        is_incomplete(&Scope::new(), source)
    }

    #[test]
    fn open_statements_continue_and_broken_ones_do_not() {
        for open in ["fn f(x) {\n", "let a = [1,\n", "let s = \"abc\n", "foo(1,\n", "let x =\n", "if true {\n  1\n"] {
            assert!(incomplete(open), "{open:?} should continue");
        }
        for done in ["let x = 1;\n", "fn f(x) { x }\n", "let x = ;\n", "let x = 1 +* 2;\n", "}\n"] {
            assert!(!incomplete(done), "{done:?} should not continue");
        }
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse_command(":help subnet"), Ok(Command::Help(Some("subnet".into()))));
        assert_eq!(parse_command(":plan on"), Ok(Command::Plan(true)));
        assert_eq!(parse_command(":stack  web "), Ok(Command::Stack("web".into())));
        assert!(parse_command(":plan maybe").is_err());
        assert!(parse_command(":frobnicate").is_err());
    }

    #[test]
    fn completes_names_and_handle_keys() {
        let completions = Completions {
            names: vec!["security_group".into(), "subnet".into(), "sg".into()],
            keys: BTreeMap::from([("sg".into(), vec!["id".into(), "kind".into(), "name".into()])]),
        };
        assert_eq!(completions.complete("let x = secur", 13), (8, vec!["security_group".to_string()]));
        assert_eq!(completions.complete("print(sg.i", 10), (9, vec!["id".to_string()]));
    }

    #[test]
    fn handles_print_as_tables() {
        let subnet: Map = [("kind", "subnet"), ("id", "subnet-1"), ("name", "a"), ("az", "us-west-2a")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(render(&subnet.clone().into()).unwrap(), "kind  subnet\nname  a\nid    subnet-1\naz    us-west-2a");
        let array: Array = vec![subnet.clone().into(), subnet.into()];
        assert_eq!(
            render(&array.into()).unwrap(),
            "kind    name  id        az\nsubnet  a     subnet-1  us-west-2a\nsubnet  a     subnet-1  us-west-2a"
        );
        assert_eq!(render(&Dynamic::UNIT), None);
        assert_eq!(render(&Dynamic::from(3_i64)).unwrap(), "3");
    }
}
