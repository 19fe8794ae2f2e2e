//! The seed stories' aggregates, written on the [`outbox_domain`] contract as any
//! team's own would be: the car workshop's [`repair`] (seed `000`) and the food
//! service's [`order`] (seeds `001`, `002`). Pure: no I/O, no async, no AWS.

pub mod order;
pub mod repair;
