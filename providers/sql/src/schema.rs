//! Schemas of the three SQL resource types.
//!
//! The attribute names here are the contract with the config crate, which lowers HCL
//! into exactly these names.

use terrace_provider::{AttrSchema, ResourceSchema};

/// Type name of a database.
pub const DATABASE: &str = "sql_database";
/// Type name of a user (MariaDB account or PostgreSQL login role).
pub const USER: &str = "sql_user";
/// Type name of a database-level grant.
pub const GRANT: &str = "sql_grant";

const DATABASE_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("name").force_new(),
    // MariaDB/MySQL only.
    AttrSchema::plain("charset"),
    AttrSchema::plain("collation"),
    // PostgreSQL only. CREATE DATABASE sets the owner atomically, so a database of
    // the right name that another role owns was not created by terrace.
    AttrSchema::plain("owner").proves_ownership("another role owns it"),
    AttrSchema::plain("connection_limit"),
    // PostgreSQL: the reverse audit (see `access.rs`). Desired empty; observe lists the
    // roles outside the configuration that hold privileges on the database.
    AttrSchema::plain("other_access")
        .output()
        .doc("Roles terrace does not manage here that can reach the database (PostgreSQL), as found; always empty in the configuration."),
];

const USER_ATTRS: &[AttrSchema] = &[
    // Renamed in place (RENAME USER / ALTER ROLE ... RENAME): dropping and re-creating
    // would fail while the user owns a database, and would lose its grants.
    AttrSchema::plain("name"),
    // MariaDB/MySQL only; renamed in place like the name.
    AttrSchema::plain("host"),
    // Generated when unset; servers only keep a hash, so it can never be read back.
    AttrSchema::plain("password")
        .sensitive()
        .computed()
        .unobservable(),
    AttrSchema::plain("connection_limit"),
    // Audit attributes: the provider sets their desired value ([] and "matches") and
    // observe reports what it finds, so any privilege beyond the configuration and a
    // password changed by hand are drift that apply repairs.
    AttrSchema::plain("extra_access"),
    // CREATE USER / CREATE ROLE set the password atomically: a user of the right name
    // whose password is not the one terrace generated is someone else's.
    AttrSchema::plain("password_status")
        .proves_ownership("its password is not the one terrace generated for it"),
    // The SHA-256 of the SCRAM verifier terrace last set (PostgreSQL): lets a plan
    // recognise it without the PBKDF2 rounds of a full check. Never read back or diffed.
    AttrSchema::plain("password_fingerprint").unobservable(),
];

const GRANT_ATTRS: &[AttrSchema] = &[
    AttrSchema::plain("database").force_new(),
    AttrSchema::plain("user").force_new(),
    // MariaDB/MySQL only.
    AttrSchema::plain("host").force_new(),
    AttrSchema::plain("privileges"),
    // PostgreSQL only.
    AttrSchema::plain("revoke_public"),
];

/// The resource types this provider implements: `sql_database`, `sql_user` and
/// `sql_grant`.
pub static SCHEMAS: &[ResourceSchema] = &[
    ResourceSchema {
        type_name: DATABASE,
        description: "database",
        import_id: &["name"],
        adopt_existing: false,
        carries_data: true,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: DATABASE_ATTRS,
    },
    ResourceSchema {
        type_name: USER,
        description: "database user",
        // MariaDB accepts `name@host` too; without a host, the configuration's is used.
        import_id: &["name"],
        adopt_existing: false,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: USER_ATTRS,
    },
    ResourceSchema {
        type_name: GRANT,
        description: "database grant",
        import_id: &["user", "database"],
        adopt_existing: false,
        carries_data: false,
        // DROP USER takes a user's grants with it; DROP DATABASE (PostgreSQL) its ACL.
        lives_in: &[USER, DATABASE],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: GRANT_ATTRS,
    },
];
