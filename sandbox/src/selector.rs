//! Label selectors (equality and set-based) and field selectors.

use serde_json::Value;

use crate::status::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelReq>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in split_top_level(input) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_label_term(term)?);
        }
        Ok(Self(reqs))
    }

    /// Whether an object's labels satisfy every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.matches_with(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    /// Whether labels read through `get` (label key -> value) satisfy
    /// every requirement; for callers holding typed objects.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keys and values of the equality requirements (used by RBAC-free
    /// callers such as deletecollection logging and tests).
    pub fn equalities(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().filter_map(|r| match r {
            LabelReq::Eq(k, v) => Some((k.as_str(), v.as_str())),
            _ => None,
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(input: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&input[start..]);
    out
}

fn parse_label_term(term: &str) -> Result<LabelReq, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "unable to parse requirement: invalid label selector term {term:?}"
        ))
    };
    if let Some(key) = term.strip_prefix('!') {
        return Ok(LabelReq::NotExists(key.trim().to_string()));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(LabelReq::NotEq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(LabelReq::Eq(k.trim().into(), v.trim().into()));
    }
    let set = |rest: &str| -> Result<Vec<String>, ApiError> {
        let inner = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(bad)?;
        Ok(inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect())
    };
    let words: Vec<&str> = term.splitn(3, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => Ok(LabelReq::Exists((*key).to_string())),
        [key, op, rest] if op.eq_ignore_ascii_case("in") => {
            Ok(LabelReq::In((*key).into(), set(rest)?))
        }
        [key, op, rest] if op.eq_ignore_ascii_case("notin") => {
            Ok(LabelReq::NotIn((*key).into(), set(rest)?))
        }
        _ => Err(bad()),
    }
}

/// A parsed `fieldSelector` (`path=value`, `path==value`, `path!=value`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(Vec<String>, bool, String)>);

impl FieldSelector {
    /// Parses `metadata.name=x,status.phase!=Running`.
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for term in input.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, eq, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector term {term:?}: expected path=value"
                )));
            };
            let path = path.trim().split('.').map(str::to_string).collect();
            reqs.push((path, eq, value.trim().to_string()));
        }
        Ok(Self(reqs))
    }

    /// Whether the object satisfies every term (missing fields compare as "").
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, value)| {
            let mut cur = Some(obj);
            for seg in path {
                cur = cur.and_then(|c| c.get(seg));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (actual == *value) == *eq
        })
    }

    /// The value of an equality term on `metadata.name`, for O(1) lookups.
    pub fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, eq, _)| *eq && p.len() == 2 && p[0] == "metadata" && p[1] == "name")
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_and_set_based_label_selectors() {
        let labels = json!({"app": "zk", "tier": "db"});
        let m = |s: &str| LabelSelector::parse(s).expect(s).matches(Some(&labels));
        assert!(m("app=zk"));
        assert!(m("app==zk,tier=db"));
        assert!(!m("app!=zk"));
        assert!(m("app in (kafka, zk)"));
        assert!(!m("app notin (kafka,zk)"));
        assert!(m("tier,!missing"));
        assert!(!m("missing"));
        assert!(m("missing notin (x)"));
        assert!(m(""));
        assert!(LabelSelector::parse("a in b").is_err());
    }

    #[test]
    fn field_selectors() {
        let pod =
            json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": "Running"}});
        let m = |s: &str| FieldSelector::parse(s).expect(s).matches(&pod);
        assert!(m("metadata.name=p,metadata.namespace==ns"));
        assert!(m("status.phase!=Pending"));
        assert!(!m("spec.nodeName=n"));
        assert_eq!(
            FieldSelector::parse("metadata.name=p")
                .expect("parse")
                .name(),
            Some("p")
        );
    }
}
