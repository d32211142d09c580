//! The block dependency graph: nodes, reference checking, cycle detection and order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use crate::model::{Kind, Node};
use crate::refs::{self, Target};
use crate::source::Loc;
use crate::syntax::{Decls, RawAttr};
use crate::templates::{Template, Templates};

/// A checked reference of one node.
#[derive(Debug, Clone)]
pub(crate) struct NodeRef {
    pub target: Target,
    /// Written in the block's own `for_each`, which is evaluated before its instances
    /// (the instances' contexts need not hold what only `for_each` reads).
    pub in_for_each: bool,
    /// See [`crate::refs::Ref::key`].
    pub key: Option<crate::refs::InstanceKey>,
}

/// The graph and what evaluation needs from it.
pub(crate) struct Plan {
    /// Nodes in dependency order (dependencies first); nodes in cycles are left out.
    pub order: Vec<Node>,
    /// Each node's references (for cross-block dependencies and sensitivity).
    pub refs: BTreeMap<Node, Vec<NodeRef>>,
    /// Nodes that cannot be evaluated (bad references, cycles).
    pub broken: BTreeSet<Node>,
}

/// Which names are in scope for one attribute.
#[derive(Debug, Clone, Copy)]
struct Scope {
    /// `each` (the block has for_each, and this is not for_each itself).
    each: bool,
    /// `self` (the attribute is inside a tenant's app block).
    self_: bool,
}

/// The attributes of a node with the names in scope for each.
fn node_attrs<'a>(node: &Node, decls: &'a Decls) -> Vec<(&'a RawAttr, Scope)> {
    let Some(block) = decls.block(node) else {
        let Node::Local(n) = node else {
            unreachable!("only locals have no block")
        };
        let scope = Scope {
            each: false,
            self_: false,
        };
        return decls
            .locals
            .get(n)
            .map(|a| (a, scope))
            .into_iter()
            .collect();
    };
    let has_each = block.attr("for_each").is_some();
    let mut out: Vec<(&RawAttr, Scope)> = block
        .attrs
        .iter()
        .map(|a| {
            let scope = Scope {
                each: has_each && a.key != "for_each",
                self_: false,
            };
            (a, scope)
        })
        .collect();
    // `lifecycle` names attributes, not values: it refers to nothing, except for the
    // expiry, which is evaluated per instance (`crate::expiry`).
    for inner in &block.blocks {
        // A placement rule is one for all instances: it is evaluated once, without
        // `each`; `self.host` is known inside the instance's other blocks.
        let rule = inner.kind == "placement";
        let scope = Scope {
            each: has_each && !rule,
            self_: block.kind == "tenant" && !rule && inner.kind != "lifecycle",
        };
        let lifecycle = inner.kind == "lifecycle";
        out.extend(
            inner
                .attrs
                .iter()
                .filter(|a| !lifecycle || crate::expiry::ATTRS.contains(&a.key.as_str()))
                .map(|a| (a, scope)),
        );
    }
    out
}

