//! Label selectors as the API server defines them: `matchLabels` and `matchExpressions`
//! ANDed, an empty selector matching everything.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::PolicyError;

/// Checks what the API server's validation would refuse, so that a selector the cluster
/// would reject is not silently given a meaning here.
pub fn validate(selector: &LabelSelector, place: &str) -> Result<(), PolicyError> {
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default();
        let ok = match req.operator.as_str() {
            "In" | "NotIn" => !values.is_empty(),
            "Exists" | "DoesNotExist" => values.is_empty(),
            other => {
                return Err(PolicyError::new(
                    place,
                    format!("unknown selector operator {other:?} for key {:?}", req.key),
                ))
            }
        };
        if !ok {
            return Err(PolicyError::new(
                place,
                format!(
                    "operator {} on key {:?}: In/NotIn need values, Exists/DoesNotExist take none",
                    req.operator, req.key
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `labels` satisfy `selector`. Assumes [`validate`] passed.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && selector.match_expressions.iter().flatten().all(|req| {
            let values = req.values.as_deref().unwrap_or_default();
            let value = labels.get(&req.key);
            match req.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                // A pod without the key is not "in" the set, so NotIn admits it.
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: (!values.is_empty())
                    .then(|| values.iter().map(|v| v.to_string()).collect()),
            }]),
            match_labels: None,
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(matches(&LabelSelector::default(), &labels(&[])));
        assert!(matches(&LabelSelector::default(), &labels(&[("a", "b")])));
    }

    #[test]
    fn operators() {
        let web = labels(&[("tier", "web")]);
        let none = labels(&[]);
        let table = [
            (expr("tier", "In", &["web", "api"]), true, false),
            (expr("tier", "NotIn", &["web"]), false, true),
            (expr("tier", "NotIn", &["db"]), true, true),
            (expr("tier", "Exists", &[]), true, false),
            (expr("tier", "DoesNotExist", &[]), false, true),
        ];
        for (sel, on_web, on_none) in table {
            assert_eq!(matches(&sel, &web), on_web, "{sel:?} on web");
            assert_eq!(matches(&sel, &none), on_none, "{sel:?} on no labels");
        }
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let mut sel = expr("env", "In", &["prod"]);
        sel.match_labels = Some(labels(&[("tier", "web")]));
        assert!(matches(&sel, &labels(&[("tier", "web"), ("env", "prod")])));
        assert!(!matches(&sel, &labels(&[("tier", "web"), ("env", "dev")])));
        assert!(!matches(&sel, &labels(&[("env", "prod")])));
    }

    #[test]
    fn invalid_selectors_are_refused() {
        assert!(validate(&expr("a", "In", &[]), "x").is_err());
        assert!(validate(&expr("a", "Exists", &["v"]), "x").is_err());
        assert!(validate(&expr("a", "Equals", &["v"]), "x").is_err());
        assert!(validate(&expr("a", "NotIn", &["v"]), "x").is_ok());
    }
}
