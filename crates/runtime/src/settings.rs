//! Typed settings: defaults from the type, then an optional TOML file, then environment
//! variables `IEA_<COMPONENT>__SECTION__KEY` (double underscore between levels), so that
//! compose and tests can redirect any address without a file.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Loads `T` for `component` (e.g. `auth-client` reads `IEA_AUTH_CLIENT__*`).
pub fn load<T>(component: &str, file: Option<&Path>) -> anyhow::Result<T>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        anyhow::ensure!(
            file.exists(),
            "settings file {} does not exist",
            file.display()
        );
        fig = fig.merge(Toml::file(file));
    }
    fig = fig.merge(Env::prefixed(&env_prefix(component)).split("__"));
    Ok(fig.extract()?)
}

/// `auth-client` → `IEA_AUTH_CLIENT__`.
pub fn env_prefix(component: &str) -> String {
    format!("IEA_{}__", component.to_uppercase().replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct S {
        listen: String,
        nested: N,
    }
    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct N {
        port: u16,
        name: String,
    }

    #[test]
    // figment's own test harness returns its (large) error type by value.
    #[allow(clippy::result_large_err)]
    fn file_values_are_overridden_by_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\n[nested]\nport = 7\nname = \"file\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("IEA_SETTINGS_TEST__NESTED__PORT", "9");
            let s: S = load("settings-test", Some(&file)).unwrap();
            assert_eq!(s.listen, "127.0.0.1:1");
            assert_eq!(s.nested.port, 9);
            assert_eq!(s.nested.name, "file");
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = load::<S>("x", Some(Path::new("/nonexistent/iea.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
