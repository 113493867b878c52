//! The expression language (Rhai): one sandboxed engine (no modules, no file or network access,
//! bounded operations), expressions for predicates and computed fields, and whole-event scripts.
//! A change is bound as the variables `op`, `db`, `table`, `key`, `before`, `after` and `row` (the
//! image being computed, else `after`, else `before`); undefined variables are compile errors.
//! Expressions see only the columns their text names, so binding a change costs little.

use crate::convert::{merge_back, to_dynamic};
use crate::fast::FastPredicate;
use crate::step::Columns;
use rhai::{ASTNode, Dynamic, Engine, ImmutableString, Map, Position, Scope, AST};
use rowbus_core::event::{ChangeEvent, Op, Row};
use std::sync::Arc;

/// The variables every expression and script sees.
const VARIABLES: [&str; 7] = ["op", "db", "table", "key", "before", "after", "row"];

pub(crate) fn engine() -> Arc<Engine> {
    let mut engine = Engine::new();
    engine
        .set_strict_variables(true)
        .set_max_operations(1_000_000)
        .set_max_call_levels(32)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(1 << 20)
        .set_max_array_size(100_000)
        .set_max_map_size(10_000)
        .on_print(|text| tracing::info!(target: "rowbus::script", "{text}"))
        .on_debug(|text, _, _| tracing::debug!(target: "rowbus::script", "{text}"));
    Arc::new(engine)
}

/// Whether every use of an image (`key`, `before`, `after`, `row`) names one column by a property
/// or a constant index (`row.status`, `row["status"]`), so that binding only the columns the text
/// names is exact. `before != after`, `row.len()` or `row[name]` need whole images.
fn only_named_columns(ast: &AST) -> bool {
    let mut named = true;
    ast.walk(&mut |path: &[ASTNode]| {
        let [.., parent, ASTNode::Expr(rhai::Expr::Variable(v, _, _))] = path else {
            return true;
        };
        if !matches!(v.1.as_str(), "key" | "before" | "after" | "row") {
            return true;
        }
        let is_this = |e: &rhai::Expr| matches!(e, rhai::Expr::Variable(w, _, _) if w.1 == v.1);
        named = match parent {
            ASTNode::Expr(rhai::Expr::Dot(b, _, _)) => {
                is_this(&b.lhs) && matches!(b.rhs, rhai::Expr::Property(..))
            }
            ASTNode::Expr(rhai::Expr::Index(b, _, _)) => {
                is_this(&b.lhs) && matches!(b.rhs, rhai::Expr::StringConstant(..))
            }
            _ => false,
        };
        named
    });
    named
}

/// `line L, column C: message`, from an error's position.
fn located(message: String, position: Position) -> String {
    match (position.line(), position.position()) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: {message}"),
        (Some(line), None) => format!("line {line}: {message}"),
        _ => message,
    }
}

fn declared_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    for name in VARIABLES {
        scope.push_dynamic(name, Dynamic::UNIT);
    }
    scope
}

fn runtime_error(mut e: rhai::EvalAltResult) -> String {
    let position = e.position();
    e.clear_position();
    located(e.to_string(), position)
}

/// The compiled text and which columns it names, per column list seen (a few tables' worth).
#[derive(Clone)]
struct Compiled {
    engine: Arc<Engine>,
    ast: AST,
    text: Arc<str>,
    /// Bind every column, not only those the text names (whole-event scripts).
    all_columns: bool,
    named: Vec<(Columns, Vec<usize>)>,
    scope: Scope<'static>,
    /// The last `db` and `table` bound, so one table's strings are made once.
    names: Option<(Arc<str>, Arc<str>, Dynamic, Dynamic)>,
}

impl Compiled {
    fn new(engine: Arc<Engine>, ast: AST, text: &str, all_columns: bool) -> Self {
        let all_columns = all_columns || !only_named_columns(&ast);
        Compiled {
            engine,
            ast,
            text: text.into(),
            all_columns,
            named: Vec::new(),
            scope: Scope::new(),
            names: None,
        }
    }

