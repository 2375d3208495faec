//! `deckhand docs`: every script function with its signature and doc comment, grouped by area,
//! read from the engine's own metadata so it cannot drift from the code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use rhai::Engine;
use serde_json::Value;

use crate::aws::{Pass, State};
use crate::bindings::{AREAS, similar};
use crate::error::{Error, Result};
use crate::plan::{Mode, Sink};

/// One script function (all its overloads) as `deckhand docs` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDoc {
    /// The name scripts call it by.
    pub name: String,
    /// The area that registers it, e.g. `networking`.
    pub area: &'static str,
    /// One signature per overload, e.g. `subnet(vpc: Map, spec: Map) -> Map`.
    pub signatures: Vec<String>,
    /// The whole doc comment, without the `///` markers.
    pub doc: String,
}

impl FunctionDoc {
    /// The doc comment's first sentence (which may wrap over several lines) on one line, cut at a
    /// word boundary when it is long.
    pub fn summary(&self) -> String {
        const WIDTH: usize = 110;
        let paragraph: Vec<&str> = self
            .doc
            .lines()
            .map(str::trim)
            .take_while(|line| !line.is_empty() && !line.starts_with("Example:"))
            .collect();
        let text = paragraph.join(" ");
        let sentence = text.find(". ").map_or(text.as_str(), |at| &text[..=at]);
        if sentence.chars().count() <= WIDTH {
            return sentence.to_string();
        }
        let cut: String = sentence.chars().take(WIDTH).collect();
        format!("{}…", cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head))
    }

    /// The example, from the `Example:` line to the end of the doc comment.
    pub fn example(&self) -> Option<&str> {
        self.doc.find("Example:").map(|at| self.doc[at + "Example:".len()..].trim())
    }
}

/// The heading of the embedded `fargate` module's functions, listed first: most scripts start there.
const FARGATE: &str = "fargate (import \"fargate\" as fargate;)";

/// Every script function: the embedded `fargate` module's first (in the module's order), then area
/// by area (in registration order), sorted by name within an area.
pub fn catalog() -> Vec<FunctionDoc> {
    let pass = check_pass();
    let primitives = AREAS.iter().flat_map(|(area, register, _)| {
        let mut engine = Engine::new_raw();
        register(&mut engine, &pass);
        functions(&engine, area)
    });
    stdlib_functions().into_iter().chain(primitives).collect()
}

/// The public functions of the embedded `fargate` module, one entry per overload, in the order the
/// module defines them, with their `///` comments.
fn stdlib_functions() -> Vec<FunctionDoc> {
    let Some((module, code)) = crate::engine::STDLIB.iter().find(|(name, _)| *name == "fargate") else {
        return Vec::new();
    };
    let ast = crate::engine::sandboxed(None).compile(code).expect("the embedded fargate module compiles");
    let mut found: Vec<(usize, FunctionDoc)> = ast
        .iter_functions()
        // Closures compile to functions too (`anon$...`): only the module's named public ones.
        .filter(|f| f.access == rhai::FnAccess::Public && !f.name.starts_with("anon$"))
        .map(|f| {
            let params = f.params.join(", ");
            let at = code.find(&format!("fn {}({params})", f.name)).unwrap_or(usize::MAX);
            let doc: Vec<&str> = f
                .comments
                .iter()
                .flat_map(|c| c.lines())
                .map(|line| line.trim_start_matches("///").strip_prefix(' ').unwrap_or(line.trim_start_matches("///")))
                .collect();
            let name = format!("{module}::{}", f.name);
            let signature = format!("{name}({params}) -> Map");
            (at, FunctionDoc { name, area: FARGATE, signatures: vec![signature], doc: doc.join("\n") })
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, f)| f).collect()
}

/// The names of every function the script engine offers beyond Rhai's standard library,
/// read from a fully built engine (the same one `run` uses), sorted.
pub fn function_names() -> Vec<String> {
    let engine = crate::engine::build(&check_pass(), None);
    let mut names: Vec<String> = functions(&engine, "").into_iter().map(|f| f.name).collect();
    names.sort();
    names
}

/// The listing printed by `deckhand docs`: one line per function, grouped by area.
pub fn index() -> String {
    let catalog = catalog();
    let mut text = String::new();
    for area in std::iter::once(&FARGATE).chain(AREAS.iter().map(|(area, _, _)| area)) {
        let lines: Vec<(String, String)> = catalog
            .iter()
            .filter(|f| f.area == *area)
            .flat_map(|f| f.signatures.iter().map(move |s| (s.clone(), f.summary())))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let width = lines.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
        let _ = writeln!(text, "{area}");
        for (signature, summary) in lines {
            let _ = writeln!(text, "  {signature:width$}  {summary}");
        }
        text.push('\n');
    }
    text.push_str("`deckhand docs NAME` shows one function in full, with an example.");
    text
}

