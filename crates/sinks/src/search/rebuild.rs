//! Rebuilding a table's index without downtime (`rowbus snapshot --reindex`). The table's index
//! name (the `index` template) becomes an alias: a rebuild creates `<alias>-r<id>`, and from its
//! begin marker on every change of the table is written to both the alias and the new index, the
//! snapshot's rows included (their versions keep them from overwriting anything newer). At the end
//! marker the alias moves to the new index in one `_aliases` call; the old index loses the alias
//! (or is deleted, with `reindex_delete_old`; a plain index of the alias's name always is, to free
//! the name). The state lives on the server: after a restart an unaliased `<alias>-r<id>` newer
//! than the alias's index is a rebuild in progress, and the writes to both resume.

use super::config::SearchSinkConfig;
use super::http::Http;
use reqwest::Method;
use rowbus_core::sink::SinkError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The index being built for each alias this sink has written to, if any.
#[derive(Default)]
pub struct Rebuilds {
    building: HashMap<Arc<str>, Option<Arc<str>>>,
}

impl Rebuilds {
    /// The index being built behind `alias`, found on the server the first time it is asked.
    pub async fn target(
        &mut self,
        http: &Http,
        alias: &Arc<str>,
    ) -> Result<Option<Arc<str>>, SinkError> {
        if let Some(known) = self.building.get(alias) {
            return Ok(known.clone());
        }
        let found = in_progress(http, alias).await?.map(Arc::from);
        if let Some(index) = &found {
            tracing::info!(%alias, %index, "a rebuild is in progress: writing to both indexes");
        }
        self.building.insert(alias.clone(), found.clone());
        Ok(found)
    }

    /// Creates the rebuild's index (with the table's settings, if any) and writes to it from now on.
    pub async fn begin(
        &mut self,
        http: &Http,
        config: &SearchSinkConfig,
        (db, table): (&str, &str),
        id: &str,
    ) -> Result<(), SinkError> {
        let alias: Arc<str> = config.index_of(db, table).into();
        let index = index_name(&alias, id);
        let settings = config.index_settings.get(&format!("{db}.{table}"));
        super::create_index(http, &index, settings.map(|p| p.as_path()), false).await?;
        tracing::info!(%alias, %index, "rebuild begins: writing to both indexes");
        self.building.insert(alias, Some(index.into()));
        Ok(())
    }

    /// Moves the alias to the rebuilt index; the old one loses it, or is deleted.
    pub async fn end(
        &mut self,
        http: &Http,
        config: &SearchSinkConfig,
        (db, table): (&str, &str),
        id: &str,
    ) -> Result<(), SinkError> {
        let alias: Arc<str> = config.index_of(db, table).into();
        let index = index_name(&alias, id);
        let holders = aliased(http, &alias).await?;
        if holders.len() == 1 && holders[0] == index {
            self.building.insert(alias, None);
            return Ok(());
        }
        let mut actions: Vec<Value> = holders
            .iter()
            .map(|old| {
                // A plain index of the alias's name must go: an alias cannot share its name.
                if *old == *alias || config.reindex_delete_old {
                    json!({"remove_index": {"index": old}})
                } else {
                    json!({"remove": {"index": old, "alias": &*alias}})
                }
            })
            .collect();
        actions.push(json!({"add": {"index": index, "alias": &*alias}}));
        let body = serde_json::to_vec(&json!({ "actions": actions })).expect("JSON");
        let (status, reply) = http
            .send(Method::POST, "_aliases", "application/json", body)
            .await?;
        if status != 200 {
            return Err(http.error(&format!("moving alias {alias} to {index}"), status, &reply));
        }
        tracing::info!(%alias, %index, replaced = ?holders, "rebuild done: the alias points to the new index");
        self.building.insert(alias, None);
        Ok(())
    }
}

fn index_name(alias: &str, id: &str) -> String {
    format!("{alias}-r{id}")
}

/// The indexes `name` resolves to: itself when it is a plain index, the alias's indexes when it
/// is an alias, none when it does not exist.
async fn aliased(http: &Http, name: &str) -> Result<Vec<String>, SinkError> {
    let (status, body) = http
        .send(
            Method::GET,
            &format!("{name}/_alias"),
            "application/json",
            Vec::new(),
        )
        .await?;
    match status {
        200 => Ok(indexes_of(&body).into_iter().map(|(i, _)| i).collect()),
        404 => Ok(Vec::new()),
        other => Err(http.error(&format!("looking up {name}"), other, &body)),
    }
}

/// The newest `<alias>-r<id>` that does not carry the alias and is newer than the one that does.
async fn in_progress(http: &Http, alias: &str) -> Result<Option<String>, SinkError> {
    let (status, body) = http
        .send(
            Method::GET,
            &format!("{alias}-r*/_alias"),
            "application/json",
            Vec::new(),
        )
        .await?;
    if status == 404 {
        return Ok(None);
    }
    if status != 200 {
        return Err(http.error(&format!("looking up rebuilds of {alias}"), status, &body));
    }
    Ok(newest_unaliased(alias, indexes_of(&body)))
}

/// Of `<alias>-r<id>` indexes and their aliases: the newest, if it does not carry the alias and is
/// newer than the one that does.
fn newest_unaliased(alias: &str, indexes: Vec<(String, Vec<String>)>) -> Option<String> {
    let prefix = format!("{alias}-r");
    let mut rebuilds: Vec<(String, bool)> = indexes
        .into_iter()
        .filter(|(index, _)| {
            index
                .strip_prefix(&prefix)
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(index, aliases)| {
            let holds = aliases.iter().any(|a| a == alias);
            (index, holds)
        })
        .collect();
    rebuilds.sort();
    let current = rebuilds.iter().rposition(|(_, holds)| *holds);
    let newest = rebuilds.len().checked_sub(1)?;
    match current {
        Some(c) if c == newest => None,
        _ => Some(rebuilds.swap_remove(newest).0),
    }
}

/// `{"index": {"aliases": {"a": {}}}, ...}` as (index, its aliases).
fn indexes_of(body: &[u8]) -> Vec<(String, Vec<String>)> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(index, v)| {
            let aliases = v["aliases"]
                .as_object()
                .map(|a| a.keys().cloned().collect())
                .unwrap_or_default();
            (index, aliases)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(entries: &[(&str, bool)]) -> Vec<(String, Vec<String>)> {
        entries
            .iter()
            .map(|(index, holds)| {
                let aliases = if *holds {
                    vec!["a".to_string()]
                } else {
                    vec![]
                };
                (index.to_string(), aliases)
            })
            .collect()
    }

    #[test]
    fn a_rebuild_in_progress_is_the_newest_index_without_the_alias() {
        let pick = |entries: &[(&str, bool)]| newest_unaliased("a", listing(entries));
        assert_eq!(pick(&[]), None);
        assert_eq!(
            pick(&[("a-r0000000000002", false)]),
            Some("a-r0000000000002".into())
        );
        // Done: the newest holds the alias; older ones kept without it are history.
        assert_eq!(
            pick(&[("a-r0000000000001", false), ("a-r0000000000002", true)]),
            None
        );
        assert_eq!(
            pick(&[("a-r0000000000001", true), ("a-r0000000000003", false)]),
            Some("a-r0000000000003".into())
        );
        // Other indexes that share the prefix are not rebuilds.
        assert_eq!(pick(&[("a-rx", false), ("a-r", false)]), None);
    }
}
