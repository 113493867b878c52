//! Helpers for driving the rowbus binary: write a config, start `rowbus run`, stop it with a
//! signal, read the JSON lines it delivered, and wait on conditions with deadlines.

use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

pub const DEADLINE: Duration = Duration::from_secs(60);

/// A temp directory for one test, removed on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let n = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("rowbus-e2e-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique replica server_id for each rowbus the tests start.
pub fn server_id() -> u32 {
    5000 + NEXT_ID.fetch_add(1, Ordering::SeqCst)
}

/// The file:pos at the end of the server's binlog now.
pub async fn binlog_end(server: &MariaDb) -> String {
    let mut conn = server.conn().await;
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .unwrap();
    let file: String = row.get(0).unwrap();
    let pos: u64 = row.get(1).unwrap();
    format!("{file}:{pos}")
}

/// A config for `db` that starts at the server's current binlog end, with a fresh server_id.
pub async fn config_from_now(
    server: &MariaDb,
    dir: &TestDir,
    db: &str,
    extra_source: &str,
) -> PathBuf {
    let start = binlog_end(server).await;
    write_config(dir, server.port, db, &start, server_id(), extra_source)
}

/// A config with one MySQL source and one file sink; `extra_source` lines go into the source.
pub fn write_config(
    dir: &TestDir,
    port: u16,
    db: &str,
    start: &str,
    server_id: u32,
    extra_source: &str,
) -> PathBuf {
    let text = format!(
        r#"data_dir = "{data}"

[pipeline]
checkpoint_interval = "200ms"

[sources.src]
type = "mysql"
url = "mysql://root@127.0.0.1:{port}"
server_id = {server_id}
include = ["{db}.*"]
start = "{start}"
heartbeat = "1s"
max_backoff = "2s"
{extra_source}

[sinks.out]
type = "file"
path = "{out}"
"#,
        data = dir.path("data").display(),
        out = dir.path("out.jsonl").display(),
    );
    let path = dir.path("rowbus.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Rowbus {
    child: Child,
    pub stderr: PathBuf,
}

impl Rowbus {
    pub fn start(config: &Path) -> Rowbus {
        Rowbus::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Rowbus {
        let n = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let stderr = config.with_file_name(format!("rowbus-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_rowbus"))
            .args(["run", "-c"])
            .arg(config)
            .envs(env.iter().copied())
            // ROWBUS_TEST_LOG=rowbus_mysql=debug shows more when a test fails.
            .env(
                "RUST_LOG",
                std::env::var("ROWBUS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Rowbus { child, stderr }
    }

    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// The most resident memory the process has had so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// SIGTERM, and assert a clean exit (showing rowbus's log if not).
    pub fn stop_cleanly(self) {
        self.wait_started();
        let stderr = self.stderr.clone();
        let status = self.terminate();
        let log = std::fs::read_to_string(stderr).unwrap_or_default();
        assert!(
            status.success(),
            "rowbus exited with {status} on SIGTERM:\n{log}"
        );
    }

    /// Waits until rowbus reads the binlog (its signal handlers are installed by then).
    pub fn wait_started(&self) {
        wait_for("rowbus to start reading", DEADLINE, || {
            // "... the binlog" (MySQL) or "... the topics" (Kafka).
            self.log().contains("starting to read the").then_some(())
        });
    }

    /// SIGKILL: no chance to drain or save anything.
    pub fn kill(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// Waits for rowbus to exit; on timeout fails with the end of its log.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for rowbus to exit; {}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("rowbus's log ends:\n{}", tail.join("\n"))
    }

    /// Waits for `condition` while rowbus runs; on timeout fails with the end of its log.
    pub fn wait_until<T>(&self, what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(value) = condition() {
                return value;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; {}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Rowbus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A test failing while rowbus ran: what rowbus said is the first thing to read.
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

/// Every complete JSON line of the file sink's output (a torn last line after SIGKILL is skipped).
pub fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The number of complete lines in a file (cheap enough to poll on large outputs).
pub fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Waits until the file holds at least `count` events, and returns them.
pub fn wait_for_events(path: &Path, count: usize) -> Vec<Value> {
    wait_for(
        &format!("{count} events in {}", path.display()),
        DEADLINE,
        || {
            let events = read_events(path);
            (events.len() >= count).then_some(events)
        },
    )
}

/// The saved checkpoint of source `src`.
pub fn checkpoint(dir: &TestDir) -> Option<Value> {
    let text = std::fs::read_to_string(dir.path("data/checkpoints/src.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// (op, table, id) of each event, for comparing sequences.
pub fn summary(events: &[Value]) -> Vec<(String, String, i64)> {
    events
        .iter()
        .map(|e| {
            let image = if e["op"] == "d" {
                &e["before"]
            } else {
                &e["after"]
            };
            (
                e["op"].as_str().unwrap().to_string(),
                e["table"].as_str().unwrap().to_string(),
                image["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Identity of an event in the binlog: (file, pos, row).
pub fn identity(e: &Value) -> (String, u64, u64) {
    let s = &e["source"];
    (
        s["file"].as_str().unwrap().to_string(),
        s["pos"].as_u64().unwrap(),
        s["row"].as_u64().unwrap(),
    )
}

/// Runs `count` small transactions, each inserting into `t` and updating/deleting older rows;
/// returns the expected (op, table, id) sequence.
pub async fn write_transactions(
    server: &MariaDb,
    db: &str,
    from: i64,
    count: i64,
) -> Vec<(String, String, i64)> {
    let mut conn = server.conn().await;
    let mut expected = Vec::new();
    for i in from..from + count {
        conn.query_drop(format!(
            "BEGIN; INSERT INTO `{db}`.t (id, v) VALUES ({i}, 'v{i}'); UPDATE `{db}`.t SET v = 'u{i}' WHERE id = {i}; COMMIT"
        ))
        .await
        .unwrap();
        expected.push(("c".into(), "t".into(), i));
        expected.push(("u".into(), "t".into(), i));
    }
    conn.disconnect().await.ok();
    expected
}

pub async fn create_table_t(server: &MariaDb, db: &str) {
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(32))"
    ))
    .await
    .unwrap();
    conn.disconnect().await.ok();
}

/// A small tmpfs mounted for the test (the tests run as root), to make a disk full on purpose.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot mount a tmpfs on {} (tests run as root)",
            dir.display()
        );
        Tmpfs { dir }
    }

    /// Fills the file system with a filler file until writes fail.
    pub fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

    pub fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Waits, polling every 50 ms, until `done` holds; after `DEADLINE` fails with `why`'s text.
pub async fn eventually<F, Fut, W, WFut>(mut done: F, mut why: W)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
    W: FnMut() -> WFut,
    WFut: std::future::Future<Output = String>,
{
    let deadline = std::time::Instant::now() + DEADLINE;
    while !done().await {
        if std::time::Instant::now() >= deadline {
            panic!("timed out after {DEADLINE:?}: {}", why().await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Inserts rows 1, 2, 3... into `t`, one transaction each, until told to stop.
pub struct Writer {
    written: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    pub fn start(server: &'static MariaDb, db: &str) -> Writer {
        let (written, stop) = (
            Arc::new(AtomicI64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (w, s, db) = (written.clone(), stop.clone(), db.to_string());
        let task = tokio::spawn(async move {
            let mut conn = server.conn().await;
            // A steady workload of about 200 transactions a second (the shared server serves
            // every test at once).
            let mut pace = tokio::time::interval(std::time::Duration::from_millis(5));
            while !s.load(SeqCst) {
                pace.tick().await;
                let id = w.load(SeqCst) + 1;
                let sql = format!("INSERT INTO `{db}`.t (id, v) VALUES ({id}, 'v{id}')");
                conn.query_drop(sql).await.unwrap();
                w.store(id, SeqCst);
            }
        });
        Writer {
            written,
            stop,
            task,
        }
    }

    pub fn written(&self) -> i64 {
        self.written.load(SeqCst)
    }

    /// Stops writing; how many rows were written.
    pub async fn finish(self) -> i64 {
        self.stop.store(true, SeqCst);
        self.task.await.unwrap();
        self.written.load(SeqCst)
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
