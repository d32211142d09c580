//! `redis_user` against the real Redis 7 that `scripts/services.sh` starts: lifecycle,
//! every drift case, import, and tenant isolation proven by real logins.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisConnectionInfo};
use serde_json::json;
use terrace_provider::{
    Address, Attrs, ObserveRequest, Observed, Operation, Provider, Secret, Step,
};
use terrace_provider_redis::{RedisProvider, RedisServer, USER};

/// The admin login from `TERRACE_TEST_REDIS_URL` (`redis://user:password@host:port`).
fn server() -> RedisServer {
    let url = std::env::var("TERRACE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TERRACE_TEST_REDIS_URL is not set: run scripts/services.sh and `source target/services.env`")
    });
    let rest = url.strip_prefix("redis://").expect("redis:// URL");
    let (creds, hostport) = rest.rsplit_once('@').expect("user:password@");
    let (user, password) = creds.split_once(':').expect("user:password");
    let (host, port) = hostport.rsplit_once(':').expect("host:port");
    RedisServer {
        address: host.to_string(),
        port: port.parse().expect("port"),
        admin_user: user.to_string(),
        admin_password: Secret::new(password),
    }
}

/// A name unique to this test run, so that concurrent runs do not collide.
fn unique(tag: &str) -> String {
    format!("t{}_{tag}", std::process::id())
}

async fn login(user: &str, password: &str) -> redis::RedisResult<MultiplexedConnection> {
    let s = server();
    let info = (s.address.as_str(), s.port)
        .into_connection_info()?
        .set_redis_settings(
            RedisConnectionInfo::default()
                .set_username(user)
                .set_password(password),
        );
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    redis::Client::open(info)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

async fn admin(args: &[&str]) -> redis::Value {
    let s = server();
    let mut c = login(&s.admin_user, s.admin_password.expose())
        .await
        .unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut c).await.unwrap()
}

fn attrs(v: serde_json::Value) -> Attrs {
    serde_json::from_value(v).unwrap()
}

fn desired(p: &RedisProvider, name: &str, prefix: &str) -> Attrs {
    let mut a = attrs(json!({"name": name, "prefix": prefix}));
    p.normalize(USER, &mut a).unwrap();
    a
}

fn step(op: Operation, prior: Option<Attrs>, desired: Option<Attrs>) -> Step {
    Step {
        address: Address::new("tenant.t.redis"),
        type_name: USER.into(),
        operation: op,
        prior,
        desired,
        changed: vec![],
    }
}

async fn observe(p: &RedisProvider, state: &Attrs) -> Observed {
    let req = ObserveRequest {
        address: Address::new("tenant.t.redis"),
        type_name: USER.into(),
        attrs: state.clone(),
    };
    p.observe(&[req]).await.unwrap().remove(0)
}

