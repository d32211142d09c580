//! Snapshots of whole rendered diagnostics for a representative set of configuration
//! errors: the exact text, labels, help and order a user sees. They guard refactors of
//! the language core; update them with `UPDATE_EXPECT=1 cargo test -p terrace-config
//! --test snapshots` only when a change of output is intended.
mod common;

use common::{render, Dir, PG};
use expect_test::{expect, Expect};
use terrace_config::VarInputs;

/// Loads `files` (which must fail) and compares the whole report, with the temporary
/// directory written as `$DIR`, against `expected`.
fn check(files: &[(&str, &str)], expected: Expect) {
    check_with(files, &VarInputs::default(), expected)
}

/// [`check`] with inputs (prior placements).
fn check_with(files: &[(&str, &str)], inputs: &VarInputs, expected: Expect) {
    let dir = Dir::new(files);
    let e = match dir.load(inputs) {
        Ok(p) => panic!("expected errors, got {p:#?}"),
        Err(e) => e,
    };
    let root = dir.dir.path().display().to_string();
    expected.assert_eq(&render(&e).replace(&root, "$DIR"));
}

#[test]
fn parse_error() {
    check(
        &[(
            "main.hcl",
            "service \"pg\" {\n  engine = = \"postgres\"\n}\n",
        )],
        expect![[r#"
            terrace::config

              × 1 error in the configuration

            Error: terrace::config::parse

              × syntax error: invalid expression; expected `"`, `[`, `{`, `-`, `!`, `(`, `_`, `<`, letter or digit
               ╭─[$DIR/main.hcl:2:12]
             1 │ service "pg" {
             2 │   engine = = "postgres"
               ·            ┬
               ·            ╰── here
             3 │ }
               ╰────
              help: check the HCL syntax near this point (unbalanced braces or quotes, a missing `=`)
        "#]],
    );
}

#[test]
fn unknown_block_and_top_level_attribute() {
    check(
        &[("main.hcl", "x = 1\n\nservce \"pg\" {}\n")],
        expect![[r#"
            terrace::config

              × 2 errors in the configuration

            Error: terrace::config::unknown_attribute

              × unexpected attribute "x" at the top level
               ╭─[$DIR/main.hcl:1:1]
             1 │ x = 1
               · ┬
               · ╰── not inside a block
             2 │ 
               ╰────
              help: put values in a `locals { ... }` block, or set them inside a block

            Error: terrace::config::unknown_block

              × unknown block type "servce" in the top level
               ╭─[$DIR/main.hcl:3:1]
             2 │ 
             3 │ servce "pg" {}
               · ───┬──
               ·    ╰── unknown block type
               ╰────
              help: did you mean "service"?
        "#]],
    );
}

#[test]
fn unknown_attribute_and_missing_attribute() {
    check(
        &[
            ("a.hcl", PG),
            (
                "main.hcl",
                "database \"d\" {\n  service = service.pg\n  conection_limit = 3\n}\n",
            ),
        ],
        expect![[r#"
            terrace::config

              × 2 errors in the configuration

            Error: terrace::config::missing_attribute

              × missing required attribute "name"
               ╭─[$DIR/main.hcl:1:1]
             1 │ database "d" {
               · ──────┬─────
               ·       ╰── this database block has no "name"
             2 │   service = service.pg
               ╰────
              help: add `name = ...` to the block

            Error: terrace::config::unknown_attribute

              × unknown attribute "conection_limit" in a database block
               ╭─[$DIR/main.hcl:3:3]
             2 │   service = service.pg
             3 │   conection_limit = 3
               ·   ───────┬───────
               ·          ╰── unknown attribute
             4 │ }
               ╰────
              help: did you mean "connection_limit"?
        "#]],
    );
}

#[test]
fn labels() {
    check(
        &[(
            "main.hcl",
            "host \"a\" \"b\" { address = \"h\" }\nvariable \"1x\" {}\nlocals \"l\" {}\n",
        )],
        expect![[r#"
            terrace::config

              × 4 errors in the configuration

            Error: terrace::config::invalid_label

              × a host block takes 1 label, found 2
               ╭─[$DIR/main.hcl:1:10]
             1 │ host "a" "b" { address = "h" }
               ·          ─┬─
               ·           ╰── wrong number of labels
             2 │ variable "1x" {}
               ╰────
              help: write it as `host "name" { ... }`

            Error: terrace::config::invalid_label

              × invalid variable name "1x"
               ╭─[$DIR/main.hcl:2:10]
             1 │ host "a" "b" { address = "h" }
             2 │ variable "1x" {}
               ·          ──┬─
               ·            ╰── not a valid name
             3 │ locals "l" {}
               ╰────
              help: names start with a letter or underscore and contain only ASCII letters, digits, underscores and hyphens

            Error: terrace::config::missing_variable

              × no value for variable "1x"
               ╭─[$DIR/main.hcl:2:10]
             1 │ host "a" "b" { address = "h" }
             2 │ variable "1x" {}
               ·          ──┬─
               ·            ╰── declared here without a default
             3 │ locals "l" {}
               ╰────
              help: set it with `--var 1x=VALUE`, in a --var-file (`1x = VALUE`), with the environment variable TERRACE_VAR_1x, or give it a default

            Error: terrace::config::invalid_label

              × a locals block takes 0 labels, found 1
               ╭─[$DIR/main.hcl:3:8]
             2 │ variable "1x" {}
             3 │ locals "l" {}
               ·        ─┬─
               ·         ╰── wrong number of labels
               ╰────
              help: write it as `locals { name = value }`
        "#]],
    );
}

#[test]
fn wrong_types() {
    check(
        &[("a.hcl", PG), ("main.hcl", "database \"d\" {\n  service = \"pg\"\n  name    = \"d\"\n  connection_limit = \"ten\"\n}\n")],
        expect![[r#"
            terrace::config

              × 2 errors in the configuration

            Error: terrace::config::wrong_type

              × wrong type for "service": expected a reference to a service block, found a string
               ╭─[$DIR/main.hcl:2:13]
             1 │ database "d" {
             2 │   service = "pg"
               ·             ──┬─
               ·               ╰── this is a string
             3 │   name    = "d"
               ╰────
              help: write it like `service = service.pg`

            Error: terrace::config::wrong_type

              × wrong type for "connection_limit": expected a number, found a string
               ╭─[$DIR/main.hcl:4:22]
             3 │   name    = "d"
             4 │   connection_limit = "ten"
               ·                      ──┬──
               ·                        ╰── this is a string
             5 │ }
               ╰────
              help: write it like `connection_limit = 10`
        "#]],
    );
}

#[test]
fn unknown_references_of_every_kind() {
    check(
        &[("main.hcl", "locals {\n  a = var.nope\n  b = local.nope\n  c = host.nope\n  d = service.nope\n  e = tenant.nope\n  f = database.nope\n  g = image.nope\n  h = network.nope\n  i = volume.nope\n  j = file.nope\n  k = package.nope\n  l = daemon.nope\n  m = firewall_rule.nope\n  n = command.nope\n  o = nope.x\n  p = each.key\n  q = self.database\n  r = var\n  s = uppr(\"x\")\n}\n")],
        expect![[r#"
            terrace::config

              × 19 errors in the configuration

            Error: terrace::config::unknown_reference

              × no variable named "nope"
               ╭─[$DIR/main.hcl:2:7]
             1 │ locals {
             2 │   a = var.nope
               ·       ────┬───
               ·           ╰── not declared
             3 │   b = local.nope
               ╰────
              help: no variable is declared; add `variable "nope" {}`

            Error: terrace::config::unknown_reference

              × no local value named "nope"
               ╭─[$DIR/main.hcl:3:7]
             2 │   a = var.nope
             3 │   b = local.nope
               ·       ─────┬────
               ·            ╰── not declared
             4 │   c = host.nope
               ╰────
              help: declared: "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r" or "s"

            Error: terrace::config::unknown_reference

              × no host named "nope"
               ╭─[$DIR/main.hcl:4:7]
             3 │   b = local.nope
             4 │   c = host.nope
               ·       ────┬────
               ·           ╰── not declared
             5 │   d = service.nope
               ╰────
              help: no host is declared; add `host "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no service named "nope"
               ╭─[$DIR/main.hcl:5:7]
             4 │   c = host.nope
             5 │   d = service.nope
               ·       ──────┬─────
               ·             ╰── not declared
             6 │   e = tenant.nope
               ╰────
              help: no service is declared; add `service "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no tenant named "nope"
               ╭─[$DIR/main.hcl:6:7]
             5 │   d = service.nope
             6 │   e = tenant.nope
               ·       ─────┬─────
               ·            ╰── not declared
             7 │   f = database.nope
               ╰────
              help: no tenant is declared; add `tenant "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no database named "nope"
               ╭─[$DIR/main.hcl:7:7]
             6 │   e = tenant.nope
             7 │   f = database.nope
               ·       ──────┬──────
               ·             ╰── not declared
             8 │   g = image.nope
               ╰────
              help: no database is declared; add `database "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no image named "nope"
               ╭─[$DIR/main.hcl:8:7]
             7 │   f = database.nope
             8 │   g = image.nope
               ·       ─────┬────
               ·            ╰── not declared
             9 │   h = network.nope
               ╰────
              help: no image is declared; add `image "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no network named "nope"
                ╭─[$DIR/main.hcl:9:7]
              8 │   g = image.nope
              9 │   h = network.nope
                ·       ──────┬─────
                ·             ╰── not declared
             10 │   i = volume.nope
                ╰────
              help: no network is declared; add `network "nope" {}`

            Error: terrace::config::unknown_reference

              × no volume named "nope"
                ╭─[$DIR/main.hcl:10:7]
              9 │   h = network.nope
             10 │   i = volume.nope
                ·       ─────┬─────
                ·            ╰── not declared
             11 │   j = file.nope
                ╰────
              help: no volume is declared; add `volume "nope" {}`

            Error: terrace::config::unknown_reference

              × no file named "nope"
                ╭─[$DIR/main.hcl:11:7]
             10 │   i = volume.nope
             11 │   j = file.nope
                ·       ────┬────
                ·           ╰── not declared
             12 │   k = package.nope
                ╰────
              help: no file is declared; add `file "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no package named "nope"
                ╭─[$DIR/main.hcl:12:7]
             11 │   j = file.nope
             12 │   k = package.nope
                ·       ──────┬─────
                ·             ╰── not declared
             13 │   l = daemon.nope
                ╰────
              help: no package is declared; add `package "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no daemon named "nope"
                ╭─[$DIR/main.hcl:13:7]
             12 │   k = package.nope
             13 │   l = daemon.nope
                ·       ─────┬─────
                ·            ╰── not declared
             14 │   m = firewall_rule.nope
                ╰────
              help: no daemon is declared; add `daemon "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no firewall rule named "nope"
                ╭─[$DIR/main.hcl:14:7]
             13 │   l = daemon.nope
             14 │   m = firewall_rule.nope
                ·       ─────────┬────────
                ·                ╰── not declared
             15 │   n = command.nope
                ╰────
              help: no firewall rule is declared; add `firewall_rule "nope" { ... }`

            Error: terrace::config::unknown_reference

              × no command named "nope"
                ╭─[$DIR/main.hcl:15:7]
             14 │   m = firewall_rule.nope
             15 │   n = command.nope
                ·       ──────┬─────
                ·             ╰── not declared
             16 │   o = nope.x
                ╰────
              help: no command is declared; add `command "nope" { ... }`

            Error: terrace::config::unknown_reference

              × unknown name "nope"
                ╭─[$DIR/main.hcl:16:7]
             15 │   n = command.nope
             16 │   o = nope.x
                ·       ──┬─
                ·         ╰── not a known reference
             17 │   p = each.key
                ╰────
              help: references start with "var", "local", "host", "service", "tenant", "database", "image", "network", "volume", "file", "package", "daemon", "firewall_rule", "command" or "output", e.g.
                    var.example

            Error: terrace::config::unknown_reference

              × `each` is only available in blocks with for_each
                ╭─[$DIR/main.hcl:17:7]
             16 │   o = nope.x
             17 │   p = each.key
                ·       ────┬───
                ·           ╰── not available here
             18 │   q = self.database
                ╰────
              help: add `for_each = ...` to the block, or use a literal value

            Error: terrace::config::unknown_reference

              × `self` is only available inside a tenant's blocks
                ╭─[$DIR/main.hcl:18:7]
             17 │   p = each.key
             18 │   q = self.database
                ·       ──────┬──────
                ·             ╰── not available here
             19 │   r = var
                ╰────
              help: inside `tenant "t" { app { ... } }`, `self.database` and `self.volume` are that tenant instance's own, and `self.host` its host in every block of the tenant; elsewhere refer to
                    tenant.t["key"].database

            Error: terrace::config::unknown_reference

              × `var` must be followed by `.name`
                ╭─[$DIR/main.hcl:19:7]
             18 │   q = self.database
             19 │   r = var
                ·       ─┬─
                ·        ╰── incomplete reference
             20 │   s = uppr("x")
                ╰────
              help: write a reference like var.example

            Error: terrace::config::unknown_function

              × unknown function "uppr"
                ╭─[$DIR/main.hcl:20:7]
             19 │   r = var
             20 │   s = uppr("x")
                ·       ──┬─
                ·         ╰── no such function
             21 │ }
                ╰────
              help: did you mean "upper"?
        "#]],
    );
}

#[test]
fn duplicates_across_files() {
    check(
        &[
            ("a.hcl", "host \"web1\" { address = \"10.0.0.1\" }\n"),
            ("b.hcl", "host \"web1\" { address = \"10.0.0.2\" }\n"),
        ],
        expect![[r#"
            terrace::config

              × 1 error in the configuration

            Error: terrace::config::duplicate

              × host "web1" is defined twice
               ╭─[$DIR/b.hcl:1:6]
             1 │ host "web1" { address = "10.0.0.2" }
               ·      ───┬──
               ·         ╰── defined again here
               ╰────
              help: names share one namespace across all files; rename or remove one (the first is at $DIR/a.hcl:1:6)
                    first defined here: $DIR/a.hcl:1:6
        "#]],
    );
}

#[test]
fn cycle() {
    check(
        &[(
            "main.hcl",
            "locals {\n  a = local.b\n  b = local.c\n  c = local.a\n}\n",
        )],
        expect![[r#"
            terrace::config

              × 1 error in the configuration

            Error: terrace::config::cycle

              × dependency cycle: local.a -> local.b -> local.c -> local.a
               ╭─[$DIR/main.hcl:2:7]
             1 │ locals {
             2 │   a = local.b
               ·       ───┬───
               ·          ╰── local.a refers to local.b
             3 │   b = local.c
               ·       ───┬───
               ·          ╰── local.b refers to local.c
             4 │   c = local.a
               ·       ───┬───
               ·          ╰── local.c refers to local.a
             5 │ }
               ╰────
              help: these blocks refer to each other, so none can be evaluated first (local.a, local.b, local.c); remove one of the references
        "#]],
    );
}

#[test]
fn missing_variable_and_type_mismatch() {
    check(
        &[(
            "main.hcl",
            "variable \"a\" {}\nvariable \"b\" {\n  type    = number\n  default = \"x\"\n}\n",
        )],
        expect![[r#"
            terrace::config

              × 2 errors in the configuration

            Error: terrace::config::missing_variable

              × no value for variable "a"
               ╭─[$DIR/main.hcl:1:10]
             1 │ variable "a" {}
               ·          ─┬─
               ·           ╰── declared here without a default
             2 │ variable "b" {
               ╰────
              help: set it with `--var a=VALUE`, in a --var-file (`a = VALUE`), with the environment variable TERRACE_VAR_a, or give it a default

            Error: terrace::config::wrong_type

              × invalid default for variable "b": expected a number, found the string "x"
               ╭─[$DIR/main.hcl:4:13]
             3 │   type    = number
             4 │   default = "x"
               ·             ─┬─
               ·              ╰── not a valid number
             5 │ }
               ╰────
              help: variable "b" has type number
        "#]],
    );
}

#[test]
fn sql_database_errors() {
    check(
        &[("a.hcl", PG), ("main.hcl", "database \"d\" {\n  service   = service.pg\n  name      = \"bad name\"\n  charset   = \"utf8\"\n  privileges = [\"ALL; DROP\"]\n}\ndatabase \"e\" {\n  service = service.pg\n  name    = \"dup\"\n}\ndatabase \"f\" {\n  service = service.pg\n  name    = \"dup\"\n}\n")],
        expect![[r#"
            terrace::config

              × 4 errors in the configuration

            Error: terrace::config::invalid_identifier

              × invalid database name "bad name": the name contains a space
               ╭─[$DIR/main.hcl:3:15]
             2 │   service   = service.pg
             3 │   name      = "bad name"
               ·               ─────┬────
               ·                    ╰── this value is not a valid SQL name
             4 │   charset   = "utf8"
               ╰────
              help: use only ASCII letters, digits and underscores, starting with a letter or underscore, at most 63 bytes (e.g. wp_calibre_web)

            Error: terrace::config::unsupported

              × "charset" is not supported on postgres
               ╭─[$DIR/main.hcl:4:3]
             3 │   name      = "bad name"
             4 │   charset   = "utf8"
               ·   ───┬───
               ·      ╰── MySQL/MariaDB only
             5 │   privileges = ["ALL; DROP"]
               ╰────
              help: remove "charset": PostgreSQL databases use the server's encoding and locale

            Error: terrace::config::invalid_identifier

              × invalid privilege "ALL; DROP"
               ╭─[$DIR/main.hcl:5:16]
             4 │   charset   = "utf8"
             5 │   privileges = ["ALL; DROP"]
               ·                ──────┬──────
               ·                      ╰── not a privilege keyword
             6 │ }
               ╰────
              help: privileges are SQL keywords made of letters and single spaces, e.g. "ALL", "SELECT", "ALL PRIVILEGES"

            Error: terrace::config::duplicate

              × database "dup" is declared twice on service "pg"
                ╭─[$DIR/main.hcl:13:13]
              8 │   service = service.pg
              9 │   name    = "dup"
                ·             ──┬──
                ·               ╰── first declared here
             10 │ }
             11 │ database "f" {
             12 │   service = service.pg
             13 │   name    = "dup"
                ·             ──┬──
                ·               ╰── declared again here
             14 │ }
                ╰────
              help: two blocks would manage the same database; give one a different name (the first is at $DIR/main.hcl:9:13)
        "#]],
    );
}

#[test]
fn redis_settings_errors() {
    check(
        &[(
            "main.hcl",
            r#"service "cache" {
  engine   = "redis"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "terrace_admin", password = "redis-admin-pw" }
  settings = { "max*" = "1" }
}
service "db" {
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "terrace_admin", password = "redis-admin-pw" }
  settings = { maxmemory = "1mb" }
}
service "ok" {
  engine   = "redis"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "terrace_admin", password = "redis-admin-pw" }
}
tenant "a" {
  redis {
    service          = service.ok
    prefix           = "a:"
    connection_limit = -1
    purge_keys       = "yes"
  }
}
"#,
        )],
        expect![[r#"
            terrace::config

              × 4 errors in the configuration

            Error: terrace::config::invalid_value

              × invalid Redis setting name "max*"
               ╭─[$DIR/main.hcl:5:14]
             4 │   admin    = { user = "terrace_admin", password = "**************" }
             5 │   settings = { "max*" = "1" }
               ·              ────────┬───────
               ·                      ╰── not a Redis setting name
             6 │ }
               ╰────
              help: Redis settings are named in lower case with `-`, e.g. "maxmemory-policy" (see `CONFIG GET *`)

            Error: terrace::config::unsupported

              × "settings" is only for a Redis service terrace administers
                ╭─[$DIR/main.hcl:11:3]
             10 │   admin    = { user = "terrace_admin", password = "**************" }
             11 │   settings = { maxmemory = "1mb" }
                ·   ────┬───
                ·       ╰── not for this service
             12 │ }
                ╰────
              help: settings are applied with Redis' CONFIG SET: the service needs engine "redis", `endpoint` and `admin`

            Error: terrace::config::invalid_value

              × invalid value for "connection_limit": -1
                ╭─[$DIR/main.hcl:22:24]
             21 │     prefix           = "a:"
             22 │     connection_limit = -1
                ·                        ─┬
                ·                         ╰── out of range
             23 │     purge_keys       = "yes"
                ╰────
              help: "connection_limit" must be a whole number from 0 to 1000000

            Error: terrace::config::wrong_type

              × wrong type for "purge_keys": expected a bool, found a string
                ╭─[$DIR/main.hcl:23:24]
             22 │     connection_limit = -1
             23 │     purge_keys       = "yes"
                ·                        ──┬──
                ·                          ╰── this is a string
             24 │   }
                ╰────
              help: write it like `purge_keys = true`
        "#]],
    );
}

#[test]
fn redis_errors() {
    check(
        &[(
            "main.hcl",
            r#"service "cache" {
  engine   = "redis"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "terrace_admin", password = "redis-admin-pw" }
}
service "db" {
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "terrace_admin", password = "redis-admin-pw" }
}
tenant "a" {
  redis {
    service = service.cache
    prefix  = "a*"
  }
}
tenant "b" {
  redis {
    service = service.db
    prefix  = "b:"
  }
}
tenant "c" {
  redis {
    service = service.cache
    prefix  = "c:"
    user    = "a"
  }
  redis {
    service = service.cache
    prefix  = "c2:"
  }
}
tenant "d" {
  redis {
    service = service.cache
    user    = "default"
  }
}
"#,
        )],
        expect![[r#"
            terrace::config

              × 5 errors in the configuration

            Error: terrace::config::invalid_identifier

              × invalid Redis key prefix "a*": '*' is not allowed
                ╭─[$DIR/main.hcl:14:15]
             13 │     service = service.cache
             14 │     prefix  = "a*"
                ·               ──┬─
                ·                 ╰── not a valid key prefix
             15 │   }
                ╰────
              help: a key prefix has 1 to 64 ASCII letters, digits, `_`, `-`, `.`, `:` or `/`, e.g. "wp_client:"; glob characters would let the tenant reach other keys

            Error: terrace::config::invalid_value

              × service "db" is not a Redis server terrace administers
                ╭─[$DIR/main.hcl:19:15]
             18 │   redis {
             19 │     service = service.db
                ·               ─────┬────
                ·                    ╰── engine "mariadb"
             20 │     prefix  = "b:"
                ╰────
              help: a redis block needs a service with engine "redis" and `endpoint` and `admin`, which terrace logs in with to manage ACL users

            Error: terrace::config::duplicate

              × tenant "c" has more than one redis block
                ╭─[$DIR/main.hcl:29:3]
             23 │ tenant "c" {
             24 │   redis {
                ·   ──┬──
                ·     ╰── first redis block
             25 │     service = service.cache
             26 │     prefix  = "c:"
             27 │     user    = "a"
             28 │   }
             29 │   redis {
                ·   ──┬──
                ·     ╰── another redis block
             30 │     service = service.cache
                ╰────
              help: a tenant has one Redis user; its prefix confines all of its keys

            Error: terrace::config::missing_attribute

              × missing required attribute "prefix"
                ╭─[$DIR/main.hcl:35:3]
             34 │ tenant "d" {
             35 │   redis {
                ·   ──┬──
                ·     ╰── this redis block has no "prefix"
             36 │     service = service.cache
                ╰────
              help: add `prefix = ...` to the block

            Error: terrace::config::invalid_identifier

              × invalid Redis user name "default": "default" is Redis' built-in user
                ╭─[$DIR/main.hcl:37:15]
             36 │     service = service.cache
             37 │     user    = "default"
                ·               ────┬────
                ·                   ╰── not a valid Redis user name
             38 │   }
                ╰────
              help: a Redis user name has 1 to 64 ASCII letters, digits, `_`, `-` or `.`, and is not "default"
        "#]],
    );
}

#[test]
fn service_errors() {
    check(
        &[("main.hcl", "service \"a\" {\n  engine = \"postgress\"\n}\nservice \"b\" {\n  engine   = \"redis\"\n  endpoint = { address = \"h\" }\n}\nservice \"c\" {\n  engine   = \"postgres\"\n  endpoint = { address = \"h\", prot = 1, port = 70000 }\n}\n")],
        expect![[r#"
            terrace::config

              × 4 errors in the configuration

            Error: terrace::config::invalid_value

              × unknown engine "postgress"
               ╭─[$DIR/main.hcl:2:12]
             1 │ service "a" {
             2 │   engine = "postgress"
               ·            ─────┬─────
               ·                 ╰── unknown engine
             3 │ }
               ╰────
              help: did you mean "postgres"?

            Error: terrace::config::missing_attribute

              × missing required attribute "admin"
               ╭─[$DIR/main.hcl:4:1]
             3 │ }
             4 │ service "b" {
               · ─────┬─────
               ·      ╰── this service block has no "admin"
             5 │   engine   = "redis"
               ╰────
              help: add `admin = { user = "terrace_admin", password = var.admin_password }` to the block: terrace logs in to a redis server to manage its databases and users

            Error: terrace::config::missing_attribute

              × missing required attribute "admin"
               ╭─[$DIR/main.hcl:8:1]
             7 │ }
             8 │ service "c" {
               · ─────┬─────
               ·      ╰── this service block has no "admin"
             9 │   engine   = "postgres"
               ╰────
              help: add `admin = { user = "terrace_admin", password = var.admin_password }` to the block: terrace logs in to a postgres server to manage its databases and users

            Error: terrace::config::unknown_attribute

              × unknown attribute "prot" in "endpoint"
                ╭─[$DIR/main.hcl:10:31]
              9 │   engine   = "postgres"
             10 │   endpoint = { address = "h", prot = 1, port = 70000 }
                ·                               ──┬─
                ·                                 ╰── unknown attribute
             11 │ }
                ╰────
              help: did you mean "port"?
        "#]],
    );
}

#[test]
fn docker_errors() {
    check(
        &[("main.hcl", "image \"i\" {\n  name = \"Bad Image\"\n  pull = \"sometimes\"\n}\nnetwork \"n\" {\n  name = \"-bad\"\n}\nvolume \"v1\" { name = \"data\" }\nvolume \"v2\" { name = \"data\" }\nservice \"app\" {\n  engine = \"container\"\n  container {\n    image    = \"nginx:1\"\n    restart  = \"sometimes\"\n    mounts   = [{ source = \"data\", target = \"rel\" }]\n    networks = [1, { name = \"n\", alias = [] }]\n    image2   = 1\n  }\n}\n")],
        expect![[r#"
            terrace::config

              × 9 errors in the configuration

            Error: terrace::config::invalid_value

              × invalid image name "Bad Image": the image name contains a space
               ╭─[$DIR/main.hcl:2:10]
             1 │ image "i" {
             2 │   name = "Bad Image"
               ·          ─────┬─────
               ·               ╰── not an image reference
             3 │   pull = "sometimes"
               ╰────
              help: write an image reference like "nginx:1.27" or "registry.example/team/app:2"

            Error: terrace::config::invalid_value

              × invalid value for "pull": "sometimes"
               ╭─[$DIR/main.hcl:3:10]
             2 │   name = "Bad Image"
             3 │   pull = "sometimes"
               ·          ─────┬─────
               ·               ╰── not a pull policy
             4 │ }
               ╰────
              help: pull must be "never", "if_missing" or "always"

            Error: terrace::config::invalid_identifier

              × invalid network name "-bad": the name does not start with a letter or digit
               ╭─[$DIR/main.hcl:6:10]
             5 │ network "n" {
             6 │   name = "-bad"
               ·          ───┬──
               ·             ╰── not a valid Docker name
             7 │ }
               ╰────
              help: Docker names start with an ASCII letter or digit and contain only letters, digits, `_`, `.` and `-` (at least two characters, e.g. client-alice)

            Error: terrace::config::duplicate

              × volume name "data" is used twice on docker.local
                ╭─[$DIR/main.hcl:9:22]
              7 │ }
              8 │ volume "v1" { name = "data" }
                ·                      ───┬──
                ·                         ╰── first used here
              9 │ volume "v2" { name = "data" }
                ·                      ───┬──
                ·                         ╰── volume.v2 is named "data" here
             10 │ service "app" {
                ╰────
              help: Docker volume names are unique per engine; set a different `name = ...` on one of them (the first is at $DIR/main.hcl:8:22)

            Error: terrace::config::invalid_value

              × invalid restart policy "sometimes"
                ╭─[$DIR/main.hcl:14:16]
             13 │     image    = "nginx:1"
             14 │     restart  = "sometimes"
                ·                ─────┬─────
                ·                     ╰── not a restart policy
             15 │     mounts   = [{ source = "data", target = "rel" }]
                ╰────
              help: restart must be "no", "always", "unless-stopped" or "on-failure", or "on-failure:N" with a number of retries

            Error: terrace::config::invalid_value

              × invalid mount target "rel": not an absolute path
                ╭─[$DIR/main.hcl:15:45]
             14 │     restart  = "sometimes"
             15 │     mounts   = [{ source = "data", target = "rel" }]
                ·                                             ──┬──
                ·                                               ╰── not an absolute path
             16 │     networks = [1, { name = "n", alias = [] }]
                ╰────
              help: a mount target is a path inside the container, e.g. "/var/lib/mysql"

            Error: terrace::config::wrong_type

              × wrong type for "networks[0]": expected a network reference, a network name or { name = ..., aliases = [...] }, found a number
                ╭─[$DIR/main.hcl:16:17]
             15 │     mounts   = [{ source = "data", target = "rel" }]
             16 │     networks = [1, { name = "n", alias = [] }]
                ·                 ┬
                ·                 ╰── this is a number
             17 │     image2   = 1
                ╰────
              help: write it like `networks = [network.farm]`, `networks = ["farm"]` or `networks = [{ name = network.farm.name, aliases = ["db"] }]`

            Error: terrace::config::unknown_attribute

              × unknown attribute "alias" in "networks[1]"
                ╭─[$DIR/main.hcl:16:34]
             15 │     mounts   = [{ source = "data", target = "rel" }]
             16 │     networks = [1, { name = "n", alias = [] }]
                ·                                  ──┬──
                ·                                    ╰── unknown attribute
             17 │     image2   = 1
                ╰────
              help: did you mean "aliases"?

            Error: terrace::config::unknown_attribute

              × unknown attribute "image2" in a container block
                ╭─[$DIR/main.hcl:17:5]
             16 │     networks = [1, { name = "n", alias = [] }]
             17 │     image2   = 1
                ·     ───┬──
                ·        ╰── unknown attribute
             18 │   }
                ╰────
              help: did you mean "image"?
        "#]],
    );
}

#[test]
fn tenant_errors() {
    check(
        &[("a.hcl", PG), ("main.hcl", "tenant \"t\" {\n  for_each = [\"a\"]\n  database {\n    service = service.pg\n    name    = \"t_${each.key}\"\n  }\n  app {\n    image = self.databse.name\n  }\n  app {\n    image = \"x\"\n  }\n}\nservice \"s\" {\n  engine = \"container\"\n  container {\n    image = self.database.name\n  }\n}\n")],
        expect![[r#"
            terrace::config

              × 3 errors in the configuration

            Error: terrace::config::unknown_reference

              × `self` has no attribute "databse"
               ╭─[$DIR/main.hcl:8:13]
             7 │   app {
             8 │     image = self.databse.name
               ·             ──────┬─────
               ·                   ╰── unknown attribute
             9 │   }
               ╰────
              help: did you mean "database"?

            Error: terrace::config::duplicate

              × tenant "t" has more than one app block
                ╭─[$DIR/main.hcl:10:3]
              6 │   }
              7 │   app {
                ·   ─┬─
                ·    ╰── first app block
              8 │     image = self.databse.name
              9 │   }
             10 │   app {
                ·   ─┬─
                ·    ╰── another app block
             11 │     image = "x"
                ╰────
              help: a tenant instance runs one app container; declare other containers as `service` blocks with engine = "container"

            Error: terrace::config::unknown_reference

              × `self` is only available inside a tenant's blocks
                ╭─[$DIR/main.hcl:17:13]
             16 │   container {
             17 │     image = self.database.name
                ·             ──────┬──────
                ·                   ╰── not available here
             18 │   }
                ╰────
              help: inside `tenant "t" { app { ... } }`, `self.database` and `self.volume` are that tenant instance's own, and `self.host` its host in every block of the tenant; elsewhere refer to
                    tenant.t["key"].database
        "#]],
    );
}

#[test]
fn host_errors() {
    check(
        &[("main.hcl", "host \"web1\" {\n  address        = \"10.0.0.10\"\n  host_key_check = \"strct\"\n}\nfile \"f\" {\n  host    = host.web1\n  path    = \"etc/f\"\n  content = \"x\"\n  mode    = \"999\"\n}\npackage \"P\" {\n  host = \"web1\"\n}\npackage \"p2\" {\n  host    = host.web1\n  name    = \"nginx\"\n  state   = \"absent\"\n  version = \"1.0\"\n}\n")],
        expect![[r#"
            terrace::config

              × 2 errors in the configuration

            Error: terrace::config::invalid_value

              × unknown host_key_check "strct"
               ╭─[$DIR/main.hcl:3:20]
             2 │   address        = "10.0.0.10"
             3 │   host_key_check = "strct"
               ·                    ───┬───
               ·                       ╰── not a host key policy
             4 │ }
               ╰────
              help: did you mean "strict"?

            Error: terrace::config::wrong_type

              × wrong type for "host": expected a reference to a host block, found a string
                ╭─[$DIR/main.hcl:12:10]
             11 │ package "P" {
             12 │   host = "web1"
                ·          ───┬──
                ·             ╰── this is a string
             13 │ }
                ╰────
              help: write it like `host = host.db1`
        "#]],
    );
}

#[test]
fn firewall_and_command_errors() {
    check(
        &[("main.hcl", "host \"web1\" { address = \"10.0.0.10\" }\nfirewall_rule \"r\" {\n  host       = host.web1\n  port       = 70000\n  proto      = \"tpc\"\n  allow_from = [\"10.0.0.1/24\", \"example.com\"]\n  comment    = \"a\\nb\"\n}\nfirewall_rule \"s\" {\n  host       = host.web1\n  port       = 22\n  allow_from = [\"10.0.0.0/8\"]\n}\nfirewall_rule \"t\" {\n  host       = host.web1\n  port       = 22\n  proto      = \"tcp\"\n  allow_from = [\"10.0.0.0/8\"]\n}\ncommand \"c\" {\n  host    = host.web1\n  command = \" \"\n  creates = \"relative\"\n}\n")],
        expect![[r#"
            terrace::config

              × 8 errors in the configuration

            Error: terrace::config::invalid_value

              × invalid value for "port": 70000
               ╭─[$DIR/main.hcl:4:16]
             3 │   host       = host.web1
             4 │   port       = 70000
               ·                ──┬──
               ·                  ╰── out of range
             5 │   proto      = "tpc"
               ╰────
              help: "port" must be a whole number from 1 to 65535

            Error: terrace::config::invalid_value

              × invalid value for "proto": "tpc"
               ╭─[$DIR/main.hcl:5:16]
             4 │   port       = 70000
             5 │   proto      = "tpc"
               ·                ──┬──
               ·                  ╰── not a protocol
             6 │   allow_from = ["10.0.0.1/24", "example.com"]
               ╰────
              help: proto must be "tcp" or "udp"

            Error: terrace::config::invalid_value

              × invalid allow_from[0] "10.0.0.1/24": the network has host bits set; did you mean "10.0.0.0/24"?
               ╭─[$DIR/main.hcl:6:17]
             5 │   proto      = "tpc"
             6 │   allow_from = ["10.0.0.1/24", "example.com"]
               ·                 ──────┬──────
               ·                       ╰── not an IP address or CIDR network
             7 │   comment    = "a\nb"
               ╰────
              help: allow_from takes IPv4 or IPv6 addresses and networks such as "10.0.0.10", "10.0.0.0/24" or "fd00::/8"; host names are not resolved

            Error: terrace::config::invalid_value

              × invalid allow_from[1] "example.com": not an IP address or CIDR network
               ╭─[$DIR/main.hcl:6:32]
             5 │   proto      = "tpc"
             6 │   allow_from = ["10.0.0.1/24", "example.com"]
               ·                                ──────┬──────
               ·                                      ╰── not an IP address or CIDR network
             7 │   comment    = "a\nb"
               ╰────
              help: allow_from takes IPv4 or IPv6 addresses and networks such as "10.0.0.10", "10.0.0.0/24" or "fd00::/8"; host names are not resolved

            Error: terrace::config::invalid_value

              × invalid comment: the comment must be one line
               ╭─[$DIR/main.hcl:7:16]
             6 │   allow_from = ["10.0.0.1/24", "example.com"]
             7 │   comment    = "a\nb"
               ·                ───┬──
               ·                   ╰── this comment
             8 │ }
               ╰────
              help: shorten the comment to one short line

            Error: terrace::config::duplicate

              × firewall rule for port 22/tcp is managed twice on host "web1"
                ╭─[$DIR/main.hcl:16:16]
             10 │   host       = host.web1
             11 │   port       = 22
                ·                ─┬
                ·                 ╰── first used here
             12 │   allow_from = ["10.0.0.0/8"]
             13 │ }
             14 │ firewall_rule "t" {
             15 │   host       = host.web1
             16 │   port       = 22
                ·                ─┬
                ·                 ╰── firewall_rule.t has firewall rule for port 22/tcp here
             17 │   proto      = "tcp"
                ╰────
              help: two blocks would manage the same object on one host; change or remove one of them (the first is at $DIR/main.hcl:11:16)

            Error: terrace::config::invalid_value

              × the command is empty
                ╭─[$DIR/main.hcl:22:13]
             21 │   host    = host.web1
             22 │   command = " "
                ·             ─┬─
                ·              ╰── empty
             23 │   creates = "relative"
                ╰────
              help: write the shell command to run, e.g. command = "mkswap /swapfile"

            Error: terrace::config::invalid_value

              × invalid creates "relative": not an absolute path
                ╭─[$DIR/main.hcl:23:13]
             22 │   command = " "
             23 │   creates = "relative"
                ·             ─────┬────
                ·                  ╰── not an absolute path
             24 │ }
                ╰────
              help: `creates` is the absolute path of a file the command makes; the command is skipped while it exists
        "#]],
    );
}

#[test]
fn depends_on_and_restart_on() {
    check(
        &[("main.hcl", "host \"web1\" { address = \"10.0.0.10\" }\nhost \"web2\" { address = \"10.0.0.11\" }\nfile \"f\" {\n  host    = host.web2\n  path    = \"/etc/f\"\n  content = \"x\"\n}\npackage \"p\" {\n  host       = host.web1\n  depends_on = [\"x\", var.y]\n}\nvariable \"y\" { default = \"y\" }\ndaemon \"d\" {\n  host       = host.web1\n  restart_on = [file.f, package.p, \"x\"]\n}\n")],
        expect![[r#"
            terrace::config

              × 3 errors in the configuration

            Error: terrace::config::invalid_identifier

              × invalid package name "p"
               ╭─[$DIR/main.hcl:8:9]
             7 │ }
             8 │ package "p" {
               ·         ─┬─
               ·          ╰── the defaulted name is not a valid package name
             9 │   host       = host.web1
               ╰────
              help: Debian package names have at least two characters: lower-case letters, digits, `+`, `-` and `.`, starting with a letter or digit (e.g. "redis-server"), optionally followed by `:arch`; the
                    name defaults to "p" here, set `name = ...` in the block to choose another

            Error: terrace::config::wrong_type

              × depends_on[0] is not a reference to a block
                ╭─[$DIR/main.hcl:10:17]
              9 │   host       = host.web1
             10 │   depends_on = ["x", var.y]
                ·                 ─┬─
                ·                  ╰── not a block reference
             11 │ }
                ╰────
              help: depends_on lists blocks whose resources are created first, such as "service", "tenant", "database", "image", "network", "volume", "file", "package", "daemon", "firewall_rule" or "command";
                    write it like `depends_on = [package.nginx, file.site]`

            Error: terrace::config::wrong_type

              × depends_on[1] is not a reference to a block
                ╭─[$DIR/main.hcl:10:22]
              9 │   host       = host.web1
             10 │   depends_on = ["x", var.y]
                ·                      ──┬──
                ·                        ╰── `var` is not a block with resources
             11 │ }
                ╰────
              help: depends_on lists blocks whose resources are created first, such as "service", "tenant", "database", "image", "network", "volume", "file", "package", "daemon", "firewall_rule" or "command";
                    write it like `depends_on = [package.nginx, file.site]`
        "#]],
    );
}

#[test]
fn template_errors() {
    check(
        &[("main.hcl", "host \"web1\" { address = \"10.0.0.10\" }\nfile \"a\" {\n  host   = host.web1\n  path   = \"/etc/a\"\n  source = \"a.tpl\"\n}\nfile \"b\" {\n  host   = host.web1\n  path   = \"/etc/b\"\n  source = \"missing.tpl\"\n}\n"), ("a.tpl", "hello ${var.nope} ${host.web1.address}\n")],
        expect![[r#"
            terrace::config

              × 2 errors in the configuration

            Error: terrace::config::unknown_reference

              × no variable named "nope"
               ╭─[$DIR/a.tpl:1:9]
             1 │ hello ${var.nope} ${host.web1.address}
               ·         ────┬───
               ·             ╰── not declared
               ╰────
              help: no variable is declared; add `variable "nope" {}`

            Error: terrace::config::io

              × cannot read template "missing.tpl": No such file or directory (os error 2)
                ╭─[$DIR/main.hcl:10:12]
              9 │   path   = "/etc/b"
             10 │   source = "missing.tpl"
                ·            ──────┬──────
                ·                  ╰── no such file
             11 │ }
                ╰────
              help: `source` is a template file, relative to the configuration directory ($DIR); create $DIR/missing.tpl or fix the path
        "#]],
    );
}

#[test]
fn secret_is_scrubbed() {
    check(
        &[("main.hcl", "variable \"pw\" {\n  sensitive = true\n  default   = \"hunter2-secret\"\n}\nhost \"h\" {\n  address = \"10.0.0.1\"\n  port    = var.pw\n}\n")],
        expect![[r#"
            terrace::config

              × 1 error in the configuration

            Error: terrace::config::wrong_type

              × wrong type for "port": expected a number, found a string
               ╭─[$DIR/main.hcl:7:13]
             6 │   address = "10.0.0.1"
             7 │   port    = var.pw
               ·             ───┬──
               ·                ╰── this is a string
             8 │ }
               ╰────
              help: write it like `port = 22`
        "#]],
    );
}

#[test]
fn hosted_value_errors() {
    check(
        &[(
            "main.hcl",
            "host \"web1\" { address = \"10.0.0.10\" }\nfile \"f\" {\n  host    = host.web1\n  path    = \"etc/f\"\n  content = \"x\"\n  mode    = \"999\"\n  owner   = \"-root\"\n}\npackage \"P\" {\n  host = host.web1\n}\npackage \"p2\" {\n  host    = host.web1\n  name    = \"nginx\"\n  state   = \"absent\"\n  version = \"1.0\"\n}\ndaemon \"d\" {\n  host = host.web1\n  name = \"-x\"\n}\n",
        )],
        expect![[r#"
            terrace::config

              × 6 errors in the configuration

            Error: terrace::config::invalid_value

              × invalid path "etc/f": not an absolute path
               ╭─[$DIR/main.hcl:4:13]
             3 │   host    = host.web1
             4 │   path    = "etc/f"
               ·             ───┬───
               ·                ╰── not an absolute path
             5 │   content = "x"
               ╰────
              help: a file's path on the host is absolute, e.g. "/etc/nginx/sites-available/app"

            Error: terrace::config::invalid_value

              × invalid file mode "999"
               ╭─[$DIR/main.hcl:6:13]
             5 │   content = "x"
             6 │   mode    = "999"
               ·             ──┬──
               ·               ╰── not an octal file mode
             7 │   owner   = "-root"
               ╰────
              help: write the mode as three or four octal digits (0-7), e.g. mode = "0644" or mode = "0755"

            Error: terrace::config::invalid_value

              × invalid owner "-root"
               ╭─[$DIR/main.hcl:7:13]
             6 │   mode    = "999"
             7 │   owner   = "-root"
               ·             ───┬───
               ·                ╰── not a valid owner name
             8 │ }
               ╰────
              help: a owner is an account name of letters, digits, `_`, `-` and `.`, e.g. "www-data"

            Error: terrace::config::invalid_identifier

              × invalid package name "P"
                ╭─[$DIR/main.hcl:9:9]
              8 │ }
              9 │ package "P" {
                ·         ─┬─
                ·          ╰── the defaulted name is not a valid package name
             10 │   host = host.web1
                ╰────
              help: Debian package names have at least two characters: lower-case letters, digits, `+`, `-` and `.`, starting with a letter or digit (e.g. "redis-server"), optionally followed by `:arch`; the
                    name defaults to "P" here, set `name = ...` in the block to choose another

            Error: terrace::config::invalid_value

              × a version makes no sense with state = "absent"
                ╭─[$DIR/main.hcl:15:13]
             14 │   name    = "nginx"
             15 │   state   = "absent"
                ·             ────┬───
                ·                 ╰── the package is removed
             16 │   version = "1.0"
                ╰────
              help: remove `version`, or set state = "present"

            Error: terrace::config::invalid_identifier

              × invalid service name "-x"
                ╭─[$DIR/main.hcl:20:10]
             19 │   host = host.web1
             20 │   name = "-x"
                ·          ──┬─
                ·            ╰── not a valid service name
             21 │ }
                ╰────
              help: service names have letters, digits and `@._:-`, and do not start with `-` or `.` (e.g. "nginx" or "php8.2-fpm")
        "#]],
    );
}

#[test]
fn restart_on_items() {
    check(
        &[(
            "main.hcl",
            "host \"web1\" { address = \"10.0.0.10\" }\nhost \"web2\" { address = \"10.0.0.11\" }\nfile \"f\" {\n  host    = host.web2\n  path    = \"/etc/f\"\n  content = \"x\"\n}\npackage \"nginx\" {\n  host = host.web1\n}\ndaemon \"d\" {\n  host       = host.web1\n  restart_on = [file.f, package.nginx, \"x\"]\n  depends_on = [package.nginx, file.f[\"k\"], local.x]\n}\nlocals { x = 1 }\n",
        )],
        expect![[r#"
            terrace::config

              × 5 errors in the configuration

            Error: terrace::config::invalid_value

              × restart_on[0] is a file on host "web2", but this service runs on host "web1"
                ╭─[$DIR/main.hcl:13:17]
             12 │   host       = host.web1
             13 │   restart_on = [file.f, package.nginx, "x"]
                ·                 ───┬──
                ·                    ╰── file.f is on host "web2"
             14 │   depends_on = [package.nginx, file.f["k"], local.x]
                ╰────
              help: a service restarts when files on its own host change; refer to files with the same `host`

            Error: terrace::config::wrong_type

              × restart_on[1] is not a file reference: found an object
                ╭─[$DIR/main.hcl:13:25]
             12 │   host       = host.web1
             13 │   restart_on = [file.f, package.nginx, "x"]
                ·                         ──────┬──────
                ·                               ╰── a package reference, not a file
             14 │   depends_on = [package.nginx, file.f["k"], local.x]
                ╰────
              help: restart_on lists the file blocks the service reads, e.g. `restart_on = [file.nginx_site]` or `[file.conf["key"]]`; the service restarts when their content changes

            Error: terrace::config::wrong_type

              × restart_on[2] is not a file reference: found a string
                ╭─[$DIR/main.hcl:13:40]
             12 │   host       = host.web1
             13 │   restart_on = [file.f, package.nginx, "x"]
                ·                                        ─┬─
                ·                                         ╰── not a file block
             14 │   depends_on = [package.nginx, file.f["k"], local.x]
                ╰────
              help: restart_on lists the file blocks the service reads, e.g. `restart_on = [file.nginx_site]` or `[file.conf["key"]]`; the service restarts when their content changes

            Error: terrace::config::wrong_type

              × depends_on[1] is not a reference to a block
                ╭─[$DIR/main.hcl:14:32]
             13 │   restart_on = [file.f, package.nginx, "x"]
             14 │   depends_on = [package.nginx, file.f["k"], local.x]
                ·                                ─────┬─────
                ·                                     ╰── file.f has no for_each; refer to it as file.f
             15 │ }
                ╰────
              help: depends_on lists blocks whose resources are created first, such as "service", "tenant", "database", "image", "network", "volume", "file", "package", "daemon", "firewall_rule" or "command";
                    write it like `depends_on = [package.nginx, file.site]`

            Error: terrace::config::wrong_type

              × depends_on[2] is not a reference to a block
                ╭─[$DIR/main.hcl:14:45]
             13 │   restart_on = [file.f, package.nginx, "x"]
             14 │   depends_on = [package.nginx, file.f["k"], local.x]
                ·                                             ───┬───
                ·                                                ╰── `local` is not a block with resources
             15 │ }
                ╰────
              help: depends_on lists blocks whose resources are created first, such as "service", "tenant", "database", "image", "network", "volume", "file", "package", "daemon", "firewall_rule" or "command";
                    write it like `depends_on = [package.nginx, file.site]`
        "#]],
    );
}

#[test]
fn sensitive_value_in_a_message_is_scrubbed() {
    check(
        &[
            ("a.hcl", PG),
            (
                "main.hcl",
                "variable \"db\" {\n  sensitive = true\n  default   = \"bad name secret\"\n}\ndatabase \"d\" {\n  service = service.pg\n  name    = var.db\n}\n",
            ),
        ],
        expect![[r#"
            terrace::config

              × 1 error in the configuration

            Error: terrace::config::invalid_identifier

              × invalid database name "(sensitive value)": the name contains a space
               ╭─[$DIR/main.hcl:7:13]
             6 │   service = service.pg
             7 │   name    = var.db
               ·             ───┬──
               ·                ╰── this value is not a valid SQL name
             8 │ }
               ╰────
              help: use only ASCII letters, digits and underscores, starting with a letter or underscore, at most 63 bytes (e.g. wp_calibre_web)
        "#]],
    );
}

#[test]
fn block_schema_from_the_provider_schema() {
    // `firewall_rule` has no schema of its own in the language: its attributes, which
    // are required, and its example come from the SSH provider's `host_firewall_rule`.
    check(
        &[(
            "main.hcl",
            "host \"web1\" { address = \"10.0.0.10\" }\nfirewall_rule \"r\" {\n  host      = host.web1\n  alow_from = [\"10.0.0.0/8\"]\n  content   = \"x\"\n}\nfirewall_rule \"a\" \"b\" {}\n",
        )],
        expect![[r#"
            terrace::config

              × 8 errors in the configuration

            Error: terrace::config::missing_attribute

              × missing required attribute "port"
               ╭─[$DIR/main.hcl:2:1]
             1 │ host "web1" { address = "10.0.0.10" }
             2 │ firewall_rule "r" {
               · ────────┬────────
               ·         ╰── this firewall_rule block has no "port"
             3 │   host      = host.web1
               ╰────
              help: add `port = ...` to the block

            Error: terrace::config::missing_attribute

              × missing required attribute "allow_from"
               ╭─[$DIR/main.hcl:2:1]
             1 │ host "web1" { address = "10.0.0.10" }
             2 │ firewall_rule "r" {
               · ────────┬────────
               ·         ╰── this firewall_rule block has no "allow_from"
             3 │   host      = host.web1
               ╰────
              help: add `allow_from = ...` to the block

            Error: terrace::config::unknown_attribute

              × unknown attribute "alow_from" in a firewall_rule block
               ╭─[$DIR/main.hcl:4:3]
             3 │   host      = host.web1
             4 │   alow_from = ["10.0.0.0/8"]
               ·   ────┬────
               ·       ╰── unknown attribute
             5 │   content   = "x"
               ╰────
              help: did you mean "allow_from"?

            Error: terrace::config::unknown_attribute

              × unknown attribute "content" in a firewall_rule block
               ╭─[$DIR/main.hcl:5:3]
             4 │   alow_from = ["10.0.0.0/8"]
             5 │   content   = "x"
               ·   ───┬───
               ·      ╰── unknown attribute
             6 │ }
               ╰────
              help: did you mean "comment"?

            Error: terrace::config::missing_attribute

              × missing required attribute "host"
               ╭─[$DIR/main.hcl:7:1]
             6 │ }
             7 │ firewall_rule "a" "b" {}
               · ──────────┬──────────
               ·           ╰── this firewall_rule block has no "host"
               ╰────
              help: add `host = ...` to the block

            Error: terrace::config::missing_attribute

              × missing required attribute "port"
               ╭─[$DIR/main.hcl:7:1]
             6 │ }
             7 │ firewall_rule "a" "b" {}
               · ──────────┬──────────
               ·           ╰── this firewall_rule block has no "port"
               ╰────
              help: add `port = ...` to the block

            Error: terrace::config::missing_attribute

              × missing required attribute "allow_from"
               ╭─[$DIR/main.hcl:7:1]
             6 │ }
             7 │ firewall_rule "a" "b" {}
               · ──────────┬──────────
               ·           ╰── this firewall_rule block has no "allow_from"
               ╰────
              help: add `allow_from = ...` to the block

            Error: terrace::config::invalid_label

              × a firewall_rule block takes 1 label, found 2
               ╭─[$DIR/main.hcl:7:19]
             6 │ }
             7 │ firewall_rule "a" "b" {}
               ·                   ─┬─
               ·                    ╰── wrong number of labels
               ╰────
              help: write it as `firewall_rule "name" { host = host.web1, port = 6379, allow_from = ["10.0.0.0/24", host.web1.address] }`
        "#]],
    );
}

#[test]
fn provider_checks_at_the_value() {
    // The provider's own rules, reached through its schema: a file path ending in `/`
    // (once accepted here and refused only by the provider at plan time), and the
    // nftables comment length, which depends on the resource's address.
    check(
        &[(
            "main.hcl",
            "host \"web1\" { address = \"10.0.0.10\" }\nfile \"f\" {\n  host    = host.web1\n  path    = \"/etc/app/\"\n  content = \"x\"\n}\nfirewall_rule \"r\" {\n  host       = host.web1\n  port       = 22\n  allow_from = [\" 10.0.0.0/8\"]\n  comment    = \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789abcdefghij\"\n}\n",
        )],
        expect![[r#"
            terrace::config

              × 2 errors in the configuration

            Error: terrace::config::invalid_value

              × invalid path "/etc/app/": a file path does not end with `/`
               ╭─[$DIR/main.hcl:4:13]
             3 │   host    = host.web1
             4 │   path    = "/etc/app/"
               ·             ─────┬─────
               ·                  ╰── a file path does not end with `/`
             5 │   content = "x"
               ╰────
              help: a file's path on the host is absolute, e.g. "/etc/nginx/sites-available/app"

            Error: terrace::config::invalid_value

              × invalid comment: the rule's nftables comment "terrace:firewall_rule.r # 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789abcdefghij" would be
              │ 136 bytes, more than the 128 nftables keeps
                ╭─[$DIR/main.hcl:11:16]
             10 │   allow_from = [" 10.0.0.0/8"]
             11 │   comment    = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789abcdefghij"
                ·                ────────────────────────────────────────────────────────┬───────────────────────────────────────────────────────
                ·                                                                        ╰── this comment
             12 │ }
                ╰────
              help: shorten the comment to one short line
        "#]],
    );
}

#[test]
fn lifecycle_unknown_ignored_attribute_and_non_literal_values() {
    check(
        &[
            ("a.hcl", PG),
            (
                "main.hcl",
                "network \"net\" {\n  lifecycle {\n    prevent_destroy = var.x\n    ignore_changes  = [labls, \"driver\", 1]\n  }\n  lifecycle {}\n}\n",
            ),
        ],
        expect![[r#"
            terrace::config

              × 4 errors in the configuration

            Error: terrace::config::wrong_type

              × prevent_destroy must be the literal true or false
               ╭─[$DIR/main.hcl:3:23]
             2 │   lifecycle {
             3 │     prevent_destroy = var.x
               ·                       ──┬──
               ·                         ╰── not a literal bool
             4 │     ignore_changes  = [labls, "driver", 1]
               ╰────
              help: write `prevent_destroy = true`; it cannot depend on variables

            Error: terrace::config::unknown_attribute

              × ignore_changes names "labls", which the block's resources (docker_network) do not have
               ╭─[$DIR/main.hcl:4:24]
             3 │     prevent_destroy = var.x
             4 │     ignore_changes  = [labls, "driver", 1]
               ·                        ──┬──
               ·                          ╰── unknown attribute
             5 │   }
               ╰────
              help: attributes that can be ignored here: "driver", "internal" or "name"

            Error: terrace::config::wrong_type

              × ignore_changes[2] is not an attribute name
               ╭─[$DIR/main.hcl:4:41]
             3 │     prevent_destroy = var.x
             4 │     ignore_changes  = [labls, "driver", 1]
               ·                                         ┬
               ·                                         ╰── not an attribute name
             5 │   }
               ╰────
              help: write it like `ignore_changes = [connection_limit, owner]`

            Error: terrace::config::duplicate

              × a block has two lifecycle blocks
               ╭─[$DIR/main.hcl:2:3]
             1 │ network "net" {
             2 │   lifecycle {
               ·   ────┬────
               ·       ╰── first lifecycle block
             3 │     prevent_destroy = var.x
               ╰────
               ╭─[$DIR/main.hcl:6:3]
             5 │   }
             6 │   lifecycle {}
               ·   ────┬────
               ·       ╰── second lifecycle block
             7 │ }
               ╰────
              help: merge them into one
        "#]],
    );
}

#[test]
fn null_for_a_required_attribute() {
    check(
        &[
            ("a.hcl", PG),
            (
                "main.hcl",
                "database \"d\" {\n  service = null\n  name    = \"d\"\n  charset = null\n}\n",
            ),
        ],
        expect![[r#"
            terrace::config

              × 1 error in the configuration

            Error: terrace::config::missing_attribute

              × "service" is required and cannot be null
               ╭─[$DIR/main.hcl:2:13]
             1 │ database "d" {
             2 │   service = null
               ·             ──┬─
               ·               ╰── this is null
             3 │   name    = "d"
               ╰────
              help: give "service" a value
        "#]],
    );
}

const FARM_HOSTS: &str = r#"
host "web" {
  for_each = { a = "10.0.0.1", b = "10.0.0.2" }
  address  = each.value
  memory   = "1g"
}
service "db" {
  for_each = host.web
  host     = each.value
  engine   = "container"
  container {
    image  = "terrace/mariadb:1"
    memory = "512m"
  }
}
"#;

#[test]
fn placement_errors() {
    // Tenants that fit nowhere, and a rule over a host without memory.
    check(
        &[(
            "main.hcl",
            &format!(
                r#"{FARM_HOSTS}
host "spare" {{
  address = "10.0.0.3"
}}
tenant "site" {{
  for_each = {{ s1 = "384m", s2 = "384m", s3 = "256m" }}
  placement {{
    hosts    = host.web
    strategy = "fill"
  }}
  app {{
    image  = "terrace/busybox:1"
    memory = each.value
  }}
}}
tenant "big" {{
  for_each = {{ x = "2g" }}
  placement {{ hosts = host.web }}
  app {{
    image  = "terrace/busybox:1"
    memory = each.value
  }}
}}
tenant "odd" {{
  placement {{
    hosts    = [host.spare]
    strategy = "fil"
  }}
}}
tenant "other" {{
  placement {{ hosts = [host.spare] }}
}}
tenant "nohosts" {{
  placement {{}}
}}
"#
            ),
        )],
        expect![[r#"
            terrace::config

              × 5 errors in the configuration

            Error: terrace::config::capacity

              × 1 tenant(s) do not fit on any host: tenant.site["s3"] needs 256 MiB; host.web["a"]: 128 MiB free of 1 GiB, host.web["b"]: 128 MiB free of 1 GiB
                ╭─[$DIR/main.hcl:23:16]
             22 │   placement {
             23 │     hosts    = host.web
                ·                ────┬───
                ·                    ╰── no room left on these hosts
             24 │     strategy = "fill"
                ╰────
              help: add a host to `hosts`, raise a host's `memory`, or lower the tenants' app memory limits; tenants already placed stay where they are

            Error: terrace::config::capacity

              × 1 tenant(s) do not fit on any host: tenant.big["x"] needs 2 GiB; host.web["a"]: 512 MiB free of 1 GiB, host.web["b"]: 512 MiB free of 1 GiB
                ╭─[$DIR/main.hcl:33:23]
             32 │   for_each = { x = "2g" }
             33 │   placement { hosts = host.web }
                ·                       ────┬───
                ·                           ╰── no room left on these hosts
             34 │   app {
                ╰────
              help: add a host to `hosts`, raise a host's `memory`, or lower the tenants' app memory limits; tenants already placed stay where they are

            Error: terrace::config::invalid_value

              × unknown placement strategy "fil"
                ╭─[$DIR/main.hcl:42:16]
             41 │     hosts    = [host.spare]
             42 │     strategy = "fil"
                ·                ──┬──
                ·                  ╰── not a strategy
             43 │   }
                ╰────
              help: did you mean "fill"?

            Error: terrace::config::missing_attribute

              × host.spare has no "memory", which placement needs
                ╭─[$DIR/main.hcl:46:23]
             45 │ tenant "other" {
             46 │   placement { hosts = [host.spare] }
                ·                       ──────┬─────
                ·                             ╰── places tenants by memory
             47 │ }
                ╰────
              help: add `memory = "8g"` to host.spare: the memory tenants may reserve there (the plan also checks the engine's live memory)

            Error: terrace::config::missing_attribute

              × missing required attribute "hosts"
                ╭─[$DIR/main.hcl:49:3]
             48 │ tenant "nohosts" {
             49 │   placement {}
                ·   ────┬────
                ·       ╰── this placement block has no "hosts"
             50 │ }
                ╰────
              help: add `hosts = ...` to the block
        "#]],
    );
}

#[test]
fn over_full_hosts_and_hosts_gone_from_under_tenants() {
    let inputs = VarInputs {
        placements: [
            (
                r#"tenant.site["s1"]"#.to_string(),
                r#"host.web["c"]"#.to_string(),
            ),
            (
                r#"tenant.site["s2"]"#.to_string(),
                r#"host.web["c"]"#.to_string(),
            ),
            (
                r#"tenant.site["s3"]"#.to_string(),
                r#"host.web["a"]"#.to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        ..VarInputs::default()
    };
    check_with(
        &[(
            "main.hcl",
            &format!(
                r#"{FARM_HOSTS}
tenant "site" {{
  for_each = {{ s1 = "128m", s2 = "128m", s3 = "128m" }}
  placement {{ hosts = host.web }}
  app {{
    image  = "terrace/busybox:1"
    memory = each.value
  }}
}}
tenant "pinned" {{
  for_each = {{ p1 = "384m", p2 = "384m" }}
  host     = host.web["b"]
  app {{
    image  = "terrace/busybox:1"
    memory = each.value
  }}
}}
"#
            ),
        )],
        &inputs,
        expect![[r#"
            terrace::config

              × 2 errors in the configuration

            Error: terrace::config::capacity

              × host.web["b"] is over-full: its containers reserve 1.25 GiB of the 1 GiB it declares (256 MiB over): service.db["b"].container 512 MiB, tenant.pinned["p1"].app 384 MiB, tenant.pinned["p2"].app
              │ 384 MiB
               ╭─[$DIR/main.hcl:5:14]
             4 │   address  = each.value
             5 │   memory   = "1g"
               ·              ──┬─
               ·                ╰── declared here
             6 │ }
               ╰────
              help: move tenants off host.web["b"] (`host = ...` on the tenant, or a placement rule over several hosts), lower their memory limits, or raise this host's memory

            Error: terrace::config::capacity

              × host.web["c"] is no longer configured, but these tenants are placed there: tenant.site["s1"], tenant.site["s2"]
                ╭─[$DIR/main.hcl:19:3]
             18 │   for_each = { s1 = "128m", s2 = "128m", s3 = "128m" }
             19 │   placement { hosts = host.web }
                ·   ────┬────
                ·       ╰── placed them there
             20 │   app {
                ╰────
              help: declare host.web["c"] again to keep them where they are, or move each one explicitly: `host = host.NAME["KEY"]` on the tenant (for one instance: `host = each.key == "KEY" ?
                    host.NAME["KEY"] : null`); the plan then re-creates its resources on the new host
        "#]],
    );
}
