//! The registry of labelled top-level block kinds: one line per kind, holding the
//! names every layer uses for it (block keyword, namespace and reference root, the noun
//! in messages). Everything that must handle every kind matches on [`Kind`]
//! exhaustively, so the compiler lists the places a new kind needs.

/// Declares [`Kind`] and its names from one table.
macro_rules! registry {
    ($($variant:ident => $keyword:literal, $noun:literal, $body:literal, $resources:literal;)*) => {
        /// A labelled top-level block kind (`variable` and `locals` are not kinds: they
        /// have no namespace of blocks and own no resources).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) enum Kind {
            $(
                #[doc = concat!("`", $keyword, "` blocks.")]
                $variant,
            )*
        }

        impl Kind {
            /// Every kind, in the order help texts list them (and nodes are ordered).
            pub(crate) const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The block keyword, which is also its namespace and reference root.
            pub(crate) fn keyword(self) -> &'static str {
                match self {
                    $(Kind::$variant => $keyword,)*
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
        }
    };
}

registry! {
    Host => "host", "host", "{ ... }", false;
    Service => "service", "service", "{ ... }", true;
    Tenant => "tenant", "tenant", "{ ... }", true;
    Database => "database", "database", "{ ... }", true;
    Image => "image", "image", "{ ... }", true;
    Network => "network", "network", "{}", true;
    Volume => "volume", "volume", "{}", true;
    File => "file", "file", "{ ... }", true;
    Package => "package", "package", "{ ... }", true;
    Daemon => "daemon", "daemon", "{ ... }", true;
    FirewallRule => "firewall_rule", "firewall rule", "{ ... }", true;
    Command => "command", "command", "{ ... }", true;
}

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
}
