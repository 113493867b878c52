//! One compiled step and what it does to a change. Steps that reshape rows work on a plan made
//! once per column list (a table's columns), not per change. Row steps leave schema changes and
//! truncations alone; renaming a table or database, routing and copying apply to them too.

use crate::script::{Expr, Script};
use rowbus_core::event::{ChangeEvent, Row};
use rowbus_core::table_filter::TableFilter;
use rowbus_core::transform::{Output, Targets};
use rowbus_core::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) type Columns = Arc<[Arc<str>]>;

#[derive(Clone)]
pub(crate) struct Step {
    /// Its field path (`transforms[2]`) and action, which runtime errors name.
    pub path: String,
    pub action_name: &'static str,
    pub tables: Option<TableFilter>,
    pub condition: Option<Expr>,
    pub action: Action,
    /// Per column list: the new columns and, for each, the index it comes from.
    plans: Vec<(Columns, Plan)>,
}

#[derive(Clone)]
pub(crate) struct Plan {
    columns: Columns,
    from: Vec<usize>,
}

#[derive(Clone)]
pub(crate) enum Action {
    Keep(Vec<String>),
    Drop(Vec<String>),
    Rename(HashMap<String, String>),
    RenameTable(String),
    RenameDb(String),
    Mask {
        columns: Vec<String>,
        with: String,
    },
    Hash {
        columns: Vec<String>,
        salt: Arc<[u8]>,
    },
    Filter(Expr),
    Key(Vec<String>),
    Partition(Vec<String>),
    Set(Vec<(Arc<str>, Expr)>),
    Route(Arc<[usize]>),
    Copy {
        to: Arc<[usize]>,
        key: Option<Vec<String>>,
    },
    Script(Script),
}

/// What a step did with one output.
pub(crate) enum Verdict {
    Keep,
    Drop,
    /// Keep, and add this copy after it.
    Copy(Output),
}

impl Step {
    pub fn new(
        (path, action_name): (String, &'static str),
        tables: Option<TableFilter>,
        condition: Option<Expr>,
        action: Action,
    ) -> Step {
        Step {
            path,
            action_name,
            tables,
            condition,
            action,
            plans: Vec::new(),
        }
    }

    /// `transforms[2] (mask)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.path, self.action_name)
    }

    /// The sinks a `copy` step copies to.
    pub fn copies_to(&self) -> Option<Vec<usize>> {
        match &self.action {
            Action::Copy { to, .. } => Some(to.to_vec()),
            _ => None,
        }
    }

    /// Whether the step may change a change's content (a route or a plain copy only adds targets
    /// or outputs).
    pub fn changes_events(&self) -> bool {
        !matches!(
            self.action,
            Action::Filter(_) | Action::Route(_) | Action::Copy { key: None, .. }
        )
    }

    /// Whether the step can fail at run time: expressions, and columns a row may lack.
    pub fn may_fail(&self) -> bool {
        self.condition.is_some()
            || matches!(
                self.action,
                Action::Filter(_)
                    | Action::Set(_)
                    | Action::Script(_)
                    | Action::Key(_)
                    | Action::Partition(_)
                    | Action::Copy { key: Some(_), .. }
            )
    }

    fn is_row_step(&self) -> bool {
        !matches!(
            self.action,
            Action::RenameTable(_) | Action::RenameDb(_) | Action::Route(_) | Action::Copy { .. }
        )
    }