    /// The indices of the columns the text names.
    fn named(&mut self, columns: &Columns) -> &[usize] {
        if let Some(i) = self.named.iter().position(|(c, _)| Arc::ptr_eq(c, columns)) {
            return &self.named[i].1;
        }
        if self.named.len() >= 64 {
            self.named.clear();
        }
        let indices = (0..columns.len())
            .filter(|&i| self.all_columns || self.text.contains(&*columns[i]))
            .collect();
        self.named.push((columns.clone(), indices));
        &self.named.last().expect("just pushed").1
    }

    fn map(&mut self, row: Option<&Row>) -> Dynamic {
        let Some(row) = row else {
            return Dynamic::UNIT;
        };
        let mut map = Map::new();
        for &i in self.named(&row.columns) {
            map.insert((&*row.columns[i]).into(), to_dynamic(&row.values[i]));
        }
        Dynamic::from_map(map)
    }

    fn names(&mut self, event: &ChangeEvent) -> (Dynamic, Dynamic) {
        match &self.names {
            Some((db, table, d, t))
                if Arc::ptr_eq(db, &event.db) && Arc::ptr_eq(table, &event.table) =>
            {
                (d.clone(), t.clone())
            }
            _ => {
                let d = Dynamic::from(ImmutableString::from(&*event.db));
                let t = Dynamic::from(ImmutableString::from(&*event.table));
                self.names = Some((event.db.clone(), event.table.clone(), d.clone(), t.clone()));
                (d, t)
            }
        }
    }

    /// Binds `event` (with `row` as the image being computed) and evaluates.
    fn eval(&mut self, event: &ChangeEvent, row: Option<&Row>) -> Result<Dynamic, String> {
        let (db, table) = self.names(event);
        let op = Dynamic::from(ImmutableString::from(event.op.as_str()));
        let key = self.map(Some(&event.key));
        let before = self.map(event.before.as_ref());
        let after = self.map(event.after.as_ref());
        let row = match row {
            Some(r) => self.map(Some(r)),
            None if event.after.is_some() => after.clone(),
            None => before.clone(),
        };
        let mut scope = std::mem::take(&mut self.scope);
        scope.clear();
        for (name, value) in VARIABLES
            .iter()
            .zip([op, db, table, key, before, after, row])
        {
            scope.push_dynamic(*name, value);
        }
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast)
            .map_err(|e| runtime_error(*e));
        self.scope = scope;
        result
    }
}

/// An expression: a predicate or a computed value. A plain comparison predicate also has its
/// native form (`fast`), which decides without Rhai where it can.
#[derive(Clone)]
pub(crate) struct Expr(Compiled, Option<FastPredicate>);

impl Expr {
    /// Compiles `text`; the error says where (`line L, column C: ...`).
    pub fn compile(engine: &Arc<Engine>, text: &str) -> Result<Expr, String> {
        let ast = engine
            .compile_expression_with_scope(&declared_scope(), text)
            .map_err(|e| located(e.err_type().to_string(), e.position()))?;
        let fast = FastPredicate::compile(&ast);
        Ok(Expr(Compiled::new(engine.clone(), ast, text, false), fast))
    }

    pub fn eval(&mut self, event: &ChangeEvent, row: Option<&Row>) -> Result<Dynamic, String> {
        self.0.eval(event, row)
    }

    /// The native path's verdict, if it has one.
    #[cfg(test)]
    pub fn native(&mut self, event: &ChangeEvent) -> Option<bool> {
        self.1.as_mut()?.test(event, None)
    }

    /// A predicate's verdict; anything but a boolean is an error.
    pub fn test(&mut self, event: &ChangeEvent) -> Result<bool, String> {
        if let Some(verdict) = self.1.as_mut().and_then(|f| f.test(event, None)) {
            return Ok(verdict);
        }
        let value = self.eval(event, None)?;
        value.as_bool().map_err(|found| {
            format!("the condition must give true or false, not a value of type {found}")
        })
    }
}

