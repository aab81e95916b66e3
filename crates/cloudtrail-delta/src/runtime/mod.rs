//! What a running process needs besides the pipeline: the time and memory an invocation may
//! spend ([`budget`]), allocator settings ([`memory`]), figures as CloudWatch metrics
//! ([`metrics`]), and the points where tests stop it ([`crash`]).

pub mod budget;
pub mod crash;
pub mod memory;
pub mod metrics;
