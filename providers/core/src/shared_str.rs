//! Serde for `Arc<str>` fields without serde's `rc` feature (which would apply to
//! every `Rc`/`Arc` in the workspace, and whose deserialisation never shares anyway).

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(s: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(s)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<str>, D::Error> {
    // A borrowed `&str` fails on JSON strings with escapes (`\"` in every tenant
    // address); `Cow` borrows when it can and owns when it must.
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    Ok(Arc::from(text.as_ref()))
}
