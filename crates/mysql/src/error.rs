//! Source errors, each classified once: `Retry` (the connection or server may come back: reconnect
//! with backoff) or `Halt` (a person must act: wrong password, missing grant, wrong server settings,
//! a purged binlog, undecodable input). Every message names the cause and the fix.

use mysql_async::Error as MyError;

/// How to get past a purged binlog: added to a `Purged` error's cause when it halts.
pub const PURGED_FIX: &str = "Set on_purged = \"snapshot\" (or snapshot = \"when_needed\") on the \
     source to rebuild the targets from a snapshot, or remove the checkpoint and choose a `start`";

/// What the source is doing when it requests the binlog, for error classification.
pub const REQUESTING_BINLOG: &str = "requesting the binlog stream";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Retry,
    Halt,
    /// The binlog to resume from is gone from the server: halt, or snapshot if configured so.
    Purged,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    pub disposition: Disposition,
}

impl SourceError {
    pub fn halt(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            disposition: Disposition::Halt,
        }
    }

    pub fn retry(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            disposition: Disposition::Retry,
        }
    }

    pub fn purged(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            disposition: Disposition::Purged,
        }
    }

    pub fn is_purged(&self) -> bool {
        self.disposition == Disposition::Purged
    }

    pub fn is_retriable(&self) -> bool {
        self.disposition == Disposition::Retry
    }

    /// Classifies a client error from talking to the server at `addr` as `user`.
    pub fn from_mysql(err: MyError, addr: &str, user: &str, doing: &str) -> Self {
        match &err {
            MyError::Server(server) => {
                from_server_error(server.code, &server.message, addr, user, doing)
            }
            MyError::Io(_) | MyError::Driver(_) => SourceError::retry(format!(
                "lost or could not open the connection to {addr} while {doing}: {err}"
            )),
            _ => SourceError::halt(format!("error from {addr} while {doing}: {err}")),
        }
    }
}

fn from_server_error(code: u16, message: &str, addr: &str, user: &str, doing: &str) -> SourceError {
    match code {
        // After a successful login, MariaDB answers COM_REGISTER_SLAVE / COM_BINLOG_DUMP without
        // the REPLICATION SLAVE grant with "access denied" too.
        1045 | 1227 if doing == REQUESTING_BINLOG => SourceError::halt(format!(
            "user '{user}' lacks the REPLICATION SLAVE privilege on {addr} ({message}). Grant what \
             rowbus needs with: GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '{user}'@'%'"
        )),
        1045 => SourceError::halt(format!(
            "{addr} refused user '{user}': access denied (wrong password, or no such user for this \
             host). Check the source's password_env / password_file and the user's host part"
        )),
        1227 | 1044 | 1142 => SourceError::halt(format!(
            "user '{user}' lacks a privilege on {addr} while {doing}: {message}. Grant what rowbus \
             needs with: GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '{user}'@'%' \
             (REPLICATION CLIENT is called BINLOG MONITOR on MariaDB 10.5+)"
        )),
        1236 if message.contains("purged") || message.contains("Could not find first log file") => {
            SourceError::purged(format!(
                "{addr} no longer has the binlog the stream must resume from: {message}"
            ))
        }
        1236 => SourceError::halt(format!(
            "{addr} cannot serve the binlog from the requested position: {message}. If the binlog \
             was purged, start from a position the server still has (`start = \"earliest\"` after \
             removing the checkpoint) and rebuild the targets"
        )),
        // Killed, server shutting down, too many connections, lock wait: the server may come back.
        1053 | 1040 | 1205 | 1213 | 1927 | 2013 | 2006 => SourceError::retry(format!(
            "{addr} dropped the connection while {doing}: {message} (error {code})"
        )),
        _ => SourceError::halt(format!("{addr} answered error {code} while {doing}: {message}")),
    }
}