/// Collects references, checks them against the declarations, and orders the nodes.
pub(crate) fn plan(
    decls: &Decls,
    failed_vars: &BTreeSet<String>,
    templates: &Templates,
    errors: &mut Vec<ConfigError>,
) -> Plan {
    let mut nodes: Vec<Node> = Vec::new();
    nodes.extend(decls.locals.keys().cloned().map(Node::Local));
    for kind in Kind::ALL {
        nodes.extend(
            decls
                .of(*kind)
                .keys()
                .map(|l| Node::Block(*kind, l.clone())),
        );
    }

    let mut graph: DiGraph<Node, Loc> = DiGraph::new();
    let index: BTreeMap<Node, NodeIndex> = nodes
        .iter()
        .map(|n| (n.clone(), graph.add_node(n.clone())))
        .collect();
    let mut all_refs = BTreeMap::new();
    let mut broken = BTreeSet::new();
    let mut dynamic_templates: Vec<(Node, &RawAttr)> = Vec::new();

    for node in &nodes {
        let mut attrs: Vec<(&RawAttr, Scope, Option<&Template>)> = node_attrs(node, decls)
            .into_iter()
            .map(|(a, s)| (a, s, None))
            .collect();
        if let Node::Block(Kind::File, label) = node {
            let block = &decls.of(Kind::File)[label];
            // A template not read before evaluation (its path is computed, or
            // `content` is there too) is read by the instances that need it.
            let source = block.attr("source");
            match (templates.get(label), source) {
                (Some(Some(t)), Some(source)) => {
                    let scope = Scope {
                        each: block.attr("for_each").is_some(),
                        self_: false,
                    };
                    attrs.push((source, scope, Some(t)));
                }
                // The template could not be read: reported already.
                (Some(None), _) => {
                    broken.insert(node.clone());
                }
                (None, Some(source)) => dynamic_templates.push((node.clone(), source)),
                (Some(Some(_)), None) | (None, None) => {}
            }
        }
        let mut node_refs = Vec::new();
        let for_each = decls.block(node).and_then(|b| b.attr("for_each"));
        for (attr, scope, template) in attrs {
            let in_for_each = template.is_none() && for_each.is_some_and(|f| std::ptr::eq(f, attr));
            let (found, problems) = match template {
                Some(t) => (t.refs.clone(), t.problems.clone()),
                None => refs::collect(&attr.expr),
            };
            let file = template.map_or(&attr.loc.file, |t| &t.file);
            let at = |span: std::ops::Range<usize>| Loc {
                file: file.clone(),
                span,
            };
            for p in problems {
                errors.push(
                    ConfigError::new(p.kind, p.message)
                        .at(&at(p.span), p.label)
                        .help(p.help),
                );
                broken.insert(node.clone());
            }
            for r in found {
                let loc = at(r.span.clone());
                match check_target(&r.target, decls, scope, attr) {
                    Err(e) => {
                        let label = match r.target {
                            Target::SelfRef(_) | Target::EachKey | Target::EachValue => {
                                "not available here"
                            }
                            _ => "not declared",
                        };
                        errors.push(e.at(&loc, label));
                        broken.insert(node.clone());
                        continue;
                    }
                    Ok(Some(dep)) => {
                        graph.add_edge(index[&dep], index[node], loc.clone());
                    }
                    Ok(None) => {
                        if let Target::Var(v) = &r.target {
                            // Already reported when the variable was resolved.
                            if failed_vars.contains(v) {
                                broken.insert(node.clone());
                            }
                        }
                    }
                }
                node_refs.push(NodeRef {
                    target: r.target,
                    in_for_each,
                    key: r.key,
                });
            }
        }
        all_refs.insert(node.clone(), node_refs);
    }

    // A template whose path is known only during evaluation (built from `each` or
    // locals) has references unknown here: evaluate its block after every host and
    // local value that does not itself depend on the block.
    for (node, source) in dynamic_templates {
        let file = index[&node];
        // What depends on the block, found once: one search per candidate made this
        // quadratic in the number of locals. Edges added here point into `file`, so
        // they do not change what is reachable from it.
        let mut dependents = BTreeSet::new();
        let mut dfs = petgraph::visit::Dfs::new(&graph, file);
        while let Some(n) = dfs.next(&graph) {
            dependents.insert(n);
        }
        for dep in nodes
            .iter()
            .filter(|n| matches!(n, Node::Block(Kind::Host, _) | Node::Local(_)))
        {
            let d = index[dep];
            if !dependents.contains(&d) {
                graph.add_edge(d, file, source.loc.clone());
            }
        }
    }

    // Every strongly connected component with more than one node, or a self-loop, is a
    // cycle; kosaraju_scc returns components in reverse topological order. (It walks
    // iteratively: the recursive tarjan_scc overflowed the stack on a long chain of
    // locals.)
    let sccs = petgraph::algo::kosaraju_scc(&graph);
    let mut order = Vec::new();
    for scc in sccs.iter().rev() {
        let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if cyclic {
            errors.push(cycle_error(&graph, scc));
            for i in scc {
                broken.insert(graph[*i].clone());
            }
        } else {
            order.push(graph[scc[0]].clone());
        }
    }
    Plan {
        order,
        refs: all_refs,
        broken,
    }
}

