//! The rescued-data collector: keeps every source value the typed schema cannot hold.
//!
//! A record field whose name the schema does not know, or whose JSON type does not fit its
//! column (a number where a string is expected, say), is kept here with its path from the
//! record root. At the end of the record the collected values are rendered as one JSON object
//! that mirrors the record's shape, e.g.
//! `{"newField":1,"userIdentity":{"sessionContext":{"newFlag":true}}}`, and stored in the
//! `_rescued_data` column (the name Databricks Auto Loader uses for the same purpose). Deep-merging
//! that object into the typed columns gives back every source value.
//!
//! The common case is a record with nothing to rescue: then this does no allocation at all.

/// Collects values that did not fit the schema, for one record at a time.
///
/// A value is kept where it is found, with no path; each struct field it was found in then
/// adds its name on the way out ([`Rescue::name_since`]). So the fields that keep nothing,
/// nearly all of them, cost a comparison, not a push and a pop of a path.
#[derive(Debug, Default)]
pub struct Rescue {
    kept: Vec<Kept>,
}

#[derive(Debug)]
struct Kept {
    /// The names of the fields the value was found in, innermost first.
    path: Vec<&'static str>,
    /// The field's own name when it is not a known column (an unknown key).
    key: Option<String>,
    /// The value as JSON text.
    json: String,
}

impl Rescue {
    /// Keeps `json` as the value of the field being read (a known field whose value did not
    /// fit its column).
    pub(crate) fn keep_here(&mut self, json: String) {
        self.kept.push(Kept {
            path: Vec::new(),
            key: None,
            json,
        });
    }

    /// Keeps `json` as the value of the unknown field `key` of the object being read.
    pub(crate) fn keep_unknown(&mut self, key: String, json: String) {
        self.kept.push(Kept {
            path: Vec::new(),
            key: Some(key),
            json,
        });
    }

    /// A mark of what is kept so far, for [`Rescue::name_since`].
    #[inline]
    pub(crate) fn mark(&self) -> usize {
        self.kept.len()
    }

    /// Records that the values kept since `mark` were found in the field `name`.
    #[inline]
    pub(crate) fn name_since(&mut self, mark: usize, name: &'static str) {
        if self.kept.len() > mark {
            for kept in &mut self.kept[mark..] {
                kept.path.push(name);
            }
        }
    }

    /// Whether anything was kept since the last [`Rescue::take_json`].
    pub(crate) fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Renders what was kept as one JSON object (None when nothing was) and clears it.
    pub(crate) fn take_json(&mut self) -> Option<String> {
        if self.kept.is_empty() {
            return None;
        }
        let mut root = Node::default();
        for kept in self.kept.drain(..) {
            let mut names: Vec<String> = kept.path.iter().rev().map(|s| (*s).to_owned()).collect();
            names.extend(kept.key);
            root.insert(&names, kept.json);
        }
        let mut out = String::new();
        root.render(&mut out);
        Some(out)
    }

    /// Drops whatever was kept (used when a nested parse is re-rescued whole).
    pub(crate) fn clear(&mut self) {
        self.kept.clear();
    }
}

/// A node of the rescued-data tree: either a leaf holding JSON text or an object of children.
#[derive(Debug, Default)]
struct Node {
    leaf: Option<String>,
    children: Vec<(String, Node)>,
}

impl Node {
    fn insert(&mut self, names: &[String], json: String) {
        let Some((first, rest)) = names.split_first() else {
            self.leaf = Some(json);
            return;
        };
        if rest.is_empty() {
            // A value of its own; a duplicate key in the source stays a duplicate here.
            let leaf = Node {
                leaf: Some(json),
                children: Vec::new(),
            };
            self.children.push((first.clone(), leaf));
            return;
        }
        let object = self
            .children
            .iter()
            .position(|(name, child)| name == first && child.leaf.is_none());
        let i = object.unwrap_or_else(|| {
            self.children.push((first.clone(), Node::default()));
            self.children.len() - 1
        });
        self.children[i].1.insert(rest, json);
    }

    fn render(&self, out: &mut String) {
        if let Some(json) = &self.leaf {
            out.push_str(json);
            return;
        }
        out.push('{');
        for (i, (name, child)) in self.children.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(name).expect("a string always serializes"));
            out.push(':');
            child.render(out);
        }
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_kept_renders_nothing() {
        assert_eq!(Rescue::default().take_json(), None);
    }

    #[test]
    fn renders_nested_paths_as_one_object() {
        let mut r = Rescue::default();
        r.keep_unknown("newTop".into(), "1".into());
        let user_identity = r.mark();
        let session_context = r.mark();
        r.keep_unknown("newFlag".into(), "true".into());
        r.name_since(session_context, "sessionContext");
        let type_ = r.mark();
        r.keep_here("42".into());
        r.name_since(type_, "type");
        r.name_since(user_identity, "userIdentity");
        let event_name = r.mark();
        r.name_since(event_name, "eventName");
        assert_eq!(
            r.take_json().unwrap(),
            r#"{"newTop":1,"userIdentity":{"sessionContext":{"newFlag":true},"type":42}}"#
        );
        assert!(r.is_empty());
    }

    #[test]
    fn escapes_key_names() {
        let mut r = Rescue::default();
        r.keep_unknown("we\"ird".into(), "null".into());
        assert_eq!(r.take_json().unwrap(), r#"{"we\"ird":null}"#);
    }
}
