//! The pull-request markdown and the JSON document, snapshotted whole for a plan with
//! every action, both drift kinds, both replace reasons, a database dropped with its
//! dump announced, file content diffs and secrets; and the split into parts.

use std::collections::BTreeSet;

use expect_test::expect;
use serde_json::json;
use terrace_plan::render::{
    render_json_run, render_markdown, render_text, MarkdownOptions, Partial, RunError, TextOptions,
    DEFAULT_PART_CHARS, GITHUB_COMMENT_LIMIT,
};
use terrace_plan::{
    Action, AttrDiff, Conflict, Drift, DriftKind, Plan, PlannedSafeguard, ResourceChange,
};
use terrace_provider::{Address, Attrs, ProviderKey, Safeguard};

const SECRET: &str = "hunter2-never-shown";

fn attrs(v: serde_json::Value) -> Option<Attrs> {
    Some(serde_json::from_value(v).unwrap())
}

fn change(addr: &str, ty: &str, action: Action) -> ResourceChange {
    ResourceChange {
        address: Address::new(addr),
        type_name: ty.into(),
        provider: ProviderKey("service.pg".into()),
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

/// One of everything.
fn full_plan() -> Plan {
    let mut user = change(
        r#"tenant.app["a"].database.user"#,
        "sql_user",
        Action::Create,
    );
    user.after = attrs(json!({"name": "a"}));
    user.generated = vec!["password".into()];
    user.sensitive = ["password".to_string()].into();

    let mut db = change(
        r#"tenant.app["a"].database"#,
        "sql_database",
        Action::Create,
    );
    db.after = attrs(json!({"name": "a", "connection_limit": 5}));

    let mut limit = change(
        r#"tenant.app["b"].database"#,
        "sql_database",
        Action::Update,
    );
    limit.before = attrs(json!({"name": "b", "connection_limit": 50}));
    limit.after = attrs(json!({"name": "b", "connection_limit": 60}));
    limit.changed = vec!["connection_limit".into()];

    let mut pw = change(
        r#"tenant.app["b"].database.user"#,
        "sql_user",
        Action::Update,
    );
    pw.before = attrs(json!({"name": "b", "password": SECRET}));
    pw.after = attrs(json!({"name": "b", "password": format!("{SECRET}-new")}));
    pw.changed = vec!["password".into()];
    pw.sensitive = ["password".to_string()].into();
    pw.note = Some("it only undoes drift".into());

    let mut renamed = change(
        r#"tenant.app["c"].database"#,
        "sql_database",
        Action::Replace,
    );
    renamed.before = attrs(json!({"name": "c_old", "connection_limit": 5}));
    renamed.after = attrs(json!({"name": "c", "connection_limit": 5}));
    renamed.changed = vec!["name".into()];
    renamed.replace_because = vec!["name".into()];

    let mut moved = change(
        r#"tenant.app["d"].database"#,
        "sql_database",
        Action::Replace,
    );
    moved.provider = ProviderKey("service.pg2".into());
    moved.prior_provider = Some(ProviderKey("service.pg".into()));
    moved.before = attrs(json!({"name": "d"}));
    moved.after = attrs(json!({"name": "d"}));
    moved.changed = vec!["(service)".into()];
    moved.replace_because = vec!["(service)".into()];

    let mut gone = change(
        r#"tenant.app["e"].database"#,
        "sql_database",
        Action::Delete,
    );
    gone.before = attrs(json!({"name": "e", "connection_limit": 5}));
    gone.note = Some("it is no longer in the configuration".into());

    let mut volume = change("service.web.volume", "docker_volume", Action::Delete);
    volume.provider = ProviderKey("docker.local".into());
    volume.before = attrs(json!({"name": "web-data"}));

    let mut conf = change(
        r#"host.web.file["/etc/app.conf"]"#,
        "host_file",
        Action::Update,
    );
    conf.provider = ProviderKey("host.web".into());
    conf.before = attrs(json!({
        "path": "/etc/app.conf", "mode": "0644",
        "content": "# app\nlisten = 80\nworkers = 2\nlog = info\n```\n",
    }));
    conf.after = attrs(json!({
        "path": "/etc/app.conf", "mode": "0640",
        "content": "# app\nlisten = 8080\nworkers = 2\nlog = info\n```\n",
    }));
    conf.changed = vec!["content".into(), "mode".into()];

    let mut motd = change(r#"host.web.file["/etc/motd"]"#, "host_file", Action::Create);
    motd.provider = ProviderKey("host.web".into());
    motd.after = attrs(json!({"path": "/etc/motd", "content": "welcome\n<b>be nice</b>\n"}));

    let same = change("service.pg", "sql_server", Action::NoOp);

    let mut changes = vec![
        user, db, limit, pw, renamed, moved, gone, volume, conf, motd, same,
    ];
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    Plan {
        changes,
        drift: vec![
            Drift {
                address: Address::new(r#"tenant.app["b"].database.user"#),
                type_name: "sql_user".into(),
                kind: DriftKind::Changed {
                    attrs: vec![
                        AttrDiff {
                            name: "extra_access".into(),
                            before: Some(json!([])),
                            after: Some(json!(["has role attribute CREATEDB"])),
                        },
                        AttrDiff {
                            name: "password".into(),
                            before: Some(json!(SECRET)),
                            after: Some(json!(format!("{SECRET}-by-hand"))),
                        },
                    ],
                },
                sensitive: ["password".to_string()].into(),
                byte_sizes: Default::default(),
            },
            Drift {
                address: Address::new(r#"host.web.file["/etc/app.conf"]"#),
                type_name: "host_file".into(),
                kind: DriftKind::Changed {
                    attrs: vec![AttrDiff {
                        name: "content".into(),
                        before: Some(json!("# app\nlisten = 80\nworkers = 2\n")),
                        after: Some(json!("# app\nlisten = 80\nworkers = 16\n")),
                    }],
                },
                sensitive: BTreeSet::new(),
                byte_sizes: Default::default(),
            },
            Drift {
                address: Address::new(r#"tenant.app["f"].database"#),
                type_name: "sql_database".into(),
                kind: DriftKind::Deleted,
                sensitive: BTreeSet::new(),
                byte_sizes: Default::default(),
            },
        ],
        conflicts: vec![Conflict {
            address: Address::new(r#"tenant.app["g"].database"#),
            type_name: "sql_database".into(),
            import_id: "g".into(),
            message: "a database \"g\" already exists on service.pg but terrace does not manage it"
                .into(),
            hint: None,
        }],
        unverified: vec!["service.pg: passwords of a, b: the admin may not read pg_authid".into()],
        moved: vec![],
        expiry: vec![],
        safeguards: vec![PlannedSafeguard {
            address: Address::new(r#"tenant.app["e"].database"#),
            safeguard: Safeguard {
                kind: "dump".into(),
                destination: ".terrace/backups/e-<time>.sql".into(),
            },
        }],
    }
}

fn partial() -> Partial {
    Partial {
        errors: vec![
            RunError {
                provider: ProviderKey("host.db2".into()),
                address: None,
                message: "ssh: connect to host 10.0.0.9 port 22: Connection refused".into(),
            },
            RunError {
                provider: ProviderKey("host.web".into()),
                address: Some(Address::new(r#"host.web.file["/etc/shadow.d/x"]"#)),
                message: "cannot read /etc/shadow.d/x: permission denied".into(),
            },
        ],
        not_planned: vec![
            Address::new(r#"host.db2.package["postgresql"]"#),
            Address::new(r#"host.web.file["/etc/shadow.d/x"]"#),
        ],
    }
}

fn opts<'a>(partial: &'a Partial) -> MarkdownOptions<'a> {
    MarkdownOptions {
        project: "shop",
        partial,
        part_chars: DEFAULT_PART_CHARS,
    }
}

#[test]
fn full_plan_as_one_markdown_comment() {
    let none = Partial::default();
    let parts = render_markdown(&full_plan(), &opts(&none));
    assert_eq!(parts.len(), 1);
    assert!(!parts[0].contains(SECRET));
    expect![[r#"
        <!-- terrace-plan: shop -->
        **Plan: 5 to add, 3 to change, 4 to destroy.** 1 conflict(s) block this plan.

        ### ⚠️ Warnings

        **2 to destroy**
        - `service.web.volume` (`docker_volume`)
        - `tenant.app["e"].database` (`sql_database`): it is no longer in the configuration

        **2 to replace**
        - `tenant.app["c"].database` (`sql_database`): `name` cannot change in place
        - `tenant.app["d"].database` (`sql_database`): it moves from `service.pg` to `service.pg2`

        **4 with data dropped**
        - volume `service.web.volume`: this plan does not say that a copy of its data is kept
        - database `tenant.app["c"].database`: this plan does not say that a copy of its data is kept
        - database `tenant.app["d"].database`: this plan does not say that a copy of its data is kept
        - database `tenant.app["e"].database`: a dump of its data is written to `.terrace/backups/e-<time>.sql` first; if that fails, it is not destroyed

        **1 conflict(s) block the apply**
        - `tenant.app["g"].database`: a database "g" already exists on service.pg but terrace does not manage it (hint: adopt it with `terrace import 'tenant.app["g"].database' g`, or remove it from the configuration)

        **not verified (the plan cannot vouch for these)**
        - service.pg: passwords of a, b: the admin may not read pg\_authid

        ### Drift: 3 object(s) changed outside terrace since the last apply

        - `tenant.app["b"].database.user` (`sql_user`) has changed outside terrace:
          - `extra_access`:
            - added: `has role attribute CREATEDB`
          - `password`: `(sensitive value)` → `(sensitive value)`
        - `host.web.file["/etc/app.conf"]` (`host_file`) has changed outside terrace:
          - `content`:

            ```diff
            @@ -1,3 +1,3 @@
             # app
             listen = 80
            -workers = 2
            +workers = 16
            ```
        - `tenant.app["f"].database` (`sql_database`) was deleted outside terrace

        ### Changes

        #### `host.web` — 1 to add, 1 to change

        <details><summary><code>~ host.web.file[&quot;/etc/app.conf&quot;]</code> (host_file) will be updated in place</summary>

        ```diff
        ~ content = (multi-line text, diff below)
        - mode    = "0644"
        + mode    = "0640"
          # (1 unchanged attribute hidden)
        ```

        `content`:

        ````diff
        @@ -1,5 +1,5 @@
         # app
        -listen = 80
        +listen = 8080
         workers = 2
         log = info
         ```
        ````

        </details>

        <details><summary><code>+ host.web.file[&quot;/etc/motd&quot;]</code> (host_file) will be created</summary>

        ```diff
        + content = (multi-line text, diff below)
        + path    = "/etc/motd"
        ```

        `content`:

        ```diff
        @@ -0,0 +1,2 @@
        +welcome
        +<b>be nice</b>
        ```

        </details>

        #### `service.web` — 1 to destroy

        <details><summary><code>- service.web.volume</code> (docker_volume) will be destroyed</summary>

        ```diff
        - name = "web-data"
        ```

        </details>

        #### `tenant.app["a"]` — 2 to add

        <details><summary><code>+ tenant.app[&quot;a&quot;].database</code> (sql_database) will be created</summary>

        ```diff
        + connection_limit = 5
        + name             = "a"
        ```

        </details>

        <details><summary><code>+ tenant.app[&quot;a&quot;].database.user</code> (sql_user) will be created</summary>

        ```diff
        + name     = "a"
        + password = (sensitive value) (generated during apply)
        ```

        </details>

        #### `tenant.app["b"]` — 2 to change

        <details><summary><code>~ tenant.app[&quot;b&quot;].database</code> (sql_database) will be updated in place</summary>

        ```diff
        - connection_limit = 50
        + connection_limit = 60
          name             = "b"
        ```

        </details>

        <details><summary><code>~ tenant.app[&quot;b&quot;].database.user</code> (sql_user) will be updated in place</summary>

        - it only undoes drift

        ```diff
          name     = "b"
        - password = (sensitive value)
        + password = (sensitive value)
        ```

        </details>

        #### `tenant.app["c"]` — 1 to replace

        <details><summary><code>-/+ tenant.app[&quot;c&quot;].database</code> (sql_database) must be replaced</summary>

        - replaced because `name` cannot change in place

        ```diff
        - name = "c_old"
        + name = "c"  # forces replacement
          # (1 unchanged attribute hidden)
        ```

        </details>

        #### `tenant.app["d"]` — 1 to replace

        <details><summary><code>-/+ tenant.app[&quot;d&quot;].database</code> (sql_database) must be replaced</summary>

        - replaced because it moves from `service.pg` to `service.pg2`

        ```diff
          name = "d"
        ```

        </details>

        #### `tenant.app["e"]` — 1 to destroy

        <details><summary><code>- tenant.app[&quot;e&quot;].database</code> (sql_database) will be destroyed</summary>

        - it is no longer in the configuration
        - a dump of its data is written to `.terrace/backups/e-<time>.sql` first; if that fails, it is not destroyed

        ```diff
        - connection_limit = 5
        - name             = "e"
        ```

        </details>
    "#]]
    .assert_eq(&parts[0]);
}

#[test]
fn a_partial_run_says_so_first_and_lists_what_was_left_out() {
    let partial = partial();
    let parts = render_markdown(&Plan::default(), &opts(&partial));
    expect![[r#"
        <!-- terrace-plan: shop -->
        **No changes** among the resources that could be planned; 2 resource(s) could not be (see the warnings).

        ### ⚠️ Warnings

        **not planned this run**
        - `host.db2` could not be reached: ssh: connect to host 10.0.0.9 port 22: Connection refused
        - `host.web.file["/etc/shadow.d/x"]` could not be observed: cannot read /etc/shadow.d/x: permission denied
        - not planned: `host.db2.package["postgresql"]`
        - not planned: `host.web.file["/etc/shadow.d/x"]`
    "#]]
    .assert_eq(&parts.join("\n=== next part ===\n"));
    let parts = render_markdown(&full_plan(), &opts(&partial));
    assert!(parts[0].starts_with(
        "<!-- terrace-plan: shop -->\n**Incomplete plan: 5 to add, 3 to change, 4 to destroy** \
         among the resources that could be planned; 2 resource(s) could not be (see the warnings). \
         1 conflict(s) block this plan.\n"
    ), "{}", parts[0]);
}

#[test]
fn no_changes_is_one_line() {
    let none = Partial::default();
    let parts = render_markdown(&Plan::default(), &opts(&none));
    expect![[r#"
        <!-- terrace-plan: shop -->
        **No changes.** The live systems match the configuration.
    "#]]
    .assert_eq(&parts.join("\n=== next part ===\n"));
}

#[test]
fn the_json_document_of_a_partial_run() {
    let doc = render_json_run(&full_plan(), "test", &partial());
    let text = serde_json::to_string_pretty(&doc).unwrap();
    assert!(!text.contains(SECRET));
    expect![[r##"
        {
          "changes_present": true,
          "complete": false,
          "conflicts": [
            {
              "address": "tenant.app[\"g\"].database",
              "import_id": "g",
              "message": "a database \"g\" already exists on service.pg but terrace does not manage it",
              "type_name": "sql_database"
            }
          ],
          "errors": [
            {
              "message": "ssh: connect to host 10.0.0.9 port 22: Connection refused",
              "provider": "host.db2"
            },
            {
              "address": "host.web.file[\"/etc/shadow.d/x\"]",
              "message": "cannot read /etc/shadow.d/x: permission denied",
              "provider": "host.web"
            }
          ],
          "format_version": "1.2",
          "not_planned": [
            "host.db2.package[\"postgresql\"]",
            "host.web.file[\"/etc/shadow.d/x\"]"
          ],
          "output_changes": {},
          "resource_changes": [
            {
              "address": "host.web.file[\"/etc/app.conf\"]",
              "change": {
                "actions": [
                  "update"
                ],
                "after": {
                  "content": "# app\nlisten = 8080\nworkers = 2\nlog = info\n```\n",
                  "mode": "0640",
                  "path": "/etc/app.conf"
                },
                "after_sensitive": {},
                "after_unknown": {},
                "before": {
                  "content": "# app\nlisten = 80\nworkers = 2\nlog = info\n```\n",
                  "mode": "0644",
                  "path": "/etc/app.conf"
                },
                "before_sensitive": {},
                "changed": [
                  "content",
                  "mode"
                ],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "host.web",
              "safeguard": null,
              "type": "host_file"
            },
            {
              "address": "host.web.file[\"/etc/motd\"]",
              "change": {
                "actions": [
                  "create"
                ],
                "after": {
                  "content": "welcome\n<b>be nice</b>\n",
                  "path": "/etc/motd"
                },
                "after_sensitive": {},
                "after_unknown": {},
                "before": null,
                "before_sensitive": {},
                "changed": [],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "host.web",
              "safeguard": null,
              "type": "host_file"
            },
            {
              "address": "service.pg",
              "change": {
                "actions": [
                  "no-op"
                ],
                "after": null,
                "after_sensitive": {},
                "after_unknown": {},
                "before": null,
                "before_sensitive": {},
                "changed": [],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "service.pg",
              "safeguard": null,
              "type": "sql_server"
            },
            {
              "address": "service.web.volume",
              "change": {
                "actions": [
                  "delete"
                ],
                "after": null,
                "after_sensitive": {},
                "after_unknown": {},
                "before": {
                  "name": "web-data"
                },
                "before_sensitive": {},
                "changed": [],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "docker.local",
              "safeguard": null,
              "type": "docker_volume"
            },
            {
              "address": "tenant.app[\"a\"].database",
              "change": {
                "actions": [
                  "create"
                ],
                "after": {
                  "connection_limit": 5,
                  "name": "a"
                },
                "after_sensitive": {},
                "after_unknown": {},
                "before": null,
                "before_sensitive": {},
                "changed": [],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "service.pg",
              "safeguard": null,
              "type": "sql_database"
            },
            {
              "address": "tenant.app[\"a\"].database.user",
              "change": {
                "actions": [
                  "create"
                ],
                "after": {
                  "name": "a"
                },
                "after_sensitive": {},
                "after_unknown": {
                  "password": true
                },
                "before": null,
                "before_sensitive": {},
                "changed": [],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "service.pg",
              "safeguard": null,
              "type": "sql_user"
            },
            {
              "address": "tenant.app[\"b\"].database",
              "change": {
                "actions": [
                  "update"
                ],
                "after": {
                  "connection_limit": 60,
                  "name": "b"
                },
                "after_sensitive": {},
                "after_unknown": {},
                "before": {
                  "connection_limit": 50,
                  "name": "b"
                },
                "before_sensitive": {},
                "changed": [
                  "connection_limit"
                ],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "service.pg",
              "safeguard": null,
              "type": "sql_database"
            },
            {
              "address": "tenant.app[\"b\"].database.user",
              "change": {
                "actions": [
                  "update"
                ],
                "after": {
                  "name": "b",
                  "password": "(sensitive value)"
                },
                "after_sensitive": {
                  "password": true
                },
                "after_unknown": {},
                "before": {
                  "name": "b",
                  "password": "(sensitive value)"
                },
                "before_sensitive": {
                  "password": true
                },
                "changed": [
                  "password"
                ],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": "it only undoes drift",
              "provider": "service.pg",
              "safeguard": null,
              "type": "sql_user"
            },
            {
              "address": "tenant.app[\"c\"].database",
              "change": {
                "actions": [
                  "delete",
                  "create"
                ],
                "after": {
                  "connection_limit": 5,
                  "name": "c"
                },
                "after_sensitive": {},
                "after_unknown": {},
                "before": {
                  "connection_limit": 5,
                  "name": "c_old"
                },
                "before_sensitive": {},
                "changed": [
                  "name"
                ],
                "replace_paths": [
                  [
                    "name"
                  ]
                ]
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "service.pg",
              "safeguard": null,
              "type": "sql_database"
            },
            {
              "address": "tenant.app[\"d\"].database",
              "change": {
                "actions": [
                  "delete",
                  "create"
                ],
                "after": {
                  "name": "d"
                },
                "after_sensitive": {},
                "after_unknown": {},
                "before": {
                  "name": "d"
                },
                "before_sensitive": {},
                "changed": [
                  "(service)"
                ],
                "replace_paths": [
                  [
                    "(service)"
                  ]
                ]
              },
              "depends_on": [],
              "move": null,
              "note": null,
              "provider": "service.pg2",
              "safeguard": null,
              "type": "sql_database"
            },
            {
              "address": "tenant.app[\"e\"].database",
              "change": {
                "actions": [
                  "delete"
                ],
                "after": null,
                "after_sensitive": {},
                "after_unknown": {},
                "before": {
                  "connection_limit": 5,
                  "name": "e"
                },
                "before_sensitive": {},
                "changed": [],
                "replace_paths": []
              },
              "depends_on": [],
              "move": null,
              "note": "it is no longer in the configuration",
              "provider": "service.pg",
              "safeguard": {
                "destination": ".terrace/backups/e-<time>.sql",
                "kind": "dump"
              },
              "type": "sql_database"
            }
          ],
          "resource_drift": [
            {
              "address": "tenant.app[\"b\"].database.user",
              "change": {
                "actions": [
                  "update"
                ],
                "after": {
                  "extra_access": [
                    "has role attribute CREATEDB"
                  ],
                  "password": "(sensitive value)"
                },
                "before": {
                  "extra_access": [],
                  "password": "(sensitive value)"
                }
              },
              "changes": [
                {
                  "after": [
                    "has role attribute CREATEDB"
                  ],
                  "before": [],
                  "name": "extra_access"
                },
                {
                  "after": "(sensitive value)",
                  "before": "(sensitive value)",
                  "name": "password"
                }
              ],
              "kind": "changed",
              "type": "sql_user"
            },
            {
              "address": "host.web.file[\"/etc/app.conf\"]",
              "change": {
                "actions": [
                  "update"
                ],
                "after": {
                  "content": "# app\nlisten = 80\nworkers = 16\n"
                },
                "before": {
                  "content": "# app\nlisten = 80\nworkers = 2\n"
                }
              },
              "changes": [
                {
                  "after": "# app\nlisten = 80\nworkers = 16\n",
                  "before": "# app\nlisten = 80\nworkers = 2\n",
                  "name": "content"
                }
              ],
              "kind": "changed",
              "type": "host_file"
            },
            {
              "address": "tenant.app[\"f\"].database",
              "change": {
                "actions": [
                  "delete"
                ],
                "after": null,
                "before": null
              },
              "kind": "deleted",
              "type": "sql_database"
            }
          ],
          "safeguards": [
            {
              "address": "tenant.app[\"e\"].database",
              "destination": ".terrace/backups/e-<time>.sql",
              "kind": "dump"
            }
          ],
          "summary": {
            "add": 5,
            "change": 3,
            "destroy": 4,
            "drops_data": true,
            "has_conflicts": true,
            "has_destroy": true,
            "has_drift": true
          },
          "terrace_version": "test",
          "unverified": [
            "service.pg: passwords of a, b: the admin may not read pg_authid"
          ]
        }"##]]
    .assert_eq(&text);
}

#[test]
fn the_text_rendering_of_the_same_plan() {
    let text = render_text(
        &full_plan(),
        TextOptions {
            color: false,
            partial: false,
            destroy: false,
        },
    );
    assert!(!text.contains(SECRET));
    expect![[r#"
        Objects changed outside terrace since the last apply (drift):

          # tenant.app["b"].database.user has changed outside terrace
          ~ sql_user {
              ~ extra_access = [
                  + has role attribute CREATEDB
                ]
              ~ password     = (sensitive value) -> (sensitive value)
            }
          # host.web.file["/etc/app.conf"] has changed outside terrace
          ~ host_file {
              ~ content = <<-EOT
                  @@ -1,3 +1,3 @@
                   # app
                   listen = 80
                  -workers = 2
                  +workers = 16
                EOT
            }
          # tenant.app["f"].database was deleted outside terrace

        terrace will perform the following actions:

          # host.web.file["/etc/app.conf"] will be updated in place
          ~ host_file {
              ~ content = <<-EOT
                  @@ -1,5 +1,5 @@
                   # app
                  -listen = 80
                  +listen = 8080
                   workers = 2
                   log = info
                   ```
                EOT
              ~ mode    = "0644" -> "0640"
                # (1 unchanged attribute hidden)
            }

          # host.web.file["/etc/motd"] will be created
          + host_file {
              + content = "welcome\n<b>be nice</b>\n"
              + path    = "/etc/motd"
            }

          # service.web.volume will be destroyed
          - docker_volume {
              - name = "web-data"
            }

          # tenant.app["a"].database will be created
          + sql_database {
              + connection_limit = 5
              + name             = "a"
            }

          # tenant.app["a"].database.user will be created
          + sql_user {
              + name     = "a"
              + password = (sensitive value) (generated during apply)
            }

          # tenant.app["b"].database will be updated in place
          ~ sql_database {
              ~ connection_limit = 50 -> 60
                name             = "b"
            }

          # tenant.app["b"].database.user will be updated in place
          # (it only undoes drift)
          ~ sql_user {
                name     = "b"
              ~ password = (sensitive value) -> (sensitive value)
            }

          # tenant.app["c"].database must be replaced (name cannot change in place)
        -/+ sql_database {
              ~ name = "c_old" -> "c" # forces replacement
                # (1 unchanged attribute hidden)
            }

          # tenant.app["d"].database must be replaced (it moves from service.pg to service.pg2)
        -/+ sql_database {
                name = "d"
            }

          # tenant.app["e"].database will be destroyed
          # (it is no longer in the configuration)
          # (a dump of its data is written to .terrace/backups/e-<time>.sql first; if that fails, it is not destroyed)
          - sql_database {
              - connection_limit = 5
              - name             = "e"
            }

        Conflicts (apply refuses until each is resolved):

          ! tenant.app["g"].database: a database "g" already exists on service.pg but terrace does not manage it
            hint: adopt it with `terrace import 'tenant.app["g"].database' g`, or remove it from the configuration

        Not verified (terrace could not check these; the plan cannot vouch for them):

          - service.pg: passwords of a, b: the admin may not read pg_authid

        Plan: 5 to add, 3 to change, 4 to destroy.
        1 conflict(s) block this plan.
    "#]]
    .assert_eq(&text);
}

/// A plan too large for one comment: many resources, some with enormous file diffs.
fn huge_plan() -> Plan {
    let mut changes = Vec::new();
    for i in 0..400 {
        let mut c = change(
            &format!(r#"host.h{:02}.file["/srv/f{i:03}"]"#, i % 7),
            "host_file",
            Action::Update,
        );
        let lines = if i % 50 == 0 { 20_000 } else { 40 };
        let before: String = (0..lines)
            .map(|n| format!("line {n} of file {i}\n"))
            .collect();
        let after: String = (0..lines)
            .map(|n| format!("line {n} of file {i} (edited)\n"))
            .collect();
        c.before = attrs(json!({"path": format!("/srv/f{i:03}"), "content": before}));
        c.after = attrs(json!({"path": format!("/srv/f{i:03}"), "content": after}));
        c.changed = vec!["content".into()];
        changes.push(c);
    }
    for i in 0..300 {
        let mut c = change(
            &format!(r#"tenant.t{i:03}.database"#),
            "sql_database",
            Action::Delete,
        );
        c.before = attrs(json!({"name": format!("t{i:03}")}));
        changes.push(c);
    }
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    Plan {
        changes,
        ..Plan::default()
    }
}

#[test]
fn a_huge_plan_is_split_below_the_comment_limit_and_keeps_every_warning() {
    let none = Partial::default();
    let plan = huge_plan();
    let parts = render_markdown(&plan, &opts(&none));
    let n = parts.len();
    assert!(n > 3, "{n} parts");
    const { assert!(DEFAULT_PART_CHARS < GITHUB_COMMENT_LIMIT) };
    for (i, part) in parts.iter().enumerate() {
        let len = part.chars().count();
        assert!(len <= DEFAULT_PART_CHARS, "part {i}: {len}");
        let head = format!(
            "<!-- terrace-plan: shop -->\n**terrace plan, part {} of {n}**",
            i + 1
        );
        assert!(part.starts_with(&head), "{}", &part[..200]);
        assert!(part.contains("**Plan: 0 to add, 400 to change, 300 to destroy.**"));
    }
    let all = parts.concat();
    // Every destroy is warned about, and the warnings come before any change.
    for i in 0..300 {
        let warned = format!("- `tenant.t{i:03}.database` (`sql_database`)\n");
        assert!(all.contains(&warned), "{warned}");
    }
    assert!(all.find("**300 with data dropped**") < all.find("### Changes"));
    // The enormous diffs are cut with a note; the small ones are whole.
    assert_eq!(all.matches("more line(s) not shown").count(), 8);
    assert!(all.contains("+line 39 of file 1 (edited)"));
    // Deterministic: the same plan gives the same bytes.
    assert_eq!(render_markdown(&plan, &opts(&none)), parts);
}

#[test]
fn a_small_part_size_splits_between_blocks_and_numbers_the_parts() {
    let none = Partial::default();
    let options = MarkdownOptions {
        part_chars: 900,
        ..opts(&none)
    };
    let parts = render_markdown(&full_plan(), &options);
    let heads: Vec<String> = parts
        .iter()
        .map(|p| p.lines().take(2).collect::<Vec<_>>().join(" | "))
        .collect();
    expect![[r#"
        [
            "<!-- terrace-plan: shop --> | **terrace plan, part 1 of 8**",
            "<!-- terrace-plan: shop --> | **terrace plan, part 2 of 8** (continued)",
            "<!-- terrace-plan: shop --> | **terrace plan, part 3 of 8** (continued)",
            "<!-- terrace-plan: shop --> | **terrace plan, part 4 of 8** (continued)",
            "<!-- terrace-plan: shop --> | **terrace plan, part 5 of 8** (continued)",
            "<!-- terrace-plan: shop --> | **terrace plan, part 6 of 8** (continued)",
            "<!-- terrace-plan: shop --> | **terrace plan, part 7 of 8** (continued)",
            "<!-- terrace-plan: shop --> | **terrace plan, part 8 of 8** (continued)",
        ]
    "#]]
    .assert_debug_eq(&heads);
    for p in &parts {
        assert!(p.chars().count() <= 900, "{p}");
        // A collapsible block is never cut in two.
        assert_eq!(
            p.matches("<details>").count(),
            p.matches("</details>").count(),
            "{p}"
        );
    }
}
