//! Component dependencies (`[component.x.dependencies]`), composed into
//! their parent at load, as Spin does.
//!
//! A dependency key names imports of the parent: a whole package
//! (`ns:pkg` or `ns:pkg@1.0.0`: every import from it), one interface
//! (`ns:pkg/iface@1.0.0`, the version may be left out) or a plain import
//! name. Its value names a component exporting them: a local `path`, or
//! another `component` of the same app; `export` picks a differently named
//! export for an interface key. [`compose`] plugs those exports into the
//! parent's imports with `wac-graph`; what the dependency imports itself
//! becomes an import of the composition, served by the host under the
//! parent's configuration: the composition is one component, as under Spin.
//!
//! What a dependency may reach of its parent's configuration is
//! `inherit_configuration` (Spin's SIP 020 and 023): `true` (everything),
//! `false` or absent (nothing), or a list of configuration keys; the
//! component-level `dependencies_inherit_configuration = true` means `true`
//! for every dependency and may not be mixed with the per-dependency form.
//! Spin puts a deny-all adapter in front of each capability a dependency may
//! not reach (an empty environment, no files, every outbound request or
//! store refused). This host has no such adapters, but the composition runs
//! under the parent's grants, and an empty grant already denies exactly so
//! (the host checks outbound hosts, store labels and variables per
//! component). So a capability the dependency may not reach is fine while
//! the parent grants nothing for it; where the parent does grant something
//! (it has outbound hosts, stores, variables, environment, files...), the
//! dependency would get it too, and this host refuses to load the
//! application instead, naming the dependency, the capability and the key
//! that would grant it. Either way a dependency never gets more than the
//! manifest grants.

use crate::manifest::{Component, Dependency, DependencyTable};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use wac_graph::types::{Package, SubtypeChecker};
use wac_graph::{CompositionGraph, EncodeOptions};

/// The configuration keys a dependency can inherit, and the capability
/// imports (by name, version left out; a trailing `/` is a whole package)
/// each one governs. Imports in no row (clocks, random, stdio, ...) are
/// always allowed.
pub const CAPABILITIES: &[(&str, &[&str])] = &[
    (
        "allowed_outbound_hosts",
        &[
            "wasi:http/outgoing-handler",
            "wasi:http/client",
            "wasi:http/handler",
            "wasi:sockets/",
            "fermyon:spin/http",
            "fermyon:spin/mysql",
            "fermyon:spin/postgres",
            "fermyon:spin/redis",
            "fermyon:spin/mqtt",
            "spin:mqtt/",
            "spin:redis/",
            "spin:postgres/",
            "spin:mysql/",
        ],
    ),
    ("key_value_stores", &["fermyon:spin/key-value", "spin:key-value/", "wasi:keyvalue/"]),
    ("sqlite_databases", &["fermyon:spin/sqlite", "spin:sqlite/"]),
    ("variables", &["fermyon:spin/config", "fermyon:spin/variables", "spin:variables/", "wasi:config/"]),
    ("environment", &["wasi:cli/environment"]),
    ("files", &["wasi:filesystem/preopens"]),
    ("ai_models", &["fermyon:spin/llm", "spin:llm/"]),
];

/// What a dependency may reach of its parent's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inheritance {
    All,
    Only(BTreeSet<&'static str>),
}

/// Whether `parent` grants anything under configuration key `key`.
pub fn grants(parent: &Component, key: &str) -> bool {
    match key {
        "allowed_outbound_hosts" => !parent.allowed_outbound_hosts.is_empty(),
        "key_value_stores" => !parent.key_value_stores.is_empty(),
        "sqlite_databases" => !parent.sqlite_databases.is_empty(),
        "variables" => !parent.variables.is_empty(),
        "environment" => !parent.environment.is_empty(),
        "files" => !parent.files.is_empty(),
        "ai_models" => !parent.ai_models.is_empty(),
        _ => true,
    }
}

