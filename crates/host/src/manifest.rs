//! Spin application manifest, version 2 (`spin.toml`), read strictly.
//!
//! Every table rejects unknown fields, as Spin does, so a typo fails at start
//! with the field's name instead of being silently ignored. Only the HTTP
//! trigger exists here; other trigger types are refused with a clear error.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, Component>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub trigger: Option<toml::Table>,
}

/// `[variables]` entry: `{ default = "...", required = true, secret = true }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: RouteSpec,
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub static_response: Option<StaticResponse>,
    #[serde(default)]
    pub executor: Option<toml::Table>,
}

/// A trigger's `route`: a path, or `{ private = true }` for a component only
/// other components may call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RouteSpec {
    Path(String),
    Private(PrivateRoute),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    pub private: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticResponse {
    #[serde(default = "default_status")]
    pub status_code: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

fn default_status() -> u16 {
    200
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub source: Source,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<toml::Value>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub build: Option<Build>,
    #[serde(default)]
    pub tool: Option<toml::Table>,
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    #[serde(default)]
    pub dependencies: BTreeMap<String, Dependency>,
}

/// `source`: a local path, or a URL with digest (which this host cannot fetch).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Source {
    Path(String),
    Remote(RemoteSource),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSource {
    pub url: String,
    pub digest: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub command: toml::Value,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// A `[component.x.dependencies]` value. Spin accepts several forms
/// (version requirement string, local path, registry package, app component).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Dependency {
    Version(String),
    Table(DependencyTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyTable {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub registry: Option<String>,
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub export: Option<String>,
    #[serde(default)]
    pub inherit_configuration: Option<toml::Value>,
}

impl Manifest {
    /// Reads and checks `path`. Errors name the file and what to fix.
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid manifest {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let m: Manifest = toml::from_str(text)?;
        if m.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version = {} is not supported; this host reads version 2",
                m.spin_manifest_version
            );
        }
        for name in m.variables.keys() {
            check_variable_name(name)?;
        }
        for (id, c) in &m.component {
            check_component_id(id)?;
            for name in c.variables.keys() {
                check_variable_name(name)
                    .with_context(|| format!("in [component.{id}.variables]"))?;
            }
            if !c.allowed_http_hosts.is_empty() {
                bail!(
                    "[component.{id}] uses allowed_http_hosts, which manifest v2 replaced: \
                     use allowed_outbound_hosts = [\"https://host\"]"
                );
            }
        }
        for (i, t) in m.trigger.http.iter().enumerate() {
            match (&t.component, &t.static_response) {
                (Some(c), None) => {
                    if !m.component.contains_key(c) {
                        bail!("[[trigger.http]] #{} names component {c:?}, which is not defined", i + 1);
                    }
                }
                (None, Some(_)) => {}
                _ => bail!(
                    "[[trigger.http]] #{} must have exactly one of `component` or `static_response`",
                    i + 1
                ),
            }
            if let RouteSpec::Private(p) = &t.route
                && !p.private
            {
                bail!("[[trigger.http]] #{}: route = {{ private = false }} is not valid; give a path", i + 1);
            }
        }
        Ok(m)
    }
}

impl Component {
    /// The component's wasm file, relative paths resolved against the manifest's directory.
    pub fn source_path(&self, id: &str, base: &Path) -> anyhow::Result<PathBuf> {
        match &self.source {
            Source::Path(p) => Ok(base.join(p)),
            Source::Remote(r) => bail!(
                "[component.{id}] source is the URL {}; this host only loads local files: \
                 download it and give its path",
                r.url
            ),
        }
    }
}

/// Spin variable names: lower-case letters, digits and `_`, starting with a letter.
pub fn check_variable_name(name: &str) -> anyhow::Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("variable name {name:?} is invalid: use lower_snake_case starting with a letter");
    }
    Ok(())
}

/// Component ids: kebab-case (lower-case letters and digits in words joined
/// by single `-`, starting with a letter).
pub fn check_component_id(id: &str) -> anyhow::Result<()> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id.split('-').all(|w| {
            !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        bail!("component id {id:?} is invalid: use kebab-case like \"server-types\"");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "web.wasm"
key_value_stores = ["default"]
"#;

    #[test]
    fn minimal_manifest_loads() {
        let m = Manifest::parse(MINIMAL).unwrap();
        assert_eq!(m.trigger.http.len(), 1);
        assert_eq!(m.component["web"].key_value_stores, vec!["default"]);
    }

    #[test]
    fn unknown_field_is_an_error_naming_it() {
        let text = MINIMAL.replace("key_value_stores", "key_value_storez");
        let err = format!("{:#}", Manifest::parse(&text).unwrap_err());
        assert!(err.contains("key_value_storez"), "{err}");
    }

    #[test]
    fn trigger_naming_missing_component_is_an_error() {
        let text = MINIMAL.replace("component = \"web\"", "component = \"nope\"");
        assert!(Manifest::parse(&text).is_err());
    }

    #[test]
    fn version_one_is_refused() {
        let text = MINIMAL.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(Manifest::parse(&text).is_err());
    }

    #[test]
    fn private_route_parses() {
        let text = MINIMAL.replace("route = \"/...\"", "route = { private = true }");
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.trigger.http[0].route, RouteSpec::Private(PrivateRoute { private: true }));
    }

    #[test]
    fn bad_component_id_is_refused() {
        assert!(check_component_id("Server_Types").is_err());
        assert!(check_component_id("server-types").is_ok());
        assert!(check_component_id("v2-api").is_ok());
        assert!(check_component_id("2-api").is_err());
        assert!(check_component_id("api--v2").is_err());
    }
}