    pub fn apply(&mut self, output: &mut Output) -> Result<Verdict, String> {
        let event = &output.event;
        if self.is_row_step() && !event.op.is_row_change() {
            return Ok(Verdict::Keep);
        }
        if let Some(tables) = &self.tables {
            if !tables.matches(&event.db, &event.table) {
                return Ok(Verdict::Keep);
            }
        }
        // A condition judges row changes; schema changes and markers pass a step that has one untouched.
        if let Some(condition) = &mut self.condition {
            if !event.op.is_row_change() || !condition.test(event)? {
                return Ok(Verdict::Keep);
            }
        }
        match &mut self.action {
            Action::Filter(expr) => {
                return Ok(if expr.test(event)? {
                    Verdict::Keep
                } else {
                    Verdict::Drop
                });
            }
            Action::Route(to) => {
                output.targets = Targets::Only(match &output.targets {
                    Targets::All => to.clone(),
                    Targets::Only(now) => now.iter().copied().filter(|s| to.contains(s)).collect(),
                });
                return Ok(Verdict::Keep);
            }
            Action::Copy { to, key } => {
                let mut copy = (**event).clone();
                copy.origin.get_or_insert_with(|| Arc::new(event.origin()));
                if let Some(key) = key {
                    set_key(&mut copy, key)?;
                }
                return Ok(Verdict::Copy(Output {
                    event: Arc::new(copy),
                    targets: Targets::Only(to.clone()),
                }));
            }
            _ => {}
        }
        if output.event.origin.is_none() {
            let origin = Arc::new(output.event.origin());
            Arc::make_mut(&mut output.event).origin = Some(origin);
        }
        let event = Arc::make_mut(&mut output.event);
        let keep = match &mut self.action {
            Action::Keep(_) | Action::Drop(_) | Action::Rename(_) => {
                let action = &self.action;
                let plans = &mut self.plans;
                let mut reshape = |row: &mut Row| {
                    let plan = plan_for(plans, &row.columns, |c| plan(action, c));
                    reshape(row, plan);
                };
                for row in [&mut event.before, &mut event.after].into_iter().flatten() {
                    reshape(row);
                }
                if let Action::Rename(_) = action {
                    reshape(&mut event.key);
                    if let Some(p) = &mut event.partition_key {
                        reshape(p);
                    }
                }
                true
            }
            Action::RenameTable(template) => {
                event.table = expand(template, event).into();
                true
            }
            Action::RenameDb(template) => {
                event.db = expand(template, event).into();
                true
            }
            Action::Mask { columns, with } => {
                for_each_value(event, columns, |v| *v = Value::Text(with.as_str().into()));
                true
            }
            Action::Hash { columns, salt } => {
                for_each_value(event, columns, |v| *v = hashed(salt, v));
                true
            }
            Action::Key(columns) => {
                set_key(event, columns)?;
                true
            }
            Action::Partition(columns) => {
                event.partition_key = Some(row_of(event, columns)?);
                true
            }
            Action::Set(fields) => {
                set_fields(event, fields, &mut self.plans)?;
                true
            }
            Action::Script(script) => script.run(event)?.is_some(),
            Action::Filter(_) | Action::Route(_) | Action::Copy { .. } => {
                unreachable!("handled above")
            }
        };
        Ok(if keep { Verdict::Keep } else { Verdict::Drop })
    }
}

fn plan_for<'a>(
    plans: &'a mut Vec<(Columns, Plan)>,
    columns: &Columns,
    make: impl FnOnce(&[Arc<str>]) -> Plan,
) -> &'a Plan {
    if let Some(i) = plans.iter().position(|(c, _)| Arc::ptr_eq(c, columns)) {
        return &plans[i].1;
    }
    if plans.len() >= 64 {
        plans.clear();
    }
    plans.push((columns.clone(), make(columns)));
    &plans.last().expect("just pushed").1
}

fn plan(action: &Action, columns: &[Arc<str>]) -> Plan {
    let (names, from): (Vec<Arc<str>>, Vec<usize>) = match action {
        Action::Keep(keep) => columns
            .iter()
            .enumerate()
            .filter(|(_, c)| keep.iter().any(|k| k == &***c))
            .map(|(i, c)| (c.clone(), i))
            .unzip(),
        Action::Drop(drop) => columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !drop.iter().any(|d| d == &***c))
            .map(|(i, c)| (c.clone(), i))
            .unzip(),
        Action::Rename(renames) => columns
            .iter()
            .enumerate()
            .map(|(i, c)| match renames.get(&**c) {
                Some(new) => (Arc::from(new.as_str()), i),
                None => (c.clone(), i),
            })
            .unzip(),
        _ => unreachable!("only column steps have plans"),
    };
    Plan {
        columns: names.into(),
        from,
    }
}

