//! rowbus-testkit: throwaway real servers for tests. `MariaDb` starts a MariaDB with a binlog in a
//! temp directory on a free loopback port, from a data-directory template made once per machine,
//! and stops and deletes it when dropped, when the test process exits, or (if the process was
//! killed) when the next test process starts. `Osmem` starts an in-memory OpenSearch the same way, `Tansu` a Kafka-compatible broker.
//! `wait_for` polls a condition with a deadline.

mod mariadb;
mod osmem;
mod rng;
mod tansu;
mod wait;

pub use mariadb::{MariaDb, MariaDbOptions, RowMetadata};
pub use osmem::Osmem;
pub use rng::Rng;
pub use tansu::Tansu;
pub use wait::{wait_for, wait_for_async};