impl Inheritance {
    fn allows(&self, key: &str) -> bool {
        match self {
            Inheritance::All => true,
            Inheritance::Only(keys) => keys.contains(key),
        }
    }
}

/// Which of the parent's imports a dependency key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `ns:pkg[@version]`: every import from the package.
    Package { name: String, version: Option<String> },
    /// `ns:pkg/iface[@version]`.
    Interface { name: String, version: Option<String> },
    /// A plain (kebab-case) import name.
    Plain(String),
}

impl Selector {
    pub fn parse(key: &str) -> Selector {
        let (name, version) = match key.split_once('@') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (key.to_string(), None),
        };
        if name.contains('/') {
            Selector::Interface { name, version }
        } else if name.contains(':') {
            Selector::Package { name, version }
        } else {
            Selector::Plain(key.to_string())
        }
    }

    /// Whether the import called `import` is one this key names.
    pub fn matches(&self, import: &str) -> bool {
        let (name, version) = match import.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (import, None),
        };
        let version_ok = |want: &Option<String>| want.as_deref().is_none_or(|w| Some(w) == version);
        match self {
            Selector::Plain(p) => p == import,
            Selector::Interface { name: n, version: v } => n == name && version_ok(v),
            Selector::Package { name: p, version: v } => {
                name.split_once('/').is_some_and(|(pkg, _)| pkg == p) && version_ok(v)
            }
        }
    }
}

/// A dependency ready to compose: its key, what it is, and its bytes.
pub struct Resolved {
    pub key: String,
    pub selector: Selector,
    /// Where it came from, for messages (`path "x.wasm"`, `component "y"`).
    pub origin: String,
    pub wasm: Vec<u8>,
    pub export: Option<String>,
    pub inherits: Inheritance,
}

