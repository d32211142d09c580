//! The registry of labelled top-level block kinds: one line per kind, holding the
//! names every layer uses for it (block keyword, namespace and reference root, the noun
//! in messages). Everything that must handle every kind matches on [`Kind`]
//! exhaustively, so the compiler lists the places a new kind needs.

use terrace_provider::ResourceSchema;

/// The registry: one line per kind, expanded by `$m` (this file declares [`Kind`] and
/// its names from it; `syntax.rs` the block schemas; `kinds/mod.rs` one module per kind
/// and the evaluation dispatch).
///
/// A line is `Variant => module, "noun", "example body", owns resources, shape;` where
/// the module name is also the block keyword, namespace and reference root, and the
/// shape is either `composite(SCHEMA)` (a hand-written kind whose block schema is the
/// static `SCHEMA` of `syntax.rs`) or `host(...)`/`docker(...)`: one block instance is
/// one resource of the named type, on a host's SSH provider or a Docker engine, whose
/// block attributes come from the provider's schema; `block = [...]` adds attributes
/// the kind reads itself and `defaulted = [...]` lists required attributes the kind
/// fills in when the block leaves them out.
macro_rules! with_registry {
    ($m:ident) => {
        $m! {
            Host => host, "host", "{ ... }", false, composite(HOST);
            Service => service, "service", "{ ... }", true, composite(SERVICE);
            Tenant => tenant, "tenant", "{ ... }", true, composite(TENANT);
            Database => database, "database", "{ ... }", true, composite(DATABASE);
            Image => image, "image", "{ ... }", true, docker("docker_image", block = [], defaulted = []);
            Network => network, "network", "{}", true, docker("docker_network", block = [], defaulted = ["name"]);
            Volume => volume, "volume", "{}", true, docker("docker_volume", block = [], defaulted = ["name"]);
            File => file, "file", "{ ... }", true, host("host_file", block = ["source"], defaulted = []);
            Package => package, "package", "{ ... }", true, host("host_package", block = [], defaulted = ["name"]);
            Daemon => daemon, "daemon", "{ ... }", true, host("host_service", block = [], defaulted = ["name"]);
            FirewallRule => firewall_rule, "firewall rule", "{ ... }", true, host("host_firewall_rule", block = [], defaulted = []);
            Command => command, "command", "{ ... }", true, host("host_command", block = [], defaulted = []);
            Output => output, "output", "{ value = ... }", false, composite(OUTPUT);
        }
    };
}
pub(crate) use with_registry;

/// The provider schemas the binary gives the language, by resource type (the
/// language names no provider crate).
#[derive(Clone, Copy)]
pub(crate) struct Schemas<'a>(pub &'a dyn Fn(&str) -> Option<&'static ResourceSchema>);

impl Schemas<'_> {
    /// The schema of a one-to-one kind's resource type; `load` checks that every one
    /// exists before anything asks.
    pub(crate) fn of(&self, rk: &ResourceKind) -> &'static ResourceSchema {
        (self.0)(rk.type_name).expect("load checks that every resource kind has a schema")
    }

    /// The resource types of the registry that have no schema.
    pub(crate) fn missing(&self) -> Vec<&'static str> {
        Kind::ALL
            .iter()
            .filter_map(|k| match k.shape() {
                Shape::Resource(rk) if (self.0)(rk.type_name).is_none() => Some(rk.type_name),
                _ => None,
            })
            .collect()
    }
}

/// Where the resources of a one-to-one kind live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// On a host (`host = host.NAME` required), through its SSH provider.
    Host,
    /// On the local Docker engine, or a host's (`host = host.NAME` optional).
    Docker,
}

/// What a kind's blocks lower to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Hand-written: its block schema is in `syntax.rs`, its evaluation in `kinds/`.
    Composite,
    /// One resource per block instance, decoded against the provider's schema.
    Resource(ResourceKind),
}

/// A one-to-one kind: its resource type and what its blocks add to the type's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResourceKind {
    /// The resource type, whose schema the binary provides.
    pub type_name: &'static str,
    /// Where its resources live.
    pub placement: Placement,
    /// Block attributes the kind reads itself, beside the schema's.
    pub block_only: &'static [&'static str],
    /// Required attributes the kind fills in when the block leaves them out.
    pub defaulted: &'static [&'static str],
}

/// The [`Shape`] of a registry line.
macro_rules! shape {
    (composite ($schema:ident)) => {
        Shape::Composite
    };
    ($placement:ident ($type:literal, block = [$($b:literal),*], defaulted = [$($d:literal),*])) => {
        Shape::Resource(ResourceKind {
            type_name: $type,
            placement: shape!(@placement $placement),
            block_only: &[$($b),*],
            defaulted: &[$($d),*],
        })
    };
    (@placement host) => { Placement::Host };
    (@placement docker) => { Placement::Docker };
}

/// Declares [`Kind`] and its names from the registry.
macro_rules! declare_kinds {
    ($($variant:ident => $module:ident, $noun:literal, $body:literal, $resources:literal, $shape:ident $args:tt;)*) => {
        /// A labelled top-level block kind (`variable` and `locals` are not kinds: they
        /// have no namespace of blocks and own no resources).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) enum Kind {
            $(
                #[doc = concat!("`", stringify!($module), "` blocks.")]
                $variant,
            )*
        }

        impl Kind {
            /// Every kind, in the order help texts list them (and nodes are ordered).
            pub(crate) const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The block keyword, which is also its namespace and reference root.
            pub(crate) fn keyword(self) -> &'static str {
                match self {
                    $(Kind::$variant => stringify!($module),)*
                }
            }

            /// What messages call one block of this kind (`no firewall rule named "x"`).
            pub(crate) fn noun(self) -> &'static str {
                match self {
                    $(Kind::$variant => $noun,)*
                }
            }

            /// The body of a declaration example (`{}` when nothing is required).
            pub(crate) fn example_body(self) -> &'static str {
                match self {
                    $(Kind::$variant => $body,)*
                }
            }

            /// True if its blocks own resources (what `depends_on` may list).
            pub(crate) fn owns_resources(self) -> bool {
                match self {
                    $(Kind::$variant => $resources,)*
                }
            }

            /// What its blocks lower to.
            pub(crate) fn shape(self) -> Shape {
                match self {
                    $(Kind::$variant => shape!($shape $args),)*
                }
            }
        }
    };
}

with_registry!(declare_kinds);

impl Kind {
    /// Number of kinds (namespaces are stored in arrays indexed by kind).
    pub(crate) const COUNT: usize = Kind::ALL.len();

    /// The kind whose keyword is `keyword`.
    pub(crate) fn from_keyword(keyword: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.keyword() == keyword)
    }

    /// Position in [`Kind::ALL`], for arrays indexed by kind.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn keywords_round_trip_and_index_matches_all() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(Kind::from_keyword(k.keyword()), Some(*k));
            assert_eq!(k.index(), i);
        }
        assert_eq!(Kind::from_keyword("variable"), None);
    }

    #[test]
    fn resource_kinds_name_their_type() {
        for k in Kind::ALL {
            if let super::Shape::Resource(r) = k.shape() {
                assert!(r.type_name.contains('_'), "{k:?}");
            }
        }
    }
}
