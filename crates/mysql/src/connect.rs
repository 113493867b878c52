//! Opening connections to the source server and checking, before streaming, that it can serve
//! row-based CDC: binary log on, `binlog_format=ROW`, `binlog_row_image=FULL`, and no other replica
//! using our `server_id`. Each failed check says exactly what to change.

use crate::config::MysqlSourceConfig;
use crate::error::SourceError;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

/// What the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub version: String,
    pub mariadb: bool,
    /// Whether the server checksums binlog events (`binlog_checksum` is not NONE).
    pub checksum: bool,
    /// MySQL with `gtid_mode=ON`: only then may a resume ask by GTID set.
    pub mysql_gtid_mode_on: bool,
}

pub fn opts(config: &MysqlSourceConfig) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname(config.host.clone())
        .tcp_port(config.port)
        .user(Some(config.user.clone()))
        .pass(config.password.as_ref().map(|p| p.expose().to_string()))
        .prefer_socket(false)
        .wait_timeout(Some(28_800))
}

pub async fn connect(config: &MysqlSourceConfig) -> Result<Conn, SourceError> {
    let attempt = Conn::new(opts(config));
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(SourceError::from_mysql(
            e,
            &config.addr(),
            &config.user,
            "connecting",
        )),
        Err(_) => Err(SourceError::retry(format!(
            "cannot connect to {}: no answer within {:?}",
            config.addr(),
            config.connect_timeout
        ))),
    }
}

/// Runs a query, classifying its failure.
pub async fn query<T: mysql_async::prelude::FromRow + Send + 'static>(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
    sql: &str,
) -> Result<Vec<T>, SourceError> {
    conn.query(sql).await.map_err(|e| {
        SourceError::from_mysql(e, &config.addr(), &config.user, &format!("running `{sql}`"))
    })
}

/// `SHOW MASTER STATUS`, or `SHOW BINARY LOG STATUS` on MySQL 8.4 and later, which removed it.
pub async fn binlog_status(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
) -> Result<Vec<mysql_async::Row>, SourceError> {
    match conn.query("SHOW MASTER STATUS").await {
        Ok(rows) => Ok(rows),
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => {
            query(conn, config, "SHOW BINARY LOG STATUS").await
        }
        Err(e) => Err(SourceError::from_mysql(
            e,
            &config.addr(),
            &config.user,
            "running `SHOW MASTER STATUS`",
        )),
    }
}

/// Checks the server's binlog settings; returns what the server is.
pub async fn preflight(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
) -> Result<ServerInfo, SourceError> {
    let addr = config.addr();
    type Settings = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Settings> = query(
        conn,
        config,
        "SELECT VERSION(), @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image, \
         @@GLOBAL.binlog_checksum",
    )
    .await?;
    let Some((version, log_bin, format, image, checksum)) = rows.into_iter().next() else {
        return Err(SourceError::halt(format!(
            "{addr} returned no server settings"
        )));
    };
    let mut info = ServerInfo {
        mariadb: version.to_ascii_lowercase().contains("mariadb"),
        version,
        checksum: !checksum.unwrap_or_default().eq_ignore_ascii_case("NONE"),
        mysql_gtid_mode_on: false,
    };
    if !info.mariadb {
        let mode: Option<Option<String>> = conn
            .query_first("SELECT @@GLOBAL.gtid_mode")
            .await
            .ok()
            .flatten();
        info.mysql_gtid_mode_on = mode.flatten().is_some_and(|m| m.eq_ignore_ascii_case("ON"));
    }
    let log_bin = log_bin.unwrap_or_default();
    if log_bin != "1" && !log_bin.eq_ignore_ascii_case("ON") {
        return Err(SourceError::halt(format!(
            "binary logging is off on {addr}: start the server with log_bin (e.g. log-bin=mysql-bin), \
             binlog_format=ROW and binlog_row_image=FULL, then restart rowbus"
        )));
    }
    let format = format.unwrap_or_default();
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(SourceError::halt(format!(
            "binlog_format is {format} on {addr}; rowbus needs ROW: run SET GLOBAL binlog_format='ROW' \
             and set binlog_format=ROW in the server's configuration"
        )));
    }
    let image = image.unwrap_or_default();
    if !image.eq_ignore_ascii_case("FULL") {
        return Err(SourceError::halt(format!(
            "binlog_row_image is {image} on {addr}; rowbus needs FULL row images: run SET GLOBAL \
             binlog_row_image='FULL' and set binlog_row_image=FULL in the server's configuration"
        )));
    }
    check_server_id(conn, config).await?;
    Ok(info)
}

/// Refuses to start when another replica is registered with our `server_id`: the server would
/// disconnect one of the two, and they would take turns losing the stream.
async fn check_server_id(conn: &mut Conn, config: &MysqlSourceConfig) -> Result<(), SourceError> {
    // SHOW SLAVE HOSTS needs an extra privilege on some versions; without it, skip the check.
    let Ok(hosts) = conn.query::<mysql_async::Row, _>("SHOW SLAVE HOSTS").await else {
        return Ok(());
    };
    for host in hosts {
        let id: Option<u32> = host.get(0);
        let name: Option<String> = host.get(1);
        let name = name.unwrap_or_default();
        if id != Some(config.server_id) {
            continue;
        }
        if name == config.replica_name {
            // Our own registration, left by a previous run that crashed: the server replaces it.
            tracing::info!(
                server_id = config.server_id,
                "replacing this rowbus's stale replica registration"
            );
            continue;
        }
        return Err(SourceError::halt(format!(
            "server_id {} is already used by another replica of {} (host {}); give this source \
             a server_id that no other replica uses",
            config.server_id,
            config.addr(),
            if name.is_empty() { "unnamed" } else { &name }
        )));
    }
    Ok(())
}
