//! The search server over HTTP: one client (TLS with the system's roots or a CA file), requests
//! with the sink's credentials, and errors that name the server (never its credentials) and are
//! classified for the retry policy.

use super::config::{Auth, SearchSinkConfig};
use rowbus_core::sink::SinkError;
use std::time::Duration;

pub struct Http {
    client: reqwest::Client,
    /// The base URL, without a trailing `/`.
    url: String,
    auth: Auth,
    timeout: Duration,
}

impl Http {
    /// A client for the server of `config`; fails only on a CA file that cannot be read or parsed.
    pub fn new(config: &SearchSinkConfig) -> Result<Http, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .pool_max_idle_per_host(config.workers);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
            let ca = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("ca_file {} is not a PEM certificate: {e}", path.display()))?;
            builder = builder.add_root_certificate(ca);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Http {
            client,
            url: config.url.trim_end_matches('/').to_string(),
            auth: config.auth.clone(),
            timeout: config.timeout,
        })
    }

    /// Sends a request with a body of `content_type` to `path` (after the base URL); the status
    /// and the whole response body, or a retriable error when no answer came.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), SinkError> {
        let request = self
            .client
            .request(method, format!("{}/{path}", self.url))
            .header("content-type", content_type)
            .body(body);
        let request = match &self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
            Auth::ApiKey(key) => {
                request.header("authorization", format!("ApiKey {}", key.expose()))
            }
        };
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
        Ok((status, body.to_vec()))
    }

    /// A request the server answered with an error status, for `what` the request was.
    pub fn error(&self, what: &str, status: u16, body: &[u8]) -> SinkError {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
        let message = format!("{} {what}: HTTP {status}: {text}", self.url);
        match status {
            401 | 403 => SinkError::retriable(format!(
                "{message} (check the sink's credentials and that they may write to its indexes)"
            )),
            429 | 500..=599 => SinkError::retriable(message),
            _ => SinkError::permanent(message),
        }
    }

    /// A request that got no answer: retriable, naming the server.
    fn unreachable(&self, e: reqwest::Error) -> SinkError {
        let what = if e.is_timeout() {
            format!("no answer within {:?}", self.timeout)
        } else {
            error_chain(&e)
        };
        SinkError::retriable(format!("cannot reach {}: {what}", self.url))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
