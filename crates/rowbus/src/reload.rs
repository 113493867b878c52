//! Hot reload (SIGHUP, `rowbus reload`, `POST /api/v1/reload`): what a changed configuration
//! file asks of the running process. The running and the new configuration are compared section
//! by section as parsed TOML: sinks and transforms are swapped at a transaction boundary with the
//! source still reading and the unchanged sinks still open; a changed source or `[pipeline]`
//! restarts the source from the checkpoint saved at that boundary; `data_dir` and `[admin]` need a
//! process restart, so a configuration changing them is refused and the old one keeps running.

use tokio::sync::{mpsc, oneshot};

/// A request to reload; `reply` (for the API) hears what was done, or why nothing was.
pub struct Request {
    pub ask: Ask,
    pub reply: Option<oneshot::Sender<Result<String, String>>>,
}

/// What a request asks: the configuration file read again, or the failure logs of the sink
/// named (or all) replayed while running, which drains and reopens them the same way.
pub enum Ask {
    Reload,
    ReplayFailures { sink: Option<String> },
}

pub type Requests = mpsc::Sender<Request>;

/// What a new configuration asks of the running one.
#[derive(Debug, PartialEq)]
pub enum Plan {
    Nothing,
    /// The sinks or the transforms changed: the sinks named in `reopen` (changed or removed)
    /// are closed, new ones opened, the others kept open.
    Sinks {
        reopen: Vec<String>,
        summary: String,
    },
    /// The source or `[pipeline]` changed: the source restarts too.
    Restart {
        summary: String,
    },
}

impl Plan {
    pub fn summary(&self) -> &str {
        match self {
            Plan::Nothing => "the configuration did not change",
            Plan::Sinks { summary, .. } | Plan::Restart { summary } => summary,
        }
    }
}

/// Compares the running configuration's text with the new one's (both already valid).
pub fn plan(old: &str, new: &str) -> Result<Plan, String> {
    let (old, new) = (parse(old)?, parse(new)?);
    for fixed in ["data_dir", "admin"] {
        if old.get(fixed) != new.get(fixed) {
            return Err(format!(
                "`{fixed}` cannot change while rowbus runs; restart it to apply that (the running configuration is kept)"
            ));
        }
    }
    let source_names = |t: &toml::Table| -> Vec<String> {
        let sources = t.get("sources").and_then(|s| s.as_table());
        sources
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    };
    if source_names(&old) != source_names(&new) {
        return Err("the source's name cannot change while rowbus runs (its checkpoint is kept under it); restart rowbus to apply that (the running configuration is kept)".into());
    }
    let sinks = |t: &toml::Table| t.get("sinks").and_then(|s| s.as_table()).cloned();
    let (old_sinks, new_sinks) = (
        sinks(&old).unwrap_or_default(),
        sinks(&new).unwrap_or_default(),
    );
    let mut parts = Vec::new();
    let names = |pick: &dyn Fn(&String) -> bool| -> Vec<String> {
        let all = old_sinks
            .keys()
            .chain(new_sinks.keys().filter(|k| !old_sinks.contains_key(*k)));
        all.filter(|k| pick(k)).cloned().collect()
    };
    let added = names(&|k| !old_sinks.contains_key(k));
    let removed = names(&|k| !new_sinks.contains_key(k));
    let changed = names(&|k| {
        old_sinks.contains_key(k) && new_sinks.contains_key(k) && old_sinks[k] != new_sinks[k]
    });
    for (what, list) in [
        ("added", &added),
        ("removed", &removed),
        ("changed", &changed),
    ] {
        if !list.is_empty() {
            parts.push(format!("sinks {what}: {}", list.join(", ")));
        }
    }
    if old.get("transforms") != new.get("transforms") {
        parts.push("the pipeline's transforms changed".to_string());
    }
    let source_changed = ["sources", "pipeline"]
        .iter()
        .any(|section| old.get(*section) != new.get(*section));
    if source_changed {
        parts.insert(
            0,
            "the source or [pipeline] changed: restarting the source".into(),
        );
        return Ok(Plan::Restart {
            summary: parts.join("; "),
        });
    }
    if parts.is_empty() {
        return Ok(Plan::Nothing);
    }
    let reopen = removed.into_iter().chain(changed).collect();
    Ok(Plan::Sinks {
        reopen,
        summary: parts.join("; "),
    })
}

fn parse(text: &str) -> Result<toml::Table, String> {
    toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
data_dir = "d"
[sources.m]
host = "h"
[sinks.a]
type = "file"
path = "a"
[sinks.b]
type = "file"
path = "b"
"#;

    #[test]
    fn a_new_sink_keeps_the_others_open() {
        let new = format!("{BASE}\n[sinks.c]\ntype = \"stdout\"\n");
        let expected = Plan::Sinks {
            reopen: vec![],
            summary: "sinks added: c".into(),
        };
        assert_eq!(plan(BASE, &new), Ok(expected));
    }

    #[test]
    fn a_changed_and_a_removed_sink_are_reopened() {
        let new = BASE.replace("path = \"a\"", "path = \"a2\"").replace(
            "[sinks.b]\ntype = \"file\"\npath = \"b\"\n",
            "[[transforms]]\ndrop = [\"x\"]\n",
        );
        let Ok(Plan::Sinks { reopen, summary }) = plan(BASE, &new) else {
            panic!("{:?}", plan(BASE, &new));
        };
        assert_eq!(reopen, ["b", "a"]);
        assert_eq!(
            summary,
            "sinks removed: b; sinks changed: a; the pipeline's transforms changed"
        );
    }

    #[test]
    fn a_changed_source_restarts_it_and_a_changed_data_dir_is_refused() {
        let new = BASE.replace("host = \"h\"", "host = \"h2\"");
        assert!(matches!(plan(BASE, &new), Ok(Plan::Restart { .. })));
        let renamed = BASE.replace("[sources.m]", "[sources.n]");
        let refused = plan(BASE, &renamed).unwrap_err();
        assert!(refused.starts_with("the source's name cannot change"));
        let new = BASE.replace("\"d\"", "\"d2\"");
        let refused = plan(BASE, &new).unwrap_err();
        assert!(refused.starts_with("`data_dir` cannot change while rowbus runs"));
        assert_eq!(plan(BASE, BASE), Ok(Plan::Nothing));
    }
}
