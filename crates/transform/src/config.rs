//! The steps as the configuration writes them (`[[transforms]]`, `[[sinks.NAME.transforms]]`):
//! one action per step, with the optional `tables` and `if` that narrow it, checked and compiled
//! when the configuration loads, every problem reported at its field path.

use crate::script::{Expr, Script};
use crate::step::{Action, Step};
use crate::Chain;
use rhai::Engine;
use rowbus_core::table_filter::TableFilter;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One step as written. Exactly one action field is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Keep only these columns.
    pub keep: Option<Vec<String>>,
    /// Remove these columns.
    pub drop: Option<Vec<String>>,
    /// Rename columns: `{ old = "new" }`.
    pub rename: Option<BTreeMap<String, String>>,
    /// The table's new name, a template of `{db}` and `{table}`.
    pub rename_table: Option<String>,
    /// The database's new name, a template of `{db}` and `{table}`.
    pub rename_db: Option<String>,
    /// Replace these columns' values with `mask_with`.
    pub mask: Option<Vec<String>>,
    /// Replace these columns' values with the SHA-256 of the salt and the value.
    pub hash: Option<Vec<String>>,
    /// Keep the change only when this expression is true.
    pub filter: Option<String>,
    /// The change's key columns.
    pub key: Option<Vec<String>>,
    /// The columns the change is partitioned by (default: its source key).
    pub partition: Option<Vec<String>>,
    /// Computed columns: `{ name = "expression" }`.
    pub set: Option<BTreeMap<String, String>>,
    /// Send the change only to these sinks.
    pub route: Option<Vec<String>>,
    /// Send a copy of the change to this sink as well.
    pub copy: Option<String>,
    /// A whole-event script, inline or from a file.
    pub script: Option<String>,
    pub script_file: Option<PathBuf>,

    /// Apply the step only to these tables (`db.table` globs).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Apply the step only when this expression is true.
    #[serde(rename = "if")]
    pub condition: Option<String>,
    /// `mask`: the text that replaces a value (default `****`).
    pub mask_with: Option<String>,
    /// `hash`: the salt, from an environment variable or a file.
    pub salt_env: Option<String>,
    pub salt_file: Option<PathBuf>,
    /// `copy`: the copy's key columns (default: the change's key).
    pub copy_key: Option<Vec<String>>,
}

const ACTIONS: [&str; 15] = [
    "keep",
    "drop",
    "rename",
    "rename_table",
    "rename_db",
    "mask",
    "hash",
    "filter",
    "key",
    "partition",
    "set",
    "route",
    "copy",
    "script",
    "script_file",
];

/// Where the steps are: the pipeline's may route and copy, a sink's may not.
pub enum Level<'a> {
    /// The names of the configured sinks, in order.
    Pipeline {
        sinks: &'a [String],
    },
    Sink,
}

/// Compiles `steps` (at `path`, e.g. `transforms`); None when there are none. Problems are pushed
/// onto `errors` as (field path, message).
pub fn compile(
    steps: &[StepConfig],
    path: &str,
    level: Level<'_>,
    errors: &mut Vec<(String, String)>,
) -> Option<Chain> {
    let engine = crate::script::engine();
    let before = errors.len();
    let compiled: Vec<Step> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| {
            compile_step(step, &format!("{path}[{i}]"), &level, &engine, errors)
        })
        .collect();
    (errors.len() == before && !compiled.is_empty()).then(|| Chain::new(compiled))
}

fn set_actions(step: &StepConfig) -> Vec<&'static str> {
    let set = [
        step.keep.is_some(),
        step.drop.is_some(),
        step.rename.is_some(),
        step.rename_table.is_some(),
        step.rename_db.is_some(),
        step.mask.is_some(),
        step.hash.is_some(),
        step.filter.is_some(),
        step.key.is_some(),
        step.partition.is_some(),
        step.set.is_some(),
        step.route.is_some(),
        step.copy.is_some(),
        step.script.is_some(),
        step.script_file.is_some(),
    ];
    ACTIONS
        .iter()
        .zip(set)
        .filter(|(_, s)| *s)
        .map(|(a, _)| *a)
        .collect()
}

