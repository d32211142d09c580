//! End to end against the real local Redis 7: tenants' ACL users created by the real
//! binary, isolation proven by real logins (`redis-cli`, password in `REDISCLI_AUTH`,
//! never in argv), drift of a hand-widened key pattern reported and repaired.

mod common;

use std::process::Command;

use common::{unique, Project};
use expect_test::expect;

/// The local Redis as a service, its admin password from the environment.
const SERVICE: &str = r#"
variable "redis_admin_password" {
  type      = string
  sensitive = true
}
service "cache" {
  engine   = "redis"
  endpoint = { address = "127.0.0.1", port = 6379 }
  admin    = { user = "terrace_admin", password = var.redis_admin_password }
}"#;

fn project_hcl(tenants: &[&str]) -> String {
    let list: Vec<String> = tenants.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        r#"{SERVICE}
tenant "client" {{
  for_each = toset([{}])
  redis {{
    service = service.cache
    prefix  = "${{each.key}}:"
  }}
}}
"#,
        list.join(", ")
    )
}

/// Runs `redis-cli` as `user` (password through the environment); stdout and stderr.
fn cli(user: &str, password: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "--no-auth-warning",
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "--user",
            user,
        ])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .output()
        .expect("redis-cli");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn admin(args: &[&str]) -> String {
    let pw = std::env::var("TERRACE_VAR_redis_admin_password").expect("source target/services.env");
    cli("terrace_admin", &pw, args)
}

