//! `wasmgate run` under a service manager: the real binary, started with a
//! `NOTIFY_SOCKET` the test listens on, tells it READY=1 once it serves,
//! RELOADING=1 then READY=1 (with a STATUS saying how the reload went) on
//! SIGHUP, and STOPPING=1 on SIGTERM before it drains and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn config(port: u16, status: u16) -> String {
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:{port}"

[[route]]
listener = "web"
upstream = "up"
fallback = {{ status = {status}, body = "fallback" }}

[[upstream]]
name = "up"
targets = [ {{ address = "127.0.0.1:9" }} ]
retries = 0
health_check = {{ kind = "tcp", interval = "100ms", timeout = "100ms", unhealthy_after = 1 }}

[runtime]
workers = 1
"#
    )
}

/// The notifications that arrive within `limit`, one datagram at a time, until
/// one contains `until`.
fn receive_until(socket: &UnixDatagram, until: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match socket.recv(&mut buffer) {
            Ok(n) => {
                let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
                let done = message.contains(until);
                seen.push(message);
                if done {
                    return seen;
                }
            }
            Err(e) => panic!("no `{until}` from the gateway ({e}); got {seen:?}"),
        }
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with the pid of our own child and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill: {}", std::io::Error::last_os_error());
}

/// The status line of a GET /, once the fallback (its target held out by the
/// health check) answers with `status`.
fn answers(port: u16, status: u16) -> bool {
    for _ in 0..100 {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with(&format!("HTTP/1.1 {status} ")) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn readiness_reloads_and_stopping_are_told_to_the_service_manager() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let port = free_port();
    let file = dir.join("wasmgate.toml");
    std::fs::write(&file, config(port, 503)).unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["run", "-c"])
        .arg(&file)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gateway = Running(child);

    let ready = receive_until(&socket, "READY=1");
    assert!(ready.last().unwrap().contains("STATUS=serving"), "{ready:?}");
    assert!(answers(port, 503), "serving once ready");

    // SIGHUP reloads the file: RELOADING=1 (with the monotonic time systemd's
    // notify-reload matches), then READY=1 once the new config serves.
    std::fs::write(&file, config(port, 502)).unwrap();
    signal(&gateway.0, libc::SIGHUP);
    let reload = receive_until(&socket, "READY=1");
    let text = reload.join("|");
    assert!(text.contains("RELOADING=1") && text.contains("MONOTONIC_USEC="), "{reload:?}");
    assert!(text.find("RELOADING=1") < text.find("READY=1"), "{reload:?}");
    assert!(text.contains("STATUS=serving (reloaded)"), "{reload:?}");
    assert!(answers(port, 502), "the reloaded config serves");

    // A broken file: still READY (the old config serves), and the status says why.
    std::fs::write(&file, "not = [toml").unwrap();
    signal(&gateway.0, libc::SIGHUP);
    let refused = receive_until(&socket, "READY=1").join("|");
    assert!(refused.contains("STATUS=serving the previous config (reload refused: "), "{refused}");
    assert!(answers(port, 502), "the previous config serves on");

    // SIGTERM: STOPPING=1, then a clean exit.
    signal(&gateway.0, libc::SIGTERM);
    let stopping = receive_until(&socket, "STOPPING=1");
    assert!(!stopping.is_empty());
    let mut gateway = gateway;
    let status = wait_with_timeout(&mut gateway.0, Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