fn step_action(step: &StepConfig) -> Option<&'static str> {
    match set_actions(step).as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

fn compile_step(
    step: &StepConfig,
    path: &str,
    level: &Level<'_>,
    engine: &Arc<Engine>,
    errors: &mut Vec<(String, String)>,
) -> Option<Step> {
    let mut error = |field: &str, message: String| {
        let at = if field.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{field}")
        };
        errors.push((at, message));
    };
    for (field, used, by) in [
        ("mask_with", step.mask_with.is_some(), "mask"),
        ("salt_env", step.salt_env.is_some(), "hash"),
        ("salt_file", step.salt_file.is_some(), "hash"),
        ("copy_key", step.copy_key.is_some(), "copy"),
    ] {
        if used && step_action(step) != Some(by) {
            error(field, format!("only for a `{by}` step"));
        }
    }
    let tables = if step.tables.is_empty() {
        None
    } else {
        for (i, pattern) in step.tables.iter().enumerate() {
            if let Err(e) = rowbus_core::table_filter::validate(pattern) {
                error(&format!("tables[{i}]"), e.to_string());
            }
        }
        TableFilter::new(&step.tables, &[]).ok()
    };
    let condition = match &step.condition {
        None => None,
        Some(text) if step.filter.is_some() => {
            error(
                "if",
                "a filter is its own condition; put it into the filter expression".into(),
            );
            let _ = text;
            None
        }
        Some(text) => match Expr::compile(engine, text) {
            Ok(expr) => Some(expr),
            Err(e) => {
                error("if", e);
                None
            }
        },
    };
    let actions = set_actions(step);
    let action_name = match actions.as_slice() {
        [one] => *one,
        [] => {
            error(
                "",
                format!("a step needs one action: {}", ACTIONS.join(", ")),
            );
            return None;
        }
        many => {
            error(
                "",
                format!(
                    "a step has one action; this one has {}: split it into steps",
                    many.join(", ")
                ),
            );
            return None;
        }
    };
    let action = action(step, action_name, level, engine, &mut error)?;
    Some(Step::new(
        (path.to_string(), action_name),
        tables,
        condition,
        action,
    ))
}

fn action(
    step: &StepConfig,
    name: &str,
    level: &Level<'_>,
    engine: &Arc<Engine>,
    error: &mut impl FnMut(&str, String),
) -> Option<Action> {
    let columns = |list: &Option<Vec<String>>, error: &mut dyn FnMut(&str, String)| {
        let list = list.clone().unwrap_or_default();
        if list.is_empty() {
            error(name, "needs at least one column".into());
        }
        list
    };
    let expr = |text: &str, field: &str, error: &mut dyn FnMut(&str, String)| match Expr::compile(
        engine, text,
    ) {
        Ok(e) => Some(e),
        Err(e) => {
            error(field, e);
            None
        }
    };
    Some(match name {
        "keep" => Action::Keep(columns(&step.keep, error)),
        "drop" => Action::Drop(columns(&step.drop, error)),
        "rename" => Action::Rename(renames(step.rename.as_ref(), error)?),
        "rename_table" => Action::RenameTable(template(step.rename_table.as_deref(), name, error)?),
        "rename_db" => Action::RenameDb(template(step.rename_db.as_deref(), name, error)?),
        "mask" => Action::Mask {
            columns: columns(&step.mask, error),
            with: step.mask_with.clone().unwrap_or_else(|| "****".into()),
        },
        "hash" => Action::Hash {
            columns: columns(&step.hash, error),
            salt: salt(step, error)?,
        },
        "filter" => Action::Filter(expr(
            step.filter.as_deref().unwrap_or_default(),
            "filter",
            error,
        )?),
        "key" => Action::Key(columns(&step.key, error)),
        "partition" => Action::Partition(columns(&step.partition, error)),
        "set" => {
            let fields = step.set.clone().unwrap_or_default();
            if fields.is_empty() {
                error("set", "needs at least one `column = \"expression\"`".into());
            }
            let mut compiled = Vec::new();
            for (column, text) in &fields {
                compiled.push((
                    Arc::from(column.as_str()),
                    expr(text, &format!("set.{column}"), error)?,
                ));
            }
            Action::Set(compiled)
        }
        "route" => Action::Route(sinks(
            step.route.as_deref().unwrap_or_default(),
            name,
            level,
            error,
        )?),
        "copy" => Action::Copy {
            to: sinks(
                std::slice::from_ref(step.copy.as_ref()?),
                name,
                level,
                error,
            )?,
            key: match &step.copy_key {
                Some(key) if key.is_empty() => {
                    error("copy_key", "needs at least one column".into());
                    return None;
                }
                key => key.clone(),
            },
        },
        "script" | "script_file" => {
            let text = match (&step.script, &step.script_file) {
                (Some(text), _) => text.clone(),
                (None, Some(file)) => match std::fs::read_to_string(file) {
                    Ok(text) => text,
                    Err(e) => {
                        error(name, format!("cannot read {}: {e}", file.display()));
                        return None;
                    }
                },
                (None, None) => unreachable!("one of them is set"),
            };
            match Script::compile(engine, &text) {
                Ok(script) => Action::Script(script),
                Err(e) => {
                    error(name, e);
                    return None;
                }
            }
        }
        other => unreachable!("unknown action {other}"),
    })
}

