//! Why the domain said no, in categories every edge can map without knowing the aggregate.

/// The category of a domain refusal, used by edges to pick a response (404, 409, 400…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// The command targets an aggregate that does not exist.
    NotFound,
    /// The command would create an aggregate that already exists.
    AlreadyExists,
    /// The command is well-formed but its content breaks a rule (e.g. an empty order).
    InvalidInput,
    /// The aggregate's current status does not allow the command.
    InvalidTransition,
}

/// Implemented by every aggregate error to say which kind of refusal it is.
pub trait Rejection {
    /// The category of this refusal.
    fn kind(&self) -> RejectionKind;
}
