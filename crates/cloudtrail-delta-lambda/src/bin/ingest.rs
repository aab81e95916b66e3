//! `cloudtrail-delta-lambda`: the ingest function (packaged as `bootstrap`).
//!
//! Its settings are read from the environment at init (`cloudtrail_delta::settings`); a
//! missing or bad one stops the function there, with a message that names it.

use cloudtrail_delta::runtime::budget::Budget;
use cloudtrail_delta::settings::{Program, Settings};
use cloudtrail_delta_lambda::Function;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    cloudtrail_delta::runtime::memory::keep_rss_flat();
    cloudtrail_delta_lambda::init_logging();
    let settings =
        Settings::from_env(Program::IngestFunction).inspect_err(|e| tracing::error!("{e}"))?;
    let function = Function::new(settings)
        .await
        .inspect_err(|e| tracing::error!("{e}"))?;
    let function = &function;
    let memory_mb = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|mb| mb.parse().ok());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = Budget::for_invocation(event.context.deadline(), memory_mb);
        function
            .handle(event.payload, budget)
            .await
            .map_err(|e| Diagnostic {
                error_type: "IngestFailed".into(),
                error_message: e.to_string(),
            })
    }))
    .await
}
