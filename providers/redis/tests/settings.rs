//! `redis_config`, `purge_keys`, the connection budget's `maxclients`, the unix socket
//! transport (what SSH forwards hand the provider) and waiting for a server that is
//! still starting, against private Redis 7 servers this test starts (settings are
//! server-wide: changing the shared test server's would disturb other tests).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use terrace_provider::{
    Address, Attrs, Connections, ObserveRequest, Observed, Operation, Provider, Secret, Step,
};
use terrace_provider_redis::{RedisProvider, RedisServer, ADMIN_RESERVE, CONFIG, USER};

const ADMIN_PASSWORD: &str = "private-admin-password";

/// A redis-server of its own: loopback port, unix socket, an admin ACL user, `default`
/// off, configured by a 0600 file (the password never in argv). Killed when dropped.
struct Private {
    child: Child,
    port: u16,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Private {
    fn start(port: u16, maxclients: u32) -> Private {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let conf = dir.path().join("redis.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nunixsocket {}\nunixsocketperm 700\nsave \"\"\nappendonly no\ndir {}\nmaxclients {maxclients}\nuser default off\nuser terrace_admin on >{ADMIN_PASSWORD} ~* &* +@all\n",
                socket.display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (scripts/services.sh installs it)");
        Private {
            child,
            port,
            socket,
            _dir: dir,
        }
    }

    fn wait(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn server(&self) -> RedisServer {
        RedisServer {
            address: "127.0.0.1".into(),
            port: self.port,
            admin_user: "terrace_admin".into(),
            admin_password: Secret::new(ADMIN_PASSWORD),
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        cli_at(&self.socket, args)
    }
}

fn cli_at(socket: &Path, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["--no-auth-warning", "-s"])
        .arg(socket)
        .args(["--user", "terrace_admin"])
        .args(args)
        .env("REDISCLI_AUTH", ADMIN_PASSWORD)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attrs(v: serde_json::Value) -> Attrs {
    serde_json::from_value(v).unwrap()
}

fn step(type_name: &str, op: Operation, prior: Option<Attrs>, desired: Option<Attrs>) -> Step {
    Step {
        address: Address::new("x"),
        type_name: type_name.into(),
        operation: op,
        prior,
        desired,
        changed: vec![],
    }
}

async fn observe(p: &RedisProvider, type_name: &str, state: &Attrs) -> Attrs {
    let req = ObserveRequest {
        address: Address::new("x"),
        type_name: type_name.into(),
        attrs: state.clone(),
    };
    match p.observe(&[req]).await.unwrap().remove(0) {
        Observed::Present(a) => a,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn settings_are_set_compared_in_canonical_form_and_drift_is_repaired() {
    let r = Private::start(free_port(), 100);
    r.wait();
    let p = RedisProvider::new(r.server());
    let mut want =
        attrs(json!({"settings": {"maxmemory": "256mb", "maxmemory-policy": "ALLKEYS-LRU"}}));
    p.normalize(CONFIG, &mut want).unwrap();
    assert_eq!(
        want["settings"],
        json!({"maxmemory": "268435456", "maxmemory-policy": "allkeys-lru"})
    );
    // Before: the server's defaults.
    let before = observe(&p, CONFIG, &want).await;
    assert_eq!(
        before["settings"],
        json!({"maxmemory": "0", "maxmemory-policy": "noeviction"})
    );
    let state = p
        .apply(&step(CONFIG, Operation::Create, None, Some(want.clone())))
        .await
        .unwrap()
        .unwrap();
    // Redis reports bytes: the canonical desired value equals it, no perpetual diff.
    let sent = p.commands_sent();
    assert_eq!(observe(&p, CONFIG, &state).await, want);
    assert_eq!(
        p.commands_sent() - sent,
        1,
        "one CONFIG GET for every setting"
    );
    // Changed by hand: observed as drift, repaired by an update.
    r.cli(&["CONFIG", "SET", "maxmemory", "100mb"]);
    let live = observe(&p, CONFIG, &state).await;
    assert_eq!(live["settings"]["maxmemory"], json!("104857600"));
    p.apply(&step(
        CONFIG,
        Operation::Update,
        Some(state.clone()),
        Some(want.clone()),
    ))
    .await
    .unwrap();
    assert_eq!(observe(&p, CONFIG, &state).await, want);
    // An unknown setting is an error naming it; a bad name never reaches the server.
    let err = p
        .apply(&step(
            CONFIG,
            Operation::Update,
            None,
            Some(attrs(json!({"settings": {"no-such-setting": "1"}}))),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-setting"), "{err}");
    let mut bad = attrs(json!({"settings": {"max*": "1"}}));
    assert!(p.normalize(CONFIG, &mut bad).is_err());
}

#[tokio::test]
async fn purge_keys_counts_then_deletes_only_the_tenants_keys() {
    let r = Private::start(free_port(), 100);
    r.wait();
    let p = RedisProvider::new(r.server());
    let mut want = attrs(json!({"name": "wp_a", "prefix": "wp_a:", "purge_keys": true}));
    p.normalize(USER, &mut want).unwrap();
    let state = p
        .apply(&step(USER, Operation::Create, None, Some(want.clone())))
        .await
        .unwrap()
        .unwrap();
    // More keys than one SCAN/UNLINK batch, and a neighbour's that must survive.
    let script = "for i=1,2500 do redis.call('SET', 'wp_a:'..i, 'v') end \
                  for i=1,30 do redis.call('SET', 'wp_ab'..i, 'v') end \
                  redis.call('SET', 'wp_b:1', 'v') return 1";
    r.cli(&["EVAL", script, "0"]);
    let live = observe(&p, USER, &state).await;
    assert_eq!(live["key_count"], json!(2500));
    assert!(p
        .apply(&step(USER, Operation::Delete, Some(state.clone()), None))
        .await
        .unwrap()
        .is_none());
    assert_eq!(r.cli(&["DBSIZE"]), "31");
    assert_eq!(r.cli(&["EXISTS", "wp_b:1"]), "1");
    assert_eq!(r.cli(&["ACL", "GETUSER", "wp_a"]), "");
    // Without purge_keys, deleting the user keeps its keys.
    let mut keep = attrs(json!({"name": "wp_b", "prefix": "wp_b:"}));
    p.normalize(USER, &mut keep).unwrap();
    let state = p
        .apply(&step(USER, Operation::Create, None, Some(keep)))
        .await
        .unwrap()
        .unwrap();
    assert!(!observe(&p, USER, &state).await.contains_key("key_count"));
    p.apply(&step(USER, Operation::Delete, Some(state), None))
        .await
        .unwrap();
    assert_eq!(r.cli(&["EXISTS", "wp_b:1"]), "1");
}

#[tokio::test]
async fn maxclients_is_read_live_over_a_unix_socket_after_waiting_for_the_server() {
    let port = free_port();
    // The server starts after the provider began trying, as a container's does.
    let dir_holder = tempfile::tempdir().unwrap();
    let socket_link = dir_holder.path().join("later.sock");
    let starter = {
        let socket_link = socket_link.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            let r = Private::start(port, 42);
            r.wait();
            while !r.socket.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::os::unix::fs::symlink(&r.socket, &socket_link).unwrap();
            r
        })
    };
    let server = RedisServer {
        address: "203.0.113.1".into(), // never used: the socket is
        port,
        admin_user: "terrace_admin".into(),
        admin_password: Secret::new(ADMIN_PASSWORD),
    };
    let p = RedisProvider::new(server)
        .with_socket(&socket_link)
        .with_ready_timeout(Duration::from_secs(20));
    let got = p.connections().await.unwrap();
    let _r = starter.join().unwrap();
    assert_eq!(
        got,
        Some(Connections {
            max: 42,
            reserved: ADMIN_RESERVE
        })
    );
    // Without a ready timeout, a server that is not there fails at once, naming it
    // and never the password.
    let gone = RedisProvider::new(RedisServer {
        address: "127.0.0.1".into(),
        port: free_port(),
        admin_user: "terrace_admin".into(),
        admin_password: Secret::new(ADMIN_PASSWORD),
    });
    let err = gone.connections().await.unwrap_err().to_string();
    assert!(
        err.contains("cannot connect to redis://terrace_admin@127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains(ADMIN_PASSWORD));
}
