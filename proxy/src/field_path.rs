//! Naming the field a deserialization error concerns: shared by the JSON body extractor
//! (`extract`) and the configuration loader (`config`), which both report errors by field.

/// Names the field a deserialization error is about, as a dotted path (`amount_fen`,
/// `items[0].name`), or `None` when it is about the document as a whole.
///
/// serde reports a missing or unknown field at the enclosing object, so the field's own name
/// is taken from the message (``missing field `auth_code` ``) to point at the exact field.
pub fn field_of(path: &serde_path_to_error::Path, message: &str) -> Option<String> {
    let parent = path.to_string();
    let parent = (parent != ".").then_some(parent);
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split('`').next());
    match (parent, named) {
        (None, named) => named.map(str::to_owned),
        (Some(parent), Some(name)) if !parent.ends_with(name) => Some(format!("{parent}.{name}")),
        (Some(parent), _) => Some(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of_json<T: serde::de::DeserializeOwned + std::fmt::Debug>(
        json: &str,
    ) -> Option<String> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let error = serde_path_to_error::deserialize::<_, T>(&mut deserializer).unwrap_err();
        field_of(error.path(), &error.inner().to_string())
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only deserialized, to provoke errors.
    struct Outer {
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only deserialized, to provoke errors.
    struct Inner {
        amount: u64,
    }

    #[test]
    fn names_missing_unknown_and_mistyped_fields_by_path() {
        assert_eq!(field_of_json::<Outer>("{}").as_deref(), Some("inner"));
        assert_eq!(
            field_of_json::<Outer>(r#"{"inner":{}}"#).as_deref(),
            Some("inner.amount")
        );
        assert_eq!(
            field_of_json::<Outer>(r#"{"inner":{"amount":1,"extra":2}}"#).as_deref(),
            Some("inner.extra")
        );
        assert_eq!(
            field_of_json::<Outer>(r#"{"inner":{"amount":"x"}}"#).as_deref(),
            Some("inner.amount")
        );
    }
}
