//! Plans people can read at 40 tenants, snapshotted whole in text, markdown and JSON:
//! unchanged attributes folded, maps and lists of objects nested (per-key markers in
//! updates), byte sizes as written (`512m`), secrets hidden per map key, adopted
//! objects worded as adopted and `terrace destroy` worded as a destroy. Every render is
//! also searched for the secrets it must not contain.

use std::collections::BTreeSet;

use expect_test::expect;
use serde_json::json;
use terrace_plan::render::{
    render_json, render_markdown, render_text, MarkdownOptions, Partial, TextOptions,
    DEFAULT_PART_CHARS,
};
use terrace_plan::{Action, Plan, ResourceChange, ADOPT_EXISTING_NOTE, NOT_CONFIGURED_NOTE};
use terrace_provider::{sensitive_key_entry, Address, Attrs, ProviderKey};

const PW_OLD: &str = "old-db-password-never-shown";
const PW_NEW: &str = "new-db-password-never-shown";
const TOKEN: &str = "api-token-never-shown";
const GONE: &str = "removed-secret-never-shown";
const WAS_SECRET: &str = "was-secret-now-plain-never-shown";

fn attrs(v: serde_json::Value) -> Option<Attrs> {
    Some(serde_json::from_value(v).unwrap())
}

fn change(addr: &str, ty: &str, action: Action) -> ResourceChange {
    ResourceChange {
        address: Address::new(addr),
        type_name: ty.into(),
        provider: ProviderKey("docker.local".into()),
        prior_provider: None,
        action,
        moves_data: false,
        deletes_data: false,
        keeps_object: false,
        before: None,
        after: None,
        changed: vec![],
        replace_because: vec![],
        generated: vec![],
        sensitive: BTreeSet::new(),
        prior_sensitive: BTreeSet::new(),
        byte_sizes: BTreeSet::new(),
        depends_on: vec![],
        note: None,
    }
}

/// `env` with secret values at `keys`.
fn env_secret(keys: &[&str]) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = ["env".to_string()].into();
    s.extend(keys.iter().map(|k| sensitive_key_entry("env", k)));
    s
}

fn text(plan: &Plan) -> String {
    render_text(plan, TextOptions::default())
}

fn markdown(plan: &Plan) -> String {
    let partial = Partial::default();
    render_markdown(
        plan,
        &MarkdownOptions {
            project: "demo",
            partial: &partial,
            part_chars: DEFAULT_PART_CHARS,
        },
    )
    .concat()
}

/// Every form of `plan`, checked for every secret of this file.
fn assert_no_secret(plan: &Plan) {
    let json = serde_json::to_string(&render_json(plan, "test")).unwrap();
    let destroy = render_text(
        plan,
        TextOptions {
            destroy: true,
            ..TextOptions::default()
        },
    );
    for out in [text(plan), markdown(plan), json, destroy] {
        for secret in [PW_OLD, PW_NEW, TOKEN, GONE, WAS_SECRET] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
    }
}

/// An app container whose update changes one plain env value, a secret one, adds and
/// removes keys, and doubles its memory; eight other attributes do not change.
fn container_update() -> Plan {
    let mut c = change(
        r#"tenant.app["a"].container"#,
        "docker_container",
        Action::Update,
    );
    let common = json!({
        "name": "a-app", "image": "app:1", "restart": "unless-stopped", "running": true,
        "command": ["serve", "--port", "8080"],
        "labels": {"com.example.team": "web", "traefik.enable": "true"},
        "networks": [{"name": "tenants", "aliases": ["a"]}],
        "mounts": [{"source": "a-data", "target": "/data"}],
        "healthcheck": {"test": ["CMD", "true"], "interval_ns": 10_000_000_000i64},
    });
    let mut before = common.clone();
    before["env"] = json!({"DB_HOST": "db1", "DB_PASSWORD": PW_OLD, "LOG": "info", "OLD_FLAG": "1", "PORT": "8080"});
    before["memory"] = json!(256 << 20);
    before["ports"] = json!(["127.0.0.1:8080:8080", "127.0.0.1:9090:9090"]);
    let mut after = common;
    after["env"] = json!({"DB_HOST": "db2", "DB_PASSWORD": PW_NEW, "LOG": "info", "NEW_FLAG": "1", "PORT": "8080"});
    after["memory"] = json!(512 << 20);
    after["ports"] = json!(["127.0.0.1:8080:8080", "127.0.0.1:9191:9090"]);
    c.before = attrs(before);
    c.after = attrs(after);
    c.changed = vec!["env".into(), "memory".into(), "ports".into()];
    c.sensitive = env_secret(&["DB_PASSWORD"]);
    c.byte_sizes = ["memory".to_string()].into();
    Plan {
        changes: vec![c],
        ..Plan::default()
    }
}