fn reshape(row: &mut Row, plan: &Plan) {
    if plan.from.len() == row.values.len() {
        row.columns = plan.columns.clone(); // a rename: the values stay where they are
        return;
    }
    let mut values = std::mem::take(&mut row.values);
    row.values = plan
        .from
        .iter()
        .map(|&i| std::mem::replace(&mut values[i], Value::Null))
        .collect();
    row.columns = plan.columns.clone();
}

/// `{db}` and `{table}` replaced by the change's.
fn expand(template: &str, event: &ChangeEvent) -> String {
    template
        .replace("{db}", &event.db)
        .replace("{table}", &event.table)
}

/// Applies `change` to the named columns' non-NULL values, in every image and the key.
fn for_each_value(event: &mut ChangeEvent, columns: &[String], mut change: impl FnMut(&mut Value)) {
    let rows = [&mut event.before, &mut event.after].into_iter().flatten();
    for row in rows.chain([&mut event.key]) {
        for (column, value) in row.columns.iter().zip(row.values.iter_mut()) {
            if *value != Value::Null && columns.iter().any(|c| c == &**column) {
                change(value);
            }
        }
    }
}

/// SHA-256 of the salt and the value's bytes (text as UTF-8, binary as is, others as their JSON),
/// in lowercase hex.
fn hashed(salt: &[u8], value: &Value) -> Value {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    match value {
        Value::Text(t) => hasher.update(t.as_bytes()),
        Value::Bytes(b) => hasher.update(b),
        other => {
            let mut json = Vec::new();
            other.write_json(&mut json);
            hasher.update(&json);
        }
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    Value::Text(hex.into())
}

/// The named columns of the change's row (the after image, or the before image of a delete).
fn row_of(event: &ChangeEvent, columns: &[String]) -> Result<Row, String> {
    let image = event
        .after
        .as_ref()
        .or(event.before.as_ref())
        .ok_or("the change has no row image")?;
    let values = columns
        .iter()
        .map(|c| {
            image
                .get(c)
                .cloned()
                .ok_or_else(|| format!("column `{c}` is not in the row"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<Arc<str>> = columns.iter().map(|c| Arc::from(c.as_str())).collect();
    Ok(Row {
        columns: names.into(),
        values,
    })
}

/// Gives the change a new key; it stays partitioned by its source key.
fn set_key(event: &mut ChangeEvent, columns: &[String]) -> Result<(), String> {
    let key = row_of(event, columns)?;
    let source = std::mem::replace(&mut event.key, key);
    event.partition_key.get_or_insert(source);
    Ok(())
}

/// Adds or replaces computed columns, in each image, computed from that image (`row`).
fn set_fields(
    event: &mut ChangeEvent,
    fields: &mut [(Arc<str>, Expr)],
    plans: &mut Vec<(Columns, Plan)>,
) -> Result<(), String> {
    for which in [0, 1] {
        let image = if which == 0 {
            &event.before
        } else {
            &event.after
        };
        let Some(image) = image else { continue };
        let mut computed = Vec::with_capacity(fields.len());
        for (name, expr) in fields.iter_mut() {
            let value = expr
                .eval(event, Some(image))
                .map_err(|e| format!("{name}: {e}"))?;
            computed
                .push(crate::convert::from_dynamic(&value).map_err(|e| format!("{name}: {e}"))?);
        }
        let image = if which == 0 {
            &mut event.before
        } else {
            &mut event.after
        };
        let row = image.as_mut().expect("checked above");
        let plan = plan_for(plans, &row.columns, |columns| extended(columns, fields));
        row.values.resize(plan.columns.len(), Value::Null);
        for (&at, value) in plan.from.iter().zip(computed) {
            row.values[at] = value;
        }
        row.columns = plan.columns.clone();
    }
    Ok(())
}

/// The columns with the computed ones added (those not there yet, at the end) and, for each
/// computed one, where it goes.
fn extended(columns: &[Arc<str>], fields: &[(Arc<str>, Expr)]) -> Plan {
    let mut all = columns.to_vec();
    let from = fields
        .iter()
        .map(|(name, _)| match all.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                all.push(name.clone());
                all.len() - 1
            }
        })
        .collect();
    Plan {
        columns: all.into(),
        from,
    }
}