/// Why a component's dependencies cannot be composed; each message says what to fix.
#[derive(Debug)]
pub enum DependencyError {
    Unsupported { component: String, key: String, what: &'static str },
    UnknownComponent { component: String, key: String, named: String },
    Read { component: String, key: String, path: PathBuf, error: std::io::Error },
    InheritForm { component: String, key: String, got: String },
    UnknownInheritKey { component: String, key: String, got: String },
    MixedInheritance { component: String },
    NotAComponent { component: String, key: String, origin: String, error: String },
    NoSuchImport { component: String, key: String },
    NoSuchExport { component: String, key: String, origin: String, export: String },
    Incompatible { component: String, key: String, import: String, error: String },
    Denied { component: String, key: String, capability: String, config: &'static str },
    Encode { component: String, error: String },
}

impl fmt::Display for DependencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DependencyError::*;
        match self {
            Unsupported { component, key, what } => write!(
                f,
                "[component.{component}.dependencies] {key:?}: {what} dependencies cannot be fetched by this host; \
                 download the component and give it as `path = \"...\"`"
            ),
            UnknownComponent { component, key, named } => write!(
                f,
                "[component.{component}.dependencies] {key:?} names component {named:?}, which the app does not define"
            ),
            Read { component, key, path, error } => write!(
                f,
                "[component.{component}.dependencies] {key:?}: cannot read {} ({error}); build it first",
                path.display()
            ),
            InheritForm { component, key, got } => write!(
                f,
                "[component.{component}.dependencies] {key:?}: inherit_configuration must be true, false or a list \
                 of configuration keys, not {got}"
            ),
            UnknownInheritKey { component, key, got } => write!(
                f,
                "[component.{component}.dependencies] {key:?}: {got:?} is no configuration key; use one of {}",
                CAPABILITIES.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
            MixedInheritance { component } => write!(
                f,
                "[component.{component}] sets both dependencies_inherit_configuration and a per-dependency \
                 inherit_configuration; they exclude each other, keep one"
            ),
            NotAComponent { component, key, origin, error } => write!(
                f,
                "[component.{component}.dependencies] {key:?}: {origin} is not a usable component: {error}"
            ),
            NoSuchImport { component, key } => write!(
                f,
                "[component.{component}.dependencies] {key:?} matches no import of component {component:?}; \
                 the key must name an interface, package or plain name it imports"
            ),
            NoSuchExport { component, key, origin, export } => write!(
                f,
                "[component.{component}.dependencies] {key:?}: {origin} does not export {export:?}"
            ),
            Incompatible { component, key, import, error } => write!(
                f,
                "[component.{component}.dependencies] {key:?}: the export does not fit import {import:?}: {error}"
            ),
            Denied { component, key, capability, config } => write!(
                f,
                "[component.{component}.dependencies] {key:?} imports {capability:?}, which needs the parent's \
                 {config}, and does not inherit it: add {config:?} to its inherit_configuration (Spin would deny \
                 every such call; this host, which would let them through, refuses to load it)"
            ),
            Encode { component, error } => write!(f, "cannot compose component {component:?} with its dependencies: {error}"),
        }
    }
}

impl std::error::Error for DependencyError {}

/// Reads and checks every dependency of `component` except those `skip` names.
pub fn resolve(
    id: &str,
    component: &Component,
    app: &crate::manifest::Manifest,
    base: &Path,
    skip: impl Fn(&str) -> bool,
) -> Result<Vec<Resolved>, DependencyError> {
    let mut out = Vec::new();
    for (key, dep) in &component.dependencies {
        if skip(key) {
            continue;
        }
        let err_key = || (id.to_string(), key.clone());
        let table = match dep {
            Dependency::Version(_) => {
                let (component, key) = err_key();
                return Err(DependencyError::Unsupported { component, key, what: "registry" });
            }
            Dependency::Table(t) => t,
        };
        let inherits = inheritance(id, key, component.dependencies_inherit_configuration, table)?;
        let (path, origin) = match table {
            DependencyTable { path: Some(p), .. } => (base.join(p), format!("path {p:?}")),
            DependencyTable { component: Some(c), .. } => {
                let other = app.component.get(c).ok_or_else(|| {
                    let (component, key) = err_key();
                    DependencyError::UnknownComponent { component, key, named: c.clone() }
                })?;
                let path = other.source_path(c, base).map_err(|_| {
                    let (component, key) = err_key();
                    DependencyError::Unsupported { component, key, what: "remote-source component" }
                })?;
                (path, format!("component {c:?}"))
            }
            DependencyTable { url: Some(_), .. } => {
                let (component, key) = err_key();
                return Err(DependencyError::Unsupported { component, key, what: "URL" });
            }
            _ => {
                let (component, key) = err_key();
                return Err(DependencyError::Unsupported { component, key, what: "registry" });
            }
        };
        let wasm = std::fs::read(&path).map_err(|error| {
            let (component, key) = err_key();
            DependencyError::Read { component, key, path: path.clone(), error }
        })?;
        out.push(Resolved {
            key: key.clone(),
            selector: Selector::parse(key),
            origin,
            wasm,
            export: table.export.clone(),
            inherits,
        });
    }
    Ok(out)
}

fn inheritance(
    id: &str,
    key: &str,
    component_wide: bool,
    table: &DependencyTable,
) -> Result<Inheritance, DependencyError> {
    let err = |got: String| DependencyError::InheritForm { component: id.into(), key: key.into(), got };
    match (&table.inherit_configuration, component_wide) {
        (Some(_), true) => Err(DependencyError::MixedInheritance { component: id.into() }),
        (None, true) => Ok(Inheritance::All),
        (None, false) | (Some(toml::Value::Boolean(false)), false) => Ok(Inheritance::Only(BTreeSet::new())),
        (Some(toml::Value::Boolean(true)), false) => Ok(Inheritance::All),
        (Some(toml::Value::Array(items)), false) => {
            let mut keys = BTreeSet::new();
            for item in items {
                let name = item.as_str().ok_or_else(|| err(item.to_string()))?;
                let known = CAPABILITIES.iter().find(|(k, _)| *k == name).ok_or_else(|| {
                    DependencyError::UnknownInheritKey { component: id.into(), key: key.into(), got: name.into() }
                })?;
                keys.insert(known.0);
            }
            Ok(Inheritance::Only(keys))
        }
        (Some(other), false) => Err(err(other.to_string())),
    }
}

/// The configuration key governing import `name`, if it is a capability.
pub fn capability_of(name: &str) -> Option<&'static str> {
    let bare = name.split_once('@').map_or(name, |(n, _)| n);
    CAPABILITIES
        .iter()
        .find(|(_, prefixes)| {
            prefixes.iter().any(|p| if p.ends_with('/') { bare.starts_with(p) } else { bare == *p })
        })
        .map(|(k, _)| *k)
}