/// A `rename` map: at least one column, no two renamed to the same name.
fn renames(
    map: Option<&BTreeMap<String, String>>,
    error: &mut impl FnMut(&str, String),
) -> Option<std::collections::HashMap<String, String>> {
    let map = map.cloned().unwrap_or_default();
    if map.is_empty() {
        error("rename", "needs at least one `old = \"new\"`".into());
        return None;
    }
    let mut seen = std::collections::HashMap::new();
    for (old, new) in &map {
        if let Some(other) = seen.insert(new.as_str(), old.as_str()) {
            error(
                "rename",
                format!("`{other}` and `{old}` are both renamed to `{new}`"),
            );
            return None;
        }
    }
    Some(map.into_iter().collect())
}

fn template(
    text: Option<&str>,
    field: &str,
    error: &mut impl FnMut(&str, String),
) -> Option<String> {
    let text = text.unwrap_or_default();
    let rest = text.replace("{db}", "").replace("{table}", "");
    let name_char = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '-';
    if text.is_empty() || !rest.chars().all(name_char) {
        error(
            field,
            format!(
                "`{text}` is not a name template (letters, digits, `_`, `$`, `-`, and {{db}} or {{table}})"
            ),
        );
        return None;
    }
    Some(text.to_string())
}

fn salt(step: &StepConfig, error: &mut impl FnMut(&str, String)) -> Option<Arc<[u8]>> {
    match (&step.salt_env, &step.salt_file) {
        (Some(var), None) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Some(value.into_bytes().into()),
            _ => {
                error(
                    "salt_env",
                    format!("environment variable {var} is not set or empty"),
                );
                None
            }
        },
        (None, Some(file)) => match std::fs::read(file) {
            Ok(bytes) if !bytes.is_empty() => Some(bytes.into()),
            Ok(_) => {
                error("salt_file", format!("{} is empty", file.display()));
                None
            }
            Err(e) => {
                error("salt_file", format!("cannot read {}: {e}", file.display()));
                None
            }
        },
        (Some(_), Some(_)) => {
            error("salt_env", "set salt_env or salt_file, not both".into());
            None
        }
        (None, None) => {
            error("hash", "needs a salt: set salt_env or salt_file (an unsalted hash of a short value is easily reversed)".into());
            None
        }
    }
}

fn sinks(
    names: &[String],
    field: &str,
    level: &Level<'_>,
    error: &mut impl FnMut(&str, String),
) -> Option<Arc<[usize]>> {
    let Level::Pipeline { sinks } = level else {
        error(
            field,
            "only the pipeline's transforms route and copy; move this step to [[transforms]]"
                .into(),
        );
        return None;
    };
    if names.is_empty() {
        error(field, "names no sink".into());
        return None;
    }
    let mut indices = Vec::new();
    for name in names {
        match sinks.iter().position(|s| s == name) {
            Some(i) => indices.push(i),
            None => error(
                field,
                format!("no sink `{name}` (sinks: {})", sinks.join(", ")),
            ),
        }
    }
    (indices.len() == names.len()).then(|| indices.into())
}