/// A whole-event script: it may change `op` (among c, u, d and r), `db`, `table`, `before` and
/// `after` (add, change or remove columns, or whole images); `false` as its value drops the event.
#[derive(Clone)]
pub(crate) struct Script(Compiled);

impl Script {
    pub fn compile(engine: &Arc<Engine>, text: &str) -> Result<Script, String> {
        let ast = engine
            .compile_with_scope(&declared_scope(), text)
            .map_err(|e| located(e.err_type().to_string(), e.position()))?;
        Ok(Script(Compiled::new(engine.clone(), ast, text, true)))
    }

    /// Runs on `event`; None when the script dropped it.
    pub fn run(&mut self, event: &mut ChangeEvent) -> Result<Option<()>, String> {
        let verdict = self.0.eval(event, None)?;
        if verdict.as_bool() == Ok(false) {
            return Ok(None);
        }
        let scope = &self.0.scope;
        let text = |name: &str| -> Result<Arc<str>, String> {
            let value = scope
                .get_value::<ImmutableString>(name)
                .ok_or_else(|| format!("`{name}` must stay a string"))?;
            Ok(Arc::from(value.as_str()))
        };
        let op = text("op")?;
        if *op != *event.op.as_str() {
            let new = Op::parse(&op)?;
            if !new.is_row_change() || !event.op.is_row_change() {
                return Err(
                    "a script cannot turn a row change into a schema change or marker, or back"
                        .into(),
                );
            }
            event.op = new;
        }
        let (db, table) = (text("db")?, text("table")?);
        if *db != *event.db {
            event.db = db;
        }
        if *table != *event.table {
            event.table = table;
        }
        let before = scope.get("before").cloned();
        let after = scope.get("after").cloned();
        let original_before = event.before.clone();
        read_back(&mut event.before, before, "before", event.after.as_ref())?;
        read_back(&mut event.after, after, "after", original_before.as_ref())?;
        Ok(Some(()))
    }
}

/// Writes a script's map back into the row: its columns in their original order, then new ones
/// in name order; a column removed from the map leaves the row. `()` removes the image; a map
/// where there was none makes one, ordered (and exact where copied) like `like`, the other image.
fn read_back(
    row: &mut Option<Row>,
    value: Option<Dynamic>,
    name: &str,
    like: Option<&Row>,
) -> Result<(), String> {
    let Some(value) = value else {
        return Ok(());
    };
    if value.is_unit() {
        *row = None;
        return Ok(());
    }
    let Some(map) = value.read_lock::<Map>() else {
        return Err(format!("`{name}` must be an object map or ()"));
    };
    // A new image starts as the other one, so that a value copied from it stays exact.
    let current = row.get_or_insert_with(|| like.cloned().unwrap_or_default());
    let mut columns: Vec<Arc<str>> = Vec::with_capacity(map.len());
    let mut values = Vec::with_capacity(map.len());
    for (column, original) in current.columns.iter().zip(&current.values) {
        if let Some(new) = map.get(&**column) {
            columns.push(column.clone());
            values.push(
                merge_back(Some(original), new).map_err(|e| format!("{name}.{column}: {e}"))?,
            );
        }
    }
    for (column, new) in map.iter() {
        if current.get(column).is_none() {
            columns.push(Arc::from(column.as_str()));
            values.push(merge_back(None, new).map_err(|e| format!("{name}.{column}: {e}"))?);
        }
    }
    let unchanged = columns.len() == current.columns.len()
        && columns
            .iter()
            .zip(current.columns.iter())
            .all(|(a, b)| Arc::ptr_eq(a, b));
    current.columns = if unchanged {
        current.columns.clone()
    } else {
        columns.into()
    };
    current.values = values;
    Ok(())
}
