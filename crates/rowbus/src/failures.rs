//! `rowbus failures list|show|replay|purge`: the sinks' failure logs, read and replayed while the
//! pipeline is stopped (the data directory's lock keeps a running rowbus out). A replay re-sends
//! each record, in order, through the sink's own write path; what is delivered leaves the log, and
//! under `on_failure = "park_key"` a key whose record fails again keeps its later records parked.

use crate::config::{Config, SinkConfig};
use crate::transforms::SinkTransforms;
use anyhow::{bail, Context};
use rowbus_core::delivery::OnFailure;
use rowbus_core::event::now_ms;
use rowbus_core::failure::record::Parked;
use rowbus_core::failure::{load_event, log, FailureRecord};
use rowbus_core::sink::Sink;
use rowbus_sinks::encode::native_json_line;
use std::io::IsTerminal;

/// The sinks a command applies to: the one named, or all.
pub(crate) fn chosen<'a>(
    config: &'a Config,
    sink: &Option<String>,
) -> anyhow::Result<Vec<&'a SinkConfig>> {
    let all: Vec<&SinkConfig> = config.sinks.iter().collect();
    match sink {
        None => Ok(all),
        Some(name) => match all.into_iter().find(|s| &s.name == name) {
            Some(s) => Ok(vec![s]),
            None => bail!(
                "no sink `{name}` in the configuration (sinks: {})",
                config
                    .sinks
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

fn records(config: &Config, sink: &SinkConfig) -> anyhow::Result<Vec<FailureRecord>> {
    let path = log::path(&config.data_dir, &sink.name);
    let (records, torn) =
        log::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if torn > 0 {
        eprintln!(
            "{}: a torn last record of {torn} bytes is ignored",
            path.display()
        );
    }
    Ok(records)
}

fn time(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let value = rowbus_core::Value::Timestamp {
        secs,
        micros: 0,
        fsp: 0,
    };
    let mut out = Vec::new();
    value.write_json(&mut out);
    String::from_utf8_lossy(&out).trim_matches('"').to_string()
}

pub fn list(config: &Config, sink: &Option<String>) -> anyhow::Result<()> {
    print_header();
    let mut total = 0;
    for s in chosen(config, sink)? {
        for r in records(config, s)? {
            total += 1;
            print_row(&s.name, &r);
        }
    }
    eprintln!("{total} record(s)");
    Ok(())
}

fn print_header() {
    println!(
        "{:<12} {:>6} {:<20} {:>8} {:<6} {:<40} ERROR",
        "SINK", "ID", "LAST FAILURE", "ATTEMPTS", "PARKED", "KEY"
    );
}

fn print_row(sink: &str, r: &FailureRecord) {
    let error: String = r.error.chars().take(80).collect();
    println!(
        "{:<12} {:>6} {:<20} {:>8} {:<6} {:<40} {error}",
        sink,
        r.id,
        time(r.last_ms),
        r.attempts,
        if r.parked { "yes" } else { "no" },
        r.key
    );
}

/// `rowbus failures list|replay` while rowbus runs (its data directory locked): through its
/// admin API. None for the commands that need it stopped.
pub fn through_api(
    config: &Config,
    sink: &Option<String>,
    replay: bool,
) -> Option<anyhow::Result<()>> {
    config.admin.as_ref()?;
    let query = sink
        .as_ref()
        .map(|s| format!("?sink={s}"))
        .unwrap_or_default();
    if replay {
        let path = format!("/api/v1/failures/replay{query}");
        return Some(crate::status::post_waiting(config, &path).map(|text| print!("{text}")));
    }
    Some((|| {
        let text = crate::status::call(config, "GET", &format!("/api/v1/failures{query}"))?;
        let listed: Vec<serde_json::Value> = serde_json::from_str(&text)?;
        print_header();
        for r in &listed {
            let record = FailureRecord {
                id: r["id"].as_u64().unwrap_or_default(),
                key: r["key"].as_str().unwrap_or_default().to_string(),
                error: r["error"].as_str().unwrap_or_default().to_string(),
                attempts: r["attempts"].as_u64().unwrap_or_default() as u32,
                parked: r["parked"].as_bool().unwrap_or_default(),
                last_ms: r["last_ms"].as_u64().unwrap_or_default(),
                ..FailureRecord::default()
            };
            print_row(r["sink"].as_str().unwrap_or_default(), &record);
        }
        eprintln!("{} record(s)", listed.len());
        Ok(())
    })())
}

pub fn show(config: &Config, sink: &Option<String>, id: u64) -> anyhow::Result<()> {
    for s in chosen(config, sink)? {
        for r in records(config, s)? {
            if r.id != id {
                continue;
            }
            println!("sink:      {}", s.name);
            println!("id:        {}", r.id);
            println!("key:       {}", r.key);
            println!("parked:    {}", r.parked);
            println!("attempts:  {}", r.attempts);
            println!("first:     {}", time(r.first_ms));
            println!("last:      {}", time(r.last_ms));
            println!("error:     {}", r.error);
            let event = load_event(r.event.as_ref().context("the record holds no event")?)
                .map_err(anyhow::Error::msg)?;
            let mut line = Vec::new();
            native_json_line(&event, &mut line);
            print!("event:     {}", String::from_utf8_lossy(&line));
            return Ok(());
        }
    }
    bail!("no failure record {id}")
}

pub fn purge(config: &Config, sink: &Option<String>, yes: bool) -> anyhow::Result<()> {
    for s in chosen(config, sink)? {
        let count = records(config, s)?.len();
        if count == 0 {
            continue;
        }
        if !yes {
            if !std::io::stdin().is_terminal() {
                bail!(
                    "purging {count} record(s) of sink `{}` needs confirmation: add --yes",
                    s.name
                );
            }
            eprint!(
                "Purge {count} record(s) of sink `{}`? This cannot be undone. [y/N] ",
                s.name
            );
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            if !answer.trim().eq_ignore_ascii_case("y") {
                eprintln!("kept");
                continue;
            }
        }
        log::rewrite(&log::path(&config.data_dir, &s.name), &[])?;
        eprintln!("sink `{}`: {count} record(s) purged", s.name);
    }
    Ok(())
}

/// What a replay did.
#[derive(Debug, Default, PartialEq)]
pub struct Replayed {
    pub delivered: usize,
    pub kept: usize,
}

/// Re-sends a sink's records in order through `target`; `dry_run` prints them instead.
pub async fn replay(
    config: &Config,
    sink: &SinkConfig,
    target: &mut dyn Sink,
    dry_run: bool,
) -> anyhow::Result<Replayed> {
    let path = log::path(&config.data_dir, &sink.name);
    let mut kept = Vec::new();
    // Rows (and tables) whose record failed again: their later records stay behind it.
    let mut failed = Parked::default();
    let mut report = Replayed::default();
    let all = records(config, sink)?;
    if all.is_empty() {
        return Ok(report);
    }
    let mut transforms = SinkTransforms::new(config, sink);
    for mut r in all {
        let parking = r.parking();
        let event = match r.event.as_ref().map(load_event) {
            Some(Ok(event)) => event,
            other => {
                // Kept, with why, and its row's later records behind it.
                r.error = match other {
                    Some(Err(e)) => format!("cannot read the stored event: {e}"),
                    _ => "the record holds no event".into(),
                };
                failed.add(&parking);
                kept.push(r);
                report.kept += 1;
                continue;
            }
        };
        let parked_behind =
            sink.delivery.on_failure == OnFailure::ParkKey && failed.parks(&parking);
        let events = match transforms.replayed(&r.untransformed, event) {
            Ok(events) => events,
            Err(e) => {
                r.attempts += 1;
                r.last_ms = now_ms();
                r.error = format!("transform: {e}");
                failed.add(&parking);
                kept.push(r);
                report.kept += 1;
                continue;
            }
        };
        if dry_run {
            for event in &events {
                let mut line = Vec::new();
                native_json_line(event, &mut line);
                print!("{} #{} {}", sink.name, r.id, String::from_utf8_lossy(&line));
            }
            report.delivered += 1;
            continue;
        }
        if parked_behind {
            kept.push(r);
            report.kept += 1;
            continue;
        }
        let written = match events.is_empty() {
            true => Ok(()), // the transforms now filter it out
            false => target.write(&events).await,
        };
        match written {
            Ok(()) => report.delivered += 1,
            Err(e) => {
                r.attempts += 1;
                r.last_ms = now_ms();
                r.error = e.message;
                r.parked = false;
                failed.add(&parking);
                kept.push(r);
                report.kept += 1;
            }
        }
    }
    if !dry_run {
        target
            .close()
            .await
            .map_err(|e| anyhow::anyhow!("closing sink `{}`: {e}", sink.name))?;
        log::rewrite(&path, &kept).with_context(|| format!("cannot rewrite {}", path.display()))?;
    }
    Ok(report)
}
