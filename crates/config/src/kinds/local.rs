//! `locals { name = value }`: one node per local value.

use super::*;

impl State<'_> {
    pub(super) fn local(&mut self, name: &str) -> bool {
        let attr = &self.decls.locals[name];
        match crate::expr::evaluate_once(attr, &self.ctx()) {
            Ok(v) => {
                if self.is_sensitive(attr, false) {
                    self.sensitive_locals.insert(name.to_string());
                }
                self.ns.locals.insert(name.to_string(), v);
                true
            }
            Err(e) => {
                self.errors.push(e);
                false
            }
        }
    }
}
