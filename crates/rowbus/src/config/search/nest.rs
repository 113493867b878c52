//! `nest = [...]` of a search sink: child tables kept as array fields of their parents' documents,
//! checked field by field (table names, one level deep, one array per field).

use super::check_table_name;
use crate::config::Errors;
use rowbus_sinks::search::config::Nest;
use rowbus_sinks::search::nest::doc::META;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NestSection {
    table: String,
    into: String,
    field: String,
    parent_key: Columns,
}

/// One column, or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Columns {
    One(String),
    Many(Vec<String>),
}

/// The nests of `sections`, or `None` after adding each error under `path.nest[i].field`.
pub(super) fn check_nests(
    sections: Vec<NestSection>,
    path: &str,
    errors: &mut Errors,
) -> Option<Vec<Nest>> {
    let before = errors.count();
    let nests: Vec<Nest> = sections
        .into_iter()
        .map(|s| Nest {
            table: s.table,
            into: s.into,
            field: s.field,
            parent_key: match s.parent_key {
                Columns::One(c) => vec![c],
                Columns::Many(cs) => cs,
            },
        })
        .collect();
    for (i, nest) in nests.iter().enumerate() {
        let at = format!("{path}.nest[{i}]");
        check_table_name(&nest.table, &format!("{at}.table"), errors);
        check_table_name(&nest.into, &format!("{at}.into"), errors);
        if nest.table == nest.into {
            errors.add(format!("{at}.into"), "a table cannot be nested into itself");
        }
        if nests.iter().any(|n| n.into == nest.table) {
            errors.add(
                format!("{at}.table"),
                format!(
                    "nesting is one level deep: `{}` holds nested rows itself",
                    nest.table
                ),
            );
        }
        if nest.field.is_empty() || nest.field.contains('.') || nest.field == META {
            errors.add(
                format!("{at}.field"),
                format!("must be a top-level field name (no dots, not {META})"),
            );
        }
        let same_field = nests[..i]
            .iter()
            .any(|n| n.into == nest.into && n.field == nest.field);
        if same_field {
            errors.add(
                format!("{at}.field"),
                format!(
                    "`{}` already holds another nest of {}",
                    nest.field, nest.into
                ),
            );
        }
        if nest.parent_key.is_empty() || nest.parent_key.iter().any(String::is_empty) {
            errors.add(
                format!("{at}.parent_key"),
                "must name the child's column(s) holding the parent's id",
            );
        }
    }
    (errors.count() == before).then_some(nests)
}
