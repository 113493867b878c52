//! `Tansu`: a throwaway Kafka-compatible broker (the `tansu` binary, which `scripts/test.sh`
//! installs with `cargo install`, or `TANSU_BIN`), storing in SQLite under a temp dir, on a free
//! loopback port. It can be stopped and started again on the same port and storage, as a broker
//! that goes away for a while; it is killed when dropped.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Tansu {
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub brokers: String,
    dir: PathBuf,
    child: Option<Child>,
}

static SHARED: OnceLock<Tansu> = OnceLock::new();

fn bin() -> String {
    if let Ok(bin) = std::env::var("TANSU_BIN") {
        return bin;
    }
    let cargo = std::env::var("HOME").map(|h| format!("{h}/.cargo/bin/tansu"));
    match cargo {
        Ok(path) if std::path::Path::new(&path).exists() => path,
        _ => "tansu".into(),
    }
}

impl Tansu {
    /// The broker shared by all tests of this process. Give each test its own topics.
    pub fn shared() -> &'static Tansu {
        SHARED.get_or_init(Tansu::start)
    }

    /// Starts a broker of its own and waits until it takes connections.
    pub fn start() -> Tansu {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        sweep();
        let dir = std::env::temp_dir().join(format!("rowbus-tansu-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the broker's dir");
        let mut tansu = Tansu {
            brokers: format!("127.0.0.1:{port}"),
            dir,
            child: None,
        };
        tansu.resume();
        tansu
    }

    /// Starts the broker (again) on its port and storage, under a watchdog shell that kills it
    /// when this test process is gone (statics are never dropped, and a test process may be
    /// killed).
    pub fn resume(&mut self) {
        let url = format!("tcp://{}", self.brokers);
        let watchdog = format!(
            "\"$0\" broker --listener-url {url} --advertised-listener-url {url} --storage-engine sqlite://tansu.db & t=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $t 2>/dev/null; do sleep 0.5; done; kill -9 $t 2>/dev/null",
            parent = std::process::id()
        );
        let bin = bin();
        let child = Command::new("sh")
            .args(["-c", &watchdog, &bin])
            .current_dir(&self.dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("broker.log")).expect("a log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        self.child = Some(child);
        crate::wait_for("tansu to listen", Duration::from_secs(30), || {
            let log = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
            assert!(
                !log.contains("not found") && !log.contains("Error:"),
                "tansu did not start ({bin}; scripts/test.sh installs it, or set TANSU_BIN): {log}"
            );
            std::net::TcpStream::connect(&self.brokers).ok()
        });
    }

    /// Stops the broker at once; its topics stay in its storage for `resume`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let status = Command::new(bin())
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
            ])
            .args(["--broker", &format!("tcp://{}", self.brokers)])
            .stdout(Stdio::null())
            .status()
            .expect("tansu topic create");
        assert!(status.success(), "cannot create topic {name}");
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the storage of brokers whose test process is gone.
fn sweep() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("rowbus-tansu-") else {
            continue;
        };
        let owner = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if owner.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
