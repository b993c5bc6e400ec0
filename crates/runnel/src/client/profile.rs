//! Named connection profiles: `--profile NAME` reads bootstrap brokers and
//! client properties from a small TOML file, so a cluster's address and
//! security settings need not be typed on every command.
//!
//! The file is `$XDG_CONFIG_HOME/runnel/profiles.toml`, or
//! `~/.config/runnel/profiles.toml` when XDG_CONFIG_HOME is unset or empty.
//! Each top-level table is one profile:
//!
//! ```toml
//! [staging]
//! brokers = "stage-1:9092,stage-2:9092"
//! properties = { "client.id" = "ops", "socket.timeout.ms" = 10000 }
//! ```
//!
//! `--brokers` (or RUNNEL_BROKERS) replaces the profile's brokers, and each
//! `-X` is applied after the profile's properties, so it wins.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// One profile as read from the file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub brokers: Option<String>,
    pub properties: Vec<(String, String)>,
}

/// Where the profiles file is, from the environment as `var` reports it.
pub fn profiles_path(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let non_empty = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(config) = non_empty("XDG_CONFIG_HOME") {
        return Some(Path::new(&config).join("runnel").join("profiles.toml"));
    }
    non_empty("HOME").map(|home| Path::new(&home).join(".config").join("runnel").join("profiles.toml"))
}

/// Reads profile `name` from the profiles file.
pub fn load(name: &str) -> anyhow::Result<Profile> {
    let Some(path) = profiles_path(|v| std::env::var(v).ok()) else {
        bail!("--profile {name}: neither XDG_CONFIG_HOME nor HOME is set, so there is no profiles file");
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("--profile {name}: cannot read {}", path.display()))?;
    parse(&text, name).with_context(|| format!("--profile {name} in {}", path.display()))
}

/// Finds profile `name` in the text of a profiles file.
pub fn parse(text: &str, name: &str) -> anyhow::Result<Profile> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| anyhow::anyhow!("{}", e.message()))?;
    let Some(entry) = table.get(name) else {
        let mut known: Vec<&str> = table.keys().map(String::as_str).collect();
        known.sort_unstable();
        bail!("no such profile (the file has: {})", if known.is_empty() { "none".into() } else { known.join(", ") });
    };
    let Some(entry) = entry.as_table() else { bail!("the profile is not a table") };
    let mut profile = Profile::default();
    for (key, value) in entry {
        match (key.as_str(), value) {
            ("brokers", toml::Value::String(brokers)) => profile.brokers = Some(brokers.clone()),
            ("brokers", _) => bail!("brokers must be a string such as \"host1:9092,host2:9092\""),
            ("properties", toml::Value::Table(properties)) => {
                for (k, v) in properties {
                    let v = match v {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_) => v.to_string(),
                        _ => bail!("property {k} must be a string, number or boolean"),
                    };
                    profile.properties.push((k.clone(), v));
                }
            }
            ("properties", _) => bail!("properties must be a table of client properties"),
            (other, _) => bail!("unknown key {other} (a profile holds brokers and properties)"),
        }
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[local]
brokers = "127.0.0.1:9092"

[staging]
brokers = "stage-1:9092,stage-2:9092"
properties = { "client.id" = "ops", "socket.timeout.ms" = 10000, "enable.idempotence" = true }
"#;

    #[test]
    fn a_profile_holds_brokers_and_properties() {
        assert_eq!(
            parse(FILE, "local").unwrap(),
            Profile { brokers: Some("127.0.0.1:9092".into()), properties: vec![] }
        );
        let staging = parse(FILE, "staging").unwrap();
        assert_eq!(staging.brokers.as_deref(), Some("stage-1:9092,stage-2:9092"));
        let mut properties = staging.properties;
        properties.sort();
        assert_eq!(
            properties,
            [("client.id", "ops"), ("enable.idempotence", "true"), ("socket.timeout.ms", "10000")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn mistakes_in_the_file_are_named() {
        let err = parse(FILE, "prod").unwrap_err().to_string();
        assert!(err.contains("local, staging"), "{err}");
        assert!(parse("[a]\nbroker = \"x\"\n", "a").unwrap_err().to_string().contains("unknown key broker"));
        assert!(parse("[a]\nbrokers = 1\n", "a").is_err());
        assert!(parse("[a]\nproperties = { x = [1] }\n", "a").is_err());
        assert!(parse("a = 1\n", "a").is_err());
        assert!(parse("[a\n", "a").is_err());
    }

    #[test]
    fn the_file_lives_in_the_config_directory() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            profiles_path(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/runnel/profiles.toml"))
        );
        assert_eq!(
            profiles_path(env(&[("XDG_CONFIG_HOME", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/runnel/profiles.toml"))
        );
        assert_eq!(profiles_path(env(&[])), None);
    }
}
