//! Resolving where to start reading when there is no checkpoint: the oldest binlog the server has,
//! its current end, an explicit `file:pos`, or a GTID set/list; and filling in the GTID state of a
//! file position (MariaDB's `BINLOG_GTID_POS`) so that later resumes can use GTIDs.

use crate::config::{MysqlSourceConfig, StartFrom};
use crate::connect::{binlog_status, query, ServerInfo};
use crate::error::SourceError;
use crate::mysql_gtid::GtidSet;
use mysql_async::Conn;
use rowbus_core::Position;

pub async fn resolve(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
    server: &ServerInfo,
) -> Result<Position, SourceError> {
    let mut position = match &config.start {
        StartFrom::Earliest => {
            let logs: Vec<mysql_async::Row> = query(conn, config, "SHOW BINARY LOGS").await?;
            let first: Option<String> = logs.first().and_then(|row| row.get(0));
            let file = first.ok_or_else(|| {
                SourceError::halt(format!(
                    "{} lists no binary logs (SHOW BINARY LOGS is empty)",
                    config.addr()
                ))
            })?;
            Position::new(file, 4)
        }
        StartFrom::Latest => {
            let status = binlog_status(conn, config).await?;
            let row = status.into_iter().next().ok_or_else(|| {
                SourceError::halt(format!(
                    "{} reports no binlog position (SHOW MASTER STATUS is empty)",
                    config.addr()
                ))
            })?;
            let file: Option<String> = row.get(0);
            let pos: Option<u64> = row.get(1);
            let mut position = Position::new(file.unwrap_or_default(), pos.unwrap_or(4));
            if !server.mariadb {
                // MySQL reports the executed GTID set at that very position (5th column).
                let executed: Option<String> = row.get(4);
                position.gtid = executed.map(|g| g.replace(['\n', ' '], "")).filter(|g| !g.is_empty());
            }
            position
        }
        StartFrom::Position(position) => position.clone(),
        StartFrom::Gtid(gtid) if !server.mariadb && GtidSet::parse(gtid).is_none() => {
            return Err(SourceError::halt(format!(
                "start = \"{gtid}\" is not a MySQL GTID set (UUID:N-M, comma separated), and {} is MySQL",
                config.addr()
            )))
        }
        StartFrom::Gtid(gtid) if server.mariadb && crate::mariadb::GtidState::parse(gtid).is_none() => {
            return Err(SourceError::halt(format!(
                "start = \"{gtid}\" is not a MariaDB GTID list (DOMAIN-SERVER-SEQ, comma separated), \
                 and {} is MariaDB",
                config.addr()
            )))
        }
        StartFrom::Gtid(gtid) => {
            return Ok(Position {
                file: String::new(),
                pos: 4,
                gtid: Some(gtid.clone()),
                snapshot: None,
            })
        }
    };
    if server.mariadb {
        position.gtid = gtid_at(conn, config, &position).await?;
    }
    Ok(position)
}

/// The MariaDB GTID state at a file position; `None` when the server has no GTIDs there.
pub(crate) async fn gtid_at(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
    position: &Position,
) -> Result<Option<String>, SourceError> {
    let file = position.file.replace('\'', "''");
    let sql = format!("SELECT BINLOG_GTID_POS('{file}', {})", position.pos);
    let rows: Vec<Option<String>> = query(conn, config, &sql).await?;
    Ok(rows.into_iter().next().flatten().filter(|g| !g.is_empty()))
}
