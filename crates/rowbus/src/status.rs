//! `rowbus status -c FILE [--json]`: asks the running pipeline's admin API for its state and prints
//! it as tables (like `kubectl get`) or as the API's JSON.

use crate::config::Config;
use anyhow::{bail, Context};
use serde_json::Value;

pub fn run(config: &Config, json: bool) -> anyhow::Result<()> {
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
    let url = format!("http://{address}/api/v1/status");
    let mut request = ureq::get(&url).timeout(std::time::Duration::from_secs(5));
    if let Some(token) = &admin.token {
        request = request.set("Authorization", &format!("Bearer {}", token.expose()));
    }
    let body: Value = match request.call() {
        Ok(response) => {
            let text = response
                .into_string()
                .context("reading the admin API's answer")?;
            serde_json::from_str(&text).context("the admin API's answer is not JSON")?
        }
        Err(ureq::Error::Status(code, response)) => {
            let text = response.into_string().unwrap_or_default();
            bail!("{url} answered {code}: {}", text.trim())
        }
        Err(e) => {
            bail!("cannot reach rowbus at {url} (is it running with this configuration?): {e}")
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    print!("{}", tables(&body));
    Ok(())
}

/// The status as two tables: the source, then one line per sink.
fn tables(status: &Value) -> String {
    let seconds = |v: &Value| v.as_f64().map_or("-".to_string(), |s| format!("{s:.1}s"));
    let mut out = format!(
        "{:<16} {:<40} {:>14} {:>8} {:>12}\n",
        "SOURCE", "CHECKPOINT", "CHECKPOINT AGE", "LAG", "EVENTS"
    );
    out.push_str(&format!(
        "{:<16} {:<40} {:>14} {:>8} {:>12}\n\n",
        status["source"].as_str().unwrap_or("-"),
        status["checkpoint"]
            .as_str()
            .filter(|c| !c.is_empty())
            .unwrap_or("-"),
        seconds(&status["checkpoint_age_seconds"]),
        seconds(&status["lag_seconds"]),
        status["events_read"],
    ));
    out.push_str(&format!(
        "{:<16} {:>12} {:>8} {:>9} {:>8}  LAST ERROR\n",
        "SINK", "DELIVERED", "QUEUED", "FAILURES", "RETRIES"
    ));
    for sink in status["sinks"].as_array().into_iter().flatten() {
        let error: String = sink["last_error"]
            .as_str()
            .unwrap_or("-")
            .chars()
            .take(60)
            .collect();
        out.push_str(&format!(
            "{:<16} {:>12} {:>8} {:>9} {:>8}  {error}\n",
            sink["name"].as_str().unwrap_or("-"),
            sink["delivered"],
            sink["queued"],
            sink["failures"],
            sink["retries"],
        ));
    }
    out
}
