//! Builds the Rhai engine for a pass: sandbox limits, strict variables, module resolution
//! (embedded `stdlib/` first, then files beside the script), printing, and every primitive.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{AST, Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use crate::aws::Pass;

/// Rhai modules embedded in the binary, importable by name (`import "fargate" as fargate;`).
pub const STDLIB: &[(&str, &str)] = &[("fargate", include_str!("../stdlib/fargate.rhai"))];

/// Sandbox limits: generous for deploy scripts, fatal for runaway ones.
const MAX_OPERATIONS: u64 = 5_000_000;
const MAX_CALL_LEVELS: usize = 48;
const MAX_EXPR_DEPTH: usize = 64;
const MAX_STRING: usize = 1 << 20;
const MAX_ARRAY: usize = 10_000;
const MAX_MAP: usize = 10_000;
const MAX_MODULES: usize = 64;

/// A bare engine with the sandbox applied and no primitives (used by `check` parsing and docs).
pub fn sandboxed(script_dir: Option<&Path>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING)
        .set_max_array_size(MAX_ARRAY)
        .set_max_map_size(MAX_MAP)
        .set_max_modules(MAX_MODULES)
        .set_strict_variables(true);
    engine.set_module_resolver(Resolver { dir: script_dir.map(Path::to_path_buf) });
    engine
}

/// The engine for one pass: sandbox, `print` into the pass's log, and every primitive bound to it.
pub fn build(pass: &Rc<Pass>, script_dir: Option<&Path>) -> Engine {
    let mut engine = sandboxed(script_dir);
    let p = pass.clone();
    engine.on_print(move |text| p.log.say(text));
    engine.on_debug(
        |text, source, pos| tracing::info!(target: "deckhand::script", "{}{pos:?}: {text}", source.unwrap_or("")),
    );
    // Only the REPL turns Ctrl-C into a request (see interrupt.rs); then the statement stops here.
    // So does a run whose stack lock was taken from it (see lock.rs).
    engine.on_progress(|_| {
        crate::interrupt::requested()
            .then(|| "interrupted (Ctrl-C)".into())
            .or_else(|| crate::lock::lost().map(Into::into))
    });
    crate::bindings::register(&mut engine, pass);
    engine
}

thread_local! {
    /// The embedded modules, each compiled once per thread (every REPL input and every pass
    /// builds a fresh engine, and all of them share the sandbox's parse settings).
    static STDLIB_ASTS: RefCell<HashMap<&'static str, Rc<AST>>> = RefCell::new(HashMap::new());
}

/// The compiled embedded module `name`. Only the AST is cached: the module's top-level
/// statements run again in each importing engine, so they see that pass (its `print`, its
/// primitives) and never a value left from an earlier pass.
fn stdlib_ast(engine: &Engine, name: &'static str, code: &str) -> Result<Rc<AST>, Box<EvalAltResult>> {
    if let Some(ast) = STDLIB_ASTS.with_borrow(|cache| cache.get(name).cloned()) {
        return Ok(ast);
    }
    let mut ast = engine.compile(code)?;
    ast.set_source(format!("stdlib/{name}.rhai"));
    let ast = Rc::new(ast);
    STDLIB_ASTS.with_borrow_mut(|cache| cache.insert(name, ast.clone()));
    Ok(ast)
}

/// Resolves `import "name"`: embedded stdlib modules first, then `name.rhai` beside the script.
/// Paths that leave the script's folder are refused (scripts have no other file access).
struct Resolver {
    dir: Option<PathBuf>,
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if let Some((name, code)) = STDLIB.iter().find(|(name, _)| *name == path) {
            let ast = stdlib_ast(engine, name, code).map_err(|e| EvalAltResult::ErrorInModule(path.into(), e, pos))?;
            let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
                .map_err(|e| EvalAltResult::ErrorInModule(path.into(), e, pos))?;
            return Ok(module.into());
        }
        let relative = Path::new(path);
        let escapes = relative.components().any(|c| !matches!(c, Component::Normal(_)));
        // Errors here are runtime errors, not ErrorModuleNotFound: rhai replaces that with a bare "not found".
        let Some(dir) = &self.dir else {
            let message = format!("cannot import \"{path}\": no script folder to import from");
            return Err(EvalAltResult::ErrorRuntime(message.into(), pos).into());
        };
        if escapes {
            let message = format!(
                "cannot import \"{path}\": imports must name a module in the script's folder (no .. or absolute paths)"
            );
            return Err(EvalAltResult::ErrorRuntime(message.into(), pos).into());
        }
        let mut files = FileModuleResolver::new_with_path(dir);
        files.enable_cache(false);
        files.resolve(engine, source, path, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stdlib_module_parses() {
        let engine = sandboxed(None);
        for (name, code) in STDLIB {
            engine.compile(code).unwrap_or_else(|e| panic!("stdlib/{name}.rhai: {e}"));
        }
    }

    #[test]
    fn stdlib_modules_compile_once_and_import_in_every_engine() {
        let (name, code) = STDLIB[0];
        let first = stdlib_ast(&sandboxed(None), name, code).unwrap();
        let second = stdlib_ast(&sandboxed(None), name, code).unwrap();
        assert!(Rc::ptr_eq(&first, &second), "stdlib/{name}.rhai was compiled twice");
        for _ in 0..2 {
            let engine = sandboxed(None);
            let imported = engine.eval::<rhai::INT>(&format!("import \"{name}\" as m; 1"));
            assert_eq!(imported.unwrap(), 1);
        }
    }
}