#[test]
fn an_update_folds_what_does_not_change_and_shows_maps_key_by_key() {
    let plan = container_update();
    assert_no_secret(&plan);
    expect![[r#"
        terrace will perform the following actions:

          # tenant.app["a"].container will be updated in place
          ~ docker_container {
              ~ env    = {
                  ~ DB_HOST     = "db1" -> "db2"
                  ~ DB_PASSWORD = (sensitive value) -> (sensitive value)
                  + NEW_FLAG    = "1"
                  - OLD_FLAG    = "1" -> null
                    # (2 unchanged elements hidden)
                }
              ~ memory = "256m" -> "512m"
                name   = "a-app"
              ~ ports  = [
                  - "127.0.0.1:9090:9090",
                  + "127.0.0.1:9191:9090",
                    # (1 unchanged element hidden)
                ]
                # (8 unchanged attributes hidden)
            }

        Plan: 0 to add, 1 to change, 0 to destroy.
    "#]]
    .assert_eq(&text(&plan));
}

#[test]
fn the_same_update_in_markdown_and_json() {
    let plan = container_update();
    let md = markdown(&plan);
    let details = &md[md.find("<details>").unwrap()..];
    expect![[r#"
        <details><summary><code>~ tenant.app[&quot;a&quot;].container</code> (docker_container) will be updated in place</summary>

        ```diff
        ~ env    = {
        -     DB_HOST     = "db1"
        +     DB_HOST     = "db2"
        -     DB_PASSWORD = (sensitive value)
        +     DB_PASSWORD = (sensitive value)
        +     NEW_FLAG    = "1"
        -     OLD_FLAG    = "1" -> null
              # (2 unchanged elements hidden)
          }
        - memory = "256m"
        + memory = "512m"
          name   = "a-app"
        ~ ports  = [
        -     "127.0.0.1:9090:9090",
        +     "127.0.0.1:9191:9090",
              # (1 unchanged element hidden)
          ]
          # (8 unchanged attributes hidden)
        ```

        </details>
    "#]]
    .assert_eq(details);
    let doc = render_json(&plan, "test");
    let change = &doc["resource_changes"][0]["change"];
    expect![[r#"
        {
          "after_env": {
            "DB_HOST": "db2",
            "DB_PASSWORD": "(sensitive value)",
            "LOG": "info",
            "NEW_FLAG": "1",
            "PORT": "8080"
          },
          "after_sensitive": {
            "env": {
              "DB_PASSWORD": true
            }
          },
          "before_env": {
            "DB_HOST": "db1",
            "DB_PASSWORD": "(sensitive value)",
            "LOG": "info",
            "OLD_FLAG": "1",
            "PORT": "8080"
          },
          "before_sensitive": {
            "env": {
              "DB_PASSWORD": true
            }
          }
        }"#]]
    .assert_eq(
        &serde_json::to_string_pretty(&json!({
            "before_env": change["before"]["env"],
            "after_env": change["after"]["env"],
            "before_sensitive": change["before_sensitive"],
            "after_sensitive": change["after_sensitive"],
        }))
        .unwrap(),
    );
}

/// A new app container: a secret and a plain env value, mounts and networks (lists of
/// objects), a healthcheck (an object), labels with dotted keys, memory of 1.5 GiB.
fn container_create() -> Plan {
    let mut c = change(
        r#"tenant.app["b"].container"#,
        "docker_container",
        Action::Create,
    );
    c.after = attrs(json!({
        "name": "b-app", "image": "app:1",
        "env": {"API_TOKEN": TOKEN, "DB_HOST": "db1"},
        "labels": {"com.example.team": "web", "traefik.enable": "true"},
        "mounts": [{"source": "b-data", "target": "/data"}, {"source": "b-logs", "target": "/logs", "read_only": true}],
        "networks": [{"name": "tenants", "aliases": ["b", "b-app"]}],
        "healthcheck": {"test": ["CMD", "true"], "retries": 3},
        "memory": 3 << 29,
        "command": [],
    }));
    c.sensitive = env_secret(&["API_TOKEN"]);
    c.byte_sizes = ["memory".to_string()].into();
    Plan {
        changes: vec![c],
        ..Plan::default()
    }
}

#[test]
fn a_create_nests_maps_and_lists_of_objects() {
    let plan = container_create();
    assert_no_secret(&plan);
    expect![[r#"
        terrace will perform the following actions:

          # tenant.app["b"].container will be created
          + docker_container {
              + command     = []
              + env         = {
                  + API_TOKEN = (sensitive value)
                  + DB_HOST   = "db1"
                }
              + healthcheck = {
                  + retries = 3
                  + test    = ["CMD", "true"]
                }
              + image       = "app:1"
              + labels      = {
                  + "com.example.team" = "web"
                  + "traefik.enable"   = "true"
                }
              + memory      = "1536m"
              + mounts      = [
                  + {
                      + source = "b-data"
                      + target = "/data"
                    },
                  + {
                      + read_only = true
                      + source    = "b-logs"
                      + target    = "/logs"
                    },
                ]
              + name        = "b-app"
              + networks    = [
                  + {
                      + aliases = ["b", "b-app"]
                      + name    = "tenants"
                    },
                ]
            }

        Plan: 1 to add, 0 to change, 0 to destroy.
    "#]]
    .assert_eq(&text(&plan));
    let md = markdown(&plan);
    expect![[r#"
        ```diff
        + command     = []
        + env         = {
        +     API_TOKEN = (sensitive value)
        +     DB_HOST   = "db1"
          }
        + healthcheck = {
        +     retries = 3
        +     test    = ["CMD", "true"]
          }
        + image       = "app:1"
        + labels      = {
        +     "com.example.team" = "web"
        +     "traefik.enable"   = "true"
          }
        + memory      = "1536m"
        + mounts      = [
        +     {
        +         source = "b-data"
        +         target = "/data"
              },
        +     {
        +         read_only = true
        +         source    = "b-logs"
        +         target    = "/logs"
              },
          ]
        + name        = "b-app"
        + networks    = [
        +     {
        +         aliases = ["b", "b-app"]
        +         name    = "tenants"
              },
          ]
        ```

        </details>
    "#]]
    .assert_eq(&md[md.find("```diff").unwrap()..]);
    let doc = render_json(&plan, "test");
    assert_eq!(
        doc["resource_changes"][0]["change"]["after_sensitive"],
        json!({"env": {"API_TOKEN": true}})
    );
}

/// What `terrace destroy` plans for the container: its state recorded the secret key.
fn container_destroy() -> Plan {
    let mut c = change(
        r#"tenant.app["b"].container"#,
        "docker_container",
        Action::Delete,
    );
    c.before = container_create().changes[0].after.clone();
    c.changed = c.before.as_ref().unwrap().keys().cloned().collect();
    c.sensitive = env_secret(&["API_TOKEN"]);
    c.byte_sizes = ["memory".to_string()].into();
    c.note = Some(NOT_CONFIGURED_NOTE.into());
    Plan {
        changes: vec![c],
        ..Plan::default()
    }
}

#[test]
fn destroy_is_worded_as_a_destroy() {
    let plan = container_destroy();
    assert_no_secret(&plan);
    let opts = TextOptions {
        destroy: true,
        ..TextOptions::default()
    };
    expect![[r#"
        terrace will perform the following actions:

          # tenant.app["b"].container will be destroyed
          - docker_container {
              - command     = []
              - env         = {
                  - API_TOKEN = (sensitive value)
                  - DB_HOST   = "db1"
                }
              - healthcheck = {
                  - retries = 3
                  - test    = ["CMD", "true"]
                }
              - image       = "app:1"
              - labels      = {
                  - "com.example.team" = "web"
                  - "traefik.enable"   = "true"
                }
              - memory      = "1536m"
              - mounts      = [
                  - {
                      - source = "b-data"
                      - target = "/data"
                    },
                  - {
                      - read_only = true
                      - source    = "b-logs"
                      - target    = "/logs"
                    },
                ]
              - name        = "b-app"
              - networks    = [
                  - {
                      - aliases = ["b", "b-app"]
                      - name    = "tenants"
                    },
                ]
            }

        Plan: 0 to add, 0 to change, 1 to destroy.
    "#]]
    .assert_eq(&render_text(&plan, opts));
    expect![[r#"
        No changes. No objects need to be destroyed.
    "#]]
    .assert_eq(&render_text(&Plan::default(), opts));
}

#[test]
fn an_adopted_object_reads_as_adopted_with_what_changes_on_it() {
    let mut c = change(
        r#"host.web.service["nginx"]"#,
        "host_service",
        Action::Create,
    );
    c.provider = ProviderKey("host.web".into());
    c.before =
        attrs(json!({"name": "nginx", "enabled": false, "running": true, "unit": "nginx.service"}));
    c.after = attrs(json!({"name": "nginx", "enabled": true, "running": true}));
    c.changed = vec!["enabled".into(), "name".into(), "running".into()];
    c.note = Some(ADOPT_EXISTING_NOTE.into());
    let plan = Plan {
        changes: vec![c],
        ..Plan::default()
    };
    expect![[r#"
        terrace will perform the following actions:

          # host.web.service["nginx"] will be adopted
          # (it exists already; apply adopts it)
          + host_service {
              ~ enabled = false -> true
                name    = "nginx"
                # (1 unchanged attribute hidden)
            }

        Plan: 1 to add, 0 to change, 0 to destroy.
    "#]]
    .assert_eq(&text(&plan));
    let md = markdown(&plan);
    expect![[r#"
        <details><summary><code>+ host.web.service[&quot;nginx&quot;]</code> (host_service) will be adopted</summary>

        - it exists already; apply adopts it

        ```diff
        - enabled = false
        + enabled = true
          name    = "nginx"
          # (1 unchanged attribute hidden)
        ```

        </details>
    "#]]
    .assert_eq(&md[md.find("<details>").unwrap()..]);
}

/// Values on their way out stay hidden when the state recorded them as secret, even
/// where the configuration no longer does: a secret key removed, a key whose value is
/// now plain, and a state written before secrets were recorded key by key (the whole
/// map was secret then, so all of it stays hidden on the `before` side).
#[test]
fn values_that_were_secret_stay_hidden_on_their_way_out() {
    let mut removed = change("service.a.container", "docker_container", Action::Update);
    removed.before =
        attrs(json!({"name": "a", "env": {"DB_PASSWORD": PW_OLD, "GONE": GONE, "HOST": "h1"}}));
    removed.after = attrs(json!({"name": "a", "env": {"DB_PASSWORD": PW_OLD, "HOST": "h2"}}));
    removed.changed = vec!["env".into()];
    removed.sensitive = env_secret(&["DB_PASSWORD"]);
    removed.prior_sensitive = env_secret(&["DB_PASSWORD", "GONE"]);

    let mut now_plain = change("service.b.container", "docker_container", Action::Update);
    now_plain.before = attrs(json!({"name": "b", "env": {"KEY": WAS_SECRET, "HOST": "h"}}));
    now_plain.after = attrs(json!({"name": "b", "env": {"KEY": "plain", "HOST": "h"}}));
    now_plain.changed = vec!["env".into()];
    now_plain.prior_sensitive = env_secret(&["KEY"]);

    let mut old_state = change("service.c.container", "docker_container", Action::Update);
    old_state.before = attrs(json!({"name": "c", "env": {"DB_PASSWORD": PW_OLD, "HOST": "h1"}}));
    old_state.after = attrs(json!({"name": "c", "env": {"DB_PASSWORD": PW_NEW, "HOST": "h2"}}));
    old_state.changed = vec!["env".into()];
    old_state.sensitive = env_secret(&["DB_PASSWORD"]);
    old_state.prior_sensitive = ["env".to_string()].into();

    let plan = Plan {
        changes: vec![removed, now_plain, old_state],
        ..Plan::default()
    };
    assert_no_secret(&plan);
    expect![[r#"
        terrace will perform the following actions:

          # service.a.container will be updated in place
          ~ docker_container {
              ~ env  = {
                  - GONE        = (sensitive value) -> null
                  ~ HOST        = "h1" -> "h2"
                    # (1 unchanged element hidden)
                }
                name = "a"
            }

          # service.b.container will be updated in place
          ~ docker_container {
              ~ env  = {
                  ~ KEY  = (sensitive value) -> "plain"
                    # (1 unchanged element hidden)
                }
                name = "b"
            }

          # service.c.container will be updated in place
          ~ docker_container {
              ~ env  = (sensitive value) -> {
                  + DB_PASSWORD = (sensitive value)
                  + HOST        = "h2"
                }
                name = "c"
            }

        Plan: 0 to add, 3 to change, 0 to destroy.
    "#]]
    .assert_eq(&text(&plan));
    let doc = render_json(&plan, "test");
    let sens: Vec<_> = (0..3)
        .map(|i| {
            let c = &doc["resource_changes"][i]["change"];
            json!([c["before_sensitive"], c["after_sensitive"]])
        })
        .collect();
    expect![[r#"[[{"env":{"DB_PASSWORD":true,"GONE":true}},{"env":{"DB_PASSWORD":true}}],[{"env":{"KEY":true}},{}],[{"env":true},{"env":{"DB_PASSWORD":true}}]]"#]]
    .assert_eq(&serde_json::to_string(&sens).unwrap());
}

/// A secret map key whose value changes is said to change, though neither value shows.
#[test]
fn a_changed_secret_key_shows_as_changed_without_its_values() {
    let plan = container_update();
    let out = text(&plan);
    assert!(out.contains("~ DB_PASSWORD = (sensitive value) -> (sensitive value)"));
}

mod through_the_planner {
    //! The planner fills what the renderers need: byte sizes from the schema, and the
    //! state's sensitivity where the configuration's differs.

    use std::collections::BTreeMap;

    use super::*;
    use terrace_plan::{plan, PlanInput, PriorResource};
    use terrace_provider::{AttrSchema, DesiredResource, Observed, ResourceSchema};

    static CONTAINER: ResourceSchema = ResourceSchema {
        type_name: "test_container",
        description: "container",
        import_id: &["name"],
        adopt_existing: false,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: &[
            AttrSchema::plain("name").force_new(),
            AttrSchema::plain("env"),
            AttrSchema::plain("memory").byte_size(),
        ],
    };

    fn schemas(t: &str) -> Option<&'static ResourceSchema> {
        (t == "test_container").then_some(&CONTAINER)
    }

    #[test]
    fn a_state_that_hid_the_whole_env_keeps_old_values_hidden() {
        let address = Address::new("service.app.container");
        let desired = DesiredResource {
            address: address.clone(),
            type_name: "test_container".into(),
            provider: ProviderKey("docker.local".into()),
            attrs: attrs(json!({"name": "app", "memory": 512 << 20, "env": {"DB_PASSWORD": PW_NEW, "HOST": "h2"}}))
                .unwrap(),
            sensitive_attrs: env_secret(&["DB_PASSWORD"]),
            depends_on: vec![],
            lifecycle: Default::default(),
        };
        let recorded = json!({"name": "app", "memory": 256 << 20, "env": {"DB_PASSWORD": PW_OLD, "HOST": "h1"}});
        let prior = PriorResource {
            address: address.clone(),
            type_name: "test_container".into(),
            provider: ProviderKey("docker.local".into()),
            attrs: attrs(recorded.clone()).unwrap(),
            // Written before secrets were recorded key by key.
            sensitive_attrs: ["env".to_string()].into(),
            depends_on: vec![],
            pending: false,
        };
        let observed: BTreeMap<Address, Observed> =
            [(address, Observed::Present(attrs(recorded).unwrap()))].into();
        let plan = plan(PlanInput {
            desired: vec![desired],
            prior: vec![prior],
            observed,
            schemas: &schemas,
        })
        .unwrap();
        let c = &plan.changes[0];
        assert_eq!(c.byte_sizes, BTreeSet::from(["memory".to_string()]));
        assert_eq!(c.prior_sensitive, BTreeSet::from(["env".to_string()]));
        assert_eq!(
            c.sensitive,
            env_secret(&["DB_PASSWORD"]),
            "apply records this"
        );
        assert_no_secret(&plan);
        expect![[r#"
            terrace will perform the following actions:

              # service.app.container will be updated in place
              ~ test_container {
                  ~ env    = (sensitive value) -> {
                      + DB_PASSWORD = (sensitive value)
                      + HOST        = "h2"
                    }
                  ~ memory = "256m" -> "512m"
                    name   = "app"
                }

            Plan: 0 to add, 1 to change, 0 to destroy.
        "#]]
        .assert_eq(&text(&plan));
    }
}
