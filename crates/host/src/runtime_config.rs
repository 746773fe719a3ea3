//! Spin's runtime configuration file (`--runtime-config-file`): where each
//! key-value label lives. Only the tables this host implements are accepted;
//! anything else is an error naming the table, rather than being ignored.
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379/0"
//! ```

use anyhow::Context;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use vnext_kv::StoreConfig;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub key_value_store: HashMap<String, StoreConfig>,
}

impl RuntimeConfig {
    /// Reads the file; relative SQLite paths are resolved against its directory, as in Spin.
    pub fn load(path: &Path) -> anyhow::Result<RuntimeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        let mut cfg: RuntimeConfig = toml::from_str(&text)
            .with_context(|| format!("invalid runtime config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for store in cfg.key_value_store.values_mut() {
            if let StoreConfig::Spin { path: Some(p) } = store
                && p.is_relative()
            {
                *p = base.join(&*p);
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_store_parses() {
        let c: RuntimeConfig =
            toml::from_str("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://h:1/0\"\n").unwrap();
        assert_eq!(c.key_value_store["default"], StoreConfig::Redis { url: "redis://h:1/0".into() });
    }

    #[test]
    fn unknown_store_type_is_an_error() {
        let r: Result<RuntimeConfig, _> = toml::from_str("[key_value_store.default]\ntype = \"azure_cosmos\"\n");
        assert!(r.is_err());
    }

    #[test]
    fn unknown_table_is_an_error() {
        let r: Result<RuntimeConfig, _> = toml::from_str("[sqlite_database.default]\ntype = \"spin\"\n");
        assert!(r.is_err());
    }
}