#[test]
fn tenants_get_confined_users_and_a_widened_pattern_is_drift_that_apply_repairs() {
    let a = unique("ra");
    let b = unique("rb");
    let p = Project::new(&project_hcl(&[&a, &b]));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
    let applied = p.apply();
    p.plan().expect_code(0);

    let user = |t: &str| format!("client_{t}");
    let password = |t: &str| {
        p.state_attrs(&format!("tenant.client[\"{t}\"].redis"))["password"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (pa, pb) = (password(&a), password(&b));
    // Secrets never in the plan or apply output.
    for out in [&plan.all(), &applied.all()] {
        assert!(!out.contains(&pa) && !out.contains(&pb), "{out}");
    }
    // Each tenant writes and reads its own keys, and gets NOPERM on the other's.
    for (me, pw, other) in [(&a, &pa, &b), (&b, &pb, &a)] {
        let own = format!("{me}:k");
        assert_eq!(cli(&user(me), pw, &["SET", &own, "v"]).trim(), "OK");
        assert_eq!(cli(&user(me), pw, &["GET", &own]).trim(), "v");
        for args in [
            vec!["GET".to_string(), format!("{other}:k")],
            vec!["SET".into(), format!("{other}:k"), "x".into()],
            vec!["MGET".into(), own.clone(), format!("{other}:k")],
            vec!["SCAN".into(), "0".into()],
            vec!["KEYS".into(), "*".into()],
            vec!["FLUSHALL".into()],
            vec!["CONFIG".into(), "GET".into(), "*".into()],
            vec!["ACL".into(), "LIST".into()],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = cli(&user(me), pw, &args);
            assert!(out.contains("NOPERM"), "{args:?}: {out}");
        }
    }

    // Widened by hand: the plan names the attribute; apply repairs it.
    admin(&["ACL", "SETUSER", &user(&a), "~*"]);
    let drift = p.plan().expect_code(2);
    assert!(drift.stdout.contains("key_patterns"), "{}", drift.stdout);
    assert!(!drift.all().contains(&pa));
    p.apply();
    p.plan().expect_code(0);
    let out = cli(&user(&a), &pa, &["GET", &format!("{b}:k")]);
    assert!(out.contains("NOPERM"), "{out}");

    // Removing a tenant deletes its user.
    p.write(&project_hcl(&[&a]));
    p.apply();
    assert!(!admin(&["ACL", "USERS"]).lines().any(|l| l == user(&b)));
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(!admin(&["ACL", "USERS"]).lines().any(|l| l == user(&a)));
    admin(&["DEL", &format!("{a}:k"), &format!("{b}:k")]);
}

/// The project with the Redis service on sshd host `h1`: terrace reaches it through
/// that host's SSH connection (a forward to a private unix socket), not directly.
fn forwarded_hcl(tenants: &[&str]) -> String {
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n}: source target/ssh/env"));
    let hostport = var("TERRACE_TEST_SSH_HOST1");
    let (address, port) = hostport.rsplit_once(':').unwrap();
    let host = format!(
        r#"
host "h1" {{
  address       = "{address}"
  port          = {port}
  user          = "{user}"
  identity_file = "{key}"
  known_hosts   = "{kh}"
}}
"#,
        user = var("TERRACE_TEST_SSH_USER"),
        key = var("TERRACE_TEST_SSH_KEY"),
        kh = var("TERRACE_TEST_SSH_KNOWN_HOSTS"),
    );
    let with_host = project_hcl(tenants)
        .replace(
            "  engine   = \"redis\"\n",
            "  engine   = \"redis\"\n  host     = host.h1\n",
        )
        .replace(
            "    prefix  = \"${each.key}:\"\n",
            "    prefix  = \"${each.key}:\"\n    purge_keys = true\n",
        );
    host + &with_host
}

#[test]
fn through_an_ssh_forward_a_removed_tenant_with_purge_keys_loses_its_keys_counted_in_the_plan() {
    let a = unique("pa");
    let b = unique("pb");
    let p = Project::new(&forwarded_hcl(&[&a, &b]));
    p.apply();
    p.plan().expect_code(0);
    // b's keys, a's key, and a key of nobody's that shares b's first letters.
    let script = format!(
        "for i=1,1500 do redis.call('SET', '{b}:'..i, 'v') end redis.call('SET', '{a}:k', 'v') redis.call('SET', '{b}x', 'v') return 1"
    );
    admin(&["EVAL", &script, "0"]);
    p.write(&forwarded_hcl(&[&a]));
    let plan = p.plan().expect_code(2);
    assert!(plan.stdout.contains("key_count"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1500"), "{}", plan.stdout);
    p.apply();
    assert!(!admin(&["ACL", "USERS"])
        .lines()
        .any(|l| l == format!("client_{b}")));
    assert_eq!(
        admin(&["EXISTS", &format!("{b}:1"), &format!("{b}:1500")]).trim(),
        "0"
    );
    assert_eq!(
        admin(&["EXISTS", &format!("{a}:k"), &format!("{b}x")]).trim(),
        "2"
    );
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(admin(&["EXISTS", &format!("{a}:k")]).trim(), "0");
    admin(&["DEL", &format!("{b}x")]);
}

#[test]
fn a_redis_service_on_a_host_is_reached_only_through_that_host() {
    // The same service, its host's SSH port closed: the server itself is up and
    // reachable directly, so only a forward through the host could fail this way.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hcl = forwarded_hcl(&[&unique("fw")]).replace(
        &format!("port          = {}", {
            let hp = std::env::var("TERRACE_TEST_SSH_HOST1").unwrap();
            hp.rsplit_once(':').unwrap().1.to_string()
        }),
        &format!("port          = {dead}"),
    );
    let p = Project::new(&hcl);
    let plan = p.plan();
    assert_ne!(plan.code, 0);
    assert_ne!(plan.code, 2);
    assert!(
        plan.stderr.contains("service.cache could not be reached"),
        "{}",
        plan.all()
    );
}

fn prefixed_hcl(tenants: &[(&str, &str)], purge: bool) -> String {
    let map: Vec<String> = tenants
        .iter()
        .map(|(k, p)| format!("\"{k}\" = \"{p}\""))
        .collect();
    format!(
        r#"{SERVICE}
tenant "client" {{
  for_each = {{ {} }}
  redis {{
    service    = service.cache
    prefix     = each.value
    purge_keys = {purge}
  }}
}}
"#,
        map.join(", ")
    )
}

#[test]
fn overlapping_prefixes_are_refused_and_a_purge_never_reaches_another_users_keys() {
    let t = unique("ovl");
    // `T` starts `T2:`: the first tenant could read and change the second's keys.
    let (shop, shop2) = (t.clone(), format!("{t}2:"));
    // Tenant keys name the ACL users (`client_<key>`): unique to this run.
    let (a, b) = (format!("{t}a"), format!("{t}b"));
    let p = Project::new(&prefixed_hcl(&[(&a, &shop), (&b, &shop2)], true));
    let plan = p.plan().expect_code(1);
    expect![[r#"
        terrace will perform the following actions:

          # tenant.client["Ta"].redis will be created
          + redis_user {
              + channel_patterns = ["&T*"]
              + commands         = ["+@all", "-@dangerous", "-acl", "-config", "-dbsize", "-function", "-move", "-pubsub", "-randomkey", "-scan", "-select"]
              + enabled          = true
              + key_patterns     = ["~T*"]
              + name             = "client_Ta"
              + password         = (sensitive value) (generated during apply)
              + password_status  = "matches"
              + prefix           = "T"
              + purge_keys       = true
            }

          # tenant.client["Tb"].redis will be created
          + redis_user {
              + channel_patterns = ["&T2:*"]
              + commands         = ["+@all", "-@dangerous", "-acl", "-config", "-dbsize", "-function", "-move", "-pubsub", "-randomkey", "-scan", "-select"]
              + enabled          = true
              + key_patterns     = ["~T2:*"]
              + name             = "client_Tb"
              + password         = (sensitive value) (generated during apply)
              + password_status  = "matches"
              + prefix           = "T2:"
              + purge_keys       = true
            }

        Conflicts (apply refuses until each is resolved):

          ! tenant.client["Ta"].redis: its key prefix "T" overlaps "T2:", the prefix of Redis user "client_Tb" on the same server: each could read and change the other's keys
            hint: end every prefix with a separator such as ":" ("shop:" and "shop2:" do not overlap)

          ! tenant.client["Tb"].redis: its key prefix "T2:" overlaps "T", the prefix of Redis user "client_Ta" on the same server: each could read and change the other's keys
            hint: end every prefix with a separator such as ":" ("shop:" and "shop2:" do not overlap)

        Plan: 2 to add, 0 to change, 0 to destroy.
        2 conflict(s) block this plan.
    "#]]
    .assert_eq(&plan.stdout.replace(&t, "T"));

    // One tenant applied; another user confined to `T2:` made by hand (another project).
    p.write(&prefixed_hcl(&[(&a, &shop)], true));
    p.apply();
    let other = format!("{t}_other");
    admin(&[
        "ACL",
        "SETUSER",
        &other,
        "on",
        "nopass",
        &format!("~{shop2}*"),
        "+@all",
    ]);
    admin(&["SET", &format!("{shop2}order"), "customer data"]);
    p.write(&prefixed_hcl(&[], true));
    let plan = p.plan().expect_code(1);
    expect![[r#"
        terrace will perform the following actions:

          # tenant.client["Ta"].redis will be destroyed
          # (it is no longer in the configuration)
          # (its data is deleted with it, and no copy is kept)
          - redis_user {
              - channel_patterns = ["&T*"]
              - commands         = ["+@all", "-@dangerous", "-acl", "-config", "-dbsize", "-function", "-move", "-pubsub", "-randomkey", "-scan", "-select"]
              - enabled          = true
              - key_count        = 1
              - key_patterns     = ["~T*"]
              - name             = "client_Ta"
              - password         = (sensitive value)
              - password_status  = "matches"
              - prefix           = "T"
              - purge_keys       = true
            }

        Conflicts (apply refuses until each is resolved):

          ! tenant.client["Ta"].redis: purging the keys that start with "T" would also delete those of Redis user "T_other" (prefix "T2:"), which stays
            hint: set `purge_keys = false` on this tenant to leave its keys (and the other's) in place, or give the other user a prefix outside this one first

        Plan: 0 to add, 0 to change, 1 to destroy.
        1 conflict(s) block this plan.
    "#]]
    .assert_eq(&plan.stdout.replace(&t, "T"));
    p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert_eq!(
        admin(&["GET", &format!("{shop2}order")]).trim(),
        "customer data"
    );

    // Cleanup: the other user goes first, then the purge is allowed.
    admin(&["ACL", "DELUSER", &other]);
    admin(&["DEL", &format!("{shop2}order")]);
    // The purge drops data: what a CI policy on `drops_data` must see.
    let json = p.terrace(&["plan", "--json"]).expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["summary"]["drops_data"], true, "{json}");
    p.apply();
}