/// The attributes whose live value differs from the desired one.
fn differing(desired: &Attrs, observed: &Observed) -> Vec<String> {
    let Observed::Present(live) = observed else {
        return vec!["(absent)".into()];
    };
    desired
        .iter()
        .filter(|(k, v)| *k != "password" && live.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Deletes the users when dropped, even if the test failed.
struct Cleanup(Vec<String>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let users = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                for u in users {
                    admin(&["ACL", "DELUSER", &u]).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn lifecycle_drift_repair_import_and_delete() {
    let p = RedisProvider::new(server());
    let name = unique("life");
    let _cleanup = Cleanup(vec![name.clone()]);
    let want = desired(&p, &name, &format!("{name}:"));

    // Create with a generated password; nothing of it reaches ACL LIST in clear.
    let state = p
        .apply(&step(Operation::Create, None, Some(want.clone())))
        .await
        .unwrap()
        .unwrap();
    let password = state["password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 32);
    let list = format!("{:?}", admin(&["ACL", "LIST"]).await);
    assert!(!list.contains(&password));
    assert_eq!(
        differing(&want, &observe(&p, &state).await),
        Vec::<String>::new()
    );
    assert!(p.unverified().is_empty());

    // Every drift case names its attribute, and an update repairs it.
    let cases: &[(&[&str], &str)] = &[
        (&["off"], "enabled"),
        (&["~*"], "key_patterns"),
        (&["allchannels"], "channel_patterns"),
        (&["+scan"], "commands"),
        (&["+@all"], "commands"),
        (&[">changed-by-hand"], "password_status"),
        (&["nopass"], "password_status"),
        (&["resetpass", ">changed-by-hand"], "password_status"),
        (&["resetpass"], "password_status"),
    ];
    // What each password case reads as, for the operator.
    let worded = |rules: &[&str]| match rules {
        [">changed-by-hand"] => Some("another password also works (added outside terrace)"),
        ["nopass"] => Some("any password works (nopass, set outside terrace)"),
        ["resetpass", ">changed-by-hand"] => Some("changed outside terrace"),
        ["resetpass"] => Some("no password works (removed outside terrace)"),
        _ => None,
    };
    for (rules, attr) in cases {
        let mut args = vec!["ACL", "SETUSER", name.as_str()];
        args.extend_from_slice(rules);
        admin(&args).await;
        let seen = observe(&p, &state).await;
        let diff = differing(&want, &seen);
        assert!(diff.contains(&attr.to_string()), "{rules:?}: {diff:?}");
        if let (Some(status), Observed::Present(live)) = (worded(rules), &seen) {
            assert_eq!(live["password_status"], status, "{rules:?}");
        }
        p.apply(&step(
            Operation::Update,
            Some(state.clone()),
            Some(want.clone()),
        ))
        .await
        .unwrap();
        assert_eq!(
            differing(&want, &observe(&p, &state).await),
            Vec::<String>::new(),
            "{rules:?}"
        );
    }
    // The password in state still logs in after the repairs.
    let mut c = login(&name, &password).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{name}:k"))
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();

    // A prefix change is an update in place; the old prefix is no longer reachable.
    let moved = desired(&p, &name, &format!("{name}:new:"));
    p.apply(&step(
        Operation::Update,
        Some(state.clone()),
        Some(moved.clone()),
    ))
    .await
    .unwrap();
    assert_eq!(
        differing(&moved, &observe(&p, &state).await),
        Vec::<String>::new()
    );
    let mut c = login(&name, &password).await.unwrap();
    let e = redis::cmd("GET")
        .arg(format!("{name}:k"))
        .query_async::<Option<String>>(&mut c)
        .await
        .unwrap_err();
    assert!(e.to_string().to_uppercase().contains("NOPERM"), "{e}");

    // Import finds it; without a password it says it could not verify one.
    let imported = p.import(USER, &name, &Attrs::new()).await.unwrap();
    assert_eq!(imported["prefix"], json!(format!("{name}:new:")));
    let mut no_pw = state.clone();
    no_pw.remove("password");
    observe(&p, &no_pw).await;
    assert!(p.unverified()[0].contains(&name), "{:?}", p.unverified());
    assert!(!p.unverified()[0].contains(&password));

    // Deleted by hand: absent. Delete: gone.
    p.apply(&step(Operation::Delete, Some(state.clone()), None))
        .await
        .unwrap();
    assert_eq!(observe(&p, &state).await, Observed::Absent);
    assert!(login(&name, &password).await.is_err());
}

#[tokio::test]
async fn observe_is_one_round_trip_and_unknown_admins_fail_without_secrets() {
    let p = RedisProvider::new(server());
    let names: Vec<String> = (0..20).map(|i| unique(&format!("many{i}"))).collect();
    let _cleanup = Cleanup(names.clone());
    let mut reqs = Vec::new();
    for n in &names {
        let st = p
            .apply(&step(
                Operation::Create,
                None,
                Some(desired(&p, n, &format!("{n}:"))),
            ))
            .await
            .unwrap()
            .unwrap();
        reqs.push(ObserveRequest {
            address: Address::new(n),
            type_name: USER.into(),
            attrs: st,
        });
    }
    // One ACL LIST answers all of them, and one answers a single user: the count of
    // commands does not grow with the users asked about.
    let before = p.commands_sent();
    let seen = p.observe(&reqs).await.unwrap();
    let many = p.commands_sent() - before;
    assert!(seen.iter().all(|o| matches!(o, Observed::Present(_))));
    let before = p.commands_sent();
    p.observe(&reqs[..1]).await.unwrap();
    let one = p.commands_sent() - before;
    assert_eq!((many, one), (1, 1));

    let mut wrong = server();
    wrong.admin_password = Secret::new("not-the-admin-password-xyz");
    let e = RedisProvider::new(wrong)
        .observe(&reqs[..1])
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("not-the-admin-password-xyz"), "{e}");
    assert!(e.contains("cannot connect"), "{e}");
}

/// Every ordered pair of a 3-tenant farm: A reaches its own keys and channels, and
/// nothing of B's, nor anything that lists, flushes or reconfigures the server.
#[tokio::test]
async fn tenants_are_isolated_for_every_ordered_pair() {
    let p = RedisProvider::new(server());
    let names: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|t| unique(&format!("iso{t}")))
        .collect();
    let _cleanup = Cleanup(names.clone());
    let mut logins = Vec::new();
    let mut passwords = Vec::new();
    for n in &names {
        let st = p
            .apply(&step(
                Operation::Create,
                None,
                Some(desired(&p, n, &format!("{n}:"))),
            ))
            .await
            .unwrap()
            .unwrap();
        passwords.push(st["password"].as_str().unwrap().to_string());
        let mut c = login(n, st["password"].as_str().unwrap()).await.unwrap();
        let _: () = redis::cmd("SET")
            .arg(format!("{n}:secret"))
            .arg(n.as_str())
            .query_async(&mut c)
            .await
            .unwrap();
        logins.push(c);
    }
    async fn denied(c: &mut MultiplexedConnection, args: &[&str]) {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let e = cmd
            .query_async::<redis::Value>(c)
            .await
            .expect_err(&format!("{args:?} allowed"));
        assert!(
            e.to_string().to_uppercase().contains("NOPERM"),
            "{args:?}: {e}"
        );
    }
    for (i, a) in names.iter().enumerate() {
        let c = &mut logins[i];
        let own = format!("{a}:secret");
        let v: String = redis::cmd("GET").arg(&own).query_async(c).await.unwrap();
        assert_eq!(&v, a);
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{a}:chan"))
            .arg("x")
            .query_async(c)
            .await
            .unwrap();
        for b in names.iter().filter(|b| *b != a) {
            let theirs = format!("{b}:secret");
            denied(c, &["GET", &theirs]).await;
            denied(c, &["SET", &theirs, "x"]).await;
            denied(c, &["DEL", &theirs]).await;
            denied(c, &["EXISTS", &theirs]).await;
            denied(c, &["MGET", &own, &theirs]).await;
            denied(c, &["PUBLISH", &format!("{b}:chan"), "x"]).await;
            denied(
                c,
                &["EVAL", "return redis.call('GET', KEYS[1])", "1", &theirs],
            )
            .await;
        }
        for cmd in [
            &["SCAN", "0"][..],
            &["KEYS", "*"],
            &["RANDOMKEY"],
            &["DBSIZE"],
            &["FLUSHALL"],
            &["FLUSHDB"],
            &["CONFIG", "GET", "*"],
            &["CONFIG", "SET", "maxmemory", "1"],
            &["ACL", "LIST"],
            &["ACL", "SETUSER", a, "~*"],
            &["SELECT", "1"],
            &["SWAPDB", "0", "1"],
            &["PUBSUB", "CHANNELS"],
            &["INFO"],
            &["CLIENT", "LIST"],
            &["MONITOR"],
            &["FUNCTION", "FLUSH"],
        ] {
            denied(c, cmd).await;
        }
    }
    // Subscribing to another tenant's channel is refused; to its own, allowed.
    let s = server();
    for (i, a) in names.iter().enumerate() {
        let client = redis::Client::open(
            (s.address.as_str(), s.port)
                .into_connection_info()
                .unwrap()
                .set_redis_settings(
                    RedisConnectionInfo::default()
                        .set_username(a)
                        .set_password(&passwords[i]),
                ),
        )
        .unwrap();
        let mut sub = client.get_async_pubsub().await.unwrap();
        sub.subscribe(format!("{a}:chan")).await.unwrap();
        for b in names.iter().filter(|b| *b != a) {
            let e = sub
                .subscribe(format!("{b}:chan"))
                .await
                .expect_err("subscribed");
            assert!(e.to_string().to_uppercase().contains("NOPERM"), "{e}");
            let e = sub
                .psubscribe(format!("{b}:*"))
                .await
                .expect_err("psubscribed");
            assert!(e.to_string().to_uppercase().contains("NOPERM"), "{e}");
        }
    }
}