fn check_target(
    target: &Target,
    decls: &Decls,
    scope: Scope,
    attr: &RawAttr,
) -> Result<Option<Node>, ConfigError> {
    fn exists<T>(
        map: &BTreeMap<String, T>,
        name: &str,
        what: &str,
        decl: &str,
    ) -> Result<(), ConfigError> {
        if map.contains_key(name) {
            return Ok(());
        }
        Err(ConfigError::new(
            ErrorKind::UnknownReference,
            format!("no {what} named \"{name}\""),
        )
        .help(suggest(name, map.keys().map(String::as_str), |all| {
            if all.is_empty() {
                format!("no {what} is declared; add `{decl}`")
            } else {
                format!("declared: {}", list_names(&all))
            }
        })))
    }
    match target {
        Target::Var(n) => exists(
            &decls.variables,
            n,
            "variable",
            &format!("variable \"{n}\" {{}}"),
        )
        .map(|_| None),
        Target::Local(n) => exists(
            &decls.locals,
            n,
            "local value",
            &format!("locals {{ {n} = ... }}"),
        )
        .map(|_| Some(Node::Local(n.clone()))),
        Target::Block(kind, n) => exists(
            decls.of(*kind),
            n,
            kind.noun(),
            &format!("{} \"{n}\" {}", kind.keyword(), kind.example_body()),
        )
        .map(|_| Some(Node::Block(*kind, n.clone()))),
        Target::SelfRef(_) if scope.self_ => Ok(None),
        Target::SelfRef(_) => Err(ConfigError::new(
            ErrorKind::UnknownReference,
            "`self` is only available inside a tenant's blocks",
        )
        .help("inside `tenant \"t\" { app { ... } }`, `self.database` and `self.volume` are that tenant instance's own, and `self.host` its host in every block of the tenant; elsewhere refer to tenant.t[\"key\"].database")),
        Target::EachKey | Target::EachValue if scope.each => Ok(None),
        Target::EachKey | Target::EachValue => Err(ConfigError::new(
            ErrorKind::UnknownReference,
            if attr.key == "for_each" {
                "`each` cannot be used in for_each itself".to_string()
            } else {
                "`each` is only available in blocks with for_each".to_string()
            },
        )
        .help("add `for_each = ...` to the block, or use a literal value")),
    }
}

fn cycle_error(graph: &DiGraph<Node, Loc>, scc: &[NodeIndex]) -> ConfigError {
    let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc
        .iter()
        .min_by_key(|i| graph[**i].clone())
        .expect("non-empty scc");
    // Shortest path from start back to start inside the component (BFS over references:
    // an edge dep -> user means `user` references `dep`, so walk edges backwards to
    // follow "references").
    let mut prev: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    let mut seen = BTreeSet::from([start]);
    let mut closing = None;
    'bfs: while let Some(n) = queue.pop_front() {
        for dep in graph.neighbors_directed(n, petgraph::Direction::Incoming) {
            if !members.contains(&dep) {
                continue;
            }
            if dep == start {
                closing = Some(n);
                break 'bfs;
            }
            if seen.insert(dep) {
                prev.insert(dep, n);
                queue.push_back(dep);
            }
        }
    }
    let mut path = vec![start];
    if let Some(mut n) = closing {
        let mut back = vec![n];
        while let Some(p) = prev.get(&n) {
            back.push(*p);
            n = *p;
        }
        back.pop(); // start itself
        back.reverse();
        path.extend(back);
    }
    path.push(start);
    let chain: Vec<String> = path.iter().map(|i| graph[*i].to_string()).collect();
    let mut names: Vec<String> = scc.iter().map(|i| graph[*i].to_string()).collect();
    names.sort();
    let message = if path.len() - 1 == scc.len() {
        format!("dependency cycle: {}", chain.join(" -> "))
    } else {
        format!(
            "dependency cycle between {}: {}",
            names.join(", "),
            chain.join(" -> ")
        )
    };
    let mut err = ConfigError::new(ErrorKind::Cycle, message);
    for pair in path.windows(2) {
        // pair[0] references pair[1]: the edge runs pair[1] -> pair[0].
        if let Some(e) = graph.find_edge(pair[1], pair[0]) {
            err = err.at(
                &graph[e],
                format!("{} refers to {}", graph[pair[0]], graph[pair[1]]),
            );
        }
    }
    err.help(format!(
        "these blocks refer to each other, so none can be evaluated first ({}); remove one of the references",
        names.join(", ")
    ))
}
