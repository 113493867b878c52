//! A throwaway MariaDB server with a binlog, for tests.

use mysql_async::prelude::Queryable;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowMetadata {
    Full,
    Minimal,
    NoLog,
}

#[derive(Debug, Clone)]
pub struct MariaDbOptions {
    pub log_bin: bool,
    pub binlog_format: &'static str,
    pub row_image: &'static str,
    pub row_metadata: RowMetadata,
    pub server_id: u32,
}

impl Default for MariaDbOptions {
    fn default() -> Self {
        MariaDbOptions {
            log_bin: true,
            binlog_format: "ROW",
            row_image: "FULL",
            row_metadata: RowMetadata::Full,
            server_id: 1,
        }
    }
}

pub struct MariaDb {
    pub port: u16,
    dir: PathBuf,
    options: MariaDbOptions,
    child: Option<Child>,
}

/// Servers to stop when the test process exits (statics are never dropped).
static LIVE: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());
static SHARED: OnceLock<MariaDb> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

extern "C" fn stop_all_at_exit() {
    let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for (pid, dir) in live {
        if unsafe { libc::kill(pid as i32, 0) } != 0 {
            eprintln!("{}", died(&dir));
        }
        kill_and_wait(pid);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// What a server that died by itself wrote last: the tail of its error log.
fn died(dir: &std::path::Path) -> String {
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    format!(
        "the test MariaDB in {} died; its error log ends:\n{tail}",
        dir.display()
    )
}

fn kill_and_wait(pid: u32) {
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && unsafe { libc::kill(pid as i32, 0) } == 0 {
        // Reap it if it is our child; otherwise wait for it to vanish.
        unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn base_dir() -> PathBuf {
    std::env::temp_dir().join("rowbus-test-mariadb")
}

/// Once per process: register the exit hook and remove servers left by killed test processes.
fn init_process() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        unsafe { libc::atexit(stop_all_at_exit) };
        let Ok(entries) = std::fs::read_dir(base_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let owner = std::fs::read_to_string(path.join("owner"))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            let alive = owner.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
            if path.file_name().is_some_and(|n| n != "template") && !alive {
                if let Some(pid) = std::fs::read_to_string(path.join("server.pid"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    kill_and_wait(pid);
                }
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    });
}

/// The initialized data directory all instances copy, made once per machine.
fn template() -> PathBuf {
    let template = base_dir().join("template");
    let ready = template.join("READY");
    if ready.exists() {
        return template;
    }
    std::fs::create_dir_all(base_dir()).expect("create the test server directory");
    let lock =
        std::fs::File::create(base_dir().join("template.lock")).expect("create the template lock");
    lock.lock().expect("lock the template");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&template);
        let status = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .args(["--innodb-log-file-size=4M", "--innodb-buffer-pool-size=32M"])
            .arg(format!("--datadir={}", template.join("data").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run mariadb-install-db (install mariadb-server)");
        assert!(status.success(), "mariadb-install-db failed");
        std::fs::write(&ready, b"").expect("mark the template ready");
    }
    template
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

impl MariaDb {
    /// The server shared by all tests of this process (FULL row metadata). Give each test its own
    /// database (`fresh_database`).
    pub fn shared() -> &'static MariaDb {
        SHARED.get_or_init(|| MariaDb::start(MariaDbOptions::default()))
    }

    /// Starts a new server; it is stopped and deleted when dropped.
    pub fn start(options: MariaDbOptions) -> MariaDb {
        init_process();
        let template = template();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = base_dir().join(format!("{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the server directory");
        std::fs::write(dir.join("owner"), std::process::id().to_string()).expect("write owner");
        let status = Command::new("cp")
            .arg("-a")
            .arg(template.join("data"))
            .arg(dir.join("data"))
            .status()
            .expect("copy the template");
        assert!(status.success(), "copying the MariaDB template failed");
        let mut server = MariaDb {
            port: 0,
            dir,
            options,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        if self.port == 0 {
            self.port = free_port();
        }
        let o = &self.options;
        let d = &self.dir;
        let tmp = d.join("tmp");
        std::fs::create_dir_all(&tmp).expect("create the server's temporary directory");
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            // Its own temporary directory: a server starting removes the `#sql*` files it finds
            // in its tmpdir, which in a shared /tmp are other servers' temporary tables in use.
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--innodb-log-file-size=4M",
            ])
            .args([
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=2",
                "--max-connections=500",
            ])
            .arg(format!("--server-id={}", o.server_id));
        if o.log_bin {
            cmd.arg("--log-bin=mysql-bin")
                .arg(format!("--binlog-format={}", o.binlog_format))
                .arg(format!("--binlog-row-image={}", o.row_image))
                .arg(format!(
                    "--binlog-row-metadata={}",
                    match o.row_metadata {
                        RowMetadata::Full => "FULL",
                        RowMetadata::Minimal => "MINIMAL",
                        RowMetadata::NoLog => "NO_LOG",
                    }
                ));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let pid = child.id();
        std::fs::write(d.join("server.pid"), pid.to_string()).expect("write server.pid");
        LIVE.lock().unwrap().push((pid, d.clone()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if greeting(self.port) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "mariadbd exited with {status}; see {}",
                    self.dir.join("error.log").display()
                );
            }
            assert!(
                Instant::now() < end,
                "mariadbd did not accept connections within 60 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the server (SIGKILL: an abrupt crash, as tests of reconnection want).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            unsafe { libc::kill(pid as i32, libc::SIGCONT) };
            let _ = child.kill();
            let _ = child.wait();
            LIVE.lock().unwrap().retain(|(p, _)| *p != pid);
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            unsafe { libc::kill(child.id() as i32, signal) };
        }
    }

    /// Starts the stopped server again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `mysql://root@127.0.0.1:PORT` (root has no password).
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    pub fn opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"))
            .prefer_socket(false)
            .into()
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        match mysql_async::Conn::new(self.opts()).await {
            Ok(conn) => conn,
            Err(e) => panic!("connect to the test MariaDB: {e}\n{}", died(&self.dir)),
        }
    }

    /// Creates a database with a unique name starting with `prefix`.
    pub async fn fresh_database(&self, prefix: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        let mut conn = self.conn().await;
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .await
            .expect("create database");
        conn.disconnect().await.ok();
        name
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// True when a MySQL protocol greeting (protocol version 10) arrives on the port.
fn greeting(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).is_ok() && header[4] == 10
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
