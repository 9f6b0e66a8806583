//! A plugin whose descriptor claims ABI version 999, to prove the host
//! refuses it with a message naming the file and both versions.

use dbops_plugin_sdk::{Context, Outputs, Step, StepResult, export_plugin};

/// The step.
pub struct BadAbi;

/// No configuration.
#[derive(serde::Deserialize, dbops_plugin_sdk::schemars::JsonSchema)]
#[schemars(crate = "dbops_plugin_sdk::schemars")]
pub struct Config {}

impl Step for BadAbi {
    type Config = Config;
    const NAME: &'static str = "bad-abi";
    const DESCRIPTION: &'static str = "test plugin built for a future ABI";

    fn run(_ctx: &Context<'_>, _config: Config) -> StepResult<Outputs> {
        Ok(Outputs::new())
    }
}

export_plugin!(BadAbi, abi_version = 999);
