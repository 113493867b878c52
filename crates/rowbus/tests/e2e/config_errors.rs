//! `rowbus check` and `rowbus run` on bad configurations: exit code 2, every error named by its field.

use crate::support::TestDir;
use std::process::Command;

fn rowbus(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BAD: &str = r#"
[sources.shop]
type = "mysql"
url = "mysql://repl@127.0.0.1:3306"
server_id = "forty-two"

[sinks.out]
type = "file"
path = "./out.jsonl"
colour = "blue"

[sinks.other]
type = "file"
"#;

#[test]
fn check_names_every_bad_field() {
    let dir = TestDir::new("check");
    let path = dir.path("bad.toml");
    std::fs::write(&path, BAD).unwrap();
    let (code, _, stderr) = rowbus(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("has 3 error(s)"), "{stderr}");
    assert!(
        stderr.contains("sources.shop.server_id: invalid type: string \"forty-two\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("sinks.out.colour: unknown field `colour`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sinks.other.path: missing required field"),
        "{stderr}"
    );

    let (code, _, stderr) = rowbus(&["run", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 2, "run refuses the same config: {stderr}");
}

#[test]
fn check_accepts_the_example_configs() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rowbus.toml");
    let (code, stdout, stderr) = rowbus(&["check", "-c", root]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.ends_with("OK\n"), "{stdout}");
}

#[test]
fn version_and_help() {
    let (code, stdout, _) = rowbus(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, format!("rowbus {}\n", env!("CARGO_PKG_VERSION")));
    for command in [&["--help"][..], &["run", "--help"], &["check", "--help"]] {
        let (code, stdout, _) = rowbus(command);
        assert_eq!(code, 0);
        assert!(stdout.contains("Usage: rowbus"), "{stdout}");
    }
    let (code, _, stderr) = rowbus(&["run"]);
    assert_eq!(code, 2, "a missing argument is a usage error: {stderr}");
}
