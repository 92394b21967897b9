//! [`Params`]: the flat name → value map every WeChat Pay v2 message is.

use std::collections::BTreeMap;

/// The elements of one `<xml>` message, sorted by name in byte order.
///
/// Every request is built as `Params` before it is signed and encoded, and every reply is
/// decoded into `Params` before it is verified and read into a typed struct. Keeping the raw
/// map is what lets signature verification cover fields this crate does not know about
/// (new fields, `coupon_fee_0`, `refund_fee_1`, …), which typed-struct verifiers get wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// An empty map.
    pub fn new() -> Params {
        Params(BTreeMap::new())
    }

    /// Sets `name` to `value`, replacing any earlier value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Params {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Sets `name` to `value` if `value` is `Some` and not empty. Optional fields are left out
    /// rather than sent empty, so they cannot change the signature.
    pub fn insert_opt(&mut self, name: &str, value: Option<impl Into<String>>) -> &mut Params {
        if let Some(value) = value {
            let value = value.into();
            if !value.is_empty() {
                self.0.insert(name.to_owned(), value);
            }
        }
        self
    }

    /// The value of `name`, if present (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name` if present and not empty.
    pub fn get_non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// Sets `name` to `value` only if `name` is absent, in one lookup. When `name` is already
    /// present nothing changes and the name is handed back as the error.
    pub fn insert_new(&mut self, name: String, value: String) -> Result<(), String> {
        match self.0.entry(name) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(value);
                Ok(())
            }
            std::collections::btree_map::Entry::Occupied(existing) => Err(existing.key().clone()),
        }
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Removes `name` and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// All elements, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// How many elements there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Params {
        Params(
            iter.into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        )
    }
}

impl IntoIterator for Params {
    type Item = (String, String);
    type IntoIter = std::collections::btree_map::IntoIter<String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