/// One function in full (signatures, doc comment, example; each overload of a `fargate` function
/// with its own), or an error naming close matches.
pub fn describe(name: &str) -> Result<String> {
    let catalog = catalog();
    let overloads: Vec<String> = catalog.iter().filter(|f| f.name == name).map(describe_one).collect();
    if overloads.is_empty() {
        return Err(unknown(name, &catalog));
    }
    Ok(overloads.join("\n\n"))
}

fn describe_one(function: &FunctionDoc) -> String {
    let mut text = String::new();
    for signature in &function.signatures {
        let _ = writeln!(text, "{signature}");
    }
    if function.area == FARGATE {
        let _ = writeln!(text, "  (the embedded module: import \"fargate\" as fargate;)\n");
    } else {
        let _ = writeln!(text, "  ({} area)\n", function.area);
    }
    let body = match function.doc.find("Example:") {
        Some(at) => function.doc[..at].trim_end(),
        None => function.doc.trim_end(),
    };
    text.push_str(body);
    if let Some(example) = function.example() {
        let _ = write!(text, "\n\nExample:\n");
        for line in example.trim_matches('`').lines() {
            let _ = write!(text, "\n    {}", line.trim_end_matches('`'));
        }
    }
    text
}

fn unknown(name: &str, catalog: &[FunctionDoc]) -> Error {
    let close: Vec<&str> = catalog
        .iter()
        .map(|f| f.name.as_str())
        .filter(|known| similar(known, name) || (name.len() >= 3 && known.contains(name)))
        .collect();
    let message = if close.is_empty() {
        format!("no script function is called `{name}`")
    } else {
        format!("no script function is called `{name}`; did you mean {}?", quoted(&close))
    };
    Error::conflict(message, Some("`deckhand docs` lists every function"))
}

fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// A pass for registration only: never runs anything.
fn check_pass() -> Rc<Pass> {
    Rc::new(Pass::new(Mode::Check, None, None, Sink::buffer(), Rc::new(State::default())))
}

/// The functions `engine` has beyond the standard library, overloads merged, sorted by name.
fn functions(engine: &Engine, area: &'static str) -> Vec<FunctionDoc> {
    let json = engine.gen_fn_metadata_to_json(false).expect("function metadata serializes");
    let metadata: Value = serde_json::from_str(&json).expect("function metadata is JSON");
    let mut by_name: BTreeMap<String, FunctionDoc> = BTreeMap::new();
    for function in metadata["functions"].as_array().into_iter().flatten() {
        let Some(name) = function["name"].as_str() else { continue };
        let signature = function["signature"].as_str().unwrap_or(name).to_string();
        let doc: Vec<String> = function["docComments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .flat_map(str::lines)
            .map(|line| line.trim_start_matches("///").strip_prefix(' ').unwrap_or(line.trim_start_matches("///")))
            .map(str::to_string)
            .collect();
        let entry = by_name.entry(name.to_string()).or_insert_with(|| FunctionDoc {
            name: name.to_string(),
            area,
            signatures: Vec::new(),
            doc: String::new(),
        });
        entry.signatures.push(signature);
        if entry.doc.is_empty() {
            entry.doc = doc.join("\n");
        }
    }
    by_name.into_values().collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn summaries_are_the_first_sentence_on_one_line() {
        let doc = |text: &str| FunctionDoc { name: "f".into(), area: "core", signatures: vec![], doc: text.into() };
        assert_eq!(
            doc("Waits until stable; fails\nwith the events. More here.\nExample: `f()`").summary(),
            "Waits until stable; fails with the events."
        );
        assert_eq!(doc("One line\n\nSecond paragraph.").summary(), "One line");
        let long = doc(&"word ".repeat(40)).summary();
        assert!(long.ends_with("word…") && long.chars().count() <= 111, "{long}");
    }

    use super::*;

    #[test]
    fn every_function_belongs_to_exactly_one_area() {
        let (stdlib, primitives): (Vec<FunctionDoc>, Vec<FunctionDoc>) =
            catalog().into_iter().partition(|f| f.area == FARGATE);
        let mut from_areas: Vec<String> = primitives.into_iter().map(|f| f.name).collect();
        from_areas.sort();
        assert_eq!(from_areas, function_names());
        let stdlib: Vec<String> = stdlib.into_iter().flat_map(|f| f.signatures).collect();
        assert_eq!(
            stdlib,
            [
                "fargate::environment(options) -> Map",
                "fargate::web_service(env, options) -> Map",
                "fargate::web_service(options) -> Map"
            ],
            "the module's public functions in its order, without its closures"
        );
        assert!(from_areas.contains(&"subnet".to_string()));
        assert!(!from_areas.contains(&"len".to_string()), "the standard library is excluded");
    }

    #[test]
    fn describe_shows_the_doc_and_the_example() {
        let text = describe("subnet").unwrap();
        assert!(text.starts_with("subnet(vpc: Map, spec: Map) -> Map\n"), "{text}");
        assert!(text.contains("Ensures a subnet exists"), "{text}");
        assert!(text.contains("Example:\n\n    subnet(vpc, #{"), "{text}");
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let err = describe("subnett").unwrap_err().to_string();
        assert!(err.contains("did you mean `subnet`?"), "{err}");
    }
}
