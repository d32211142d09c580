//! `terrace fmt`'s formatter: canonical layout, comments kept, meaning unchanged.

use expect_test::expect;
use terrace_config::{format_hcl, FormatError};

const MESSY: &str = r#"  # The shared server.


variable   "pw"   {   sensitive = true   }
service "pg"{
    engine = "postgres"   # or "mariadb"
  endpoint={ address = "127.0.0.1", port = 5432 }

      admin    = {
          user     = "terrace_admin"
          password = var.pw
      }


  # A comment line does not end an alignment run.
  host = null
}
tenant "app" {   # one per app
  for_each = toset(["a", "b"])
  database {
    service          = service.pg
    # Aligned across this comment.
    name = each.key
  }
  app {
    image = "x"
    env = { A = "1",
            B = "2" }
    command = ["sh", "-c", <<EOT
echo   hi
EOT
    ]
  }

  volume "data" {
  }
  # The end of the tenant.
}
network "farm" {}
"#;

#[test]
fn a_messy_file_gets_the_canonical_layout_with_its_comments() {
    let out = format_hcl(MESSY).unwrap();
    expect![[r##"
        # The shared server.

        variable "pw" { sensitive = true }
        service "pg" {
          engine   = "postgres"   # or "mariadb"
          endpoint = { address = "127.0.0.1", port = 5432 }

          admin = {
              user     = "terrace_admin"
              password = var.pw
          }

          # A comment line does not end an alignment run.
          host = null
        }
        tenant "app" { # one per app
          for_each = toset(["a", "b"])
          database {
            service = service.pg
            # Aligned across this comment.
            name    = each.key
          }
          app {
            image = "x"
            env = { A = "1",
                    B = "2" }
            command = ["sh", "-c", <<EOT
        echo   hi
        EOT
            ]
          }

          volume "data" {}
          # The end of the tenant.
        }
        network "farm" {}
    "##]]
    .assert_eq(&out);
    // Formatting is idempotent.
    assert_eq!(format_hcl(&out).unwrap(), out);
}

#[test]
fn a_formatted_file_is_left_as_it_is() {
    let src = "variable \"x\" {\n  default = 1\n}\n\nnetwork \"n\" {}\n";
    assert_eq!(format_hcl(src).unwrap(), src);
    assert_eq!(format_hcl("").unwrap(), "");
}

#[test]
fn a_file_that_does_not_parse_is_an_error() {
    assert!(matches!(
        format_hcl("a { b = 1  c = 2 }"),
        Err(FormatError::Parse(_))
    ));
}

#[test]
fn every_example_is_formatted_and_keeps_its_meaning() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut seen = 0;
    for dir in std::fs::read_dir(root).unwrap() {
        let dir = dir.unwrap().path();
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for f in files {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "hcl") {
                let src = std::fs::read_to_string(&f).unwrap();
                let out = format_hcl(&src).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                assert_eq!(format_hcl(&out).unwrap(), out, "{}", f.display());
                seen += 1;
            }
        }
    }
    assert!(seen > 3);
}
