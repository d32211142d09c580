//! The resource dependency graph.
//!
//! An edge `a -> b` means "a depends on b": b is created first and destroyed last.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use terrace_provider::Address;

/// Why a set of dependencies cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A resource depends on an address that neither config nor state knows.
    #[error("{from} depends on {to}, which does not exist")]
    UnknownDependency {
        /// The dependent resource.
        from: Address,
        /// The missing dependency.
        to: Address,
    },
    /// Resources depend on each other in a loop.
    #[error("dependency cycle: {}", cycle_text(.members))]
    Cycle {
        /// Every member of the cycle, in order.
        members: Vec<Address>,
    },
}

fn cycle_text(members: &[Address]) -> String {
    let mut s: Vec<&str> = members.iter().map(Address::as_str).collect();
    if let Some(first) = members.first() {
        s.push(first.as_str());
    }
    s.join(" -> ")
}

/// A directed acyclic graph of resource addresses.
#[derive(Debug, Clone)]
pub struct ResourceGraph {
    graph: DiGraph<Address, ()>,
    index: BTreeMap<Address, NodeIndex>,
}

impl ResourceGraph {
    /// Builds the graph from `(address, dependencies)` pairs and checks it: every
    /// dependency must be a node, and there must be no cycle (a cycle error names every
    /// member, not just one).
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = (&'a Address, &'a [Address])>,
    ) -> Result<Self, GraphError> {
        let nodes: Vec<(&Address, &[Address])> = nodes.into_iter().collect();
        let mut graph = DiGraph::new();
        let mut index = BTreeMap::new();
        for (addr, _) in &nodes {
            index
                .entry((*addr).clone())
                .or_insert_with(|| graph.add_node((*addr).clone()));
        }
        for (addr, deps) in &nodes {
            let from = index[*addr];
            for dep in deps.iter() {
                let Some(&to) = index.get(dep) else {
                    return Err(GraphError::UnknownDependency {
                        from: (*addr).clone(),
                        to: dep.clone(),
                    });
                };
                graph.update_edge(from, to, ());
            }
        }
        let g = ResourceGraph { graph, index };
        g.check_cycles()?;
        Ok(g)
    }

    fn check_cycles(&self) -> Result<(), GraphError> {
        for scc in tarjan_scc(&self.graph) {
            let is_cycle = scc.len() > 1 || self.graph.contains_edge(scc[0], scc[0]);
            if is_cycle {
                let members = self.cycle_order(&scc);
                return Err(GraphError::Cycle { members });
            }
        }
        Ok(())
    }

    /// Orders a strongly connected component along its edges, starting from its
    /// smallest address, so the error reads as a path users can follow.
    fn cycle_order(&self, scc: &[NodeIndex]) -> Vec<Address> {
        let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
        let start = *scc
            .iter()
            .min_by_key(|n| &self.graph[**n])
            .expect("non-empty component");
        let mut path = vec![start];
        let mut seen = BTreeSet::from([start]);
        let mut current = start;
        loop {
            let next = self
                .graph
                .neighbors_directed(current, Direction::Outgoing)
                .filter(|n| members.contains(n) && !seen.contains(n))
                .min_by_key(|n| &self.graph[*n]);
            match next {
                Some(n) => {
                    seen.insert(n);
                    path.push(n);
                    current = n;
                }
                None => break,
            }
        }
        // A component whose members do not form one simple path still gets all named.
        let mut rest: Vec<NodeIndex> = members.difference(&seen).copied().collect();
        rest.sort_by_key(|n| &self.graph[*n]);
        path.extend(rest);
        path.into_iter().map(|n| self.graph[n].clone()).collect()
    }

    /// The graph in Graphviz DOT, for `terrace graph`.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph terrace {\n  rankdir = \"RL\";\n");
        for addr in self.index.keys() {
            let _ = writeln!(out, "  {};", dot_quote(addr.as_str()));
        }
        let mut edges: Vec<(&Address, &Address)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (&self.graph[a], &self.graph[b]))
            .collect();
        edges.sort();
        for (a, b) in edges {
            let _ = writeln!(
                out,
                "  {} -> {};",
                dot_quote(a.as_str()),
                dot_quote(b.as_str())
            );
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart, which GitHub and GitLab render in comments and
    /// markdown files: nodes get plain ids (`n0`, `n1`, ... in address order) and the
    /// address as a quoted label, escaped as Mermaid entities.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart RL\n");
        let ids: BTreeMap<&Address, String> = self
            .index
            .keys()
            .enumerate()
            .map(|(i, a)| (a, format!("n{i}")))
            .collect();
        for (addr, id) in &ids {
            let _ = writeln!(out, "  {id}[\"{}\"]", mermaid_escape(addr.as_str()));
        }
        let mut edges: Vec<(&Address, &Address)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (&self.graph[a], &self.graph[b]))
            .collect();
        edges.sort();
        for (a, b) in edges {
            let _ = writeln!(out, "  {} --> {}", ids[a], ids[b]);
        }
        out
    }
}

/// A label safe inside Mermaid's `["..."]`: quotes, `#` and angle brackets (which
/// Mermaid would read as entities or HTML) as entity codes.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            c => out.push(c),
        }
    }
    out
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Address {
        Address::new(s)
    }

    fn build(edges: &[(&str, &[&str])]) -> Result<ResourceGraph, GraphError> {
        let nodes: Vec<(Address, Vec<Address>)> = edges
            .iter()
            .map(|(n, d)| (a(n), d.iter().map(|x| a(x)).collect()))
            .collect();
        ResourceGraph::new(nodes.iter().map(|(n, d)| (n, d.as_slice())))
    }

    #[test]
    fn cycle_error_names_every_member() {
        let err = build(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]).unwrap_err();
        assert_eq!(
            err,
            GraphError::Cycle {
                members: vec![a("a"), a("b"), a("c")]
            }
        );
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let err = build(&[("a", &["a"])]).unwrap_err();
        assert!(matches!(err, GraphError::Cycle { members } if members == vec![a("a")]));
    }

    #[test]
    fn unknown_dependency_is_reported() {
        let err = build(&[("a", &["ghost"])]).unwrap_err();
        assert_eq!(err.to_string(), "a depends on ghost, which does not exist");
    }

    #[test]
    fn dot_output_quotes_addresses() {
        let g = build(&[("t[\"x\"].db", &["t[\"x\"].user"]), ("t[\"x\"].user", &[])]).unwrap();
        let dot = g.to_dot();
        assert!(
            dot.contains(r#""t[\"x\"].db" -> "t[\"x\"].user";"#),
            "{dot}"
        );
    }
}
