//! rowbus-mysql: the MySQL/MariaDB source. It connects as a replica (`connect`), checks that the
//! server can serve row-based CDC, finds where to start (`start`), streams the binlog, decodes each
//! event into change events and transaction boundaries (`decode`, `table`, `value`, `mariadb`),
//! merges snapshots of tables into the stream (`snapshot`), and keeps doing so across lost
//! connections (`source`); `lag` watches how far the server's binlog is ahead.

pub mod config;
pub mod connect;
pub mod decode;
pub mod error;
pub mod inspect;
pub mod lag;
pub mod mariadb;
pub mod mysql_gtid;
pub mod rows;
pub mod schema;
pub mod snapshot;
pub mod source;
pub mod start;
pub mod table;

pub use config::{MysqlSourceConfig, OnPurged, SnapshotMode, StartFrom};
pub use error::SourceError;
pub use source::run_source;
