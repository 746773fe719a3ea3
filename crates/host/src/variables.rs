//! Spin variables: application `[variables]`, resolved once at start from
//! providers (highest first: the host's own values such as `events_secret`,
//! then `SPIN_VARIABLE_<NAME>` environment variables, then declared
//! defaults), and each component's `variables` table of `{{ name }}`
//! templates over them. A component can read only the variables it declares.

use crate::manifest::{Manifest, VariableDecl};
use anyhow::{Context, bail};
use std::collections::{BTreeMap, HashMap};

/// Prefix of the environment variables that provide values, as in Spin.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// A template: literal text and `{{ variable }}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Var(String),
}

pub fn parse_template(s: &str) -> anyhow::Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("template {s:?} has '{{{{' without a closing '}}}}'"))?;
        let name = after[..end].trim();
        crate::manifest::check_variable_name(name)
            .with_context(|| format!("in template {s:?}"))?;
        parts.push(Part::Var(name.to_string()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(parts)
}

/// Resolved application variables.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    values: HashMap<String, String>,
}

impl AppVariables {
    /// Resolves every declared variable. `host_values` are values the host
    /// provides itself; `env` is the process environment.
    pub fn resolve(
        decls: &BTreeMap<String, VariableDecl>,
        host_values: &HashMap<String, String>,
        env: &HashMap<String, String>,
    ) -> anyhow::Result<AppVariables> {
        let mut values = HashMap::new();
        for (name, decl) in decls {
            let env_name = format!("{ENV_PREFIX}{}", name.to_uppercase());
            let value = host_values
                .get(name)
                .or_else(|| env.get(&env_name))
                .cloned()
                .or_else(|| decl.default.clone());
            match value {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if decl.required => bail!(
                    "required variable {name:?} has no value: set the environment variable \
                     {env_name} (or give it a default in [variables])"
                ),
                None => {}
            }
        }
        Ok(AppVariables { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Renders a template; every referenced variable must be declared and set.
    pub fn render(&self, template: &str) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in parse_template(template)? {
            match part {
                Part::Literal(l) => out.push_str(&l),
                Part::Var(v) => out.push_str(self.get(&v).with_context(|| {
                    format!("template {template:?} uses variable {v:?}, which has no value (declare it in [variables])")
                })?),
            }
        }
        Ok(out)
    }
}

/// The variables one component may read, already rendered.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    values: HashMap<String, String>,
}

impl ComponentVariables {
    pub fn for_component(
        manifest: &Manifest,
        id: &str,
        app: &AppVariables,
    ) -> anyhow::Result<ComponentVariables> {
        let mut values = HashMap::new();
        for (name, template) in &manifest.component[id].variables {
            let v = app
                .render(template)
                .with_context(|| format!("[component.{id}.variables] {name}"))?;
            values.insert(name.clone(), v);
        }
        Ok(ComponentVariables { values })
    }

    /// Spin's rule: names are checked first, then looked up.
    pub fn get(&self, name: &str) -> Result<String, VariableError> {
        if crate::manifest::check_variable_name(name).is_err() {
            return Err(VariableError::InvalidName(name.to_string()));
        }
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| VariableError::Undefined(format!("no variable named {name:?}")))
    }
}

/// The error cases both variables interfaces share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableError {
    InvalidName(String),
    Undefined(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls(entries: &[(&str, Option<&str>, bool)]) -> BTreeMap<String, VariableDecl> {
        entries
            .iter()
            .map(|(n, d, r)| {
                (n.to_string(), VariableDecl { default: d.map(String::from), required: *r, ..Default::default() })
            })
            .collect()
    }

    #[test]
    fn environment_beats_default_and_host_beats_environment() {
        let d = decls(&[("a", Some("dflt"), false), ("b", Some("dflt"), false)]);
        let env = HashMap::from([
            ("SPIN_VARIABLE_A".to_string(), "env".to_string()),
            ("SPIN_VARIABLE_B".to_string(), "env".to_string()),
        ]);
        let host = HashMap::from([("b".to_string(), "host".to_string())]);
        let v = AppVariables::resolve(&d, &host, &env).unwrap();
        assert_eq!(v.get("a"), Some("env"));
        assert_eq!(v.get("b"), Some("host"));
    }

    #[test]
    fn missing_required_variable_names_the_env_var_to_set() {
        let d = decls(&[("api_key", None, true)]);
        let err = AppVariables::resolve(&d, &HashMap::new(), &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("SPIN_VARIABLE_API_KEY"), "{err}");
    }

    #[test]
    fn templates_render_with_surrounding_text() {
        let d = decls(&[("host", Some("127.0.0.1"), false)]);
        let v = AppVariables::resolve(&d, &HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!(v.render("http://{{ host }}:3001").unwrap(), "http://127.0.0.1:3001");
        assert_eq!(v.render("{{host}}").unwrap(), "127.0.0.1");
        assert!(v.render("{{ nope }}").is_err());
        assert!(v.render("{{ host").is_err());
    }

    #[test]
    fn component_sees_only_its_declared_variables() {
        let cv = ComponentVariables { values: HashMap::from([("a".into(), "1".into())]) };
        assert_eq!(cv.get("a"), Ok("1".into()));
        assert!(matches!(cv.get("b"), Err(VariableError::Undefined(_))));
        assert!(matches!(cv.get("Bad-Name"), Err(VariableError::InvalidName(_))));
    }
}
