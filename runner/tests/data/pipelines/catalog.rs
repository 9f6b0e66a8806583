//! A fake plugin catalog for the pipeline tests: plugin descriptions and
//! schemas come from `plugins.json`; a plugin's `validate` rejects the
//! string at `validate.path` unless it ends with `validate.reject_unless_suffix`.

use dbops::pipeline::PluginCatalog;
use dbops_plugin_sdk::protocol::{
    OutputInfo, PluginInfo, Problem, ValidateRequest, ValidateResponse,
};
use serde_json::Value;

/// Plugins read from `plugins.json`.
pub struct FakeCatalog {
    plugins: Vec<(PluginInfo, Value)>,
}

impl FakeCatalog {
    /// The catalog of `runner/tests/data/pipelines/plugins.json`.
    pub fn load() -> FakeCatalog {
        let text = include_str!("plugins.json");
        let entries: Vec<Value> = serde_json::from_str(text).expect("plugins.json is valid JSON");
        let plugins = entries
            .into_iter()
            .map(|e| {
                let outputs = e["outputs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| OutputInfo {
                        name: o["name"].as_str().unwrap_or_default().to_string(),
                        description: o["description"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect();
                let info = PluginInfo {
                    abi_version: 1,
                    name: e["name"].as_str().unwrap_or_default().to_string(),
                    version: "0.1.0".into(),
                    sdk_version: "0.1.0".into(),
                    description: e["description"].as_str().unwrap_or_default().to_string(),
                    config_schema: e["config_schema"].clone(),
                    outputs,
                    features: Vec::new(),
                    has_compensate: false,
                };
                (info, e["validate"].clone())
            })
            .collect();
        FakeCatalog { plugins }
    }
}

impl PluginCatalog for FakeCatalog {
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.plugins.iter().map(|(p, _)| p.name.clone()).collect();
        names.sort();
        names
    }

    fn info(&self, name: &str) -> Option<&PluginInfo> {
        self.plugins.iter().map(|(p, _)| p).find(|p| p.name == name)
    }

    fn validate(&self, name: &str, request: &ValidateRequest) -> ValidateResponse {
        let mut response = ValidateResponse::default();
        let Some((_, rule)) = self.plugins.iter().find(|(p, _)| p.name == name) else {
            return response;
        };
        let Some(path) = rule["path"].as_str() else {
            return response;
        };
        if request.deferred.iter().any(|d| d == path) {
            return response;
        }
        let suffix = rule["reject_unless_suffix"].as_str().unwrap_or_default();
        if let Some(value) = request.with.pointer(path).and_then(Value::as_str)
            && !value.ends_with(suffix)
        {
            response.problems.push(Problem {
                path: path.to_string(),
                message: rule["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        response
    }
}
