//! `vectura serve`: it starts on a free port over the embedded default store (SQLite in
//! VECTURA_DATA_DIR), /healthz answers 200, the set-up token is printed, and SIGTERM stops it.

use crate::common::scratch;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A plain HTTP/1.0 GET (no client crate in these tests): the status line and the body.
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

#[test]
fn serve_starts_on_a_free_port_answers_healthz_and_stops_on_sigterm() {
    let data = scratch("serve");
    let mut child = Command::new(crate::common::bin())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("VECTURA_DATA_DIR", &data)
        .env("DATABASE_URL", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            panic!("vectura serve printed nothing within 60 s");
        }
    };
    let addr = first
        .strip_prefix("vectura dashboard on http://")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    // No password yet: the one-time set-up token follows.
    let mut rest = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        rest.push_str(&l);
        rest.push('\n');
        if l.contains("set-password") {
            break;
        }
    }
    assert!(rest.contains("/setup"), "{rest}");

    let (status, body) = get(&addr, "/healthz");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ok\n");
    // A page without login sends to the login.
    let (status, _) = get(&addr, "/backtests");
    assert!(
        status.contains(" 303 ") || status.contains(" 302 "),
        "{status}"
    );
    // The store is the embedded default, in the data directory.
    assert!(
        std::fs::read_dir(&data).unwrap().count() > 0,
        "nothing in {}",
        data.display()
    );

    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("vectura serve did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.signal() == Some(15) || status.code() == Some(143) || status.success(),
        "{status:?}"
    );
    // The port is free again.
    assert!(TcpStream::connect(&addr).is_err(), "{addr} still answers");
    let _ = std::fs::remove_dir_all(&data);
}
