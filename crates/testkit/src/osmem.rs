//! `Osmem`: a throwaway in-memory OpenSearch (the `osmem-server` binary of the PyPI package, which
//! `scripts/test.sh` installs into a venv and names in `OSMEM_SERVER_BIN`), on a free loopback
//! port. It exits with the test process (`-parent-pid`), and when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub struct Osmem {
    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
}

static SHARED: OnceLock<Osmem> = OnceLock::new();

impl Osmem {
    /// The server shared by all tests of this process. Give each test its own index names.
    pub fn shared() -> &'static Osmem {
        SHARED.get_or_init(Osmem::start)
    }

    /// Starts a server of its own and waits until it answers.
    pub fn start() -> Osmem {
        Osmem::start_on(0)
    }

    /// Starts a server on `port` (0: any free one).
    pub fn start_on(port: u16) -> Osmem {
        let addr = format!("127.0.0.1:{port}");
        let bin = std::env::var("OSMEM_SERVER_BIN").unwrap_or_else(|_| "osmem-server".into());
        let mut child = Command::new(&bin)
            .args(["-addr", &addr, "-no-stdin-watch", "-no-ja"])
            .args(["-parent-pid", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin}: {e}; scripts/test.sh installs it (or set OSMEM_SERVER_BIN)")
            });
        // Its first line, once it listens: {"url":"http://127.0.0.1:PORT",...}
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read osmem-server's first line");
        let url = line
            .split("\"url\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("osmem-server did not say where it listens: {line:?}"))
            .to_string();
        Osmem { url, child }
    }

    /// Stops the server at once (its data is gone: it keeps everything in memory).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Osmem {
    fn drop(&mut self) {
        self.kill();
    }
}
