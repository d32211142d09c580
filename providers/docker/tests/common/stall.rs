//! Engines that stop answering, for the timeout tests: real sockets, no Docker mock.
//!
//! - [`Hung`]: a socket that accepts every connection and never answers, as a hung
//!   engine does (its listener still accepts; nothing behind it replies).
//! - [`Relay`]: passes everything between its socket and the real engine, except that
//!   the answer to a chosen request never comes back. The engine does the work (the
//!   container is created, the stop happens); only its answer is lost, as when an
//!   engine stalls after acting.
//!
//! Shared by the provider's tests and the binary's (`tests/docker_timeout_e2e.rs`
//! includes this file); std only.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// A private directory for one socket, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(what: &str) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "terrace-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the socket's directory");
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A socket that accepts and never answers. Connections stay open (held by its
/// thread) for the life of the test process.
pub struct Hung {
    /// Where it listens.
    pub socket: PathBuf,
    _dir: Dir,
}

impl Hung {
    pub fn start() -> Hung {
        let dir = Dir::new("hung");
        let socket = dir.0.join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind the hung socket");
        thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                held.push(conn);
            }
        });
        Hung { socket, _dir: dir }
    }
}

/// A relay to the real engine that drops the answers to requests whose request line
/// contains a pattern (e.g. `"/containers/create"`), and every later answer on that
/// connection.
pub struct Relay {
    /// Where it listens.
    pub socket: PathBuf,
    stalled: Arc<AtomicUsize>,
    _dir: Dir,
}

/// Does `chunk` (bytes a client sent) start a request whose request line contains
/// `pattern`? Request lines are the lines that begin with an HTTP method.
fn requests(chunk: &[u8], pattern: &str) -> bool {
    String::from_utf8_lossy(chunk).split("\r\n").any(|line| {
        ["GET ", "POST ", "PUT ", "DELETE ", "HEAD "]
            .iter()
            .any(|m| line.starts_with(m))
            && line.contains(pattern)
    })
}

impl Relay {
    /// A relay to the engine at `engine` that stalls on requests matching `pattern`.
    pub fn start(engine: &Path, pattern: &'static str) -> Relay {
        let dir = Dir::new("relay");
        let socket = dir.0.join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind the relay socket");
        let stalled = Arc::new(AtomicUsize::new(0));
        let engine = engine.to_path_buf();
        let count = Arc::clone(&stalled);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(up) = UnixStream::connect(&engine) else {
                    continue;
                };
                relay(client, up, pattern, Arc::clone(&count));
            }
        });
        Relay {
            socket,
            stalled,
            _dir: dir,
        }
    }

    /// How many answers it held back.
    pub fn stalled(&self) -> usize {
        self.stalled.load(Ordering::SeqCst)
    }
}

/// One client connection: requests up, answers down until a matching request.
fn relay(client: UnixStream, up: UnixStream, pattern: &'static str, count: Arc<AtomicUsize>) {
    let silent = Arc::new(AtomicBool::new(false));
    let (mut client_r, mut up_w) = (client.try_clone().unwrap(), up.try_clone().unwrap());
    let quiet = Arc::clone(&silent);
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = client_r.read(&mut buf) {
            if n == 0 {
                break;
            }
            // Marked before the engine can see the request, so its answer is dropped.
            if requests(&buf[..n], pattern) && !quiet.swap(true, Ordering::SeqCst) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            if up_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = up_w.shutdown(Shutdown::Write);
    });
    let (mut up_r, mut client_w) = (up, client);
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = up_r.read(&mut buf) {
            if n == 0 {
                break;
            }
            if !silent.load(Ordering::SeqCst) && client_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if !silent.load(Ordering::SeqCst) {
            let _ = client_w.shutdown(Shutdown::Both);
        }
    });
}
