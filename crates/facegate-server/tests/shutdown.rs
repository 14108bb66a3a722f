//! SIGTERM (what `systemctl stop` or an orchestrator sends): the server stops taking new
//! connections at once, answers the request already in flight, and then exits cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn sigterm_stops_new_connections_and_finishes_the_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("serve")
        .env("FACEGATE_DATA", dir.path())
        .env("FACEGATE_LISTEN", &addr)
        .env("FACEGATE_FACE", "off")
        .env("FACEGATE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut inflight = loop {
        if let Ok(s) = std::net::TcpStream::connect(&addr) {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // A request whose body has not arrived yet when the signal comes.
    let body = "grant_type=client_credentials";
    write!(
        inflight,
        "POST /token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    inflight.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "no new connection is taken after SIGTERM"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running: a request is in flight"
    );
    inflight.write_all(body.as_bytes()).unwrap();
    inflight.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = Vec::new();
    let _ = inflight.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the request in flight is answered (no client credentials: 401), not cut off: {answer:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after its last request"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a clean exit: {status:?}");
}
