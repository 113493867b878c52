//! The CLI side of the admin API: `rowbus status -c FILE [--json]` prints the running pipeline's
//! state as tables (like `kubectl get`) or as the API's JSON; `rowbus pause|resume -c FILE
//! [--sink NAME]` pauses or resumes the source or a sink.

use crate::config::Config;
use anyhow::{bail, Context};
use serde_json::Value;
use std::time::Duration;

pub fn run(config: &Config, json: bool) -> anyhow::Result<()> {
    let text = call(config, "GET", "/api/v1/status")?;
    let body: Value = serde_json::from_str(&text).context("the admin API's answer is not JSON")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    print!("{}", tables(&body));
    Ok(())
}

/// `rowbus pause|resume`: the source, or the sink named.
pub fn pause_or_resume(config: &Config, sink: Option<&str>, action: &str) -> anyhow::Result<()> {
    let path = match sink {
        Some(sink) => format!("/api/v1/sinks/{sink}/{action}"),
        None => format!("/api/v1/sources/{}/{action}", config.source.name()),
    };
    print!("{}", call(config, "POST", &path)?);
    Ok(())
}

/// `rowbus reload`: the running process reads its configuration file again.
pub fn reload(config: &Config) -> anyhow::Result<()> {
    print!("{}", post_waiting(config, "/api/v1/reload")?);
    Ok(())
}

/// A POST whose answer comes once the sinks drained to a transaction boundary.
pub(crate) fn post_waiting(config: &Config, path: &str) -> anyhow::Result<String> {
    call_waiting(config, "POST", path, Duration::from_secs(300))
}

/// A request to the running pipeline's admin API; its answer's text.
pub(crate) fn call(config: &Config, method: &str, path: &str) -> anyhow::Result<String> {
    call_waiting(config, method, path, Duration::from_secs(5))
}

/// As `call`, waiting for the answer at most `timeout`.
fn call_waiting(
    config: &Config,
    method: &str,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let Some(admin) = &config.admin else {
        bail!("the configuration has no [admin] section: add `[admin] listen = \"127.0.0.1:9180\"` and restart rowbus");
    };
    let mut address = admin.listen;
    if address.port() == 0 {
        bail!("admin.listen has port 0 (any free port): give it a fixed port to reach it");
    }
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{address}{path}");
    let mut request = ureq::request(method, &url).timeout(timeout);
    if let Some(token) = &admin.token {
        request = request.set("Authorization", &format!("Bearer {}", token.expose()));
    }
    match request.call() {
        Ok(response) => response
            .into_string()
            .context("reading the admin API's answer"),
        Err(ureq::Error::Status(code, response)) => {
            let text = response.into_string().unwrap_or_default();
            bail!("{url} answered {code}: {}", text.trim())
        }
        Err(e) => {
            bail!("cannot reach rowbus at {url} (is it running with this configuration?): {e}")
        }
    }
}

/// The status as two tables: the source, then one line per sink.
fn tables(status: &Value) -> String {
    let seconds = |v: &Value| v.as_f64().map_or("-".to_string(), |s| format!("{s:.1}s"));
    let mut out = format!(
        "{:<16} {:<40} {:>14} {:>8} {:>12} {:>7}\n",
        "SOURCE", "CHECKPOINT", "CHECKPOINT AGE", "LAG", "EVENTS", "STATE"
    );
    out.push_str(&format!(
        "{:<16} {:<40} {:>14} {:>8} {:>12} {:>7}\n\n",
        status["source"].as_str().unwrap_or("-"),
        status["checkpoint"]
            .as_str()
            .filter(|c| !c.is_empty())
            .unwrap_or("-"),
        seconds(&status["checkpoint_age_seconds"]),
        seconds(&status["lag_seconds"]),
        status["events_read"].to_string(),
        if status["paused"] == true {
            "paused"
        } else {
            "running"
        },
    ));
    if let Some([current, rest @ ..]) = status["snapshot"].as_array().map(Vec::as_slice) {
        out.push_str(&format!(
            "snapshot: {} ({} rows delivered), {} more table(s) to read\n\n",
            current["table"].as_str().unwrap_or("-"),
            current["rows"],
            rest.len()
        ));
    }
    out.push_str(&format!(
        "{:<16} {:>12} {:>8} {:>8} {:>9} {:>8} {:>7}  LAST ERROR\n",
        "SINK", "DELIVERED", "QUEUED", "LAG", "FAILURES", "RETRIES", "STATE"
    ));
    for sink in status["sinks"].as_array().into_iter().flatten() {
        let error: String = sink["last_error"]
            .as_str()
            .unwrap_or("-")
            .chars()
            .take(60)
            .collect();
        let state = if sink["paused"] == true {
            "paused"
        } else if sink["stuck"] == true {
            "stuck"
        } else {
            "running"
        };
        out.push_str(&format!(
            "{:<16} {:>12} {:>8} {:>8} {:>9} {:>8} {:>7}  {error}\n",
            sink["name"].as_str().unwrap_or("-"),
            sink["delivered"].to_string(),
            sink["queued"].to_string(),
            seconds(&sink["lag_seconds"]),
            sink["failures"].to_string(),
            sink["retries"].to_string(),
            state,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tables_show_the_source_a_snapshot_and_each_sink() {
        let status = serde_json::json!({
            "source": "shop", "checkpoint": "b.000001:4", "checkpoint_age_seconds": 0.25,
            "events_read": 12, "lag_seconds": 1.0, "paused": false,
            "snapshot": [{"table": "shop.orders", "rows": 5000}, {"table": "shop.items", "rows": 0}],
            "sinks": [{"name": "out", "delivered": 12, "queued": 0, "failures": 1, "retries": 2,
                       "paused": true, "last_error": "refused", "lag_seconds": 0.0},
                      {"name": "late", "delivered": 3, "queued": 9, "failures": 0, "retries": 0,
                       "paused": false, "stuck": true, "lag_seconds": 12.5}],
        });
        let lines: Vec<Vec<String>> = super::tables(&status)
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect();
        let words = |line: &[&str]| line.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            lines[1],
            words(&["shop", "b.000001:4", "0.2s", "1.0s", "12", "running"])
        );
        assert_eq!(
            lines[3].join(" "),
            "snapshot: shop.orders (5000 rows delivered), 1 more table(s) to read"
        );
        assert_eq!(
            lines[6],
            words(&["out", "12", "0", "0.0s", "1", "2", "paused", "refused"])
        );
        assert_eq!(
            lines[7],
            words(&["late", "3", "9", "12.5s", "0", "0", "stuck", "-"])
        );
    }
}
