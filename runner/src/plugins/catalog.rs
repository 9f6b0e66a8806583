//! [`PluginSet`] as the pipeline validator's [`PluginCatalog`].

use dbops_plugin_sdk::protocol::{PluginInfo, ValidateRequest, ValidateResponse};

use std::sync::Arc;

use super::{LoadedPlugin, PluginSet};
use crate::pipeline::PluginCatalog;

impl PluginCatalog for PluginSet {
    fn names(&self) -> Vec<String> {
        let mut names = self.available.clone();
        for uses in self.by_uses.keys() {
            if !names.contains(uses) {
                names.push(uses.clone());
            }
        }
        names
    }

    fn info(&self, name: &str) -> Option<&PluginInfo> {
        self.by_uses.get(name).map(|p| &p.info)
    }

    fn config_validator(&self, name: &str) -> Option<Result<Arc<jsonschema::Validator>, String>> {
        self.by_uses.get(name).map(LoadedPlugin::config_validator)
    }

    fn validate(&self, name: &str, request: &ValidateRequest) -> ValidateResponse {
        let Some(loaded) = self.by_uses.get(name) else {
            return problem(format!("plugin `{name}` is not loaded"));
        };
        let json = match serde_json::to_string(request) {
            Ok(json) => json,
            Err(e) => return problem(format!("cannot encode the validate request: {e}")),
        };
        match loaded.plugin().validate(&json) {
            Ok(response) => serde_json::from_str(&response).unwrap_or_else(|e| {
                problem(format!(
                    "plugin {} returned a malformed validate response: {e}",
                    loaded.path.display()
                ))
            }),
            Err(e) => problem(format!("plugin {}: {e}", loaded.path.display())),
        }
    }
}

fn problem(message: String) -> ValidateResponse {
    ValidateResponse {
        problems: vec![dbops_plugin_sdk::Problem {
            path: String::new(),
            message,
        }],
    }
}