/// Composes `parent` (component `id`) with its resolved dependencies and
/// returns the composed component's bytes.
/// `grants(key)` says whether the parent grants anything under a
/// configuration key (see the module docs).
pub fn compose(
    id: &str,
    parent: &[u8],
    deps: &[Resolved],
    grants: impl Fn(&str) -> bool,
) -> Result<Vec<u8>, DependencyError> {
    let encode_err = |e: &dyn fmt::Display| DependencyError::Encode { component: id.into(), error: format!("{e:#}") };
    let mut graph = CompositionGraph::new();
    let parent_pkg = Package::from_bytes("vnext-compose:parent", None, parent.to_vec(), graph.types_mut())
        .map_err(|e| encode_err(&e))?;
    let parent_pkg = graph.register_package(parent_pkg).map_err(|e| encode_err(&e))?;
    let parent_imports: Vec<String> = graph.types()[graph[parent_pkg].ty()].imports.keys().cloned().collect();
    let parent_inst = graph.instantiate(parent_pkg);

    for (i, dep) in deps.iter().enumerate() {
        let dep_err = |kind: fn(String, String, String, String) -> DependencyError, s: String| {
            kind(id.into(), dep.key.clone(), dep.origin.clone(), s)
        };
        let pkg = Package::from_bytes(&format!("vnext-compose:dep{i}"), None, dep.wasm.clone(), graph.types_mut())
            .map_err(|e| {
                dep_err(
                    |component, key, origin, error| DependencyError::NotAComponent { component, key, origin, error },
                    format!("{e:#}"),
                )
            })?;
        let world = graph.types()[pkg.ty()].clone();
        let wanted: Vec<&String> = parent_imports.iter().filter(|name| dep.selector.matches(name)).collect();
        if wanted.is_empty() {
            return Err(DependencyError::NoSuchImport { component: id.into(), key: dep.key.clone() });
        }
        // A capability the dependency imports, may not reach, and would get
        // through the parent's grant.
        for import in world.imports.keys() {
            if let Some(config) = capability_of(import) {
                if !dep.inherits.allows(config) && grants(config) {
                    return Err(DependencyError::Denied {
                        component: id.into(),
                        key: dep.key.clone(),
                        capability: import.clone(),
                        config,
                    });
                }
            }
        }
        let pkg = graph.register_package(pkg).map_err(|e| encode_err(&e))?;
        let inst = graph.instantiate(pkg);
        for import in wanted {
            let export = match (&dep.export, &dep.selector) {
                (Some(e), Selector::Interface { .. } | Selector::Plain(_)) => e.clone(),
                _ => import.clone(),
            };
            let Some(export_ty) = world.exports.get(&export).copied() else {
                return Err(DependencyError::NoSuchExport {
                    component: id.into(),
                    key: dep.key.clone(),
                    origin: dep.origin.clone(),
                    export,
                });
            };
            let import_ty = graph.types()[graph[parent_pkg].ty()].imports[import];
            let mut cache = Default::default();
            SubtypeChecker::new(&mut cache)
                .is_subtype(export_ty, graph.types(), import_ty, graph.types())
                .map_err(|e| DependencyError::Incompatible {
                    component: id.into(),
                    key: dep.key.clone(),
                    import: import.clone(),
                    error: format!("{e:#}"),
                })?;
            let alias = graph.alias_instance_export(inst, &export).map_err(|e| encode_err(&e))?;
            graph.set_instantiation_argument(parent_inst, import, alias).map_err(|e| encode_err(&e))?;
        }
    }

    let exports: Vec<String> = graph.types()[graph[parent_pkg].ty()].exports.keys().cloned().collect();
    for name in exports {
        let alias = graph.alias_instance_export(parent_inst, &name).map_err(|e| encode_err(&e))?;
        graph.export(alias, &name).map_err(|e| encode_err(&e))?;
    }
    graph.encode(EncodeOptions::default()).map_err(|e| encode_err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_key_matches_its_import_with_or_without_version() {
        let with = Selector::parse("vnext:compute/hypervisor@0.1.0");
        assert!(with.matches("vnext:compute/hypervisor@0.1.0"));
        assert!(!with.matches("vnext:compute/hypervisor@0.2.0"));
        assert!(!with.matches("vnext:compute/types@0.1.0"));
        let without = Selector::parse("vnext:compute/hypervisor");
        assert!(without.matches("vnext:compute/hypervisor@0.2.0"));
    }

    #[test]
    fn a_package_key_matches_every_interface_of_the_package() {
        let pkg = Selector::parse("vnext:compute@0.1.0");
        assert!(pkg.matches("vnext:compute/hypervisor@0.1.0"));
        assert!(pkg.matches("vnext:compute/types@0.1.0"));
        assert!(!pkg.matches("vnext:computer/types@0.1.0"));
        assert!(!pkg.matches("wasi:http/types@0.2.0"));
    }

    #[test]
    fn a_plain_key_matches_only_that_name() {
        let plain = Selector::parse("my-lib");
        assert!(plain.matches("my-lib"));
        assert!(!plain.matches("my-lib-2"));
    }

    #[test]
    fn capabilities_are_governed_by_their_configuration_key() {
        assert_eq!(capability_of("wasi:http/outgoing-handler@0.2.6"), Some("allowed_outbound_hosts"));
        assert_eq!(capability_of("wasi:sockets/tcp@0.2.0"), Some("allowed_outbound_hosts"));
        assert_eq!(capability_of("spin:variables/variables@3.0.0"), Some("variables"));
        assert_eq!(capability_of("wasi:keyvalue/store@0.2.0-draft2"), Some("key_value_stores"));
        assert_eq!(capability_of("wasi:clocks/monotonic-clock@0.2.0"), None);
        assert_eq!(capability_of("wasi:http/types@0.2.0"), None);
    }

    fn table(inherit: Option<toml::Value>) -> DependencyTable {
        DependencyTable {
            path: Some("x.wasm".into()),
            url: None,
            digest: None,
            version: None,
            registry: None,
            package: None,
            component: None,
            export: None,
            inherit_configuration: inherit,
        }
    }

    #[test]
    fn inheritance_defaults_to_nothing_and_lists_name_known_keys() {
        assert_eq!(inheritance("c", "k", false, &table(None)).unwrap(), Inheritance::Only(BTreeSet::new()));
        assert_eq!(inheritance("c", "k", true, &table(None)).unwrap(), Inheritance::All);
        assert_eq!(inheritance("c", "k", false, &table(Some(toml::Value::Boolean(true)))).unwrap(), Inheritance::All);
        let list = toml::Value::Array(vec!["variables".into(), "allowed_outbound_hosts".into()]);
        let got = inheritance("c", "k", false, &table(Some(list))).unwrap();
        assert!(got.allows("variables") && got.allows("allowed_outbound_hosts") && !got.allows("key_value_stores"));
        let bad = toml::Value::Array(vec!["outbound".into()]);
        let e = inheritance("c", "k", false, &table(Some(bad))).unwrap_err().to_string();
        assert!(e.contains("\"outbound\" is no configuration key") && e.contains("allowed_outbound_hosts"), "{e}");
        let e = inheritance("c", "k", true, &table(Some(toml::Value::Boolean(true)))).unwrap_err().to_string();
        assert!(e.contains("exclude each other"), "{e}");
    }
}
