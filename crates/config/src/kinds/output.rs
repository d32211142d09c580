//! `output` blocks: values for tools and people outside terrace (`terrace output`),
//! owning no resources and never part of a plan.

use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.output(label)
}

impl State<'_> {
    pub(super) fn output(&mut self, name: &str) -> bool {
        let block = &self.decls.of(Kind::Output)[name];
        let mut r = Reader::new(self.ctx());
        let value = block.attr("value").and_then(|a| r.value(a));
        let declared_sensitive = r.bool(block, "sensitive");
        let description = r.string(block, "description", "\"the app's database URL\"");
        if !r.finish(self.errors) {
            return false;
        }
        let Some(value) = value else {
            return false;
        };
        let attr = block.attr("value").expect("required");
        let reads_secret = self.is_sensitive(attr, false);
        // As in Terraform: an output that shows a secret must say so, so that a plain
        // `terrace output` (or a CI log) never prints it by surprise.
        if reads_secret && declared_sensitive != Some(true) {
            self.errors.push(
                ConfigError::new(
                    ErrorKind::InvalidValue,
                    format!("output \"{name}\" shows a sensitive value"),
                )
                .at(&attr.loc, "reads a password or a sensitive variable")
                .help("add `sensitive = true` to the output block: `terrace output` then prints it only when asked for by name"),
            );
            return false;
        }
        let sensitive = reads_secret || declared_sensitive == Some(true);
        let value_json = json(&value);
        if sensitive {
            crate::variables::collect_strings(&value, &mut self.out.secrets);
        }
        self.ns.declare(Kind::Output, name, value);
        self.out.outputs.insert(
            name.to_string(),
            crate::spec::OutputSpec {
                value: value_json,
                sensitive,
                description: description.map(|d| d.0),
            },
        );
        true
    }
}
