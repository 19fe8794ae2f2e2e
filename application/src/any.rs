//! Commands of any aggregate type behind one type: what a route or a demo
//! story hands the command use case when the program serves several
//! aggregates. The aggregate's own types stay inside; the refusal keeps its
//! [`RejectionKind`] and its message.

use std::fmt;

use async_trait::async_trait;

use outbox_domain::{Aggregate, Rejection, RejectionKind};

use crate::command::{CommandError, CommandOutcome, CommandService, RequestMeta, Target};

/// A refusal of some aggregate's domain: its kind and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnyRejection {
    kind: RejectionKind,
    message: String,
}

impl AnyRejection {
    /// The refusal `rejection`, without its type.
    pub fn of(rejection: &(impl Rejection + fmt::Display)) -> Self {
        Self {
            kind: rejection.kind(),
            message: rejection.to_string(),
        }
    }
}

impl Rejection for AnyRejection {
    fn kind(&self) -> RejectionKind {
        self.kind
    }
}

/// A command of some aggregate type, ready for the command use case.
#[async_trait]
pub trait AnyCommand: fmt::Debug + Send + Sync {
    /// The aggregate type it is for.
    fn aggregate_type(&self) -> &'static str;

    /// Executes it against `target` (see [`CommandService::execute`]).
    ///
    /// # Errors
    /// The use case's [`CommandError`], its refusal without its type.
    async fn execute(
        &self,
        commands: &CommandService,
        target: Target,
        meta: &RequestMeta,
    ) -> Result<CommandOutcome, CommandError<AnyRejection>>;
}

/// A command of aggregate `A`, as an [`AnyCommand`].
pub struct TypedCommand<A: Aggregate>(A::Command);

impl<A: Aggregate> TypedCommand<A> {
    /// Wraps `command`.
    pub fn new(command: A::Command) -> Self {
        Self(command)
    }
}

impl<A: Aggregate> fmt::Debug for TypedCommand<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", A::TYPE, self.0)
    }
}

#[async_trait]
impl<A: Aggregate> AnyCommand for TypedCommand<A> {
    fn aggregate_type(&self) -> &'static str {
        A::TYPE
    }

    async fn execute(
        &self,
        commands: &CommandService,
        target: Target,
        meta: &RequestMeta,
    ) -> Result<CommandOutcome, CommandError<AnyRejection>> {
        commands
            .execute::<A>(target, &self.0, meta)
            .await
            .map_err(|error| error.map_rejection(|rejection| AnyRejection::of(&rejection)))
    }
}
